/**
 * Network pages (Networking v2.0): networks and subnets, routers, floating
 * IPs, security groups and rules, and a topology picture. Shown only when
 * the catalog has a `network` service.
 */
import { useState } from 'react';
import { compute, type Server } from '../api/compute.js';
import { network, type FloatingIp, type Network, type Port, type Router, type SecurityGroup, type SecurityGroupRule, type Subnet } from '../api/network.js';
import { href } from '../router.js';
import { Confirm, ErrorBox, FormDialog, Modal, PageHeader, Spinner, Table, useAction, useAsync } from '../ui/kit.js';

export function NetworksPage() {
  const data = useAsync(async () => ({ networks: await network.networks(), subnets: await network.subnets() }), [], 10000);
  const [creating, setCreating] = useState(false);
  const [subnetFor, setSubnetFor] = useState<Network | null>(null);
  const [del, setDel] = useState<Network | null>(null);
  const [delSubnet, setDelSubnet] = useState<Subnet | null>(null);
  const subnets = (n: Network) => (data.data?.subnets ?? []).filter((s) => s.network_id === n.id);
  return (
    <>
      <PageHeader title="Networks">
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          Create network
        </button>
      </PageHeader>
      <ErrorBox error={data.error} />
      {data.loading && !data.data ? <Spinner /> : null}
      <Table<Network>
        caption="Networks"
        rows={data.data?.networks}
        rowKey={(n) => n.id}
        empty="No networks."
        columns={[
          { label: 'Name', render: (n) => n.name || <code>{n.id}</code> },
          {
            label: 'Subnets',
            render: (n) =>
              subnets(n).map((s) => (
                <div key={s.id}>
                  {s.name || 'subnet'} <code>{s.cidr}</code>{' '}
                  <button type="button" className="link" aria-label={`Delete subnet ${s.cidr}`} onClick={() => setDelSubnet(s)}>
                    ✕
                  </button>
                </div>
              )),
          },
          { label: 'Status', render: (n) => n.status },
          { label: 'Shared', render: (n) => (n.shared ? 'Yes' : 'No') },
          { label: 'External', render: (n) => (n['router:external'] ? 'Yes' : 'No') },
          {
            label: 'Actions',
            render: (n) => (
              <div className="button-row">
                <button type="button" onClick={() => setSubnetFor(n)}>
                  Add subnet
                </button>
                <button type="button" className="danger" onClick={() => setDel(n)}>
                  Delete
                </button>
              </div>
            ),
          },
        ]}
      />
      {creating && (
        <FormDialog
          title="Create network"
          fields={[
            { name: 'name', label: 'Name', required: true },
            { name: 'cidr', label: 'Subnet CIDR (optional)', placeholder: '192.168.10.0/24', help: 'Creates a subnet on the network too.' },
          ]}
          submitLabel="Create"
          onSubmit={async (v) => {
            const { network: n } = await network.createNetwork({ name: String(v.name).trim(), admin_state_up: true });
            if (v.cidr && n) {
              try {
                await network.createSubnet({ network_id: n.id, cidr: String(v.cidr).trim(), ip_version: String(v.cidr).includes(':') ? 6 : 4, name: `${String(v.name).trim()}-subnet` });
              } catch (e) {
                // Leave nothing half-made: the network goes when its subnet fails.
                await network.deleteNetwork(n.id).catch(() => undefined);
                throw e;
              }
            }
            void data.reload();
          }}
          onClose={() => setCreating(false)}
        />
      )}
      {subnetFor && (
        <FormDialog
          title={`Add a subnet to ${subnetFor.name}`}
          fields={[
            { name: 'name', label: 'Name' },
            { name: 'cidr', label: 'CIDR', required: true, placeholder: '192.168.20.0/24' },
            { name: 'gateway', label: 'Gateway IP (optional)' },
            { name: 'dhcp', label: 'Enable DHCP', type: 'checkbox', initial: true },
          ]}
          submitLabel="Add subnet"
          onSubmit={async (v) => {
            await network.createSubnet({
              network_id: subnetFor.id,
              cidr: String(v.cidr).trim(),
              ip_version: String(v.cidr).includes(':') ? 6 : 4,
              enable_dhcp: v.dhcp === true,
              ...(v.name ? { name: String(v.name) } : {}),
              ...(v.gateway ? { gateway_ip: String(v.gateway) } : {}),
            });
            void data.reload();
          }}
          onClose={() => setSubnetFor(null)}
        />
      )}
      {del && (
        <Confirm
          title={`Delete network ${del.name}?`}
          message="Its subnets go with it. Instances attached to it must be deleted or detached first."
          onConfirm={async () => {
            await network.deleteNetwork(del.id);
            void data.reload();
          }}
          onClose={() => setDel(null)}
        />
      )}
      {delSubnet && (
        <Confirm
          title={`Delete subnet ${delSubnet.cidr}?`}
          message="Ports with addresses on it must be removed first."
          onConfirm={async () => {
            await network.deleteSubnet(delSubnet.id);
            void data.reload();
          }}
          onClose={() => setDelSubnet(null)}
        />
      )}
    </>
  );
}

