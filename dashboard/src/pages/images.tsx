/** Images: list, upload from the browser with progress, edit properties, share with projects, delete. */
import { useRef, useState } from 'react';
import { errorText } from '../api/client.js';
import { CORE_IMAGE_FIELDS, images, type Image, type PatchOp } from '../api/image.js';
import { useApp } from '../app.js';
import { Badge, Confirm, ErrorBox, Field, fmtBytes, fmtTime, Modal, PageHeader, ProgressBar, Spinner, Table, useAsync, useNotify, Menu } from '../ui/kit.js';

const DISK_FORMATS = ['qcow2', 'raw', 'iso', 'vmdk', 'vdi', 'vhd', 'vhdx', 'ami', 'ari', 'aki'];
const CONTAINER_FORMATS = ['bare', 'ovf', 'ova', 'ami', 'ari', 'aki', 'docker', 'compressed'];

function guessFormat(name: string): string {
  const ext = name.toLowerCase().split('.').pop() ?? '';
  if (ext === 'img') return 'raw';
  return DISK_FORMATS.includes(ext) ? ext : 'qcow2';
}

export default function ImagesPage() {
  const { session } = useApp();
  // Images change status (queued → saving → active) on their own: poll.
  const list = useAsync(() => images.list(), [session.token], 4000);
  const [uploading, setUploading] = useState(false);
  const [edit, setEdit] = useState<Image | null>(null);
  const [share, setShare] = useState<Image | null>(null);
  const [del, setDel] = useState<Image | null>(null);
  const mine = (i: Image) => i.owner === session.project?.id;
  return (
    <>
      <PageHeader title="Images">
        <button type="button" className="primary" onClick={() => setUploading(true)}>
          Upload image
        </button>
      </PageHeader>
      <ErrorBox error={list.error} />
      {list.loading && !list.data ? <Spinner /> : null}
      <Table<Image>
        caption="Images"
        rows={list.data?.slice().sort((a, b) => b.created_at.localeCompare(a.created_at))}
        rowKey={(i) => i.id}
        empty="No images."
        columns={[
          { label: 'Name', render: (i) => i.name ?? <code>{i.id}</code> },
          { label: 'Status', render: (i) => <Badge tone={i.status === 'active' ? 'ok' : i.status === 'killed' || i.status === 'deactivated' ? 'bad' : 'busy'}>{i.status}</Badge> },
          { label: 'Visibility', render: (i) => i.visibility },
          { label: 'Format', render: (i) => `${i.disk_format ?? '—'}/${i.container_format ?? '—'}` },
          { label: 'Size', render: (i) => fmtBytes(i.size) },
          { label: 'Owner', render: (i) => (mine(i) ? 'this project' : <code title={i.owner}>{i.owner.slice(0, 8)}</code>) },
          { label: 'Created', render: (i) => fmtTime(i.created_at) },
          {
            label: 'Actions',
            render: (i) =>
              mine(i) ? (
                <Menu label={`Actions for ${i.name ?? i.id}`}>
                    <button type="button" onClick={() => setEdit(i)}>
                      Edit
                    </button>
                    <button type="button" onClick={() => setShare(i)}>
                      Share
                    </button>
                    <button type="button" className="danger" onClick={() => setDel(i)}>
                      Delete
                    </button>
                  </Menu>
              ) : (
                <span className="muted">—</span>
              ),
          },
        ]}
      />
      {uploading && <UploadDialog onClose={() => setUploading(false)} onDone={list.reload} />}
      {edit && <EditDialog image={edit} onClose={() => setEdit(null)} onDone={list.reload} />}
      {share && <ShareDialog image={share} onClose={() => setShare(null)} onDone={list.reload} />}
      {del && (
        <Confirm
          title={`Delete image ${del.name ?? del.id}?`}
          message={del.protected ? 'This image is protected: unprotect it (Edit) before deleting.' : 'Instances already booted from it keep running.'}
          onConfirm={async () => {
            await images.remove(del.id);
            void list.reload();
          }}
          onClose={() => setDel(null)}
        />
      )}
    </>
  );
}

