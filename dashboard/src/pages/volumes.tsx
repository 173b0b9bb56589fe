/** Volumes (Block Storage v3): create, attach/detach (compute API), extend, snapshot, backup, delete. */
import { useState } from 'react';
import { attachments, compute, type Server } from '../api/compute.js';
import { volume, type Backup, type Snapshot, type Volume } from '../api/volume.js';
import { Badge, Confirm, ErrorBox, fmtTime, FormDialog, PageHeader, Spinner, Table, Tabs, useAction, useAsync, Menu } from '../ui/kit.js';

type Dialog = { kind: 'attach' | 'extend' | 'snapshot' | 'backup' | 'delete'; v: Volume } | null;
const tone = (status: string) => (status === 'available' || status === 'in-use' ? 'ok' : status.startsWith('error') ? 'bad' : 'busy');

export default function VolumesPage() {
  const [tab, setTab] = useState<'volumes' | 'snapshots' | 'backups'>('volumes');
  return (
    <>
      <PageHeader title="Volumes" />
      <Tabs
        label="Block storage"
        current={tab}
        onChange={setTab}
        tabs={[
          { key: 'volumes', label: 'Volumes' },
          { key: 'snapshots', label: 'Snapshots' },
          { key: 'backups', label: 'Backups' },
        ]}
      />
      <div role="tabpanel">{tab === 'volumes' ? <Volumes /> : tab === 'snapshots' ? <Snapshots /> : <Backups />}</div>
    </>
  );
}

function Volumes() {
  // Volumes move through creating/attaching/extending on their own: poll.
  const list = useAsync(() => volume.volumes(), [], 3000);
  const servers = useAsync(() => compute.servers().catch(() => [] as Server[]), []);
  const [creating, setCreating] = useState(false);
  const [dialog, setDialog] = useState<Dialog>(null);
  const run = useAction();
  const serverName = (id: string) => servers.data?.find((s) => s.id === id)?.name ?? id;
  return (
    <>
      <div className="toolbar">
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          Create volume
        </button>
      </div>
      <ErrorBox error={list.error} />
      {list.loading && !list.data ? <Spinner /> : null}
      <Table<Volume>
        caption="Volumes"
        rows={list.data}
        rowKey={(v) => v.id}
        empty="No volumes."
        columns={[
          { label: 'Name', render: (v) => v.name || <code>{v.id}</code> },
          { label: 'Size', render: (v) => `${v.size} GiB` },
          { label: 'Status', render: (v) => <Badge tone={tone(v.status)}>{v.status}</Badge> },
          { label: 'Attached to', render: (v) => v.attachments.map((a) => `${serverName(a.server_id)}${a.device ? ` on ${a.device}` : ''}`).join(', ') || '—' },
          { label: 'Created', render: (v) => fmtTime(v.created_at) },
          {
            label: 'Actions',
            render: (v) => (
              <Menu label={`Actions for ${v.name || v.id}`}>
                  {v.attachments.length === 0 ? (
                    <button type="button" disabled={v.status !== 'available'} onClick={() => setDialog({ kind: 'attach', v })}>
                      Attach
                    </button>
                  ) : (
                    v.attachments.map((a) => (
                      <button
                        key={a.server_id}
                        type="button"
                        onClick={async () => {
                          await run(`Detach ${v.name || v.id}`, () => attachments.detach(a.server_id, v.id), `Detaching ${v.name || v.id}.`);
                          void list.reload();
                        }}
                      >
                        Detach from {serverName(a.server_id)}
                      </button>
                    ))
                  )}
                  <button type="button" onClick={() => setDialog({ kind: 'extend', v })}>
                    Extend
                  </button>
                  <button type="button" onClick={() => setDialog({ kind: 'snapshot', v })}>
                    Snapshot
                  </button>
                  <button type="button" onClick={() => setDialog({ kind: 'backup', v })}>
                    Back up
                  </button>
                  <button type="button" className="danger" onClick={() => setDialog({ kind: 'delete', v })}>
                    Delete
                  </button>
                </Menu>
            ),
          },
        ]}
      />
      {creating && (
        <FormDialog
          title="Create volume"
          fields={[
            { name: 'name', label: 'Name', required: true },
            { name: 'size', label: 'Size (GiB)', type: 'number', required: true, min: 1, initial: '1' },
            { name: 'description', label: 'Description' },
          ]}
          submitLabel="Create"
          onSubmit={async (v) => {
            await volume.create({ name: String(v.name).trim(), size: Number(v.size), ...(v.description ? { description: String(v.description) } : {}) });
            void list.reload();
          }}
          onClose={() => setCreating(false)}
        />
      )}
      {dialog?.kind === 'attach' && (
        <FormDialog
          title={`Attach ${dialog.v.name || dialog.v.id}`}
          fields={[
            {
              name: 'server',
              label: 'Instance',
              type: 'select',
              required: true,
              options: (servers.data ?? []).filter((s) => s.status === 'ACTIVE' || s.status === 'SHUTOFF').map((s) => ({ value: s.id, label: s.name })),
            },
          ]}
          submitLabel="Attach"
          onSubmit={async (f) => {
            await attachments.attach(String(f.server), dialog.v.id);
            void list.reload();
          }}
          onClose={() => setDialog(null)}
        />
      )}
      {dialog?.kind === 'extend' && (
        <FormDialog
          title={`Extend ${dialog.v.name || dialog.v.id}`}
          fields={[{ name: 'size', label: 'New size (GiB)', type: 'number', required: true, min: dialog.v.size + 1, initial: String(dialog.v.size + 1) }]}
          submitLabel="Extend"
          onSubmit={async (f) => {
            await volume.extend(dialog.v.id, Number(f.size));
            void list.reload();
          }}
          onClose={() => setDialog(null)}
        />
      )}
      {dialog?.kind === 'snapshot' && (
        <FormDialog
          title={`Snapshot ${dialog.v.name || dialog.v.id}`}
          fields={[{ name: 'name', label: 'Snapshot name', required: true, initial: `${dialog.v.name || 'volume'}-snap` }]}
          submitLabel="Create snapshot"
          onSubmit={(f) => volume.snapshot(dialog.v.id, String(f.name))}
          onClose={() => setDialog(null)}
        />
      )}
      {dialog?.kind === 'backup' && (
        <FormDialog
          title={`Back up ${dialog.v.name || dialog.v.id}`}
          fields={[{ name: 'name', label: 'Backup name', required: true, initial: `${dialog.v.name || 'volume'}-backup` }]}
          submitLabel="Create backup"
          onSubmit={(f) => volume.backup(dialog.v.id, String(f.name))}
          onClose={() => setDialog(null)}
        />
      )}
      {dialog?.kind === 'delete' && (
        <Confirm
          title={`Delete ${dialog.v.name || dialog.v.id}?`}
          message="The volume's data is lost. Detach it and delete its snapshots first."
          onConfirm={async () => {
            await volume.remove(dialog.v.id);
            void list.reload();
          }}
          onClose={() => setDialog(null)}
        />
      )}
    </>
  );
}

