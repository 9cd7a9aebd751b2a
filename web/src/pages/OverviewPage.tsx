import type { CapabilityResource } from '../../../src/contract/capabilities.ts';
import { Badge } from '../components/Badge.tsx';
import { Panel } from '../components/Panel.tsx';
import { QueryView } from '../components/QueryView.tsx';
import { CAP, mayDo, missingPermission } from '../permissions.ts';
import { SECURITY_EVENTS, type Capability, type SecurityEventsResult } from '../queries.ts';
import { useSession } from '../session.tsx';
import { formatTime, relativeTime } from '../time.ts';
import { useQuery } from '../use-graphql.ts';

/** What each checked resource lets a user do in meshid, for the can-i matrix: one for every resource the list checks. */
const MEANING: Record<CapabilityResource, string> = {
  'usertokens.meshid.io': 'issue user tokens',
  'signingkeys.meshid.io': 'see and rotate token signing keys',
  'revocations.meshid.io': 'revoke user tokens',
  'certificateauthorities.meshid.io': 'see and rotate the workload CA',
  'recoveries.meshid.io': 'see the recovery plan',
  'registries.meshid.io': 'manage registry credentials',
  namespaces: 'see every namespace',
  pods: 'see workloads in every namespace',
  events: 'read the security audit trail',
};

/** The answer comes from the server, which may check a resource this dashboard does not know yet. */
const meaning = (resource: string): string => (MEANING as Partial<Record<string, string>>)[resource] ?? '';

const resourceName = (c: Capability): string => (c.group ? `${c.resource}.${c.group}` : c.resource);

/** Columns in kubectl's order of reach: reading before writing. */
const VERB_ORDER = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];
const verbRank = (verb: string): number => (VERB_ORDER.includes(verb) ? VERB_ORDER.indexOf(verb) : VERB_ORDER.length);

export function OverviewPage() {
  return (
    <div className="grid-overview">
      <WhoAmI />
      <CanIMatrix />
      <RecentEvents />
    </div>
  );
}

function WhoAmI() {
  const { me } = useSession();
  return (
    <Panel title="Who am I" description="As Kubernetes sees you: meshid impersonates this user and these groups on every call.">
      <dl className="facts">
        <dt>User</dt>
        <dd data-testid="whoami-name">{me.name}</dd>
        <dt>Groups</dt>
        <dd>{me.groups.length > 0 ? me.groups.join(', ') : '(none)'}</dd>
        {me.uid ? (
          <>
            <dt>UID</dt>
            <dd>
              <code>{me.uid}</code>
            </dd>
          </>
        ) : null}
        <dt>Session</dt>
        <dd>{me.anonymous ? 'anonymous mode: the server acts as itself' : me.expiresAt ? `until ${formatTime(me.expiresAt)} (${relativeTime(me.expiresAt, Date.now())})` : 'user token (no session expiry)'}</dd>
      </dl>
    </Panel>
  );
}

function CanIMatrix() {
  const { me } = useSession();
  const verbs = [...new Set(me.capabilities.map((c) => c.verb))].sort((a, b) => verbRank(a) - verbRank(b));
  const resources = [...new Set(me.capabilities.map(resourceName))];
  const cell = (resource: string, verb: string): Capability | undefined => me.capabilities.find((c) => resourceName(c) === resource && c.verb === verb);
  return (
    <Panel title="Can I" description="Asked of Kubernetes RBAC (SubjectAccessReview) when you logged in, cluster-wide.">
      <table className="table matrix" aria-label="Capabilities">
        <thead>
          <tr>
            <th scope="col">Resource</th>
            {verbs.map((verb) => (
              <th scope="col" key={verb}>
                {verb}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {resources.map((resource) => (
            <tr key={resource}>
              <th scope="row">
                <code>{resource}</code>
                <span className="cell-note">{meaning(resource)}</span>
              </th>
              {verbs.map((verb) => {
                const c = cell(resource, verb);
                return <td key={verb}>{c ? <Badge tone={c.allowed ? 'ok' : 'bad'}>{c.allowed ? 'yes' : 'no'}</Badge> : <span className="muted" title="not checked">—</span>}</td>;
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </Panel>
  );
}

function RecentEvents() {
  const { me } = useSession();
  const allowed = mayDo(me, CAP.listEvents);
  const events = useQuery<SecurityEventsResult>(SECURITY_EVENTS, { limit: 15 }, allowed);
  return (
    <Panel title="Recent security events" description="Logins, tokens, rotations and recovery runs, newest first (Kubernetes Events).">
      <QueryView state={events} missing={missingPermission(me, CAP.listEvents)}>
        {({ securityEvents }) =>
          securityEvents.length === 0 ? (
            <p className="muted">No security events yet.</p>
          ) : (
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Event</th>
                  <th scope="col">User</th>
                  <th scope="col">What happened</th>
                </tr>
              </thead>
              <tbody>
                {securityEvents.map((event, i) => (
                  <tr key={`${event.time}-${i}`}>
                    <td className="nowrap" title={formatTime(event.time)}>
                      {relativeTime(event.time, Date.now())}
                    </td>
                    <td>
                      <Badge tone={event.type === 'Warning' ? 'warn' : 'info'}>{event.reason}</Badge>
                    </td>
                    <td>{event.user}</td>
                    <td>{event.message}</td>
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
