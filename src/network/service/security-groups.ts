import { uuid } from '../../core/ids.js';
import { int } from '../../core/db.js';
import type { SecurityGroupRow, SecurityGroupRuleRow } from '../store/tables.js';
import type { NetworkService } from './service.js';
import type { Caller, NetDb, Tx } from './context.js';
import { badRequest, conflict, nerr, notFound } from './errors.js';
import { boolean, checkBody, nullableInteger, projectId, str, tagList, type AttrSpec, type Body } from './validate.js';
import { ruleView, securityGroupViews, type View } from './views.js';
import { formatCidr, parseCidr } from '../ip.js';

/** Protocol names Neutron accepts, with their IP protocol numbers. */
export const PROTOCOLS: Record<string, number> = {
  ah: 51, dccp: 33, egp: 8, esp: 50, gre: 47, hopopt: 0, icmp: 1, igmp: 2, ipip: 4, ipv6: 41, 'ipv6-encap': 41, 'ipv6-frag': 44,
  'ipv6-icmp': 58, icmpv6: 58, 'ipv6-nonxt': 59, 'ipv6-opts': 60, 'ipv6-route': 43, ospf: 89, pgm: 113, rsvp: 46, sctp: 132,
  tcp: 6, udp: 17, udplite: 136, vrrp: 112,
};
/** Protocols whose rules carry a port range. */
const PORT_PROTOCOLS = new Set([6, 17, 33, 132, 136]);
const ICMP_PROTOCOLS = new Set([1, 58]);

const SG_ATTRS: Record<string, AttrSpec> = {
  name: { post: true, put: true, check: str(255) },
  description: { post: true, put: true, check: str(255) },
  stateful: { post: true, put: true, check: boolean },
  project_id: { post: true, check: projectId },
  tenant_id: { post: true, check: projectId },
  tags: { post: true, check: tagList },
};

/** A port (or ICMP type/code) number: an integer 0–65535, with Neutron's wording when it is out of range. */
function portValue(v: unknown, fail: (r: string) => never): number | null {
  const n = nullableInteger(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)(v, fail);
  return n === null || (n >= 0 && n <= 65535) ? n : fail(`Invalid value for port ${n}`);
}

const RULE_ATTRS: Record<string, AttrSpec> = {
  security_group_id: { post: true, check: str(255) },
  direction: { post: true, check: (v, f) => (v === 'ingress' || v === 'egress' ? v : f(`'${String(v)}' is not in ['ingress', 'egress']`)) },
  ethertype: {
    post: true,
    check: (v, f) => {
      const s = typeof v === 'string' ? v.toLowerCase() : '';
      return s === 'ipv4' ? 'IPv4' : s === 'ipv6' ? 'IPv6' : f(`'${String(v)}' is not in ['IPv4', 'IPv6']`);
    },
  },
  protocol: { post: true, check: (v, f) => (v === null ? null : typeof v === 'string' || typeof v === 'number' ? String(v).toLowerCase() : f(`'${String(v)}' is not a valid protocol`)) },
  port_range_min: { post: true, check: portValue },
  port_range_max: { post: true, check: portValue },
  remote_ip_prefix: { post: true, check: (v, f) => (v === null ? null : str(64)(v, f)) },
  remote_group_id: { post: true, check: (v, f) => (v === null ? null : str(255)(v, f)) },
  remote_address_group_id: { post: true, check: (v, f) => (v === null ? null : f('address groups are not supported')) },
  description: { post: true, put: true, check: str(255) },
  project_id: { post: true, check: projectId },
  tenant_id: { post: true, check: projectId },
};

export class SecurityGroups {
  constructor(private readonly svc: NetworkService) {}
  private get ctx() {
    return this.svc.ctx;
  }

