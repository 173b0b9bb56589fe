/** Compute pages: instances (list, launch, actions, detail with consoles), key pairs, flavors. */
import { useEffect, useMemo, useRef, useState } from 'react';
import { errorText, hasService } from '../api/client.js';
import { compute, serverState, type Flavor, type Keypair, type Server, type ServerCreate } from '../api/compute.js';
import { images, type Image } from '../api/image.js';
import { network, NETWORK_TYPES, type Network, type SecurityGroup } from '../api/network.js';
import { useApp } from '../app.js';
import { go, href } from '../router.js';
import type { PageProps } from './registry.js';
import {
  Badge,
  Confirm,
  ErrorBox,
  Field,
  FormDialog,
  fmtTime,
  Modal,
  PageHeader,
  Spinner,
  Table,
  Tabs,
  useAction,
  useAsync,
  useNotify,
  type FieldSpec,
  Menu,
} from '../ui/kit.js';
import { SerialConsole } from './serial-console.js';

/** Instances change state on their own (build, reboot…): the list polls. */
const POLL_MS = 3000;

export function InstancesPage({ rest }: PageProps) {
  if (rest[0]) return <InstanceDetail id={rest[0]} />;
  return <InstancesList />;
}

function addresses(s: Server): string {
  return Object.values(s.addresses ?? {})
    .flat()
    .map((a) => a.addr)
    .join(', ');
}

function InstancesList() {
  const list = useAsync(() => compute.allServers(), [], POLL_MS);
  const flavors = useAsync(() => compute.flavors(), []);
  const [launching, setLaunching] = useState(false);
  const [filter, setFilter] = useState('');
  const byId = useMemo(() => new Map((flavors.data ?? []).map((f) => [f.id, f])), [flavors.data]);
  const rows = useMemo(() => {
    const f = filter.trim().toLowerCase();
    const all = [...(list.data ?? [])].sort((a, b) => b.created.localeCompare(a.created) || a.name.localeCompare(b.name, undefined, { numeric: true }));
    return f ? all.filter((s) => s.name.toLowerCase().includes(f) || s.id.startsWith(f) || addresses(s).includes(f)) : all;
  }, [list.data, filter]);
  return (
    <>
      <PageHeader title="Instances">
        <input type="search" aria-label="Filter instances" placeholder="Filter…" value={filter} onChange={(e) => setFilter(e.target.value)} />
        <button type="button" className="primary" onClick={() => setLaunching(true)}>
          Launch instance
        </button>
      </PageHeader>
      <ErrorBox error={list.error} />
      {list.loading && !list.data ? <Spinner /> : null}
      <Table<Server>
        caption="Instances"
        rows={list.data ? rows : undefined}
        rowKey={(s) => s.id}
        empty="No instances. Launch one to get started."
        columns={[
          { label: 'Name', render: (s) => <a href={href(`compute/instances/${s.id}`)}>{s.name}</a> },
          {
            label: 'Status',
            render: (s) => {
              const st = serverState(s);
              return <Badge tone={st.tone}>{st.label}</Badge>;
            },
          },
          { label: 'Addresses', render: (s) => addresses(s) || '—' },
          { label: 'Flavor', render: (s) => s.flavor.original_name ?? byId.get(s.flavor.id ?? '')?.name ?? s.flavor.id ?? '—' },
          { label: 'Key pair', render: (s) => s.key_name ?? '—' },
          { label: 'Created', render: (s) => fmtTime(s.created) },
          { label: 'Actions', render: (s) => <ServerActions server={s} flavors={flavors.data ?? []} onChange={list.reload} compact /> },
        ]}
      />
      {launching && <LaunchWizard onClose={() => setLaunching(false)} onLaunched={list.reload} />}
    </>
  );
}

type Dialog = 'delete' | 'snapshot' | 'resize' | null;

