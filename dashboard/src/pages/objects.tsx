/** Object storage (Swift v1): containers, folder-style browsing, upload with progress, download, public access, temp URLs. */
import { useRef, useState } from 'react';
import { errorText } from '../api/client.js';
import { objects, type Container, type Entry } from '../api/object.js';
import { go, href } from '../router.js';
import type { PageProps } from './registry.js';
import { Confirm, ErrorBox, fmtBytes, fmtTime, FormDialog, Modal, PageHeader, ProgressBar, Spinner, Table, useAction, useAsync, useNotify } from '../ui/kit.js';

export default function ObjectsPage({ rest }: PageProps) {
  if (rest[0]) return <ContainerView container={decodeURIComponent(rest[0])} prefix={rest.slice(1).map(decodeURIComponent).join('/')} />;
  return <Containers />;
}

function Containers() {
  const list = useAsync(() => objects.containers(), []);
  const [creating, setCreating] = useState(false);
  const [del, setDel] = useState<Container | null>(null);
  return (
    <>
      <PageHeader title="Containers">
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          Create container
        </button>
      </PageHeader>
      <ErrorBox error={list.error} />
      {list.loading && !list.data ? <Spinner /> : null}
      <Table<Container>
        caption="Containers"
        rows={list.data}
        rowKey={(c) => c.name}
        empty="No containers."
        columns={[
          { label: 'Name', render: (c) => <a href={href(`objects/${encodeURIComponent(c.name)}`)}>{c.name}</a> },
          { label: 'Objects', render: (c) => c.count },
          { label: 'Size', render: (c) => fmtBytes(c.bytes) },
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
          title="Create container"
          fields={[
            { name: 'name', label: 'Name', required: true },
            { name: 'public', label: 'Public (anyone can read its objects)', type: 'checkbox' },
          ]}
          submitLabel="Create"
          onSubmit={async (v) => {
            const name = String(v.name).trim();
            if (name.includes('/')) throw new Error('A container name cannot contain "/".');
            await objects.createContainer(name);
            if (v.public === true) await objects.setPublic(name, true);
            void list.reload();
          }}
          onClose={() => setCreating(false)}
        />
      )}
      {del && (
        <Confirm
          title={`Delete container ${del.name}?`}
          message={del.count > 0 ? 'It still holds objects: delete them first.' : 'The container is empty.'}
          onConfirm={async () => {
            await objects.deleteContainer(del.name);
            void list.reload();
          }}
          onClose={() => setDel(null)}
        />
      )}
    </>
  );
}

/** Drawn, not an emoji: headless and minimal systems often lack an emoji font. */
const FolderIcon = () => (
  <svg width="16" height="13" viewBox="0 0 16 13" aria-hidden="true" style={{ verticalAlign: '-1px' }}>
    <path d="M1 2a1 1 0 0 1 1-1h4l1.5 1.5H14a1 1 0 0 1 1 1V11a1 1 0 0 1-1 1H2a1 1 0 0 1-1-1z" fill="currentColor" opacity=".8" />
  </svg>
);

const pathTo = (container: string, prefix: string) => `objects/${encodeURIComponent(container)}${prefix ? `/${prefix.split('/').filter(Boolean).map(encodeURIComponent).join('/')}` : ''}`;