  /**
   * The project's default group, created on first use with Neutron's rules:
   * ingress from members of the group and all egress, for IPv4 and IPv6.
   * The primary key of neutron_default_security_groups makes two first uses
   * agree on one group.
   */
  async ensureDefaultTx(tx: Tx, project: string): Promise<string> {
    const db = tx as NetDb;
    const row = await db.selectFrom('neutron_default_security_groups').select('security_group_id').where('project_id', '=', project).executeTakeFirst();
    if (row) return row.security_group_id;
    const id = uuid();
    const now = Date.now();
    await db.insertInto('neutron_security_groups').values({ id, project_id: project, name: 'default', description: 'Default security group', created_at: now, updated_at: now, revision_number: 1, stateful: 1 }).execute();
    await db.insertInto('neutron_default_security_groups').values({ project_id: project, security_group_id: id }).execute();
    for (const ethertype of ['IPv4', 'IPv6']) {
      await this.insertRule(db, { security_group_id: id, project_id: project, direction: 'ingress', ethertype, remote_group_id: id });
      await this.insertRule(db, { security_group_id: id, project_id: project, direction: 'egress', ethertype });
    }
    return id;
  }

  async ensureDefault(project: string): Promise<string> {
    const row = await this.ctx.db.selectFrom('neutron_default_security_groups').select('security_group_id').where('project_id', '=', project).executeTakeFirst();
    if (row) return row.security_group_id;
    return this.ctx.tx((tx) => this.ensureDefaultTx(tx, project));
  }

  private async insertRule(db: NetDb, r: Partial<SecurityGroupRuleRow> & { security_group_id: string; project_id: string; direction: string; ethertype: string }): Promise<string> {
    const id = uuid();
    const now = Date.now();
    await db
      .insertInto('neutron_security_group_rules')
      .values({
        id,
        project_id: r.project_id,
        description: r.description ?? '',
        created_at: now,
        updated_at: now,
        revision_number: 0,
        security_group_id: r.security_group_id,
        direction: r.direction,
        ethertype: r.ethertype,
        protocol: r.protocol ?? null,
        port_range_min: r.port_range_min ?? null,
        port_range_max: r.port_range_max ?? null,
        remote_ip_prefix: r.remote_ip_prefix ?? null,
        remote_group_id: r.remote_group_id ?? null,
        normalized_cidr: r.remote_group_id ? null : (r.remote_ip_prefix ?? (r.ethertype === 'IPv4' ? '0.0.0.0/0' : '::/0')),
      })
      .execute();
    return id;
  }

  /** Names or ids → ids of groups `project` may use (404 for anything else). */
  async resolveTx(tx: Tx, caller: Caller, refs: string[], project: string): Promise<string[]> {
    const out: string[] = [];
    for (const ref of refs) {
      let row = await (tx as NetDb).selectFrom('neutron_security_groups').select(['id', 'project_id']).where('id', '=', ref).executeTakeFirst();
      if (!row) {
        const byName = await (tx as NetDb).selectFrom('neutron_security_groups').select(['id', 'project_id']).where('name', '=', ref).where('project_id', '=', project).execute();
        if (byName.length > 1) throw conflict('DuplicateSecurityGroupName', `Multiple security groups named ${ref}; use an id.`);
        row = byName[0];
        if (!row && ref === 'default') row = { id: await this.ensureDefaultTx(tx, project), project_id: project };
      }
      if (!row || (row.project_id !== project && !caller.admin)) throw notFound('security_group', ref);
      if (!out.includes(row.id)) out.push(row.id);
    }
    return out;
  }

  async get(caller: Caller, id: string): Promise<SecurityGroupRow> {
    const g = await this.ctx.db.selectFrom('neutron_security_groups').selectAll().where('id', '=', id).executeTakeFirst();
    if (!g || (!caller.admin && g.project_id !== caller.projectId)) throw notFound('security_group', id);
    return g;
  }

  async list(caller: Caller, pre: { ids?: string[] } = {}): Promise<View[]> {
    if (caller.projectId) await this.ensureDefault(caller.projectId);
    let q = this.ctx.db.selectFrom('neutron_security_groups').selectAll();
    if (pre.ids) q = q.where('id', 'in', pre.ids.length ? pre.ids : ['-']);
    if (!caller.admin) q = q.where('project_id', '=', caller.projectId ?? '-');
    return securityGroupViews(this.ctx.db, await q.execute());
  }

  async view(g: SecurityGroupRow): Promise<View> {
    return (await securityGroupViews(this.ctx.db, [g]))[0]!;
  }

  static checkCreate(b: unknown): Body {
    return checkBody('security_group', b, SG_ATTRS, 'POST');
  }
  static checkUpdate(b: unknown): Body {
    return checkBody('security_group', b, SG_ATTRS, 'PUT');
  }
  static checkRuleCreate(b: unknown): Body {
    return checkBody('security_group_rule', b, RULE_ATTRS, 'POST');
  }
  static checkRuleUpdate(b: unknown): Body {
    return checkBody('security_group_rule', b, RULE_ATTRS, 'PUT');
  }

