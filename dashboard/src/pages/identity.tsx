/** Identity pages: projects, users, groups, roles and assignments (admins); application credentials (everyone). */
import { useState } from 'react';
import { errorText } from '../api/client.js';
import { identity, type AppCredential, type Assignment, type Group, type Project, type Role, type User } from '../api/identity.js';
import { useApp } from '../app.js';
import { Confirm, ErrorBox, fmtTime, FormDialog, Modal, PageHeader, Spinner, Table, useAction, useAsync } from '../ui/kit.js';

export function ProjectsPage() {
  const list = useAsync(() => identity.projects(), []);
  const run = useAction();
  const [creating, setCreating] = useState(false);
  const [del, setDel] = useState<Project | null>(null);
  return (
    <>
      <PageHeader title="Projects">
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          Create project
        </button>
      </PageHeader>
      <ErrorBox error={list.error} />
      {list.loading && !list.data ? <Spinner /> : null}
      <Table<Project>
        caption="Projects"
        rows={list.data?.filter((p) => !(p as Project & { is_domain?: boolean }).is_domain)}
        rowKey={(p) => p.id}
        columns={[
          { label: 'Name', render: (p) => p.name },
          { label: 'Description', render: (p) => p.description || '—' },
          { label: 'Enabled', render: (p) => (p.enabled ? 'Yes' : 'No') },
          { label: 'ID', render: (p) => <code>{p.id}</code> },
          {
            label: 'Actions',
            render: (p) => (
              <div className="button-row">
                <button
                  type="button"
                  onClick={async () => {
                    await run(`${p.enabled ? 'Disable' : 'Enable'} ${p.name}`, () => identity.updateProject(p.id, { enabled: !p.enabled }));
                    void list.reload();
                  }}
                >
                  {p.enabled ? 'Disable' : 'Enable'}
                </button>
                <button type="button" className="danger" onClick={() => setDel(p)}>
                  Delete
                </button>
              </div>
            ),
          },
        ]}
      />
      {creating && (
        <FormDialog
          title="Create project"
          fields={[
            { name: 'name', label: 'Name', required: true },
            { name: 'description', label: 'Description' },
            { name: 'enabled', label: 'Enabled', type: 'checkbox', initial: true },
          ]}
          submitLabel="Create"
          onSubmit={async (v) => {
            await identity.createProject({ name: String(v.name).trim(), description: String(v.description), enabled: v.enabled === true });
            void list.reload();
          }}
          onClose={() => setCreating(false)}
        />
      )}
      {del && (
        <Confirm
          title={`Delete project ${del.name}?`}
          message="Role assignments on it are removed. Delete its resources first."
          onConfirm={async () => {
            await identity.deleteProject(del.id);
            void list.reload();
          }}
          onClose={() => setDel(null)}
        />
      )}
    </>
  );
}

