import { AuthenticationV1Api, CoreV1Api, type CoreV1Event, type KubeConfig } from '@kubernetes/client-node';
import { systemClock, type Clock, type Logger } from '../core/index.ts';

/** `source.component` of every event meshid records; the dashboard lists events by it. */
export const EVENT_SOURCE = 'meshid';
/** Who acted, on every security event. */
export const EVENT_USER_ANNOTATION = 'meshid.io/user';

export type SecurityReason =
  | 'Login'
  | 'TokenIssued'
  | 'TokenRevoked'
  | 'SigningKeyRotated'
  | 'CARotationStarted'
  | 'CAPluggedIn'
  | 'RegistryChanged'
  | 'RecoveryRun'
  /** The CA refused a node proxy's (or anyone's) request for another workload's certificate. */
  | 'NodeImpersonationRefused';

export interface SecurityEvent {
  reason: SecurityReason;
  user: string;
  message: string;
  type?: 'Normal' | 'Warning';
}

export interface RecordedEvent extends Required<SecurityEvent> {
  time: string;
  count: number;
}

/** A user's logins are written at most this often; repeats add to the next one's count. */
const REPEAT_WINDOW_MS = 60_000;
const MAX_TRACKED = 10_000;

/**
 * Which events may be folded into a count: logins, the one busy path, and refused
 * impersonations, which a misconfigured node proxy repeats with every retry. Issuing and
 * revoking tokens, rotations, registry changes and recovery runs are each the audit record
 * of one act, so every one of them is written.
 */
const FOLDED: ReadonlySet<SecurityReason> = new Set(['Login', 'NodeImpersonationRefused']);

export class LoginFolding {
  readonly #recent = new Map<string, { at: number; folded: number }>();

  /** The count to write `event` with at `now`, or undefined when it is folded into a later one. */
  admit(event: SecurityEvent, now: number): number | undefined {
    if (!FOLDED.has(event.reason)) return 1;
    const key = `${event.reason} ${event.user}`;
    const recent = this.#recent.get(key);
    if (recent && now - recent.at < REPEAT_WINDOW_MS) {
      recent.folded += 1;
      return undefined;
    }
    if (this.#recent.size >= MAX_TRACKED) this.#recent.clear();
    this.#recent.set(key, { at: now, folded: 0 });
    return 1 + (recent?.folded ?? 0);
  }
}

/**
 * Security events as Kubernetes Events in meshid's namespace: the audit trail the dashboard
 * shows, readable with `kubectl get events -n <ns> --field-selector source=meshid`.
 * Recording never fails the action it describes; a busy login path is folded into counts,
 * the way client-go's recorder folds repeats (`LoginFolding`).
 */
export class SecurityEvents {
  readonly #api: CoreV1Api;
  readonly #logins = new LoginFolding();

  constructor(
    kc: KubeConfig,
    private readonly namespace: string,
    private readonly log: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    this.#api = kc.makeApiClient(CoreV1Api);
  }

  record(event: SecurityEvent): void {
    const now = this.clock.now();
    const count = this.#logins.admit(event, now);
    if (count === undefined) return;
    void this.#write(event, now, count).catch((error: unknown) => this.log.warn({ err: error, reason: event.reason }, 'could not record a security event'));
  }

  /** For a short-lived process (the CLI): written before it returns, never failing the caller. */
  async recordNow(event: SecurityEvent): Promise<boolean> {
    try {
      await this.#write(event, this.clock.now(), 1);
      return true;
    } catch (error) {
      this.log.debug({ err: error, reason: event.reason }, 'could not record a security event');
      return false;
    }
  }

  async #write(event: SecurityEvent, now: number, count: number): Promise<void> {
    const time = new Date(now);
    const body: CoreV1Event = {
      metadata: { generateName: `meshid-${event.reason.toLowerCase()}-`, namespace: this.namespace, annotations: { [EVENT_USER_ANNOTATION]: event.user } },
      // The apiserver requires the object's namespace to match the event's, even for a Namespace.
      involvedObject: { apiVersion: 'v1', kind: 'Namespace', name: this.namespace, namespace: this.namespace },
      reason: event.reason,
      message: event.message,
      type: event.type ?? 'Normal',
      source: { component: EVENT_SOURCE },
      reportingComponent: EVENT_SOURCE,
      reportingInstance: EVENT_SOURCE,
      firstTimestamp: time,
      lastTimestamp: time,
      count,
    };
    await this.#api.createNamespacedEvent({ namespace: this.namespace, body });
  }
}

/** meshid's security events in `namespace`, newest first, read with whatever `kc` may read. */
export async function listSecurityEvents(kc: KubeConfig, namespace: string, limit: number): Promise<RecordedEvent[]> {
  const list = await kc.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace, fieldSelector: `source=${EVENT_SOURCE}` });
  return list.items
    .map((e) => ({
      time: new Date(e.lastTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp ?? 0).toISOString(),
      reason: (e.reason ?? '') as SecurityReason,
      user: e.metadata.annotations?.[EVENT_USER_ANNOTATION] ?? '',
      message: e.message ?? '',
      type: e.type === 'Warning' ? ('Warning' as const) : ('Normal' as const),
      count: e.count ?? 1,
    }))
    .sort((a, b) => (a.time < b.time ? 1 : -1))
    .slice(0, limit);
}

/**
 * Who `kc` authenticates as, from the apiserver itself (SelfSubjectReview), for events the
 * CLI records with the operator's own credentials.
 */
export async function ownUsername(kc: KubeConfig): Promise<string> {
  try {
    const review = await kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    return review.status?.userInfo?.username ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