  async create(caller: Caller, b: Body): Promise<View> {
    const project = (b.project_id as string | undefined) ?? caller.projectId;
    if (!project) throw badRequest('A project is required to create a security group.');
    if (b.name === 'default') throw conflict('SecurityGroupDefaultAlreadyExists', 'Default security group already exists.');
    const id = uuid();
    await this.ctx.tx(async (tx) => {
      await this.ensureDefaultTx(tx, project);
      await this.ctx.checkQuota(tx, project, 'security_group');
      const now = Date.now();
      await tx
        .insertInto('neutron_security_groups')
        .values({ id, project_id: project, name: (b.name as string | undefined) ?? '', description: (b.description as string | undefined) ?? '', created_at: now, updated_at: now, revision_number: 1, stateful: int((b.stateful as boolean | undefined) ?? true) })
        .execute();
      // New groups allow all egress, as in Neutron.
      for (const ethertype of ['IPv4', 'IPv6']) await this.insertRule(tx, { security_group_id: id, project_id: project, direction: 'egress', ethertype });
      if (b.tags) await this.svc.tags.setTx(tx, 'security-groups', id, b.tags as string[]);
    });
    this.ctx.onChange();
    return this.view(await this.get({ ...caller, admin: true }, id));
  }

  async update(caller: Caller, g: SecurityGroupRow, b: Body): Promise<View> {
    if (b.name !== undefined && g.name === 'default' && b.name !== 'default' && (await this.isDefault(g.id)))
      throw conflict('SecurityGroupCannotUpdateDefault', 'Updating default security group not allowed.');
    if (b.name === 'default' && g.name !== 'default') throw conflict('SecurityGroupDefaultAlreadyExists', 'Default security group already exists.');
    const set: Partial<SecurityGroupRow> = { updated_at: Date.now(), revision_number: g.revision_number + 1 };
    if (b.name !== undefined) set.name = b.name as string;
    if (b.description !== undefined) set.description = b.description as string;
    if (b.stateful !== undefined) set.stateful = int(b.stateful as boolean);
    await this.ctx.db.updateTable('neutron_security_groups').set(set).where('id', '=', g.id).execute();
    this.ctx.onChange();
    return this.view(await this.get({ ...caller, admin: true }, g.id));
  }

  private async isDefault(id: string): Promise<boolean> {
    return !!(await this.ctx.db.selectFrom('neutron_default_security_groups').select('project_id').where('security_group_id', '=', id).executeTakeFirst());
  }

  /** Deletes a group; a project's default group only by an admin (as Neutron), and never while ports use it. */
  async delete(g: SecurityGroupRow, admin = false): Promise<void> {
    await this.ctx.tx(async (tx) => {
      const isDefault = await tx.selectFrom('neutron_default_security_groups').select('project_id').where('security_group_id', '=', g.id).executeTakeFirst();
      if (isDefault && !admin) throw conflict('SecurityGroupCannotRemoveDefault', 'Insufficient rights for removing default security group.');
      const used = await tx.selectFrom('neutron_port_security_groups').select('port_id').where('security_group_id', '=', g.id).executeTakeFirst();
      if (used) throw conflict('SecurityGroupInUse', `Security Group ${g.id} in use.`);
      await tx.deleteFrom('neutron_security_group_rules').where('remote_group_id', '=', g.id).execute();
      await tx.deleteFrom('neutron_security_group_rules').where('security_group_id', '=', g.id).execute();
      await tx.deleteFrom('neutron_tags').where('resource_type', '=', 'security-groups').where('resource_id', '=', g.id).execute();
      if (isDefault) await tx.deleteFrom('neutron_default_security_groups').where('security_group_id', '=', g.id).execute();
      await tx.deleteFrom('neutron_security_groups').where('id', '=', g.id).execute();
    });
    this.ctx.onChange();
  }

  // ------------------------------------------------------------------ rules

