import { useId, useState, type FormEvent, type ReactNode } from 'react';
import { ApiError, logIn } from '../api.ts';

const MESHID_LOGIN = <code>meshid login</code>;

/** What a refused wrapped token means for the person holding it. */
function explain(error: ApiError): ReactNode {
  switch (error.code) {
    case 'wrapped-token-invalid':
      return /expired/i.test(error.message) ? (
        <>This token has expired: a wrapped token works for 10 seconds only. Run {MESHID_LOGIN} again and paste the new token right away.</>
      ) : (
        <>This is not a valid meshid wrapped token (or it is from another meshid). Copy the whole line that {MESHID_LOGIN} prints.</>
      );
    case 'wrapped-token-replayed':
      return <>This token was already used: each wrapped token works once. Run {MESHID_LOGIN} again for a new one.</>;
    case 'auth-disabled':
      return 'This meshid runs in anonymous mode: there is nothing to log in to.';
    case 'NETWORK':
      return 'The meshid server did not answer. Is it running?';
    default:
      return error.message;
  }
}

/** The way in without `meshid dashboard`: paste the wrapped token that `meshid login` prints. */
export function LoginWindow({ notice, onLoggedIn }: { notice?: string | undefined; onLoggedIn: () => void }) {
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | undefined>();
  const hint = useId();
  const problem = useId();

  const submit = (event: FormEvent): void => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    logIn(token.trim())
      .then(onLoggedIn)
      .catch((e: unknown) => {
        const failure = e instanceof ApiError ? e : new ApiError('CLIENT', String(e));
        // Anonymous mode needs no login: go straight in.
        if (failure.code === 'auth-disabled') onLoggedIn();
        else setError(failure);
      })
      .finally(() => setBusy(false));
  };

  return (
    <main className="center-screen">
      <form className="login-card" onSubmit={submit} aria-labelledby="login-title">
        <div className="brand brand-large">
          <img src="/favicon.svg" alt="" width={32} height={32} />
          <span>meshid</span>
        </div>
        <h1 id="login-title">Log in to the dashboard</h1>
        {notice ? <p className="note note-info">{notice}</p> : null}
        <label htmlFor="wrapped-token">Wrapped token</label>
        <textarea
          id="wrapped-token"
          name="wrapped-token"
          rows={4}
          spellCheck={false}
          autoComplete="off"
          required
          value={token}
          onChange={(e) => setToken(e.target.value)}
          aria-describedby={error ? `${hint} ${problem}` : hint}
          aria-invalid={error ? true : undefined}
        />
        <p id={hint} className="hint">
          Run <code>meshid login</code> and paste the token it prints (it works once, within 10 seconds). <code>meshid dashboard</code> logs you in
          directly.
        </p>
        {error ? (
          <p id={problem} className="note note-error" role="alert" data-code={error.code}>
            {explain(error)}
          </p>
        ) : null}
        <button type="submit" className="btn btn-primary btn-wide" disabled={busy || token.trim() === ''}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
      </form>
    </main>
  );
}
