/** Identity v3 (Keystone): tokens, the user's projects, and the admin resources. */
import { ApiError, getSession, qs, request, setSession, type CatalogService, type Named, type Session } from './client.js';

/** Identity is reached before there is a catalog: it lives on this origin. */
export const IDENTITY = '/identity/v3';

interface TokenBody {
  token: {
    expires_at: string;
    user: Named & { domain: Named };
    project?: Named & { domain?: Named };
    roles?: Named[];
    catalog?: CatalogService[];
  };
}

async function issue(auth: unknown): Promise<Session> {
  const res = await request<Response>(`${IDENTITY}/auth/tokens`, { method: 'POST', body: { auth }, anonymous: true, raw: true });
  const token = res.headers.get('x-subject-token');
  if (!token) throw new ApiError(500, 'The identity service did not return a token.');
  const { token: t } = (await res.json()) as TokenBody;
  return { token, expiresAt: t.expires_at, user: t.user, project: t.project ?? null, roles: t.roles ?? [], catalog: t.catalog ?? [] };
}

const LAST_PROJECT = 'stratus.lastProject';

/**
 * Signs in with a password. A user without a default project gets an
 * unscoped token; the dashboard then scopes it to the last project used on
 * this browser, or the first project the user has a role on.
 */
export async function signIn(domain: string, user: string, password: string): Promise<Session> {
  const s = await issue({ identity: { methods: ['password'], password: { user: { name: user, domain: { name: domain }, password } } } });
  if (s.project) {
    setSession(s);
    return s;
  }
  const projects = await request<{ projects: (Named & { enabled?: boolean })[] }>(`${IDENTITY}/auth/projects`, { headers: { 'x-auth-token': s.token }, anonymous: true });
  const usable = projects.projects.filter((p) => p.enabled !== false);
  if (usable.length === 0) throw new ApiError(403, `${user} has no role on any project, so there is nothing to show.`);
  const last = localStorage.getItem(LAST_PROJECT);
  const pick = usable.find((p) => p.id === last) ?? usable[0]!;
  const scoped = await issue({ identity: { methods: ['token'], token: { id: s.token } }, scope: { project: { id: pick.id } } });
  setSession(scoped);
  return scoped;
}

/** A new token for another of the user's projects, from the current token. */
export async function switchProject(projectId: string): Promise<Session> {
  const s = getSession();
  if (!s) throw new ApiError(401, 'Not signed in.');
  const scoped = await issue({ identity: { methods: ['token'], token: { id: s.token } }, scope: { project: { id: projectId } } });
  localStorage.setItem(LAST_PROJECT, projectId);
  // The old token is not revoked: a rescoped token shares its audit chain,
  // so revoking the old one would revoke the new one too.
  setSession(scoped);
  return scoped;
}

export async function signOut(): Promise<void> {
  const s = getSession();
  if (s) await request(`${IDENTITY}/auth/tokens`, { method: 'DELETE', headers: { 'x-auth-token': s.token, 'x-subject-token': s.token }, anonymous: true }).catch(() => undefined);
  setSession(null, 'You have signed out.');
}

export async function myProjects(): Promise<Named[]> {
  return (await request<{ projects: Named[] }>(`${IDENTITY}/auth/projects`)).projects;
}

/** Whether the identity admin pages apply: probed by asking for something only an admin may list. */
export async function probeIdentityAdmin(): Promise<boolean> {
  try {
    await request(`${IDENTITY}/users${qs({ limit: 1 })}`);
    return true;
  } catch (e) {
    if (e instanceof ApiError && (e.status === 403 || e.status === 404)) return false;
    throw e;
  }
}