function ContainerView({ container, prefix: rawPrefix }: { container: string; prefix: string }) {
  const prefix = rawPrefix ? `${rawPrefix.replace(/\/+$/, '')}/` : '';
  const list = useAsync(() => objects.list(container, prefix), [container, prefix]);
  const pub = useAsync(() => objects.isPublic(container), [container]);
  // Shown at once while the change is saved; the container's ACL decides after.
  const [wantPublic, setWantPublic] = useState<boolean | null>(null);
  const notify = useNotify();
  const run = useAction();
  const [uploads, setUploads] = useState<{ name: string; loaded: number; total: number }[]>([]);
  const [folder, setFolder] = useState(false);
  const [del, setDel] = useState<string | null>(null);
  const [temp, setTemp] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const fileInput = useRef<HTMLInputElement>(null);

  const uploadFiles = async (files: FileList) => {
    setError(null);
    for (const f of Array.from(files)) {
      const name = prefix + f.name;
      setUploads((u) => [...u, { name, loaded: 0, total: f.size }]);
      try {
        await objects.upload(container, name, f, (loaded, total) => setUploads((u) => u.map((x) => (x.name === name ? { ...x, loaded, total } : x))));
        notify(`Uploaded ${f.name}.`);
      } catch (e) {
        setError(`Uploading ${f.name} failed: ${errorText(e)}`);
      } finally {
        setUploads((u) => u.filter((x) => x.name !== name));
      }
    }
    void list.reload();
  };

  const download = async (name: string) => {
    try {
      const blob = await objects.download(container, name);
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = name.split('/').pop() ?? name;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    } catch (e) {
      setError(`Downloading ${name} failed: ${errorText(e)}`);
    }
  };

  const crumbs = prefix.split('/').filter(Boolean);
  return (
    <>
      <PageHeader title={`Container ${container}`}>
        <button type="button" className="primary" onClick={() => fileInput.current?.click()}>
          Upload files
        </button>
        <input
          ref={fileInput}
          type="file"
          multiple
          hidden
          aria-label="Files to upload"
          data-testid="object-upload"
          onChange={(e) => {
            if (e.target.files?.length) void uploadFiles(e.target.files);
            e.target.value = '';
          }}
        />
        <button type="button" onClick={() => setFolder(true)}>
          New folder
        </button>
        <label className="check">
          <input
            type="checkbox"
            checked={(wantPublic ?? pub.data) === true}
            disabled={pub.data === undefined}
            onChange={async (e) => {
              const on = e.target.checked;
              setWantPublic(on);
              await run(on ? 'Make public' : 'Make private', () => objects.setPublic(container, on), on ? `${container} is now public.` : `${container} is now private.`);
              await pub.reload();
              setWantPublic(null);
            }}
          />{' '}
          Public
        </label>
      </PageHeader>
      <nav aria-label="Folder" className="crumbs">
        <a href={href('objects')}>Containers</a> / <a href={href(pathTo(container, ''))}>{container}</a>
        {crumbs.map((c, i) => (
          <span key={i}>
            {' / '}
            <a href={href(pathTo(container, crumbs.slice(0, i + 1).join('/')))}>{c}</a>
          </span>
        ))}
      </nav>
      {uploads.map((u) => (
        <ProgressBar key={u.name} label={`Uploading ${u.name}`} value={u.loaded} max={u.total} />
      ))}
      <ErrorBox error={error ?? list.error} onDismiss={error ? () => setError(null) : undefined} />
      {list.loading && !list.data ? <Spinner /> : null}
      <Table<Entry>
        caption="Objects"
        rows={list.data}
        rowKey={(e) => ('subdir' in e ? `d:${e.subdir}` : e.name)}
        empty="This folder is empty."
        columns={[
          {
            label: 'Name',
            render: (e) =>
              'subdir' in e ? (
                <a href={href(pathTo(container, e.subdir))}>
                  <FolderIcon /> {e.subdir.slice(prefix.length)}
                </a>
              ) : (
                e.name.slice(prefix.length)
              ),
          },
          { label: 'Size', render: (e) => ('subdir' in e ? '—' : fmtBytes(e.bytes)) },
          { label: 'Type', render: (e) => ('subdir' in e ? 'folder' : e.content_type) },
          { label: 'Modified', render: (e) => ('subdir' in e ? '—' : fmtTime(e.last_modified)) },
          {
            label: 'Actions',
            render: (e) =>
              'subdir' in e ? null : (
                <div className="button-row">
                  <button type="button" onClick={() => void download(e.name)}>
                    Download
                  </button>
                  <button
                    type="button"
                    onClick={async () => {
                      try {
                        setTemp(await objects.tempUrl(container, e.name, 3600));
                      } catch (err) {
                        setError(`Making a temporary URL failed: ${errorText(err)}`);
                      }
                    }}
                  >
                    Temp URL
                  </button>
                  <button type="button" className="danger" onClick={() => setDel(e.name)}>
                    Delete
                  </button>
                </div>
              ),
          },
        ]}
      />
      {pub.data && list.data?.some((e) => !('subdir' in e)) && <p className="muted">Public objects are readable at {objects.publicUrl(container, '…')}</p>}
      {folder && (
        <FormDialog
          title="New folder"
          intro={<p className="muted">Folders are name prefixes; the folder shows once an object is uploaded into it.</p>}
          fields={[{ name: 'name', label: 'Folder name', required: true }]}
          submitLabel="Open folder"
          onSubmit={async (v) => go(pathTo(container, prefix + String(v.name).replace(/^\/+|\/+$/g, '')))}
          onClose={() => setFolder(false)}
        />
      )}
      {del && (
        <Confirm
          title={`Delete ${del}?`}
          message="This cannot be undone."
          onConfirm={async () => {
            await objects.remove(container, del);
            void list.reload();
          }}
          onClose={() => setDel(null)}
        />
      )}
      {temp && (
        <Modal title="Temporary URL (valid 1 hour)" onClose={() => setTemp(null)}>
          <label htmlFor="temp-url">Anyone with this link can download the object for an hour.</label>
          <input id="temp-url" readOnly value={temp} onFocus={(e) => e.target.select()} className="wide" />
          <div className="actions">
            <button type="button" className="primary" onClick={() => void navigator.clipboard?.writeText(temp).then(() => notify('Copied.'))}>
              Copy
            </button>
          </div>
        </Modal>
      )}
    </>
  );
}