/** Creates the image record, then PUTs the file with upload progress; a failed upload removes the record. */
function UploadDialog({ onClose, onDone }: { onClose: () => void; onDone: () => unknown }) {
  const notify = useNotify();
  const [file, setFile] = useState<File | null>(null);
  const [name, setName] = useState('');
  const [disk, setDisk] = useState('qcow2');
  const [container, setContainer] = useState('bare');
  const [visibility, setVisibility] = useState('private');
  const [progress, setProgress] = useState<{ loaded: number; total: number } | null>(null);
  const [phase, setPhase] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const abort = useRef<AbortController | null>(null);

  const submit = async () => {
    if (!file) return setError('Choose a file to upload.');
    setError(null);
    setPhase('Creating the image record…');
    let created: Image | null = null;
    try {
      created = await images.create({ name: name.trim() || file.name, disk_format: disk, container_format: container, visibility });
      setPhase('Uploading…');
      setProgress({ loaded: 0, total: file.size });
      abort.current = new AbortController();
      await images.upload(created.id, file, (loaded, total) => setProgress({ loaded, total }), abort.current.signal);
      setPhase('Waiting for the image to become active…');
      for (let i = 0; i < 120; i++) {
        const img = await images.get(created.id);
        if (img.status === 'active') break;
        if (img.status === 'killed') throw new Error('The image service rejected the uploaded data.');
        await new Promise((r) => setTimeout(r, 1000));
      }
      notify(`Image ${created.name} uploaded.`);
      void onDone();
      onClose();
    } catch (e) {
      setError(errorText(e));
      setPhase(null);
      setProgress(null);
      if (created) await images.remove(created.id).catch(() => undefined);
      void onDone();
    }
  };

  return (
    <Modal
      title="Upload image"
      onClose={() => {
        abort.current?.abort();
        onClose();
      }}
    >
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <div className="field">
          <label htmlFor="image-file">Image file *</label>
          <input
            id="image-file"
            type="file"
            required
            onChange={(e) => {
              const f = e.target.files?.[0] ?? null;
              setFile(f);
              if (f) {
                if (!name) setName(f.name.replace(/\.[^.]+$/, ''));
                setDisk(guessFormat(f.name));
              }
            }}
          />
          {file && <small>{fmtBytes(file.size)}</small>}
        </div>
        <Field spec={{ name: 'name', label: 'Name' }} value={name} onChange={(v) => setName(String(v))} />
        <Field spec={{ name: 'disk_format', label: 'Disk format', type: 'select', required: true, options: DISK_FORMATS.map((f) => ({ value: f, label: f })) }} value={disk} onChange={(v) => setDisk(String(v))} />
        <Field
          spec={{ name: 'container_format', label: 'Container format', type: 'select', required: true, options: CONTAINER_FORMATS.map((f) => ({ value: f, label: f })) }}
          value={container}
          onChange={(v) => setContainer(String(v))}
        />
        <Field
          spec={{
            name: 'visibility',
            label: 'Visibility',
            type: 'select',
            required: true,
            options: ['private', 'shared', 'community', 'public'].map((f) => ({ value: f, label: f })),
            help: 'Public images need an administrator.',
          }}
          value={visibility}
          onChange={(v) => setVisibility(String(v))}
        />
        {phase && (
          <p role="status" aria-live="polite">
            {phase}
          </p>
        )}
        {progress && <ProgressBar label="Upload" value={progress.loaded} max={progress.total} />}
        <ErrorBox error={error} />
        <div className="actions">
          <button
            type="button"
            onClick={() => {
              abort.current?.abort();
              onClose();
            }}
          >
            Cancel
          </button>
          <button type="submit" className="primary" disabled={!!phase} aria-busy={!!phase}>
            {phase ? 'Uploading…' : 'Upload'}
          </button>
        </div>
      </form>
    </Modal>
  );
}