function Snapshots() {
  const list = useAsync(() => volume.snapshots(), [], 4000);
  const [del, setDel] = useState<Snapshot | null>(null);
  return (
    <>
      <ErrorBox error={list.error} />
      {list.loading && !list.data ? <Spinner /> : null}
      <Table<Snapshot>
        caption="Volume snapshots"
        rows={list.data}
        rowKey={(s) => s.id}
        empty="No snapshots."
        columns={[
          { label: 'Name', render: (s) => s.name || <code>{s.id}</code> },
          { label: 'Size', render: (s) => `${s.size} GiB` },
          { label: 'Status', render: (s) => <Badge tone={tone(s.status)}>{s.status}</Badge> },
          { label: 'Volume', render: (s) => <code>{s.volume_id}</code> },
          { label: 'Created', render: (s) => fmtTime(s.created_at) },
          {
            label: 'Actions',
            render: (s) => (
              <button type="button" className="danger" onClick={() => setDel(s)}>
                Delete
              </button>
            ),
          },
        ]}
      />
      {del && (
        <Confirm
          title={`Delete snapshot ${del.name || del.id}?`}
          message="This cannot be undone."
          onConfirm={async () => {
            await volume.deleteSnapshot(del.id);
            void list.reload();
          }}
          onClose={() => setDel(null)}
        />
      )}
    </>
  );
}

function Backups() {
  const list = useAsync(() => volume.backups(), [], 4000);
  const [del, setDel] = useState<Backup | null>(null);
  return (
    <>
      <ErrorBox error={list.error} />
      {list.loading && !list.data ? <Spinner /> : null}
      <Table<Backup>
        caption="Volume backups"
        rows={list.data}
        rowKey={(b) => b.id}
        empty="No backups."
        columns={[
          { label: 'Name', render: (b) => b.name || <code>{b.id}</code> },
          { label: 'Size', render: (b) => `${b.size} GiB` },
          { label: 'Status', render: (b) => <Badge tone={tone(b.status)}>{b.status}</Badge> },
          { label: 'Volume', render: (b) => <code>{b.volume_id}</code> },
          { label: 'Created', render: (b) => fmtTime(b.created_at) },
          {
            label: 'Actions',
            render: (b) => (
              <button type="button" className="danger" onClick={() => setDel(b)}>
                Delete
              </button>
            ),
          },
        ]}
      />
      {del && (
        <Confirm
          title={`Delete backup ${del.name || del.id}?`}
          message="This cannot be undone."
          onConfirm={async () => {
            await volume.deleteBackup(del.id);
            void list.reload();
          }}
          onClose={() => setDel(null)}
        />
      )}
    </>
  );
}
