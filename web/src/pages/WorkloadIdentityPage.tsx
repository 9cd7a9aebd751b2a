import { useId, useState, type ReactNode } from 'react';
import { Badge, type Tone } from '../components/Badge.tsx';
import { ConfirmAction } from '../components/ConfirmAction.tsx';
import { ErrorNote } from '../components/ErrorNote.tsx';
import { ExpiryTimeline } from '../components/ExpiryTimeline.tsx';
import { Panel } from '../components/Panel.tsx';
import { QueryView } from '../components/QueryView.tsx';
import { CAP, mayDo, missingPermission } from '../permissions.ts';
import {
  CERTIFICATE_AUTHORITY,
  IDENTITIES,
  NAMESPACES,
  ROTATE_CA,
  WORKLOADS,
  type CertificateAuthority,
  type CertificateAuthorityResult,
  type IdentitiesResult,
  type NamespacesResult,
  type RotateCaResult,
  type WorkloadsResult,
} from '../queries.ts';
import { useSession } from '../session.tsx';
import { formatTime, relativeTime } from '../time.ts';
import { useMutation, useQuery } from '../use-graphql.ts';

const PHASE_TONE: Record<string, Tone> = { Running: 'ok', Succeeded: 'neutral', Pending: 'warn', Failed: 'bad' };

export function WorkloadIdentityPage() {
  const [namespace, setNamespace] = useState('');
  const variables = namespace ? { namespace } : {};
  return (
    <div className="stack">
      <CaPanel />
      <NamespacePicker value={namespace} onChange={setNamespace} />
      <IdentitiesPanel variables={variables} />
      <WorkloadsPanel variables={variables} />
    </div>
  );
}

function CaPanel() {
  const { me } = useSession();
  const ca = useQuery<CertificateAuthorityResult>(CERTIFICATE_AUTHORITY, {}, mayDo(me, CAP.readCa));
  const [rotate, rotating] = useMutation<RotateCaResult>(ROTATE_CA);
  return (
    <Panel
      title="Certificate authority"
      description="Signs workload certificates for spiffe://<trust-domain>/ns/<ns>/sa/<sa>; its roots go to ConfigMap istio-ca-root-cert in every namespace."
      actions={
        <ConfirmAction
          capability={CAP.rotateCa}
          label="Rotate CA"
          busy={rotating.status === 'running'}
          consequence="A new root is announced in the trust bundle first; it signs once every namespace trusts it, and the old root is dropped after the longest certificate lifetime. No pod restarts."
          onConfirm={() => void rotate().then((done) => done && ca.reload())}
        />
      }
    >
      {rotating.status === 'failed' ? <ErrorNote error={rotating.error} /> : null}
      <QueryView state={ca} missing={missingPermission(me, CAP.readCa)}>{({ certificateAuthority }) => <CaDetails ca={certificateAuthority} />}</QueryView>
    </Panel>
  );
}