export function RoutersPage() {
  const data = useAsync(async () => ({ routers: await network.routers(), networks: await network.networks(), subnets: await network.subnets(), ports: await network.ports({ device_owner: 'network:router_interface' }) }), [], 10000);
  const [creating, setCreating] = useState(false);
  const [iface, setIface] = useState<Router | null>(null);
  const [del, setDel] = useState<Router | null>(null);
  const run = useAction();
  const d = data.data;
  const netName = (id: string) => d?.networks.find((n) => n.id === id)?.name ?? id;
  const subnetOf = (p: Port) => d?.subnets.find((s) => s.id === p.fixed_ips[0]?.subnet_id);
  return (
    <>
      <PageHeader title="Routers">
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          Create router
        </button>
      </PageHeader>
      <ErrorBox error={data.error} />
      {data.loading && !d ? <Spinner /> : null}
      <Table<Router>
        caption="Routers"
        rows={d?.routers}
        rowKey={(r) => r.id}
        empty="No routers."
        columns={[
          { label: 'Name', render: (r) => r.name || <code>{r.id}</code> },
          { label: 'Status', render: (r) => r.status },
          { label: 'External gateway', render: (r) => (r.external_gateway_info ? netName(r.external_gateway_info.network_id) : '—') },
          {
            label: 'Interfaces',
            render: (r) =>
              d?.ports
                .filter((p) => p.device_id === r.id)
                .map((p) => {
                  const s = subnetOf(p);
                  return (
                    <div key={p.id}>
                      {s?.cidr ?? p.fixed_ips[0]?.ip_address}{' '}
                      {s && (
                        <button
                          type="button"
                          className="link"
                          aria-label={`Remove interface ${s.cidr}`}
                          onClick={async () => {
                            await run('Remove interface', () => network.removeInterface(r.id, s.id));
                            void data.reload();
                          }}
                        >
                          ✕
                        </button>
                      )}
                    </div>
                  );
                }),
          },
          {
            label: 'Actions',
            render: (r) => (
              <div className="button-row">
                <button type="button" onClick={() => setIface(r)}>
                  Add interface
                </button>
                <button type="button" className="danger" onClick={() => setDel(r)}>
                  Delete
                </button>
              </div>
            ),
          },
        ]}
      />
      {creating && (
        <FormDialog
          title="Create router"
          fields={[
            { name: 'name', label: 'Name', required: true },
            { name: 'ext', label: 'External network', type: 'select', options: (d?.networks ?? []).filter((n) => n['router:external']).map((n) => ({ value: n.id, label: n.name })) },
          ]}
          submitLabel="Create"
          onSubmit={async (v) => {
            await network.createRouter({ name: String(v.name).trim(), ...(v.ext ? { external_gateway_info: { network_id: String(v.ext) } } : {}) });
            void data.reload();
          }}
          onClose={() => setCreating(false)}
        />
      )}
      {iface && (
        <FormDialog
          title={`Add an interface to ${iface.name}`}
          fields={[{ name: 'subnet', label: 'Subnet', type: 'select', required: true, options: (d?.subnets ?? []).map((s) => ({ value: s.id, label: `${netName(s.network_id)}: ${s.cidr}` })) }]}
          submitLabel="Add interface"
          onSubmit={async (v) => {
            await network.addInterface(iface.id, String(v.subnet));
            void data.reload();
          }}
          onClose={() => setIface(null)}
        />
      )}
      {del && (
        <Confirm
          title={`Delete router ${del.name}?`}
          message="Remove its interfaces first."
          onConfirm={async () => {
            await network.deleteRouter(del.id);
            void data.reload();
          }}
          onClose={() => setDel(null)}
        />
      )}
    </>
  );
}