export interface Project extends Named {
  description?: string;
  enabled: boolean;
  domain_id: string;
}
export interface User extends Named {
  enabled: boolean;
  domain_id: string;
  default_project_id?: string;
  email?: string;
  description?: string;
}
export interface Group extends Named {
  description?: string;
  domain_id: string;
}
export interface Role extends Named {
  domain_id?: string | null;
}
export interface Assignment {
  role: { id: string; name?: string };
  user?: { id: string; name?: string };
  group?: { id: string; name?: string };
  scope: { project?: { id: string; name?: string }; domain?: { id: string; name?: string }; system?: unknown };
}
export interface AppCredential extends Named {
  description?: string;
  expires_at?: string | null;
  project_id: string;
  roles?: Named[];
  unrestricted?: boolean;
  secret?: string;
}

const I = IDENTITY;
export const identity = {
  projects: async () => (await request<{ projects: Project[] }>(`${I}/projects`)).projects,
  createProject: (p: { name: string; description?: string; domain_id?: string; enabled?: boolean }) => request<{ project: Project }>(`${I}/projects`, { method: 'POST', body: { project: p } }),
  updateProject: (id: string, p: Partial<Project>) => request(`${I}/projects/${id}`, { method: 'PATCH', body: { project: p } }),
  deleteProject: (id: string) => request(`${I}/projects/${id}`, { method: 'DELETE' }),

  users: async () => (await request<{ users: User[] }>(`${I}/users`)).users,
  createUser: (u: { name: string; password?: string; email?: string; default_project_id?: string; domain_id?: string; enabled?: boolean }) =>
    request<{ user: User }>(`${I}/users`, { method: 'POST', body: { user: u } }),
  updateUser: (id: string, u: Partial<User> & { password?: string }) => request(`${I}/users/${id}`, { method: 'PATCH', body: { user: u } }),
  deleteUser: (id: string) => request(`${I}/users/${id}`, { method: 'DELETE' }),

  groups: async () => (await request<{ groups: Group[] }>(`${I}/groups`)).groups,
  createGroup: (g: { name: string; description?: string }) => request<{ group: Group }>(`${I}/groups`, { method: 'POST', body: { group: g } }),
  deleteGroup: (id: string) => request(`${I}/groups/${id}`, { method: 'DELETE' }),
  groupUsers: async (id: string) => (await request<{ users: User[] }>(`${I}/groups/${id}/users`)).users,
  addToGroup: (gid: string, uid: string) => request(`${I}/groups/${gid}/users/${uid}`, { method: 'PUT' }),
  removeFromGroup: (gid: string, uid: string) => request(`${I}/groups/${gid}/users/${uid}`, { method: 'DELETE' }),

  roles: async () => (await request<{ roles: Role[] }>(`${I}/roles`)).roles,
  createRole: (name: string) => request<{ role: Role }>(`${I}/roles`, { method: 'POST', body: { role: { name } } }),
  deleteRole: (id: string) => request(`${I}/roles/${id}`, { method: 'DELETE' }),
  assignments: async () => (await request<{ role_assignments: Assignment[] }>(`${I}/role_assignments${qs({ include_names: true })}`)).role_assignments,
  grant: (projectId: string, actor: 'users' | 'groups', actorId: string, roleId: string) => request(`${I}/projects/${projectId}/${actor}/${actorId}/roles/${roleId}`, { method: 'PUT' }),
  revoke: (projectId: string, actor: 'users' | 'groups', actorId: string, roleId: string) => request(`${I}/projects/${projectId}/${actor}/${actorId}/roles/${roleId}`, { method: 'DELETE' }),

  appCredentials: async (uid: string) => (await request<{ application_credentials: AppCredential[] }>(`${I}/users/${uid}/application_credentials`)).application_credentials,
  createAppCredential: (uid: string, c: { name: string; description?: string; expires_at?: string; unrestricted?: boolean }) =>
    request<{ application_credential: AppCredential }>(`${I}/users/${uid}/application_credentials`, { method: 'POST', body: { application_credential: c } }),
  deleteAppCredential: (uid: string, id: string) => request(`${I}/users/${uid}/application_credentials/${id}`, { method: 'DELETE' }),
};
