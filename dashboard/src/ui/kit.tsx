/**
 * The dashboard's small component kit: accessible building blocks (labelled
 * fields, native <dialog> modals with focus handling, tables that become
 * cards on phones, alerts for errors, progress bars) — no component library.
 */
import { createContext, useCallback, useContext, useEffect, useId, useRef, useState, type ReactNode } from 'react';
import { errorText } from '../api/client.js';

export interface AsyncState<T> {
  data: T | undefined;
  error: string | null;
  loading: boolean;
  reload: () => Promise<void>;
}

/**
 * Runs `fn` now, when `deps` change, and every `pollMs` while the page is
 * visible (live status without a refresh button). Errors of a poll keep the
 * last good data and show the message.
 */
export function useAsync<T>(fn: () => Promise<T>, deps: unknown[], pollMs = 0): AsyncState<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const gen = useRef(0);
  const run = useCallback(async () => {
    const my = ++gen.current;
    try {
      const v = await fnRef.current();
      if (my !== gen.current) return;
      setData(v);
      setError(null);
    } catch (e) {
      if (my !== gen.current) return;
      setError(errorText(e));
    } finally {
      if (my === gen.current) setLoading(false);
    }
  }, []);
  useEffect(() => {
    setLoading(true);
    void run();
    if (!pollMs) return () => void gen.current++;
    const t = setInterval(() => {
      if (document.visibilityState === 'visible') void run();
    }, pollMs);
    return () => {
      clearInterval(t);
      gen.current++;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, pollMs, run]);
  return { data, error, loading, reload: run };
}

export function ErrorBox({ error, onDismiss }: { error: string | null | undefined; onDismiss?: () => void }) {
  if (!error) return null;
  return (
    <div className="alert error" role="alert">
      <span>{error}</span>
      {onDismiss && (
        <button type="button" className="link" onClick={onDismiss} aria-label="Dismiss error">
          ✕
        </button>
      )}
    </div>
  );
}

export function Spinner({ label = 'Loading…' }: { label?: string }) {
  return (
    <p className="muted" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> {label}
    </p>
  );
}

/** A modal dialog on the native <dialog> element: focus moves in, Escape closes, focus returns. */
export function Modal({ title, onClose, children, wide }: { title: string; onClose: () => void; children: ReactNode; wide?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useId();
  useEffect(() => {
    const d = ref.current!;
    const prev = document.activeElement as HTMLElement | null;
    if (!d.open) d.showModal();
    // Start on the first field rather than the close button.
    const first = d.querySelector<HTMLElement>('.modal-body :is(input:not([type=hidden]):not([hidden]), select, textarea):not([disabled])');
    first?.focus();
    return () => {
      d.close();
      prev?.focus?.();
    };
  }, []);
  return (
    <dialog
      ref={ref}
      className={wide ? 'modal wide' : 'modal'}
      aria-labelledby={id}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      <header>
        <h2 id={id}>{title}</h2>
        <button type="button" className="link close" onClick={onClose} aria-label="Close">
          ✕
        </button>
      </header>
      <div className="modal-body">{children}</div>
    </dialog>
  );
}

export interface FieldSpec {
  name: string;
  label: string;
  type?: 'text' | 'password' | 'number' | 'textarea' | 'select' | 'checkbox' | 'email' | 'datetime-local';
  required?: boolean;
  options?: { value: string; label: string }[];
  placeholder?: string;
  help?: string;
  initial?: string | boolean;
  min?: number;
}
export type FormValues = Record<string, string | boolean>;

export function Field({ spec, value, onChange }: { spec: FieldSpec; value: string | boolean; onChange: (v: string | boolean) => void }) {
  const id = useId();
  const help = spec.help ? <small id={`${id}-help`}>{spec.help}</small> : null;
  const common = { id, name: spec.name, required: spec.required, 'aria-describedby': spec.help ? `${id}-help` : undefined };
  if (spec.type === 'checkbox')
    return (
      <div className="field check">
        <input type="checkbox" {...common} checked={value === true} onChange={(e) => onChange(e.target.checked)} />
        <label htmlFor={id}>{spec.label}</label>
        {help}
      </div>
    );
  return (
    <div className="field">
      <label htmlFor={id}>
        {spec.label}
        {spec.required ? ' *' : ''}
      </label>
      {spec.type === 'textarea' ? (
        <textarea {...common} rows={5} value={String(value)} placeholder={spec.placeholder} onChange={(e) => onChange(e.target.value)} />
      ) : spec.type === 'select' ? (
        <select {...common} value={String(value)} onChange={(e) => onChange(e.target.value)}>
          {!spec.required && <option value="">—</option>}
          {spec.options?.map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </select>
      ) : (
        <input {...common} type={spec.type ?? 'text'} min={spec.min} value={String(value)} placeholder={spec.placeholder} onChange={(e) => onChange(e.target.value)} />
      )}
      {help}
    </div>
  );
}

export function initialValues(fields: FieldSpec[]): FormValues {
  const v: FormValues = {};
  for (const f of fields) v[f.name] = f.initial ?? (f.type === 'checkbox' ? false : f.type === 'select' && f.required ? (f.options?.[0]?.value ?? '') : '');
  return v;
}

/**
 * A dialog with a form: submits, shows progress while the call runs, shows
 * the API's error in words and keeps the dialog open so nothing typed is lost.
 */
export function FormDialog({
  title,
  fields,
  submitLabel = 'Save',
  onSubmit,
  onClose,
  intro,
  danger,
}: {
  title: string;
  fields: FieldSpec[];
  submitLabel?: string;
  onSubmit: (v: FormValues) => Promise<unknown>;
  onClose: () => void;
  intro?: ReactNode;
  danger?: boolean;
}) {
  const [values, setValues] = useState<FormValues>(() => initialValues(fields));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  return (
    <Modal title={title} onClose={onClose}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          try {
            await onSubmit(values);
            onClose();
          } catch (err) {
            setError(errorText(err));
            setBusy(false);
          }
        }}
      >
        {intro}
        {fields.map((f) => (
          <Field key={f.name} spec={f} value={values[f.name] ?? ''} onChange={(v) => setValues((o) => ({ ...o, [f.name]: v }))} />
        ))}
        <ErrorBox error={error} />
        <div className="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className={danger ? 'danger' : 'primary'} disabled={busy} aria-busy={busy}>
            {busy ? `${submitLabel}…` : submitLabel}
          </button>
        </div>
      </form>
    </Modal>
  );
}