export function FloatingIpsPage() {
  const data = useAsync(async () => ({ ips: await network.floatingIps(), networks: await network.networks(), ports: await network.ports(), servers: await compute.servers() }), [], 8000);
  const [allocating, setAllocating] = useState(false);
  const [assoc, setAssoc] = useState<FloatingIp | null>(null);
  const [del, setDel] = useState<FloatingIp | null>(null);
  const run = useAction();
  const d = data.data;
  const serverOfPort = (portId: string | null) => {
    const p = d?.ports.find((x) => x.id === portId);
    return p ? d?.servers.find((s) => s.id === p.device_id) : undefined;
  };
  return (
    <>
      <PageHeader title="Floating IPs">
        <button type="button" className="primary" onClick={() => setAllocating(true)}>
          Allocate IP
        </button>
      </PageHeader>
      <ErrorBox error={data.error} />
      {data.loading && !d ? <Spinner /> : null}
      <Table<FloatingIp>
        caption="Floating IPs"
        rows={d?.ips}
        rowKey={(f) => f.id}
        empty="No floating IPs allocated."
        columns={[
          { label: 'Address', render: (f) => <code>{f.floating_ip_address}</code> },
          { label: 'Mapped to', render: (f) => (f.port_id ? `${serverOfPort(f.port_id)?.name ?? 'port'} (${f.fixed_ip_address})` : '—') },
          { label: 'Status', render: (f) => f.status },
          {
            label: 'Actions',
            render: (f) => (
              <div className="button-row">
                {f.port_id ? (
                  <button
                    type="button"
                    onClick={async () => {
                      await run('Disassociate', () => network.associateFloatingIp(f.id, null));
                      void data.reload();
                    }}
                  >
                    Disassociate
                  </button>
                ) : (
                  <button type="button" onClick={() => setAssoc(f)}>
                    Associate
                  </button>
                )}
                <button type="button" className="danger" onClick={() => setDel(f)}>
                  Release
                </button>
              </div>
            ),
          },
        ]}
      />
      {allocating && (
        <FormDialog
          title="Allocate a floating IP"
          fields={[{ name: 'net', label: 'Pool (external network)', type: 'select', required: true, options: (d?.networks ?? []).filter((n) => n['router:external']).map((n) => ({ value: n.id, label: n.name })) }]}
          submitLabel="Allocate"
          onSubmit={async (v) => {
            await network.createFloatingIp(String(v.net));
            void data.reload();
          }}
          onClose={() => setAllocating(false)}
        />
      )}
      {assoc && (
        <FormDialog
          title={`Associate ${assoc.floating_ip_address}`}
          fields={[
            {
              name: 'port',
              label: 'Instance port',
              type: 'select',
              required: true,
              options: (d?.ports ?? [])
                .filter((p) => p.device_owner.startsWith('compute:'))
                .map((p) => ({ value: p.id, label: `${d?.servers.find((s) => s.id === p.device_id)?.name ?? p.device_id}: ${p.fixed_ips.map((i) => i.ip_address).join(', ')}` })),
            },
          ]}
          submitLabel="Associate"
          onSubmit={async (v) => {
            await network.associateFloatingIp(assoc.id, String(v.port));
            void data.reload();
          }}
          onClose={() => setAssoc(null)}
        />
      )}
      {del && (
        <Confirm
          title={`Release ${del.floating_ip_address}?`}
          message="The address returns to the pool."
          label="Release"
          onConfirm={async () => {
            await network.deleteFloatingIp(del.id);
            void data.reload();
          }}
          onClose={() => setDel(null)}
        />
      )}
    </>
  );
}

function ruleText(r: SecurityGroupRule): string {
  const ports = r.port_range_min === null ? 'any port' : r.port_range_min === r.port_range_max ? `port ${r.port_range_min}` : `ports ${r.port_range_min}-${r.port_range_max}`;
  return `${r.direction} ${r.ethertype} ${r.protocol ?? 'any protocol'} ${r.protocol === 'icmp' ? '' : ports} ${r.direction === 'ingress' ? 'from' : 'to'} ${r.remote_ip_prefix ?? (r.remote_group_id ? 'group members' : 'anywhere')}`;
}