export function UsersPage() {
  const list = useAsync(() => identity.users(), []);
  const projects = useAsync(() => identity.projects(), []);
  const run = useAction();
  const [creating, setCreating] = useState(false);
  const [pw, setPw] = useState<User | null>(null);
  const [del, setDel] = useState<User | null>(null);
  const projectName = (id?: string) => projects.data?.find((p) => p.id === id)?.name ?? id ?? '—';
  return (
    <>
      <PageHeader title="Users">
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          Create user
        </button>
      </PageHeader>
      <ErrorBox error={list.error} />
      {list.loading && !list.data ? <Spinner /> : null}
      <Table<User>
        caption="Users"
        rows={list.data}
        rowKey={(u) => u.id}
        columns={[
          { label: 'Name', render: (u) => u.name },
          { label: 'Email', render: (u) => u.email || '—' },
          { label: 'Default project', render: (u) => projectName(u.default_project_id) },
          { label: 'Enabled', render: (u) => (u.enabled ? 'Yes' : 'No') },
          {
            label: 'Actions',
            render: (u) => (
              <div className="button-row">
                <button type="button" onClick={() => setPw(u)}>
                  Set password
                </button>
                <button
                  type="button"
                  onClick={async () => {
                    await run(`${u.enabled ? 'Disable' : 'Enable'} ${u.name}`, () => identity.updateUser(u.id, { enabled: !u.enabled }));
                    void list.reload();
                  }}
                >
                  {u.enabled ? 'Disable' : 'Enable'}
                </button>
                <button type="button" className="danger" onClick={() => setDel(u)}>
                  Delete
                </button>
              </div>
            ),
          },
        ]}
      />
      {creating && (
        <FormDialog
          title="Create user"
          fields={[
            { name: 'name', label: 'User name', required: true },
            { name: 'password', label: 'Password', type: 'password', required: true },
            { name: 'email', label: 'Email', type: 'email' },
            {
              name: 'project',
              label: 'Primary project',
              type: 'select',
              options: (projects.data ?? []).map((p) => ({ value: p.id, label: p.name })),
              help: 'The user gets the "member" role on it.',
            },
          ]}
          submitLabel="Create"
          onSubmit={async (v) => {
            const project = String(v.project);
            const { user } = await identity.createUser({
              name: String(v.name).trim(),
              password: String(v.password),
              ...(v.email ? { email: String(v.email) } : {}),
              ...(project ? { default_project_id: project } : {}),
              enabled: true,
            });
            if (project) {
              const roles = await identity.roles();
              const member = roles.find((r) => r.name === 'member') ?? roles.find((r) => r.name === 'reader');
              if (member) await identity.grant(project, 'users', user.id, member.id);
            }
            void list.reload();
          }}
          onClose={() => setCreating(false)}
        />
      )}
      {pw && (
        <FormDialog
          title={`Set password for ${pw.name}`}
          fields={[{ name: 'password', label: 'New password', type: 'password', required: true }]}
          onSubmit={(v) => identity.updateUser(pw.id, { password: String(v.password) })}
          onClose={() => setPw(null)}
        />
      )}
      {del && (
        <Confirm
          title={`Delete user ${del.name}?`}
          message="Their tokens and role assignments stop working at once."
          onConfirm={async () => {
            await identity.deleteUser(del.id);
            void list.reload();
          }}
          onClose={() => setDel(null)}
        />
      )}
    </>
  );
}

export function GroupsPage() {
  const list = useAsync(() => identity.groups(), []);
  const [creating, setCreating] = useState(false);
  const [members, setMembers] = useState<Group | null>(null);
  const [del, setDel] = useState<Group | null>(null);
  return (
    <>
      <PageHeader title="Groups">
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          Create group
        </button>
      </PageHeader>
      <ErrorBox error={list.error} />
      {list.loading && !list.data ? <Spinner /> : null}
      <Table<Group>
        caption="Groups"
        rows={list.data}
        rowKey={(g) => g.id}
        empty="No groups."
        columns={[
          { label: 'Name', render: (g) => g.name },
          { label: 'Description', render: (g) => g.description || '—' },
          {
            label: 'Actions',
            render: (g) => (
              <div className="button-row">
                <button type="button" onClick={() => setMembers(g)}>
                  Members
                </button>
                <button type="button" className="danger" onClick={() => setDel(g)}>
                  Delete
                </button>
              </div>
            ),
          },
        ]}
      />
      {creating && (
        <FormDialog
          title="Create group"
          fields={[
            { name: 'name', label: 'Name', required: true },
            { name: 'description', label: 'Description' },
          ]}
          submitLabel="Create"
          onSubmit={async (v) => {
            await identity.createGroup({ name: String(v.name).trim(), description: String(v.description) });
            void list.reload();
          }}
          onClose={() => setCreating(false)}
        />
      )}
      {members && <GroupMembers group={members} onClose={() => setMembers(null)} />}
      {del && (
        <Confirm
          title={`Delete group ${del.name}?`}
          message="Roles granted through the group stop applying to its members."
          onConfirm={async () => {
            await identity.deleteGroup(del.id);
            void list.reload();
          }}
          onClose={() => setDel(null)}
        />
      )}
    </>
  );
}