function EditDialog({ image, onClose, onDone }: { image: Image; onClose: () => void; onDone: () => unknown }) {
  const initialProps = Object.entries(image).filter(([k, v]) => !CORE_IMAGE_FIELDS.has(k) && typeof v === 'string') as [string, string][];
  const [name, setName] = useState(image.name ?? '');
  const [minDisk, setMinDisk] = useState(String(image.min_disk ?? 0));
  const [minRam, setMinRam] = useState(String(image.min_ram ?? 0));
  const [visibility, setVisibility] = useState<string>(image.visibility);
  const [prot, setProt] = useState(image.protected);
  const [props, setProps] = useState<[string, string][]>(initialProps.length ? initialProps : []);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const save = async () => {
    const ops: PatchOp[] = [];
    const set = (path: string, value: unknown, had: boolean) => ops.push({ op: had ? 'replace' : 'add', path, value });
    if (name !== (image.name ?? '')) set('/name', name, image.name !== null && image.name !== undefined);
    if (Number(minDisk) !== image.min_disk) set('/min_disk', Number(minDisk), true);
    if (Number(minRam) !== image.min_ram) set('/min_ram', Number(minRam), true);
    if (visibility !== image.visibility) set('/visibility', visibility, true);
    if (prot !== image.protected) set('/protected', prot, true);
    const before = new Map(initialProps);
    const after = new Map(props.filter(([k]) => k.trim()).map(([k, v]) => [k.trim(), v]));
    for (const [k] of before) if (!after.has(k)) ops.push({ op: 'remove', path: `/${k.replace(/~/g, '~0').replace(/\//g, '~1')}` });
    for (const [k, v] of after) {
      if (CORE_IMAGE_FIELDS.has(k)) return setError(`"${k}" is a reserved image field, not a custom property.`);
      if (before.get(k) !== v) set(`/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`, v, before.has(k));
    }
    if (ops.length === 0) return onClose();
    setBusy(true);
    setError(null);
    try {
      await images.patch(image.id, ops);
      void onDone();
      onClose();
    } catch (e) {
      setError(errorText(e));
      setBusy(false);
    }
  };

  return (
    <Modal title={`Edit ${image.name ?? image.id}`} onClose={onClose} wide>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
      >
        <Field spec={{ name: 'name', label: 'Name' }} value={name} onChange={(v) => setName(String(v))} />
        <div className="row">
          <Field spec={{ name: 'min_disk', label: 'Minimum disk (GiB)', type: 'number', min: 0 }} value={minDisk} onChange={(v) => setMinDisk(String(v))} />
          <Field spec={{ name: 'min_ram', label: 'Minimum RAM (MiB)', type: 'number', min: 0 }} value={minRam} onChange={(v) => setMinRam(String(v))} />
        </div>
        <Field
          spec={{ name: 'visibility', label: 'Visibility', type: 'select', required: true, options: ['private', 'shared', 'community', 'public'].map((f) => ({ value: f, label: f })) }}
          value={visibility}
          onChange={(v) => setVisibility(String(v))}
        />
        <Field spec={{ name: 'protected', label: 'Protected (cannot be deleted)', type: 'checkbox' }} value={prot} onChange={(v) => setProt(v === true)} />
        <fieldset>
          <legend>Custom properties</legend>
          {props.map(([k, v], i) => (
            <div className="row prop" key={i}>
              <input aria-label={`Property ${i + 1} name`} value={k} onChange={(e) => setProps((p) => p.map((x, j) => (j === i ? [e.target.value, x[1]] : x)))} placeholder="name (e.g. os_distro)" />
              <input aria-label={`Property ${i + 1} value`} value={v} onChange={(e) => setProps((p) => p.map((x, j) => (j === i ? [x[0], e.target.value] : x)))} placeholder="value" />
              <button type="button" aria-label={`Remove property ${k || i + 1}`} onClick={() => setProps((p) => p.filter((_, j) => j !== i))}>
                Remove
              </button>
            </div>
          ))}
          <button type="button" onClick={() => setProps((p) => [...p, ['', '']])}>
            Add property
          </button>
        </fieldset>
        <ErrorBox error={error} />
        <div className="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy} aria-busy={busy}>
            {busy ? 'Saving…' : 'Save'}
          </button>
        </div>
      </form>
    </Modal>
  );
}

/** Sharing needs visibility "shared"; the image is switched to it first when needed. */
function ShareDialog({ image, onClose, onDone }: { image: Image; onClose: () => void; onDone: () => unknown }) {
  const members = useAsync(() => images.members(image.id), [image.id]);
  const [project, setProject] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const add = async () => {
    setBusy(true);
    setError(null);
    try {
      if (image.visibility !== 'shared') {
        await images.patch(image.id, [{ op: 'replace', path: '/visibility', value: 'shared' }]);
        image = { ...image, visibility: 'shared' };
        void onDone();
      }
      await images.addMember(image.id, project.trim());
      setProject('');
      await members.reload();
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal title={`Share ${image.name ?? image.id}`} onClose={onClose}>
      {image.visibility !== 'shared' && <p className="alert info">Sharing changes the image's visibility from {image.visibility} to shared.</p>}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void add();
        }}
      >
        <Field spec={{ name: 'project', label: 'Project ID to share with', required: true, help: 'The other project accepts the image to see it in its list.' }} value={project} onChange={(v) => setProject(String(v))} />
        <ErrorBox error={error ?? members.error} />
        <div className="actions">
          <button type="submit" className="primary" disabled={busy || !project.trim()} aria-busy={busy}>
            {busy ? 'Sharing…' : 'Share'}
          </button>
        </div>
      </form>
      <h3>Members</h3>
      <Table
        caption="Projects this image is shared with"
        rows={members.data}
        rowKey={(m) => m.member_id}
        empty="Not shared with any project."
        columns={[
          { label: 'Project', render: (m) => <code>{m.member_id}</code> },
          { label: 'Status', render: (m) => m.status },
          {
            label: 'Actions',
            render: (m) => (
              <button
                type="button"
                className="danger"
                onClick={async () => {
                  try {
                    await images.removeMember(image.id, m.member_id);
                    await members.reload();
                  } catch (e) {
                    setError(errorText(e));
                  }
                }}
              >
                Remove
              </button>
            ),
          },
        ]}
      />
    </Modal>
  );
}