function CaDetails({ ca }: { ca: CertificateAuthority }) {
  const now = Date.now();
  const rotatingNow = ca.newRootSignsAt !== null || ca.oldRootsDroppedAt !== null;
  return (
    <>
      {ca.error ? <p className="note note-error">{ca.error}</p> : null}
      <dl className="facts">
        <dt>Mode</dt>
        <dd>
          <Badge tone="info">{ca.mode}</Badge>
        </dd>
        <dt>Signing root</dt>
        <dd>
          <code className="fingerprint">{ca.rootFingerprint}</code>
        </dd>
        <dt>Root expires</dt>
        <dd>
          {formatTime(ca.notAfter)} <span className="muted">({relativeTime(ca.notAfter, now)})</span>
        </dd>
        <dt>Rotation</dt>
        <dd>
          {rotatingNow ? (
            <>
              <Badge tone="warn">in progress</Badge>
              {ca.newRootSignsAt ? ` new root signs from ${formatTime(ca.newRootSignsAt)};` : ''}
              {ca.oldRootsDroppedAt ? ` old roots dropped at ${formatTime(ca.oldRootsDroppedAt)}` : ''}
            </>
          ) : (
            <span className="muted">none pending</span>
          )}
        </dd>
      </dl>
      <h3>Trust bundle ({ca.trustBundle.length})</h3>
      <table className="table">
        <thead>
          <tr>
            <th scope="col">Subject</th>
            <th scope="col">Fingerprint</th>
            <th scope="col">Valid from</th>
            <th scope="col">Valid until</th>
            <th scope="col">Role</th>
          </tr>
        </thead>
        <tbody>
          {ca.trustBundle.map((root) => (
            <tr key={root.fingerprint}>
              <td>{root.subject}</td>
              <td>
                <code className="fingerprint" title={root.fingerprint}>
                  {root.fingerprint.length > 23 ? `${root.fingerprint.slice(0, 23)}…` : root.fingerprint}
                </code>
              </td>
              <td className="nowrap">{formatTime(root.notBefore)}</td>
              <td className="nowrap">{formatTime(root.notAfter)}</td>
              <td>{root.fingerprint === ca.rootFingerprint ? <Badge tone="ok">signing</Badge> : <Badge tone="neutral">trusted</Badge>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function NamespacePicker({ value, onChange }: { value: string; onChange: (value: string) => void }) {
  const namespaces = useQuery<NamespacesResult>(NAMESPACES);
  const id = useId();
  const names = namespaces.status === 'done' ? namespaces.data.namespaces.map((n) => n.name) : [];
  return (
    <div className="toolbar">
      <label htmlFor={id}>Namespace</label>
      <select id={id} value={value} onChange={(e) => onChange(e.target.value)}>
        <option value="">All namespaces I may see</option>
        {names.map((name) => (
          <option key={name} value={name}>
            {name}
          </option>
        ))}
      </select>
      {namespaces.status === 'failed' ? <ErrorNote error={namespaces.error} /> : null}
    </div>
  );
}

// Workloads and identities are not gated on the cluster-wide `pods/list` capability: the
// server answers for exactly the namespaces the caller may list pods in (alice: dev).
function IdentitiesPanel({ variables }: { variables: Record<string, unknown> }) {
  const identities = useQuery<IdentitiesResult>(IDENTITIES, variables);
  const now = Date.now();
  return (
    <Panel title="Certificate expiry" description="The latest certificate the CA issued per identity. The agent renews at about half the lifetime.">
      <QueryView state={identities}>
        {({ identities: list }) => (
          <>
            <ExpiryTimeline identities={list} now={now} />
            {list.length > 0 ? (
              <details className="details">
                <summary>As a table ({list.length})</summary>
                <table className="table">
                  <thead>
                    <tr>
                      <th scope="col">SPIFFE ID</th>
                      <th scope="col">Serial</th>
                      <th scope="col">Issued</th>
                      <th scope="col">Expires</th>
                    </tr>
                  </thead>
                  <tbody>
                    {list.map((identity) => (
                      <tr key={`${identity.spiffeId}-${identity.serial}`}>
                        <td>
                          <code>{identity.spiffeId}</code>
                        </td>
                        <td>
                          <code>{identity.serial.length > 16 ? `${identity.serial.slice(0, 16)}…` : identity.serial}</code>
                        </td>
                        <td className="nowrap">{formatTime(identity.issuedAt)}</td>
                        <td className="nowrap">
                          {formatTime(identity.notAfter)} <span className="muted">({relativeTime(identity.notAfter, now)})</span>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </details>
            ) : null}
          </>
        )}
      </QueryView>
    </Panel>
  );
}

function WorkloadsPanel({ variables }: { variables: Record<string, unknown> }) {
  const workloads = useQuery<WorkloadsResult>(WORKLOADS, variables);
  return (
    <Panel title="Workloads" description="Pods and the SPIFFE identity their service account proves to the CA.">
      <QueryView state={workloads}>
        {({ workloads: list }) =>
          list.length === 0 ? (
            <p className="muted">No pods in the namespaces you may see.</p>
          ) : (
            <table className="table" aria-label="Workloads">
              <thead>
                <tr>
                  <th scope="col">Namespace</th>
                  <th scope="col">Pod</th>
                  <th scope="col">Service account</th>
                  <th scope="col">SPIFFE ID</th>
                  <th scope="col">Phase</th>
                  <th scope="col">Node</th>
                </tr>
              </thead>
              <tbody>
                {list.map((w) => (
                  <tr key={`${w.namespace}/${w.name}`}>
                    <td className="nowrap">{w.namespace}</td>
                    <td className="nowrap">{w.name}</td>
                    <td className="nowrap">{w.serviceAccount}</td>
                    <td>
                      <code>{breakAfterSlashes(w.spiffeId)}</code>
                    </td>
                    <td>{w.phase ? <Badge tone={PHASE_TONE[w.phase] ?? 'neutral'}>{w.phase}</Badge> : '—'}</td>
                    <td className="nowrap">{w.node ?? '—'}</td>
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

/**
 * A SPIFFE ID may wrap only after its slashes, so a long one takes two lines at 1280 px and
 * leaves pod names whole, rather than pushing the Node column out of the panel. (The text,
 * and so copying it, is unchanged: <wbr> adds none.)
 */
function breakAfterSlashes(id: string): ReactNode[] {
  const scheme = id.startsWith(SPIFFE_SCHEME) ? SPIFFE_SCHEME : '';
  const parts = id.slice(scheme.length).split('/');
  return [scheme, ...parts.flatMap((part, i) => (i < parts.length - 1 ? [part, '/', <wbr key={i} />] : [part]))];
}
const SPIFFE_SCHEME = 'spiffe://';

