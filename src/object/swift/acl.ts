/**
 * Swift container ACLs (v1 syntax, as `X-Container-Read` / `X-Container-Write`
 * carry them) and the keystoneauth way of matching them against a caller.
 *
 * Elements, comma separated:
 * - `.r:*`, `.r:example.com`, `.r:.example.com` (suffix), `.r:-bad.com` (deny):
 *   referrer rules, read ACL only; `.r:*` lets anyone (no token) read objects.
 * - `.rlistings`: read ACL only; referrer-granted callers may also list.
 * - `project:user` where each side is an id, a name (Default domain) or `*`.
 * - a bare word: a role name; a caller holding that role (on a project-scoped
 *   token) matches.
 */
import { ApiError } from '../../core/errors.js';
import type { AuthContext } from '../../core/context.js';

export interface ParsedAcl {
  referrers: string[];
  rlistings: boolean;
  /** `project:user` pairs and role names. */
  groups: string[];
}

const REF_PREFIXES = ['.referrer:', '.referer:', '.ref:', '.r:'];

/**
 * Normalizes an ACL header value (`.ref:` → `.r:`, spaces dropped) and checks
 * its syntax; throws 400 for a referrer rule in a write ACL or an empty
 * referrer. Returns the value to store ('' = no ACL).
 */
export function cleanAcl(header: 'read' | 'write', value: string): string {
  const out: string[] = [];
  for (const raw of value.split(',')) {
    const v = raw.trim();
    if (!v) continue;
    const ref = REF_PREFIXES.find((p) => v.toLowerCase().startsWith(p));
    if (ref) {
      if (header === 'write') throw new ApiError(400, `Referrers not allowed in write ACL: '${v}'`);
      const host = v.slice(ref.length).trim();
      if (!host || host === '-') throw new ApiError(400, `No host/domain value after referrer designation in ACL: '${v}'`);
      out.push(`.r:${host}`);
    } else if (v === '.rlistings') {
      if (header === 'write') throw new ApiError(400, `Referrers not allowed in write ACL: '${v}'`);
      out.push(v);
    } else if (v.startsWith('.')) {
      throw new ApiError(400, `Unknown designator in ACL: '${v}'`);
    } else {
      out.push(v);
    }
  }
  return out.join(',');
}

export function parseAcl(value: string | undefined): ParsedAcl {
  const acl: ParsedAcl = { referrers: [], rlistings: false, groups: [] };
  for (const v of (value ?? '').split(',')) {
    const e = v.trim();
    if (!e) continue;
    if (e.startsWith('.r:')) acl.referrers.push(e.slice(3));
    else if (e === '.rlistings') acl.rlistings = true;
    else acl.groups.push(e);
  }
  return acl;
}

/** Swift's referrer_allowed: the last matching rule wins; `-host` denies. */
export function referrerAllowed(referer: string | undefined, rules: string[]): boolean {
  let host = '';
  if (referer) {
    try {
      host = new URL(referer).hostname;
    } catch {
      host = '';
    }
  }
  let allow = false;
  for (const r0 of rules) {
    const deny = r0.startsWith('-');
    const r = deny ? r0.slice(1) : r0;
    const hit = r === '*' || (!!host && (r === host || (r.startsWith('.') && host.endsWith(r))));
    if (hit) allow = !deny;
  }
  return allow;
}

/** True when a `project:user` pair or role name of the ACL names the caller. */
export function groupsMatch(auth: AuthContext | null, groups: string[]): boolean {
  if (!auth || !auth.projectId) return false;
  for (const g of groups) {
    const i = g.indexOf(':');
    if (i < 0) {
      if (auth.roles.includes(g)) return true;
      continue;
    }
    const p = g.slice(0, i);
    const u = g.slice(i + 1);
    const projectOk = p === '*' || p === auth.projectId || (p === auth.projectName && auth.projectDomainId === 'default');
    const userOk = u === '*' || u === auth.userId || (u === auth.userName && auth.userDomainId === 'default');
    if (projectOk && userOk) return true;
  }
  return false;
}