export function SecurityGroupsPage() {
  const list = useAsync(() => network.securityGroups(), [], 10000);
  const [creating, setCreating] = useState(false);
  const [rules, setRules] = useState<SecurityGroup | null>(null);
  const [del, setDel] = useState<SecurityGroup | null>(null);
  const current = rules && list.data?.find((g) => g.id === rules.id);
  return (
    <>
      <PageHeader title="Security groups">
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          Create security group
        </button>
      </PageHeader>
      <ErrorBox error={list.error} />
      {list.loading && !list.data ? <Spinner /> : null}
      <Table<SecurityGroup>
        caption="Security groups"
        rows={list.data}
        rowKey={(g) => g.id}
        columns={[
          { label: 'Name', render: (g) => g.name },
          { label: 'Description', render: (g) => g.description || '—' },
          { label: 'Rules', render: (g) => g.security_group_rules.length },
          {
            label: 'Actions',
            render: (g) => (
              <div className="button-row">
                <button type="button" onClick={() => setRules(g)}>
                  Manage rules
                </button>
                {g.name !== 'default' && (
                  <button type="button" className="danger" onClick={() => setDel(g)}>
                    Delete
                  </button>
                )}
              </div>
            ),
          },
        ]}
      />
      {creating && (
        <FormDialog
          title="Create security group"
          fields={[
            { name: 'name', label: 'Name', required: true },
            { name: 'description', label: 'Description' },
          ]}
          submitLabel="Create"
          onSubmit={async (v) => {
            await network.createSecurityGroup({ name: String(v.name).trim(), description: String(v.description) });
            void list.reload();
          }}
          onClose={() => setCreating(false)}
        />
      )}
      {current && <RulesDialog group={current} onChange={list.reload} onClose={() => setRules(null)} />}
      {del && (
        <Confirm
          title={`Delete security group ${del.name}?`}
          message="Instances using it must be moved off it first."
          onConfirm={async () => {
            await network.deleteSecurityGroup(del.id);
            void list.reload();
          }}
          onClose={() => setDel(null)}
        />
      )}
    </>
  );
}

function RulesDialog({ group, onChange, onClose }: { group: SecurityGroup; onChange: () => Promise<void>; onClose: () => void }) {
  const [adding, setAdding] = useState(false);
  const run = useAction();
  return (
    <Modal title={`Rules of ${group.name}`} onClose={onClose} wide>
      <div className="toolbar">
        <button type="button" className="primary" onClick={() => setAdding(true)}>
          Add rule
        </button>
      </div>
      <Table<SecurityGroupRule>
        caption="Rules"
        rows={group.security_group_rules}
        rowKey={(r) => r.id}
        empty="No rules: nothing is allowed."
        columns={[
          { label: 'Rule', render: ruleText },
          {
            label: 'Actions',
            render: (r) => (
              <button
                type="button"
                className="danger"
                onClick={async () => {
                  await run('Delete rule', () => network.deleteRule(r.id));
                  await onChange();
                }}
              >
                Delete
              </button>
            ),
          },
        ]}
      />
      {adding && (
        <FormDialog
          title="Add rule"
          fields={[
            { name: 'direction', label: 'Direction', type: 'select', required: true, options: [{ value: 'ingress', label: 'Ingress (incoming)' }, { value: 'egress', label: 'Egress (outgoing)' }] },
            { name: 'protocol', label: 'Protocol', type: 'select', required: true, options: ['tcp', 'udp', 'icmp', 'any'].map((p) => ({ value: p, label: p })) },
            { name: 'from', label: 'Port from', type: 'number', min: 1 },
            { name: 'to', label: 'Port to (default: same)', type: 'number', min: 1 },
            { name: 'cidr', label: 'Remote CIDR', initial: '0.0.0.0/0' },
          ]}
          submitLabel="Add"
          onSubmit={async (v) => {
            const proto = String(v.protocol);
            const from = v.from ? Number(v.from) : null;
            await network.createRule({
              security_group_id: group.id,
              direction: String(v.direction),
              ethertype: String(v.cidr).includes(':') ? 'IPv6' : 'IPv4',
              protocol: proto === 'any' ? null : proto,
              ...(from !== null && proto !== 'icmp' && proto !== 'any' ? { port_range_min: from, port_range_max: v.to ? Number(v.to) : from } : {}),
              ...(v.cidr ? { remote_ip_prefix: String(v.cidr) } : {}),
            });
            await onChange();
          }}
          onClose={() => setAdding(false)}
        />
      )}
    </Modal>
  );
}

/**
 * The topology: networks as horizontal bars, routers and instances as boxes
 * in rows above and below, with a line for every port that joins them.
 */