function GroupMembers({ group, onClose }: { group: Group; onClose: () => void }) {
  const members = useAsync(() => identity.groupUsers(group.id), [group.id]);
  const users = useAsync(() => identity.users(), []);
  const [pick, setPick] = useState('');
  const [error, setError] = useState<string | null>(null);
  const change = async (fn: () => Promise<unknown>) => {
    setError(null);
    try {
      await fn();
      await members.reload();
    } catch (e) {
      setError(errorText(e));
    }
  };
  const candidates = (users.data ?? []).filter((u) => !members.data?.some((m) => m.id === u.id));
  return (
    <Modal title={`Members of ${group.name}`} onClose={onClose}>
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          if (pick) void change(() => identity.addToGroup(group.id, pick));
        }}
      >
        <label htmlFor="add-member" className="sr-only">
          User to add
        </label>
        <select id="add-member" value={pick} onChange={(e) => setPick(e.target.value)}>
          <option value="">Choose a user…</option>
          {candidates.map((u) => (
            <option key={u.id} value={u.id}>
              {u.name}
            </option>
          ))}
        </select>
        <button type="submit" className="primary" disabled={!pick}>
          Add
        </button>
      </form>
      <ErrorBox error={error ?? members.error} />
      <Table<User>
        caption="Group members"
        rows={members.data}
        rowKey={(u) => u.id}
        empty="No members."
        columns={[
          { label: 'User', render: (u) => u.name },
          {
            label: 'Actions',
            render: (u) => (
              <button type="button" className="danger" onClick={() => void change(() => identity.removeFromGroup(group.id, u.id))}>
                Remove
              </button>
            ),
          },
        ]}
      />
    </Modal>
  );
}

export function RolesPage() {
  const roles = useAsync(() => identity.roles(), []);
  const assignments = useAsync(() => identity.assignments(), []);
  const refs = useAsync(async () => ({ projects: await identity.projects(), users: await identity.users(), groups: await identity.groups() }), []);
  const [creating, setCreating] = useState(false);
  const [granting, setGranting] = useState(false);
  const [del, setDel] = useState<Role | null>(null);
  const [revoke, setRevoke] = useState<Assignment | null>(null);
  const actorName = (a: Assignment) => (a.user ? `user ${a.user.name ?? a.user.id}` : `group ${a.group?.name ?? a.group?.id}`);
  const scopeName = (a: Assignment) => (a.scope.project ? `project ${a.scope.project.name ?? a.scope.project.id}` : a.scope.domain ? `domain ${a.scope.domain.name ?? a.scope.domain.id}` : 'system');
  return (
    <>
      <PageHeader title="Roles and assignments">
        <button type="button" className="primary" onClick={() => setGranting(true)}>
          Grant a role
        </button>
        <button type="button" onClick={() => setCreating(true)}>
          Create role
        </button>
      </PageHeader>
      <h2>Assignments</h2>
      <ErrorBox error={assignments.error} />
      {assignments.loading && !assignments.data ? <Spinner /> : null}
      <Table<Assignment>
        caption="Role assignments"
        rows={assignments.data}
        rowKey={(a) => `${a.role.id}:${a.user?.id ?? a.group?.id}:${a.scope.project?.id ?? a.scope.domain?.id ?? 'system'}`}
        columns={[
          { label: 'Role', render: (a) => a.role.name ?? a.role.id },
          { label: 'Who', render: actorName },
          { label: 'On', render: scopeName },
          {
            label: 'Actions',
            render: (a) =>
              a.scope.project ? (
                <button type="button" className="danger" onClick={() => setRevoke(a)}>
                  Revoke
                </button>
              ) : (
                <span className="muted">—</span>
              ),
          },
        ]}
      />
      <h2>Roles</h2>
      <ErrorBox error={roles.error} />
      <Table<Role>
        caption="Roles"
        rows={roles.data}
        rowKey={(r) => r.id}
        columns={[
          { label: 'Name', render: (r) => r.name },
          { label: 'ID', render: (r) => <code>{r.id}</code> },
          {
            label: 'Actions',
            render: (r) => (
              <button type="button" className="danger" onClick={() => setDel(r)}>
                Delete
              </button>
            ),
          },
        ]}
      />
      {creating && (
        <FormDialog
          title="Create role"
          fields={[{ name: 'name', label: 'Name', required: true }]}
          submitLabel="Create"
          onSubmit={async (v) => {
            await identity.createRole(String(v.name).trim());
            void roles.reload();
          }}
          onClose={() => setCreating(false)}
        />
      )}
      {granting && (
        <FormDialog
          title="Grant a role on a project"
          fields={[
            { name: 'project', label: 'Project', type: 'select', required: true, options: (refs.data?.projects ?? []).map((p) => ({ value: p.id, label: p.name })) },
            {
              name: 'actor',
              label: 'User or group',
              type: 'select',
              required: true,
              options: [
                ...(refs.data?.users ?? []).map((u) => ({ value: `users:${u.id}`, label: `user ${u.name}` })),
                ...(refs.data?.groups ?? []).map((g) => ({ value: `groups:${g.id}`, label: `group ${g.name}` })),
              ],
            },
            { name: 'role', label: 'Role', type: 'select', required: true, options: (roles.data ?? []).map((r) => ({ value: r.id, label: r.name })) },
          ]}
          submitLabel="Grant"
          onSubmit={async (v) => {
            const [kind, id] = String(v.actor).split(':') as ['users' | 'groups', string];
            await identity.grant(String(v.project), kind, id, String(v.role));
            void assignments.reload();
          }}
          onClose={() => setGranting(false)}
        />
      )}
      {del && (
        <Confirm
          title={`Delete role ${del.name}?`}
          message="Every assignment of this role is removed."
          onConfirm={async () => {
            await identity.deleteRole(del.id);
            void roles.reload();
            void assignments.reload();
          }}
          onClose={() => setDel(null)}
        />
      )}
      {revoke && (
        <Confirm
          title="Revoke role?"
          message={`${actorName(revoke)} loses ${revoke.role.name ?? revoke.role.id} on ${scopeName(revoke)}.`}
          label="Revoke"
          onConfirm={async () => {
            await identity.revoke(revoke.scope.project!.id, revoke.user ? 'users' : 'groups', (revoke.user ?? revoke.group)!.id, revoke.role.id);
            void assignments.reload();
          }}
          onClose={() => setRevoke(null)}
        />
      )}
    </>
  );
}

