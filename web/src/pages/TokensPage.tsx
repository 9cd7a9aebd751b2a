import { useState, type FormEvent } from 'react';
import { Badge } from '../components/Badge.tsx';
import { ConfirmAction } from '../components/ConfirmAction.tsx';
import { ErrorNote } from '../components/ErrorNote.tsx';
import { Field } from '../components/Field.tsx';
import { GuardedButton } from '../components/GuardedButton.tsx';
import { Panel } from '../components/Panel.tsx';
import { QueryView } from '../components/QueryView.tsx';
import { CAP, mayDo, missingPermission } from '../permissions.ts';
import {
  GENERATE_USER_TOKEN,
  REVOKE_TOKEN,
  REVOKED_TOKENS,
  ROTATE_SIGNING_KEY,
  SIGNING_KEYS,
  type GenerateUserTokenResult,
  type IssuedUserToken,
  type RevokeTokenResult,
  type RevokedTokensResult,
  type RotateSigningKeyResult,
  type SigningKeysResult,
} from '../queries.ts';
import { useSession } from '../session.tsx';
import { formatTime, relativeTime } from '../time.ts';
import { useMutation, useQuery } from '../use-graphql.ts';

export function TokensPage() {
  const { me } = useSession();
  const revoked = useQuery<RevokedTokensResult>(REVOKED_TOKENS, {}, mayDo(me, CAP.listRevocations));
  const [revoke, revoking] = useMutation<RevokeTokenResult>(REVOKE_TOKEN);
  const revokeId = async (id: string): Promise<boolean> => {
    const done = await revoke({ id });
    if (done) revoked.reload();
    return done !== undefined;
  };
  return (
    <div className="grid-2">
      <IssueToken onRevoke={revokeId} revoking={revoking.status === 'running'} />
      <Panel title="Revoke a token" description="A revoked token is refused by every replica within seconds (the list lives in Secret user-token-revocations).">
        <RevokeForm onRevoke={revokeId} busy={revoking.status === 'running'} />
        {revoking.status === 'failed' ? <ErrorNote error={revoking.error} /> : null}
        {revoking.status === 'done' ? (
          <p className="note note-ok" role="status">
            Revoked <code>{revoking.data.revokeToken.id}</code>; {revoking.data.revokeToken.revokedTokens} token(s) are revoked in all.
          </p>
        ) : null}
        <h3>Revoked token IDs</h3>
        <QueryView state={revoked} missing={missingPermission(me, CAP.listRevocations)}>
          {({ revokedTokens }) =>
            revokedTokens.length === 0 ? (
              <p className="muted">No token has been revoked.</p>
            ) : (
              <ul className="id-list" aria-label="Revoked token IDs">
                {revokedTokens.map((id) => (
                  <li key={id}>
                    <code>{id}</code>
                  </li>
                ))}
              </ul>
            )
          }
        </QueryView>
      </Panel>
      <SigningKeys />
    </div>
  );
}

function IssueToken({ onRevoke, revoking }: { onRevoke: (id: string) => Promise<boolean>; revoking: boolean }) {
  const [name, setName] = useState('');
  const [groups, setGroups] = useState('');
  const [validFor, setValidFor] = useState('24h');
  const [issue, issuing, reset] = useMutation<GenerateUserTokenResult>(GENERATE_USER_TOKEN);
  const [revokedHere, setRevokedHere] = useState<string | undefined>();

  const submit = (event: FormEvent): void => {
    event.preventDefault();
    setRevokedHere(undefined);
    const list = groups
      .split(',')
      .map((g) => g.trim())
      .filter(Boolean);
    void issue({ name: name.trim(), groups: list, validFor: validFor.trim() });
  };

  return (
    <Panel title="Issue a user token" description="An RS256 token in Kuma's format, for a person or for automation. It is shown once.">
      <form className="form" onSubmit={submit}>
        <Field name="token-name" label="Name" value={name} onChange={setName} required hint="Becomes the token's user name in Kubernetes." />
        <Field name="token-groups" label="Groups" value={groups} onChange={setGroups} hint="Comma-separated, e.g. dev, ops." />
        <Field name="token-valid-for" label="Valid for" value={validFor} onChange={setValidFor} required hint="A duration such as 1h, 24h or 720h." />
        <div className="button-row">
          <GuardedButton capability={CAP.issueUserToken} type="submit" busy={issuing.status === 'running'}>
            Issue token
          </GuardedButton>
        </div>
      </form>
      {issuing.status === 'failed' ? <ErrorNote error={issuing.error} /> : null}
      {issuing.status === 'done' ? (
        <IssuedToken
          token={issuing.data.generateUserToken}
          revoked={revokedHere === issuing.data.generateUserToken.id}
          revoking={revoking}
          onRevoke={async (id) => {
            if (await onRevoke(id)) setRevokedHere(id);
          }}
          onDismiss={reset}
        />
      ) : null}
    </Panel>
  );
}