/** Start/stop/reboot/delete/snapshot/resize(+confirm/revert), offered by state. */
function ServerActions({ server: s, flavors, onChange, onDeleted, compact }: { server: Server; flavors: Flavor[]; onChange: () => unknown; onDeleted?: () => void; compact?: boolean }) {
  const run = useAction();
  const [dialog, setDialog] = useState<Dialog>(null);
  const busy = !!s['OS-EXT-STS:task_state'];
  const act = async (what: string, body: Record<string, unknown>, done: string) => {
    await run(what, () => compute.action(s.id, body), done);
    void onChange();
  };
  const buttons = (
    <>
      {s.status === 'SHUTOFF' && (
        <button type="button" disabled={busy} onClick={() => act(`Start ${s.name}`, { 'os-start': null }, `Starting ${s.name}.`)}>
          Start
        </button>
      )}
      {s.status === 'ACTIVE' && (
        <button type="button" disabled={busy} onClick={() => act(`Stop ${s.name}`, { 'os-stop': null }, `Stopping ${s.name}.`)}>
          Stop
        </button>
      )}
      {s.status === 'ACTIVE' && (
        <button type="button" disabled={busy} onClick={() => act(`Reboot ${s.name}`, { reboot: { type: 'SOFT' } }, `Rebooting ${s.name}.`)}>
          Reboot
        </button>
      )}
      {(s.status === 'ACTIVE' || s.status === 'SHUTOFF') && (
        <button type="button" disabled={busy} onClick={() => setDialog('snapshot')}>
          Snapshot
        </button>
      )}
      {(s.status === 'ACTIVE' || s.status === 'SHUTOFF') && (
        <button type="button" disabled={busy} onClick={() => setDialog('resize')}>
          Resize
        </button>
      )}
      {s.status === 'VERIFY_RESIZE' && (
        <>
          <button type="button" className="primary" onClick={() => act(`Confirm resize of ${s.name}`, { confirmResize: null }, `Resize of ${s.name} confirmed.`)}>
            Confirm resize
          </button>
          <button type="button" onClick={() => act(`Revert resize of ${s.name}`, { revertResize: null }, `Reverting the resize of ${s.name}.`)}>
            Revert resize
          </button>
        </>
      )}
      <button type="button" className="danger" onClick={() => setDialog('delete')}>
        Delete
      </button>
    </>
  );
  return (
    <>
      {compact ? (
        <Menu label={`Actions for ${s.name}`}>{buttons}</Menu>
      ) : (
        <div className="button-row">{buttons}</div>
      )}
      {dialog === 'delete' && (
        <Confirm
          title={`Delete ${s.name}?`}
          message="The instance and its local disk are deleted. This cannot be undone."
          onConfirm={async () => {
            await compute.remove(s.id);
            if (onDeleted) onDeleted();
            else void onChange();
          }}
          onClose={() => setDialog(null)}
        />
      )}
      {dialog === 'snapshot' && (
        <FormDialog
          title={`Snapshot ${s.name}`}
          fields={[{ name: 'name', label: 'Snapshot name', required: true, initial: `${s.name}-snapshot` }]}
          submitLabel="Create snapshot"
          onSubmit={async (v) => {
            await compute.action(s.id, { createImage: { name: String(v.name) } });
            void onChange();
          }}
          onClose={() => setDialog(null)}
        />
      )}
      {dialog === 'resize' && (
        <FormDialog
          title={`Resize ${s.name}`}
          intro={<p>After the resize, confirm it (or revert) from the instance's actions.</p>}
          fields={[
            {
              name: 'flavor',
              label: 'New flavor',
              type: 'select',
              required: true,
              options: flavors.filter((f) => f.id !== s.flavor.id && f.name !== s.flavor.original_name).map((f) => ({ value: f.id, label: `${f.name} (${f.vcpus} VCPU, ${f.ram} MiB, ${f.disk} GiB)` })),
            },
          ]}
          submitLabel="Resize"
          onSubmit={async (v) => {
            await compute.action(s.id, { resize: { flavorRef: String(v.flavor) } });
            void onChange();
          }}
          onClose={() => setDialog(null)}
        />
      )}
    </>
  );
}

function InstanceDetail({ id }: { id: string }) {
  const server = useAsync(() => compute.server(id), [id], POLL_MS);
  const flavors = useAsync(() => compute.flavors(), []);
  const [tab, setTab] = useState<'overview' | 'log' | 'console' | 'actions'>('overview');
  const s = server.data;
  return (
    <>
      <PageHeader title={s ? `Instance ${s.name}` : 'Instance'}>
        <a href={href('compute/instances')}>← All instances</a>
      </PageHeader>
      <ErrorBox error={server.error} />
      {!s && server.loading && <Spinner />}
      {s && (
        <>
          <div className="detail-head">
            <Badge tone={serverState(s).tone}>{serverState(s).label}</Badge>
            <ServerActions server={s} flavors={flavors.data ?? []} onChange={server.reload} onDeleted={() => go('compute/instances')} />
          </div>
          {s.fault && s.status === 'ERROR' && <ErrorBox error={`The instance failed: ${s.fault.message}`} />}
          <Tabs
            label="Instance views"
            current={tab}
            onChange={setTab}
            tabs={[
              { key: 'overview', label: 'Overview' },
              { key: 'log', label: 'Console log' },
              { key: 'console', label: 'Console' },
              { key: 'actions', label: 'Action log' },
            ]}
          />
          <div role="tabpanel">
            {tab === 'overview' && (
              <dl className="props">
                <dt>ID</dt>
                <dd>
                  <code>{s.id}</code>
                </dd>
                <dt>Status</dt>
                <dd>
                  {s.status} / {s['OS-EXT-STS:vm_state']} {s['OS-EXT-STS:task_state'] ? `/ ${s['OS-EXT-STS:task_state']}` : ''}
                </dd>
                <dt>Flavor</dt>
                <dd>
                  {s.flavor.original_name ?? s.flavor.id} {s.flavor.vcpus ? `(${s.flavor.vcpus} VCPU, ${s.flavor.ram} MiB, ${s.flavor.disk} GiB)` : ''}
                </dd>
                <dt>Image</dt>
                <dd>{typeof s.image === 'object' ? <code>{s.image.id}</code> : '— (booted from volume)'}</dd>
                <dt>Addresses</dt>
                <dd>{addresses(s) || '—'}</dd>
                <dt>Key pair</dt>
                <dd>{s.key_name ?? '—'}</dd>
                <dt>Security groups</dt>
                <dd>{s.security_groups?.map((g) => g.name).join(', ') || '—'}</dd>
                <dt>Availability zone</dt>
                <dd>{s['OS-EXT-AZ:availability_zone'] ?? '—'}</dd>
                <dt>Created</dt>
                <dd>{fmtTime(s.created)}</dd>
              </dl>
            )}
            {tab === 'log' && <ConsoleLog id={s.id} />}
            {tab === 'console' && (s.status === 'ACTIVE' ? <SerialConsole serverId={s.id} /> : <p className="muted">The interactive console is available while the instance is active.</p>)}
            {tab === 'actions' && <ActionLog id={s.id} />}
          </div>
        </>
      )}
    </>
  );
}

function ConsoleLog({ id }: { id: string }) {
  const [lines, setLines] = useState(200);
  const [follow, setFollow] = useState(true);
  const log = useAsync(() => compute.consoleLog(id, lines), [id, lines], follow ? 5000 : 0);
  const pre = useRef<HTMLPreElement>(null);
  useEffect(() => {
    if (follow && pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [log.data, follow]);
  return (
    <section aria-label="Console log">
      <div className="toolbar">
        <label>
          Lines{' '}
          <select value={lines} onChange={(e) => setLines(Number(e.target.value))}>
            {[50, 200, 1000, -1].map((n) => (
              <option key={n} value={n}>
                {n === -1 ? 'all' : n}
              </option>
            ))}
          </select>
        </label>
        <label className="check">
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> Follow
        </label>
        <button type="button" onClick={() => void log.reload()}>
          Refresh
        </button>
      </div>
      <ErrorBox error={log.error} />
      {log.loading && log.data === undefined ? <Spinner /> : null}
      {log.data !== undefined && (
        <pre ref={pre} className="console-log" tabIndex={0} aria-label="Console output" data-testid="console-log">
          {log.data || '(no output yet)'}
        </pre>
      )}
    </section>
  );
}

function ActionLog({ id }: { id: string }) {
  const actions = useAsync(() => compute.actions(id), [id], POLL_MS * 2);
  return (
    <>
      <ErrorBox error={actions.error} />
      <Table
        caption="Actions on this instance"
        rows={actions.data}
        rowKey={(a) => a.request_id + a.action}
        columns={[
          { label: 'Action', render: (a) => a.action },
          { label: 'Started', render: (a) => fmtTime(a.start_time) },
          { label: 'Request', render: (a) => <code>{a.request_id}</code> },
          { label: 'Message', render: (a) => a.message ?? '—' },
        ]}
      />
    </>
  );
}

type Step = 'details' | 'source' | 'flavor' | 'network' | 'access' | 'config';

/** The launch wizard: details → image → flavor → networks → key pair/security groups → user data. */
function LaunchWizard({ onClose, onLaunched }: { onClose: () => void; onLaunched: () => unknown }) {
  const { session } = useApp();
  const notify = useNotify();
  const hasNet = hasService(NETWORK_TYPES);
  const data = useAsync(async () => {
    const [imgs, flavors, keypairs, nets, groups] = await Promise.all([
      images.list(),
      compute.flavors(),
      compute.keypairs(),
      hasNet ? network.networks().catch(() => [] as Network[]) : Promise.resolve([] as Network[]),
      hasNet ? network.securityGroups().catch(() => [] as SecurityGroup[]) : Promise.resolve([] as SecurityGroup[]),
    ]);
    return { images: imgs.filter((i) => i.status === 'active'), flavors: flavors.sort((a, b) => a.ram - b.ram || a.vcpus - b.vcpus), keypairs, nets, groups };
  }, [session.token]);
  const steps: { key: Step; label: string }[] = [
    { key: 'details', label: 'Details' },
    { key: 'source', label: 'Image' },
    { key: 'flavor', label: 'Flavor' },
    ...(hasNet ? [{ key: 'network' as Step, label: 'Networks' }] : []),
    { key: 'access', label: hasNet ? 'Key pair & security' : 'Key pair' },
    { key: 'config', label: 'User data' },
  ];
  const [step, setStep] = useState<Step>('details');
  const [name, setName] = useState('');
  const [count, setCount] = useState('1');
  const [image, setImage] = useState('');
  const [flavor, setFlavor] = useState('');
  const [nets, setNets] = useState<string[]>([]);
  const [keyName, setKeyName] = useState('');
  const [groups, setGroups] = useState<string[]>(['default']);
  const [userData, setUserData] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const idx = steps.findIndex((s) => s.key === step);
  const d = data.data;
  useEffect(() => {
    if (!d) return;
    setImage((v) => v || d.images[0]?.id || '');
    const img = d.images[0];
    setFlavor((v) => v || d.flavors.find((f) => !img || (f.disk >= (img.min_disk ?? 0) && f.ram >= (img.min_ram ?? 0)))?.id || '');
    setNets((v) => (v.length ? v : d.nets.filter((n) => !n['router:external']).slice(0, 1).map((n) => n.id)));
  }, [d]);

  const missing = !name.trim() ? 'Give the instance a name (Details).' : !image ? 'Choose an image.' : !flavor ? 'Choose a flavor.' : null;
  const launch = async () => {
    if (missing) return setError(missing);
    const n = Number(count);
    if (!Number.isInteger(n) || n < 1) return setError('The count must be a whole number of at least 1.');
    setBusy(true);
    setError(null);
    const body: ServerCreate = { name: name.trim(), imageRef: image, flavorRef: flavor, min_count: n, max_count: n };
    if (keyName) body.key_name = keyName;
    if (userData.trim()) body.user_data = btoa(unescape(encodeURIComponent(userData)));
    if (hasNet) {
      body.networks = nets.length ? nets.map((uuid) => ({ uuid })) : 'none';
      if (groups.length) body.security_groups = groups.map((g) => ({ name: g }));
    }
    try {
      await compute.create(body);
      notify(n > 1 ? `Launching ${n} instances named ${body.name}.` : `Launching ${body.name}.`);
      void onLaunched();
      onClose();
    } catch (e) {
      setError(errorText(e));
      setBusy(false);
    }
  };

  const imageFields: FieldSpec = { name: 'image', label: 'Image', type: 'select', required: true, options: (d?.images ?? []).map((i: Image) => ({ value: i.id, label: `${i.name ?? i.id} (${i.disk_format ?? '?'}, ${i.visibility})` })) };
  return (
    <Modal title="Launch instance" onClose={onClose} wide>
      <ol className="steps" aria-label="Launch steps">
        {steps.map((s, i) => (
          <li key={s.key}>
            <button type="button" aria-current={s.key === step ? 'step' : undefined} className={s.key === step ? 'active' : i < idx ? 'done' : ''} onClick={() => setStep(s.key)}>
              {i + 1}. {s.label}
            </button>
          </li>
        ))}
      </ol>
      <ErrorBox error={data.error} />
      {!d ? (
        <Spinner />
      ) : (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (idx < steps.length - 1) setStep(steps[idx + 1]!.key);
            else void launch();
          }}
        >
          {step === 'details' && (
            <>
              <Field spec={{ name: 'name', label: 'Instance name', required: true }} value={name} onChange={(v) => setName(String(v))} />
              <Field spec={{ name: 'count', label: 'Count', type: 'number', min: 1, help: 'Several instances get the same name.' }} value={count} onChange={(v) => setCount(String(v))} />
            </>
          )}
          {step === 'source' &&
            (d.images.length ? <Field spec={imageFields} value={image} onChange={(v) => setImage(String(v))} /> : <p className="alert info">No active image is available; upload one on the Images page.</p>)}
          {step === 'flavor' && (
            <fieldset className="choices">
              <legend>Flavor</legend>
              {d.flavors.map((f) => (
                <label key={f.id} className="choice">
                  <input type="radio" name="flavor" value={f.id} checked={flavor === f.id} onChange={() => setFlavor(f.id)} />
                  <strong>{f.name}</strong> <span className="muted">{f.vcpus} VCPU · {f.ram} MiB RAM · {f.disk} GiB disk</span>
                </label>
              ))}
            </fieldset>
          )}
          {step === 'network' && (
            <fieldset className="choices">
              <legend>Networks</legend>
              {d.nets.length === 0 && <p className="muted">No networks are available to this project.</p>}
              {d.nets.map((n) => (
                <label key={n.id} className="choice">
                  <input type="checkbox" checked={nets.includes(n.id)} onChange={(e) => setNets((v) => (e.target.checked ? [...v, n.id] : v.filter((x) => x !== n.id)))} />
                  <strong>{n.name || n.id}</strong> {n['router:external'] ? <span className="muted">(external)</span> : null}
                </label>
              ))}
            </fieldset>
          )}
          {step === 'access' && (
            <>
              <Field
                spec={{ name: 'key', label: 'Key pair', type: 'select', options: (d.keypairs as Keypair[]).map((k) => ({ value: k.name, label: k.name })), help: 'Its public key is injected into the guest.' }}
                value={keyName}
                onChange={(v) => setKeyName(String(v))}
              />
              {hasNet && (
                <fieldset className="choices">
                  <legend>Security groups</legend>
                  {d.groups.map((g) => (
                    <label key={g.id} className="choice">
                      <input type="checkbox" checked={groups.includes(g.name)} onChange={(e) => setGroups((v) => (e.target.checked ? [...v, g.name] : v.filter((x) => x !== g.name)))} />
                      {g.name}
                    </label>
                  ))}
                </fieldset>
              )}
            </>
          )}
          {step === 'config' && (
            <Field spec={{ name: 'user_data', label: 'User data (cloud-init script or config)', type: 'textarea', placeholder: '#!/bin/sh\necho hello' }} value={userData} onChange={(v) => setUserData(String(v))} />
          )}
          <ErrorBox error={error} />
          <div className="actions">
            <button type="button" onClick={onClose}>
              Cancel
            </button>
            {idx > 0 && (
              <button type="button" onClick={() => setStep(steps[idx - 1]!.key)}>
                Back
              </button>
            )}
            {idx < steps.length - 1 && <button type="submit">Next</button>}
            <button type="button" className="primary" disabled={busy || !!missing} aria-busy={busy} onClick={() => void launch()} title={missing ?? undefined}>
              {busy ? 'Launching…' : 'Launch'}
            </button>
          </div>
        </form>
      )}
    </Modal>
  );
}

export function KeypairsPage() {
  const list = useAsync(() => compute.keypairs(), []);
  const [dialog, setDialog] = useState<'create' | 'import' | null>(null);
  const [created, setCreated] = useState<Keypair | null>(null);
  const [del, setDel] = useState<Keypair | null>(null);
  return (
    <>
      <PageHeader title="Key pairs">
        <button type="button" className="primary" onClick={() => setDialog('create')}>
          Create key pair
        </button>
        <button type="button" onClick={() => setDialog('import')}>
          Import public key
        </button>
      </PageHeader>
      <ErrorBox error={list.error} />
      {list.loading && !list.data ? <Spinner /> : null}
      <Table<Keypair>
        caption="Key pairs"
        rows={list.data}
        rowKey={(k) => k.name}
        empty="No key pairs."
        columns={[
          { label: 'Name', render: (k) => k.name },
          { label: 'Type', render: (k) => k.type ?? 'ssh' },
          { label: 'Fingerprint', render: (k) => <code>{k.fingerprint}</code> },
          {
            label: 'Actions',
            render: (k) => (
              <button type="button" className="danger" onClick={() => setDel(k)}>
                Delete
              </button>
            ),
          },
        ]}
      />
      {dialog === 'create' && (
        <FormDialog
          title="Create key pair"
          fields={[{ name: 'name', label: 'Name', required: true }]}
          submitLabel="Create"
          onSubmit={async (v) => {
            setCreated(await compute.createKeypair(String(v.name).trim()));
            void list.reload();
          }}
          onClose={() => setDialog(null)}
        />
      )}
      {dialog === 'import' && (
        <FormDialog
          title="Import public key"
          fields={[
            { name: 'name', label: 'Name', required: true },
            { name: 'key', label: 'Public key', type: 'textarea', required: true, placeholder: 'ssh-ed25519 AAAA… user@host' },
          ]}
          submitLabel="Import"
          onSubmit={async (v) => {
            await compute.createKeypair(String(v.name).trim(), String(v.key).trim());
            void list.reload();
          }}
          onClose={() => setDialog(null)}
        />
      )}
      {created?.private_key && (
        <Modal title={`Private key of ${created.name}`} onClose={() => setCreated(null)}>
          <p className="alert info">This is the only time the private key is shown. Save it now.</p>
          <pre className="console-log" tabIndex={0}>
            {created.private_key}
          </pre>
          <div className="actions">
            <a className="button primary" download={`${created.name}.pem`} href={URL.createObjectURL(new Blob([created.private_key], { type: 'application/x-pem-file' }))}>
              Download {created.name}.pem
            </a>
            <button type="button" onClick={() => setCreated(null)}>
              Done
            </button>
          </div>
        </Modal>
      )}
      {del && (
        <Confirm
          title={`Delete key pair ${del.name}?`}
          message="Instances already launched with it keep their key."
          onConfirm={async () => {
            await compute.deleteKeypair(del.name);
            void list.reload();
          }}
          onClose={() => setDel(null)}
        />
      )}
    </>
  );
}

export function FlavorsPage() {
  const list = useAsync(() => compute.flavors(), []);
  const [creating, setCreating] = useState(false);
  const [del, setDel] = useState<Flavor | null>(null);
  return (
    <>
      <PageHeader title="Flavors">
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          Create flavor
        </button>
      </PageHeader>
      <ErrorBox error={list.error} />
      {list.loading && !list.data ? <Spinner /> : null}
      <Table<Flavor>
        caption="Flavors"
        rows={list.data?.slice().sort((a, b) => a.ram - b.ram)}
        rowKey={(f) => f.id}
        columns={[
          { label: 'Name', render: (f) => f.name },
          { label: 'VCPUs', render: (f) => f.vcpus },
          { label: 'RAM', render: (f) => `${f.ram} MiB` },
          { label: 'Disk', render: (f) => `${f.disk} GiB` },
          { label: 'Public', render: (f) => (f['os-flavor-access:is_public'] === false ? 'No' : 'Yes') },
          { label: 'ID', render: (f) => <code>{f.id}</code> },
          {
            label: 'Actions',
            render: (f) => (
              <button type="button" className="danger" onClick={() => setDel(f)}>
                Delete
              </button>
            ),
          },
        ]}
      />
      {creating && (
        <FormDialog
          title="Create flavor"
          fields={[
            { name: 'name', label: 'Name', required: true },
            { name: 'vcpus', label: 'VCPUs', type: 'number', required: true, min: 1, initial: '1' },
            { name: 'ram', label: 'RAM (MiB)', type: 'number', required: true, min: 1, initial: '512' },
            { name: 'disk', label: 'Root disk (GiB)', type: 'number', required: true, min: 0, initial: '1' },
            { name: 'is_public', label: 'Public (every project may use it)', type: 'checkbox', initial: true },
          ]}
          submitLabel="Create"
          onSubmit={async (v) => {
            await compute.createFlavor({ name: String(v.name).trim(), vcpus: Number(v.vcpus), ram: Number(v.ram), disk: Number(v.disk), 'os-flavor-access:is_public': v.is_public === true });
            void list.reload();
          }}
          onClose={() => setCreating(false)}
        />
      )}
      {del && (
        <Confirm
          title={`Delete flavor ${del.name}?`}
          message="Existing instances keep their size; new ones cannot use this flavor."
          onConfirm={async () => {
            await compute.deleteFlavor(del.id);
            void list.reload();
          }}
          onClose={() => setDel(null)}
        />
      )}
    </>
  );
}