  async getRule(caller: Caller, id: string): Promise<SecurityGroupRuleRow> {
    const r = await this.ctx.db.selectFrom('neutron_security_group_rules').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) throw notFound('security_group_rule', id);
    if (!caller.admin && r.project_id !== caller.projectId) {
      const g = await this.ctx.db.selectFrom('neutron_security_groups').select('project_id').where('id', '=', r.security_group_id).executeTakeFirst();
      if (g?.project_id !== caller.projectId) throw notFound('security_group_rule', id);
    }
    return r;
  }

  async listRules(caller: Caller, pre: { ids?: string[]; security_group_id?: string[] } = {}): Promise<View[]> {
    if (caller.projectId) await this.ensureDefault(caller.projectId);
    let q = this.ctx.db.selectFrom('neutron_security_group_rules').selectAll('neutron_security_group_rules');
    if (pre.ids) q = q.where('neutron_security_group_rules.id', 'in', pre.ids.length ? pre.ids : ['-']);
    if (pre.security_group_id) q = q.where('security_group_id', 'in', pre.security_group_id.length ? pre.security_group_id : ['-']);
    if (!caller.admin)
      q = q
        .innerJoin('neutron_security_groups', 'neutron_security_groups.id', 'neutron_security_group_rules.security_group_id')
        .where((eb) => eb.or([eb('neutron_security_group_rules.project_id', '=', caller.projectId ?? '-'), eb('neutron_security_groups.project_id', '=', caller.projectId ?? '-')]));
    return (await q.execute()).map(ruleView);
  }

  /**
   * Validates a rule as Neutron does and refuses an exact duplicate
   * (SecurityGroupRuleExists, 409). No remote means any address of the
   * family, so 0.0.0.0/0 and "none" are the same rule.
   */
  async createRule(caller: Caller, g: SecurityGroupRow, b: Body): Promise<View> {
    if (b.direction === undefined) throw badRequest("Invalid input for direction. Reason: 'None' is not in ['ingress', 'egress'].");
    const ethertype = (b.ethertype as string | undefined) ?? 'IPv4';
    let protocol = (b.protocol as string | null | undefined) ?? null;
    if (protocol === 'any') protocol = null;
    let protoNum: number | null = null;
    if (protocol !== null) {
      if (/^\d+$/.test(protocol)) {
        protoNum = Number(protocol);
        if (protoNum > 255) protoNum = NaN;
      } else protoNum = PROTOCOLS[protocol] ?? NaN;
      if (Number.isNaN(protoNum))
        throw nerr(400, 'SecurityGroupRuleInvalidProtocol', `Security group rule protocol ${protocol} not supported. Only protocol values [${Object.keys(PROTOCOLS).join(', ')}] and integer representations [0 to 255] are supported.`);
    }
    if (ethertype === 'IPv4' && protoNum === 58) throw nerr(400, 'SecurityGroupEthertypeConflictWithProtocol', `Invalid ethertype ${ethertype} for protocol ${protocol}.`);
    if (ethertype === 'IPv6' && protocol === 'icmp') protocol = 'ipv6-icmp';
    const min = (b.port_range_min as number | null | undefined) ?? null;
    const max = (b.port_range_max as number | null | undefined) ?? null;
    if ((min !== null || max !== null) && protoNum === null) throw nerr(400, 'SecurityGroupProtocolRequiredWithPorts', 'Must also specify protocol if port range is given.');
    if (protoNum !== null && PORT_PROTOCOLS.has(protoNum)) {
      if ((min === null) !== (max === null) && min === null) throw nerr(400, 'SecurityGroupInvalidPortRange', 'For TCP/UDP protocols, port_range_min must be <= port_range_max');
      if (min === 0 || max === 0) throw nerr(400, 'SecurityGroupInvalidPortValue', 'Invalid value for port 0');
      if (min !== null && max !== null && min > max) throw nerr(400, 'SecurityGroupInvalidPortRange', 'For TCP/UDP protocols, port_range_min must be <= port_range_max');
    } else if (protoNum !== null && ICMP_PROTOCOLS.has(protoNum)) {
      if (min === null && max !== null) throw nerr(400, 'SecurityGroupMissingIcmpType', `ICMP code (port-range-max) ${max} is provided but ICMP type (port-range-min) is missing.`);
      for (const [field, v] of [['type', min], ['code', max]] as const)
        if (v !== null && v > 255) throw nerr(400, 'SecurityGroupInvalidIcmpValue', `Invalid value for ICMP ${field} (${field === 'type' ? 'port-range-min' : 'port-range-max'}) ${v}. It must be 0 to 255.`);
    } else if (min !== null || max !== null) {
      throw nerr(400, 'SecurityGroupInvalidProtocolForPortRange', `Invalid protocol ${protocol} for port range, only supported for TCP, UDP, UDPLITE, SCTP and DCCP.`);
    }
    const remoteIp = (b.remote_ip_prefix as string | null | undefined) ?? null;
    const remoteGroup = (b.remote_group_id as string | null | undefined) ?? null;
    if (remoteIp !== null && remoteGroup !== null) throw nerr(400, 'SecurityGroupRemoteGroupAndRemoteIpPrefix', 'Only remote_ip_prefix or remote_group_id may be provided.');
    let prefix: string | null = null;
    if (remoteIp !== null) {
      const c = parseCidr(remoteIp);
      if (!c) throw badRequest(`Invalid input for remote_ip_prefix. Reason: '${remoteIp}' is not a valid IP subnet.`);
      if ((c.version === 4) !== (ethertype === 'IPv4'))
        throw nerr(400, 'SecurityGroupRuleParameterConflict', `Conflicting value ethertype ${ethertype} for CIDR ${remoteIp}`);
      prefix = formatCidr(c);
    }
    const project = (b.project_id as string | undefined) ?? g.project_id;
    const id = await this.ctx.tx(async (tx) => {
      if (remoteGroup !== null) {
        const rg = await tx.selectFrom('neutron_security_groups').select(['id', 'project_id']).where('id', '=', remoteGroup).executeTakeFirst();
        if (!rg || (!caller.admin && rg.project_id !== caller.projectId)) throw notFound('security_group', remoteGroup);
      }
      const normalized = remoteGroup ? null : (prefix ?? (ethertype === 'IPv4' ? '0.0.0.0/0' : '::/0'));
      const same = await tx.selectFrom('neutron_security_group_rules').selectAll().where('security_group_id', '=', g.id).where('direction', '=', b.direction as string).where('ethertype', '=', ethertype).execute();
      const protoKey = (p: string | null) => (p === null ? null : /^\d+$/.test(p) ? Number(p) : (PROTOCOLS[p] ?? p));
      const dup = same.find(
        (r) =>
          protoKey(r.protocol) === protoKey(protocol) &&
          r.port_range_min === min &&
          r.port_range_max === max &&
          r.remote_group_id === remoteGroup &&
          r.normalized_cidr === normalized,
      );
      if (dup) throw conflict('SecurityGroupRuleExists', `Security group rule already exists. Rule id is ${dup.id}.`);
      await this.ctx.checkQuota(tx, project, 'security_group_rule');
      const rid = await this.insertRule(tx, {
        security_group_id: g.id,
        project_id: project,
        direction: b.direction as string,
        ethertype,
        protocol,
        port_range_min: min,
        port_range_max: max,
        remote_ip_prefix: prefix,
        remote_group_id: remoteGroup,
        description: (b.description as string | undefined) ?? '',
      });
      await tx.updateTable('neutron_security_groups').set({ revision_number: g.revision_number + 1, updated_at: Date.now() }).where('id', '=', g.id).execute();
      return rid;
    });
    this.ctx.onChange();
    return ruleView(await this.getRule({ ...caller, admin: true }, id));
  }

  async updateRule(caller: Caller, r: SecurityGroupRuleRow, b: Body): Promise<View> {
    if (b.description !== undefined)
      await this.ctx.db.updateTable('neutron_security_group_rules').set({ description: b.description as string, updated_at: Date.now(), revision_number: r.revision_number + 1 }).where('id', '=', r.id).execute();
    return ruleView(await this.getRule({ ...caller, admin: true }, r.id));
  }

  async deleteRule(r: SecurityGroupRuleRow): Promise<void> {
    await this.ctx.db.deleteFrom('neutron_security_group_rules').where('id', '=', r.id).execute();
    this.ctx.onChange();
  }

  /** The group a rule belongs to (for the rule's policy target). */
  async groupOf(r: SecurityGroupRuleRow): Promise<SecurityGroupRow | undefined> {
    return this.ctx.db.selectFrom('neutron_security_groups').selectAll().where('id', '=', r.security_group_id).executeTakeFirst();
  }
}
