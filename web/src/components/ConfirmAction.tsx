import { useState, type ReactNode } from 'react';
import { GuardedButton } from './GuardedButton.tsx';

/**
 * A consequential action (a key or CA rotation) in two steps: the first click says what will
 * happen, the second does it. Keyboard users get the same two buttons in order.
 */
export function ConfirmAction({ capability, label, consequence, busy, onConfirm }: { capability: string; label: string; consequence: ReactNode; busy: boolean; onConfirm: () => void }) {
  const [asking, setAsking] = useState(false);
  if (!asking) {
    return (
      <GuardedButton capability={capability} variant="secondary" busy={busy} onClick={() => setAsking(true)}>
        {busy ? 'Working…' : label}
      </GuardedButton>
    );
  }
  return (
    <div className="confirm" role="group" aria-label={`Confirm: ${label}`}>
      <p>{consequence}</p>
      <div className="button-row">
        <button
          type="button"
          className="btn btn-danger"
          autoFocus
          onClick={() => {
            setAsking(false);
            onConfirm();
          }}
        >
          Yes, {label.toLowerCase()}
        </button>
        <button type="button" className="btn btn-secondary" onClick={() => setAsking(false)}>
          Cancel
        </button>
      </div>
    </div>
  );
}