export function Confirm({ title, message, label = 'Delete', onConfirm, onClose }: { title: string; message: ReactNode; label?: string; onConfirm: () => Promise<unknown>; onClose: () => void }) {
  return <FormDialog title={title} fields={[]} intro={<p>{message}</p>} submitLabel={label} danger onSubmit={onConfirm} onClose={onClose} />;
}

export interface Column<T> {
  label: string;
  render: (row: T) => ReactNode;
  className?: string;
}

/** A table; at phone widths each row becomes a card with labelled cells (CSS, using data-label). */
export function Table<T>({ columns, rows, rowKey, empty = 'Nothing here yet.', caption }: { columns: Column<T>[]; rows: T[] | undefined; rowKey: (r: T) => string; empty?: string; caption: string }) {
  if (!rows) return null;
  if (rows.length === 0) return <p className="muted empty">{empty}</p>;
  return (
    <div className="table-wrap">
      <table className="data">
        <caption className="sr-only">{caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c.label} scope="col">
                {c.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={rowKey(r)}>
              {columns.map((c) => (
                <td key={c.label} data-label={c.label} className={c.className}>
                  {c.render(r)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** A quota bar drawn in SVG: used / limit, with the numbers in text for screen readers. */
export function QuotaBar({ label, used, limit, unit = '' }: { label: string; used: number; limit: number; unit?: string }) {
  const unlimited = limit < 0;
  const frac = unlimited || limit === 0 ? (used > 0 && limit === 0 ? 1 : 0) : Math.min(1, used / limit);
  const tone = frac >= 0.9 ? 'bad' : frac >= 0.7 ? 'warn' : 'ok';
  const text = `${used}${unit} of ${unlimited ? 'unlimited' : `${limit}${unit}`} used`;
  return (
    <figure className="quota">
      <figcaption>
        <strong>{label}</strong> <span className="muted">{text}</span>
      </figcaption>
      <svg viewBox="0 0 100 8" preserveAspectRatio="none" role="img" aria-label={`${label}: ${text}`}>
        <rect x="0" y="0" width="100" height="8" rx="2" className="track" />
        <rect x="0" y="0" width={Math.max(frac * 100, used > 0 ? 1 : 0)} height="8" rx="2" className={`fill ${tone}`} />
      </svg>
    </figure>
  );
}

export function ProgressBar({ value, max, label }: { value: number; max: number; label: string }) {
  const pct = max > 0 ? Math.round((value / max) * 100) : 0;
  return (
    <div className="progress">
      <label>
        {label}: {pct}%
        <progress value={value} max={max || 1} aria-valuetext={`${pct}%`} />
      </label>
    </div>
  );
}

export function Badge({ tone, children }: { tone: 'ok' | 'busy' | 'bad' | 'off'; children: ReactNode }) {
  return (
    <span className={`badge ${tone}`}>
      {tone === 'busy' && <span className="spinner small" aria-hidden="true" />}
      {children}
    </span>
  );
}

// Notifications for finished (or failed) actions, announced to screen readers.
interface Note {
  id: number;
  text: string;
  kind: 'ok' | 'error';
}
const NotifyCtx = createContext<(text: string, kind?: 'ok' | 'error') => void>(() => undefined);
export const useNotify = () => useContext(NotifyCtx);

export function NotifyProvider({ children }: { children: ReactNode }) {
  const [notes, setNotes] = useState<Note[]>([]);
  const seq = useRef(0);
  const notify = useCallback((text: string, kind: 'ok' | 'error' = 'ok') => {
    const id = ++seq.current;
    setNotes((n) => [...n, { id, text, kind }]);
    setTimeout(() => setNotes((n) => n.filter((x) => x.id !== id)), kind === 'error' ? 12000 : 5000);
  }, []);
  return (
    <NotifyCtx.Provider value={notify}>
      {children}
      <div className="toasts" role="status" aria-live="polite">
        {notes.map((n) => (
          <div key={n.id} className={`toast ${n.kind}`} role={n.kind === 'error' ? 'alert' : undefined}>
            {n.text}
            <button type="button" className="link" aria-label="Dismiss" onClick={() => setNotes((x) => x.filter((y) => y.id !== n.id))}>
              ✕
            </button>
          </div>
        ))}
      </div>
    </NotifyCtx.Provider>
  );
}

/** Runs an API call from a button: notifies success or the error in words. */
export function useAction() {
  const notify = useNotify();
  return useCallback(
    async (what: string, fn: () => Promise<unknown>, done?: string) => {
      try {
        await fn();
        notify(done ?? `${what}: done.`);
        return true;
      } catch (e) {
        notify(`${what} failed: ${errorText(e)}`, 'error');
        return false;
      }
    },
    [notify],
  );
}

export function fmtBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${u[i]}`;
}

export function fmtTime(s: string | null | undefined): string {
  if (!s) return '—';
  const d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : `${s}Z`);
  return Number.isNaN(d.getTime()) ? s : d.toLocaleString();
}

export function PageHeader({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="page-header">
      <h1 tabIndex={-1} id="page-title">
        {title}
      </h1>
      <div className="toolbar">{children}</div>
    </div>
  );
}

export function Tabs<K extends string>({ tabs, current, onChange, label }: { tabs: { key: K; label: string }[]; current: K; onChange: (k: K) => void; label: string }) {
  return (
    <div
      role="tablist"
      aria-label={label}
      className="tabs"
      onKeyDown={(e) => {
        // Arrow keys move between tabs (the WAI-ARIA tabs pattern).
        const i = tabs.findIndex((t) => t.key === current);
        const next = e.key === 'ArrowRight' ? (i + 1) % tabs.length : e.key === 'ArrowLeft' ? (i - 1 + tabs.length) % tabs.length : e.key === 'Home' ? 0 : e.key === 'End' ? tabs.length - 1 : -1;
        if (next < 0) return;
        e.preventDefault();
        onChange(tabs[next]!.key);
        (e.currentTarget.children[next] as HTMLElement | undefined)?.focus();
      }}
    >
      {tabs.map((t) => (
        <button
          key={t.key}
          role="tab"
          type="button"
          aria-selected={current === t.key}
          tabIndex={current === t.key ? 0 : -1}
          className={current === t.key ? 'active' : ''}
          onClick={() => onChange(t.key)}
        >
          {t.label}
        </button>
      ))}
    </div>
  );
}

/**
 * A disclosure menu of actions (native <details>): keyboard-operable, closes
 * when an item is chosen or on Escape, returning focus to its button.
 */
export function Menu({ label, children }: { label: string; children: ReactNode }) {
  const ref = useRef<HTMLDetailsElement>(null);
  const close = () => {
    if (ref.current) ref.current.open = false;
    ref.current?.querySelector('summary')?.focus();
  };
  return (
    <details
      ref={ref}
      className="menu"
      onKeyDown={(e) => {
        if (e.key === 'Escape' && ref.current?.open) {
          e.stopPropagation();
          close();
        }
      }}
    >
      <summary aria-label={label}>Actions</summary>
      <div className="menu-items" onClick={(e) => (e.target as HTMLElement).closest('button') && close()}>
        {children}
      </div>
    </details>
  );
}
