import { createContext, Suspense, useContext, useEffect, useRef, useState, type FormEvent } from 'react';
import { errorText, getSession, hasService, onSessionChange, setSession, type Named, type Session } from './api/client.js';
import { myProjects, probeIdentityAdmin, signIn, signOut, switchProject } from './api/identity.js';
import { compute } from './api/compute.js';
import { PAGES, type Capability, type PageDef } from './pages/registry.js';
import { go, href, useHashPath } from './router.js';
import { ErrorBox, NotifyProvider, Spinner } from './ui/kit.js';

export type Capabilities = Record<Capability, boolean>;
interface AppState {
  session: Session;
  caps: Capabilities;
}
const AppCtx = createContext<AppState | null>(null);
/** The signed-in session and what the user may do; pages only render inside it. */
export function useApp(): AppState {
  const v = useContext(AppCtx);
  if (!v) throw new Error('useApp outside the signed-in app');
  return v;
}

export function App() {
  const [session, setS] = useState<Session | null>(getSession);
  const [reason, setReason] = useState<string | null>(null);
  useEffect(
    () =>
      onSessionChange((s, why) => {
        setS(s);
        if (!s && why) setReason(why);
        if (s) setReason(null);
      }),
    [],
  );
  // Leave before the token expires rather than fail the next call.
  useEffect(() => {
    if (!session) return;
    const ms = Date.parse(session.expiresAt) - Date.now() - 5000;
    const t = setTimeout(() => setSession(null, 'Your session has expired. Please sign in again.'), Math.max(ms, 0));
    return () => clearTimeout(t);
  }, [session]);
  return <NotifyProvider>{session ? <Shell key={`${session.token}`} session={session} /> : <SignIn reason={reason} />}</NotifyProvider>;
}

function SignIn({ reason }: { reason: string | null }) {
  const [domain, setDomain] = useState('Default');
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const userRef = useRef<HTMLInputElement>(null);
  useEffect(() => userRef.current?.focus(), []);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(domain.trim(), user.trim(), password);
      if (!location.hash || location.hash === '#/') go('overview');
    } catch (err) {
      setError(errorText(err).replace(/^The request you have made requires authentication\.?$/, 'The user name or password is not correct.'));
      setBusy(false);
    }
  };
  return (
    <main className="signin">
      <form onSubmit={submit} aria-labelledby="signin-title">
        <h1 id="signin-title">
          <span className="logo" aria-hidden="true">
            ☁
          </span>{' '}
          Stratus
        </h1>
        {reason && (
          <p className="alert info" role="status">
            {reason}
          </p>
        )}
        <div className="field">
          <label htmlFor="si-domain">Domain</label>
          <input id="si-domain" name="domain" value={domain} onChange={(e) => setDomain(e.target.value)} required autoComplete="organization" />
        </div>
        <div className="field">
          <label htmlFor="si-user">User name</label>
          <input id="si-user" ref={userRef} name="username" value={user} onChange={(e) => setUser(e.target.value)} required autoComplete="username" />
        </div>
        <div className="field">
          <label htmlFor="si-password">Password</label>
          <input id="si-password" name="password" type="password" value={password} onChange={(e) => setPassword(e.target.value)} required autoComplete="current-password" />
        </div>
        <ErrorBox error={error} />
        <button type="submit" className="primary wide" disabled={busy} aria-busy={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

function visiblePages(session: Session, caps: Capabilities): PageDef[] {
  return PAGES.filter((p) => (p.services.length === 0 || hasService(p.services, session)) && (!p.needs || caps[p.needs]));
}

function Shell({ session }: { session: Session }) {
  const [caps, setCaps] = useState<Capabilities | null>(null);
  const [projects, setProjects] = useState<Named[]>([]);
  const [navOpen, setNavOpen] = useState(false);
  const [switchError, setSwitchError] = useState<string | null>(null);
  const path = useHashPath();

  // What this user may administer is found by asking the APIs (policy is
  // the server's business; the dashboard only hides what would fail).
  useEffect(() => {
    let live = true;
    void Promise.all([
      probeIdentityAdmin().catch(() => false),
      hasService(['compute'], session) ? compute.probeAdmin().catch(() => false) : Promise.resolve(false),
      myProjects().catch(() => [] as Named[]),
    ]).then(([identityAdmin, computeAdmin, ps]) => {
      if (!live) return;
      setCaps({ identityAdmin, computeAdmin });
      setProjects(ps);
    });
    return () => {
      live = false;
    };
  }, [session]);

  // Pages that need no capability render at once; admin pages wait for the probes.
  const pages = visiblePages(session, caps ?? { identityAdmin: false, computeAdmin: false });
  const page = pages.filter((p) => path === p.path || path.startsWith(`${p.path}/`)).sort((a, b) => b.path.length - a.path.length)[0];
  useEffect(() => {
    if (caps && !page) go('overview');
  }, [caps, page]);
  // Move focus to the new page's heading for keyboard and screen-reader users.
  useEffect(() => {
    setNavOpen(false);
    const t = setTimeout(() => document.getElementById('page-title')?.focus(), 50);
    return () => clearTimeout(t);
  }, [path]);

  const groups = [...new Set(pages.map((p) => p.group))];
  const rest = page ? path.slice(page.path.length).split('/').filter(Boolean) : [];
  return (
    <AppCtx.Provider value={{ session, caps: caps ?? { identityAdmin: false, computeAdmin: false } }}>
      <a href="#main" className="skip" onClick={(e) => (e.preventDefault(), document.getElementById('page-title')?.focus())}>
        Skip to content
      </a>
      <header className="topbar">
        <button type="button" className="menu-toggle" aria-expanded={navOpen} aria-controls="nav" onClick={() => setNavOpen(!navOpen)}>
          ☰ <span className="sr-only">Menu</span>
        </button>
        <a className="brand" href={href('overview')}>
          ☁ Stratus
        </a>
        <div className="project-switch">
          <label htmlFor="project-switch">Project</label>
          <select
            id="project-switch"
            value={session.project?.id ?? ''}
            onChange={async (e) => {
              setSwitchError(null);
              try {
                await switchProject(e.target.value);
              } catch (err) {
                setSwitchError(errorText(err));
              }
            }}
          >
            {session.project && !projects.some((p) => p.id === session.project!.id) && <option value={session.project.id}>{session.project.name}</option>}
            {projects.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
              </option>
            ))}
          </select>
        </div>
        <span className="who" title={`${session.user.name} (${session.user.domain.name})`}>
          {session.user.name}
        </span>
        <button type="button" onClick={() => void signOut()}>
          Sign out
        </button>
      </header>
      <ErrorBox error={switchError} onDismiss={() => setSwitchError(null)} />
      <div className="layout">
        <nav id="nav" className={navOpen ? 'open' : ''} aria-label="Main">
          {groups.map((g) => (
            <div key={g} className="nav-group">
              <h2>{g}</h2>
              <ul>
                {pages
                  .filter((p) => p.group === g)
                  .map((p) => (
                    <li key={p.path}>
                      <a href={href(p.path)} aria-current={page?.path === p.path ? 'page' : undefined}>
                        {p.title}
                      </a>
                    </li>
                  ))}
              </ul>
            </div>
          ))}
        </nav>
        <main id="main">
          {!page && !caps && <Spinner />}
          {page && (
            <Suspense fallback={<Spinner />}>
              <page.component key={page.path} rest={rest} />
            </Suspense>
          )}
        </main>
      </div>
    </AppCtx.Provider>
  );
}
