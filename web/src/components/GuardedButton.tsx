import { useId, type ReactNode } from 'react';
import { missingPermission } from '../permissions.ts';
import { useSession } from '../session.tsx';
import { MissingPermission } from './ErrorNote.tsx';

export interface GuardedButtonProps {
  /** The capability key the action needs, e.g. `certificateauthorities.meshid.io/update`. */
  capability: string;
  onClick?: () => void;
  type?: 'button' | 'submit';
  variant?: 'primary' | 'secondary' | 'danger';
  busy?: boolean;
  children: ReactNode;
}

/**
 * A button for an action RBAC may refuse. When the login-time capabilities say no, it is
 * disabled and names the missing permission beside it, instead of failing after the click.
 */
export function GuardedButton({ capability, onClick, type = 'button', variant = 'primary', busy = false, children }: GuardedButtonProps) {
  const { me } = useSession();
  const missing = missingPermission(me, capability);
  const id = useId();
  return (
    <span className="guarded">
      <button type={type} className={`btn btn-${variant}`} disabled={missing !== undefined || busy} aria-describedby={missing ? id : undefined} aria-busy={busy || undefined} onClick={onClick}>
        {children}
      </button>
      {missing ? <MissingPermission permission={missing} id={id} /> : null}
    </span>
  );
}
