import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiError, answerError, graphql, hasSession, isUnauthenticated } from './api.ts';
import { ErrorNote } from './components/ErrorNote.tsx';
import { Header } from './components/Header.tsx';
import { Sidebar } from './components/Sidebar.tsx';
import { LoginWindow } from './pages/LoginWindow.tsx';
import { PAGES, pageFor } from './pages/pages.tsx';
import { ME, type Me, type MeResult } from './queries.ts';
import { Link, usePath } from './router.tsx';
import { SessionContext } from './session.tsx';

type Phase = { kind: 'checking' } | { kind: 'login'; notice?: string } | { kind: 'in'; me: Me } | { kind: 'failed'; error: ApiError };

export function App() {
  const [phase, setPhase] = useState<Phase>(hasSession() ? { kind: 'checking' } : { kind: 'login' });

  useEffect(() => {
    if (phase.kind !== 'checking') return;
    let current = true;
    graphql<MeResult>(ME)
      .then(({ data, errors }) => {
        if (!current) return;
        setPhase(data ? { kind: 'in', me: data.me } : { kind: 'failed', error: answerError(errors) ?? new ApiError('GRAPHQL', 'the server sent no data') });
      })
      .catch((error: unknown) => {
        if (!current) return;
        if (isUnauthenticated(error)) setPhase({ kind: 'login', notice: 'Your session has ended. Log in again.' });
        else setPhase({ kind: 'failed', error: error instanceof ApiError ? error : new ApiError('CLIENT', String(error)) });
      });
    return () => {
      current = false;
    };
  }, [phase.kind]);

  const lost = useCallback(() => setPhase({ kind: 'login', notice: 'Your session has ended. Log in again.' }), []);
  const check = useCallback(() => setPhase({ kind: 'checking' }), []);
  const loggedOut = useCallback(() => setPhase({ kind: 'login', notice: 'You are logged out.' }), []);

  switch (phase.kind) {
    case 'checking':
      return (
        <main className="center-screen" aria-busy="true">
          <p className="muted">Loading your session…</p>
        </main>
      );
    case 'login':
      return <LoginWindow notice={phase.notice} onLoggedIn={check} />;
    case 'failed':
      return (
        <main className="center-screen">
          <div className="login-card">
            <h1>The dashboard could not load</h1>
            <ErrorNote error={phase.error} />
            <button type="button" className="btn btn-primary" onClick={check}>
              Try again
            </button>
          </div>
        </main>
      );
    case 'in':
      return (
        <SessionContext.Provider value={{ me: phase.me, lost }}>
          <Shell onLoggedOut={loggedOut} />
        </SessionContext.Provider>
      );
  }
}

/** The signed-in layout: header, page navigation, and the current page. */
function Shell({ onLoggedOut }: { onLoggedOut: () => void }) {
  const path = usePath();
  const page = pageFor(path);
  const heading = useRef<HTMLHeadingElement>(null);
  const first = useRef(true);

  useEffect(() => {
    document.title = `${page?.title ?? 'Not found'} · meshid`;
    // After a navigation, keyboard and screen-reader users start at the new page's heading.
    if (first.current) first.current = false;
    else heading.current?.focus();
  }, [page]);

  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <Header onLoggedOut={onLoggedOut} />
      <Sidebar pages={PAGES} current={page?.path ?? ''} />
      <main id="main" className="content" tabIndex={-1}>
        <h1 ref={heading} tabIndex={-1}>
          {page?.title ?? 'Not found'}
        </h1>
        {page ? (
          <>
            <p className="page-lead">{page.lead}</p>
            <page.Component />
          </>
        ) : (
          <p>
            There is no page at <code>{path}</code>. Go to the <Link to="/" current={false}>overview</Link>.
          </p>
        )}
      </main>
    </div>
  );
}