export function AppCredentialsPage() {
  const { session } = useApp();
  const uid = session.user.id;
  const list = useAsync(() => identity.appCredentials(uid), [uid]);
  const [creating, setCreating] = useState(false);
  const [secret, setSecret] = useState<AppCredential | null>(null);
  const [del, setDel] = useState<AppCredential | null>(null);
  return (
    <>
      <PageHeader title="Application credentials">
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          Create application credential
        </button>
      </PageHeader>
      <p className="muted">Credentials for scripts and tools, acting as you on project {session.project?.name} with your current roles.</p>
      <ErrorBox error={list.error} />
      {list.loading && !list.data ? <Spinner /> : null}
      <Table<AppCredential>
        caption="Application credentials"
        rows={list.data}
        rowKey={(c) => c.id}
        empty="No application credentials."
        columns={[
          { label: 'Name', render: (c) => c.name },
          { label: 'Description', render: (c) => c.description || '—' },
          { label: 'Expires', render: (c) => (c.expires_at ? fmtTime(c.expires_at) : 'never') },
          { label: 'Roles', render: (c) => c.roles?.map((r) => r.name).join(', ') || '—' },
          { label: 'ID', render: (c) => <code>{c.id}</code> },
          {
            label: 'Actions',
            render: (c) => (
              <button type="button" className="danger" onClick={() => setDel(c)}>
                Delete
              </button>
            ),
          },
        ]}
      />
      {creating && (
        <FormDialog
          title="Create application credential"
          fields={[
            { name: 'name', label: 'Name', required: true },
            { name: 'description', label: 'Description' },
            { name: 'expires', label: 'Expires (optional)', type: 'datetime-local' },
          ]}
          submitLabel="Create"
          onSubmit={async (v) => {
            const { application_credential } = await identity.createAppCredential(uid, {
              name: String(v.name).trim(),
              ...(v.description ? { description: String(v.description) } : {}),
              ...(v.expires ? { expires_at: new Date(String(v.expires)).toISOString().replace(/\.\d+Z$/, '') } : {}),
            });
            setSecret(application_credential);
            void list.reload();
          }}
          onClose={() => setCreating(false)}
        />
      )}
      {secret && (
        <Modal title={`Secret of ${secret.name}`} onClose={() => setSecret(null)}>
          <p className="alert info">This is the only time the secret is shown. Save it now.</p>
          <dl className="props">
            <dt>ID</dt>
            <dd>
              <code>{secret.id}</code>
            </dd>
            <dt>Secret</dt>
            <dd>
              <code data-testid="app-cred-secret">{secret.secret}</code>
            </dd>
          </dl>
          <div className="actions">
            <button type="button" className="primary" onClick={() => setSecret(null)}>
              Done
            </button>
          </div>
        </Modal>
      )}
      {del && (
        <Confirm
          title={`Delete ${del.name}?`}
          message="Tools using it stop working."
          onConfirm={async () => {
            await identity.deleteAppCredential(uid, del.id);
            void list.reload();
          }}
          onClose={() => setDel(null)}
        />
      )}
    </>
  );
}