export function TopologyPage() {
  const data = useAsync(async () => ({ networks: await network.networks(), routers: await network.routers(), ports: await network.ports(), subnets: await network.subnets(), servers: await compute.servers().catch(() => [] as Server[]) }), [], 10000);
  const d = data.data;
  if (!d) return data.error ? <ErrorBox error={data.error} /> : <Spinner />;
  const W = Math.max(640, 160 * Math.max(d.routers.length, d.servers.length, 3));
  const netY = (i: number) => 140 + i * 70;
  const H = netY(d.networks.length) + 140;
  const nodeX = (i: number, n: number) => ((i + 0.5) * W) / Math.max(n, 1);
  const netIndex = new Map(d.networks.map((n, i) => [n.id, i]));
  const routerPos = new Map(d.routers.map((r, i) => [r.id, { x: nodeX(i, d.routers.length), y: 50 }]));
  const serverPos = new Map(d.servers.map((s, i) => [s.id, { x: nodeX(i, d.servers.length), y: H - 60 }]));
  const links: { x: number; y1: number; y2: number; key: string; label: string }[] = [];
  for (const p of d.ports) {
    const ni = netIndex.get(p.network_id);
    const pos = routerPos.get(p.device_id) ?? serverPos.get(p.device_id);
    if (ni === undefined || !pos) continue;
    links.push({ x: pos.x, y1: pos.y, y2: netY(ni), key: p.id, label: p.fixed_ips[0]?.ip_address ?? '' });
  }
  for (const r of d.routers) {
    const gw = r.external_gateway_info?.network_id;
    const ni = gw ? netIndex.get(gw) : undefined;
    const pos = routerPos.get(r.id)!;
    if (ni !== undefined && !links.some((l) => l.x === pos.x && l.y2 === netY(ni))) links.push({ x: pos.x, y1: pos.y, y2: netY(ni), key: `gw-${r.id}`, label: 'gateway' });
  }
  // Several links from one router or instance fan out a little so they do not
  // overlap; a dot marks where a link joins its network (a line that only
  // crosses a network has no dot).
  const perNode = new Map<number, typeof links>();
  for (const l of links) perNode.set(l.x * 10000 + l.y1, [...(perNode.get(l.x * 10000 + l.y1) ?? []), l]);
  for (const group of perNode.values()) group.forEach((l, k) => (l.x += (k - (group.length - 1) / 2) * 10));
  return (
    <>
      <PageHeader title="Network topology" />
      <ErrorBox error={data.error} />
      <div className="topology">
        <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby="topo-desc" width="100%">
          <desc id="topo-desc">
            {d.networks.length} networks, {d.routers.length} routers and {d.servers.length} instances, with a line for each connection.
          </desc>
          {d.networks.map((n, i) => (
            <g key={n.id}>
              <rect x={10} y={netY(i) - 8} width={W - 20} height={16} rx={8} className={n['router:external'] ? 'topo-net ext' : 'topo-net'} />
              <text x={20} y={netY(i) + 4} className="topo-label-light">
                {n.name || n.id} {d.subnets.filter((s) => s.network_id === n.id).map((s) => s.cidr).join(' ')}
              </text>
            </g>
          ))}
          {links.map((l) => (
            <g key={l.key}>
              <line x1={l.x} x2={l.x} y1={l.y1} y2={l.y2} className="topo-link" />
              <circle cx={l.x} cy={l.y2} r={5} className="topo-joint" />
              <text x={l.x + 4} y={(l.y1 + l.y2) / 2} className="topo-small">
                {l.label}
              </text>
            </g>
          ))}
          {d.routers.map((r) => {
            const p = routerPos.get(r.id)!;
            return (
              <g key={r.id}>
                <rect x={p.x - 60} y={p.y - 20} width={120} height={40} rx={20} className="topo-router" />
                <text x={p.x} y={p.y + 5} textAnchor="middle" className="topo-label">
                  ⇄ {r.name || 'router'}
                </text>
              </g>
            );
          })}
          {d.servers.map((s) => {
            const p = serverPos.get(s.id)!;
            return (
              <a key={s.id} href={href(`compute/instances/${s.id}`)}>
                <rect x={p.x - 60} y={p.y - 20} width={120} height={40} rx={4} className={`topo-server ${s.status === 'ACTIVE' ? 'ok' : ''}`} />
                <text x={p.x} y={p.y + 5} textAnchor="middle" className="topo-label">
                  ▣ {s.name.slice(0, 14)}
                </text>
              </a>
            );
          })}
        </svg>
      </div>
    </>
  );
}
