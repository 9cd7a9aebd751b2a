import { useState } from 'react';
import { logOut } from '../api.ts';
import { useSession } from '../session.tsx';
import { formatTime } from '../time.ts';

/** Who is signed in, in which groups, until when; and the way out. */
export function Header({ onLoggedOut }: { onLoggedOut: () => void }) {
  const { me } = useSession();
  const [leaving, setLeaving] = useState(false);
  const leave = (): void => {
    setLeaving(true);
    void logOut().finally(onLoggedOut);
  };
  return (
    <header className="topbar">
      <div className="brand">
        <img src="/favicon.svg" alt="" width={24} height={24} />
        <span>meshid</span>
      </div>
      <div className="whoami" aria-label="Signed in user">
        <span className="user-name" data-testid="user-name">
          {me.name}
        </span>
        <ul className="groups" aria-label="Groups">
          {me.groups.map((group) => (
            <li key={group} className="group-chip">
              {group}
            </li>
          ))}
        </ul>
        {me.expiresAt ? <span className="session-expiry">session until {formatTime(me.expiresAt)}</span> : null}
        {me.anonymous ? null : (
          <button type="button" className="btn btn-secondary" onClick={leave} disabled={leaving}>
            Log out
          </button>
        )}
      </div>
    </header>
  );
}