function IssuedToken({ token, revoked, revoking, onRevoke, onDismiss }: { token: IssuedUserToken; revoked: boolean; revoking: boolean; onRevoke: (id: string) => Promise<void>; onDismiss: () => void }) {
  const [copied, setCopied] = useState(false);
  const copy = (): void => {
    void navigator.clipboard
      ?.writeText(token.token)
      .then(() => setCopied(true))
      .catch(() => setCopied(false));
  };
  return (
    <div className="issued" aria-label="Issued token" role="region">
      <p className="note note-ok" role="status">
        Issued a token for <strong>{token.name}</strong>
        {token.groups.length > 0 ? ` (${token.groups.join(', ')})` : ''}, valid until {formatTime(token.expiresAt)}. Copy it now: it is not shown again.
      </p>
      <label htmlFor="issued-token">Token</label>
      <textarea id="issued-token" className="token-text" readOnly rows={4} value={token.token} spellCheck={false} />
      <dl className="facts compact">
        <dt>Token ID</dt>
        <dd>
          <code data-testid="issued-token-id">{token.id}</code>
        </dd>
      </dl>
      <div className="button-row">
        <button type="button" className="btn btn-secondary" onClick={copy}>
          {copied ? 'Copied' : 'Copy token'}
        </button>
        {revoked ? (
          <Badge tone="bad">revoked</Badge>
        ) : (
          <GuardedButton capability={CAP.revokeToken} variant="danger" busy={revoking} onClick={() => void onRevoke(token.id)}>
            Revoke this token
          </GuardedButton>
        )}
        <button type="button" className="btn btn-secondary" onClick={onDismiss}>
          Done
        </button>
      </div>
    </div>
  );
}

function RevokeForm({ onRevoke, busy }: { onRevoke: (id: string) => Promise<boolean>; busy: boolean }) {
  const [id, setId] = useState('');
  const submit = (event: FormEvent): void => {
    event.preventDefault();
    void onRevoke(id.trim()).then((ok) => {
      if (ok) setId('');
    });
  };
  return (
    <form className="form form-inline" onSubmit={submit}>
      <Field name="revoke-id" label="Token ID (jti)" value={id} onChange={setId} required hint="The jti claim of the token; meshid shows it when it issues one." />
      <div className="button-row">
        <GuardedButton capability={CAP.revokeToken} type="submit" variant="danger" busy={busy}>
          Revoke
        </GuardedButton>
      </div>
    </form>
  );
}

function SigningKeys() {
  const { me } = useSession();
  const keys = useQuery<SigningKeysResult>(SIGNING_KEYS, {}, mayDo(me, CAP.listSigningKeys));
  const [rotate, rotating] = useMutation<RotateSigningKeyResult>(ROTATE_SIGNING_KEY);
  const onRotate = (): void => {
    void rotate().then((done) => done && keys.reload());
  };
  return (
    <Panel
      title="Signing keys"
      description="Secrets user-token-signing-key-<serial>: the highest serial signs new tokens, every present key validates."
      actions={
        <ConfirmAction
          capability={CAP.rotateSigningKey}
          label="Rotate signing key"
          busy={rotating.status === 'running'}
          consequence="A new key with the next serial signs from now on. Tokens signed by older keys stay valid until those keys are deleted."
          onConfirm={onRotate}
        />
      }
    >
      {rotating.status === 'failed' ? <ErrorNote error={rotating.error} /> : null}
      <QueryView state={keys} missing={missingPermission(me, CAP.listSigningKeys)}>
        {({ signingKeys }) =>
          signingKeys.length === 0 ? (
            <p className="muted">No signing key: this meshid does not issue user tokens itself.</p>
          ) : (
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Serial</th>
                  <th scope="col">Created</th>
                  <th scope="col">Status</th>
                </tr>
              </thead>
              <tbody>
                {signingKeys.map((key) => (
                  <tr key={key.serial}>
                    <td>
                      <code>{key.serial}</code>
                    </td>
                    <td title={formatTime(key.createdAt)}>{key.createdAt ? relativeTime(key.createdAt, Date.now()) : '—'}</td>
                    <td>{key.active ? <Badge tone="ok">signs new tokens</Badge> : <Badge tone="neutral">validates only</Badge>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </QueryView>
    </Panel>
  );
}
