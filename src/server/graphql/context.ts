import type { KubeConfig } from '@kubernetes/client-node';
import { TtlCache, type Clock, type Logger } from '../../core/index.ts';
import { impersonate, type SecurityEvent } from '../../kube/index.ts';
import type { Identity, KubeReviews, Session } from '../../authn/index.ts';
import type { CaStatus } from '../../ca/index.ts';
import type { Caller } from '../request-auth.ts';
import type { Issuer, SigningKeyAccessor, SigningKeyManager } from '../../tokens/index.ts';

/** What the dashboard API needs from the running server. */
export interface DashboardDeps {
  /** The server's own credential; resolvers use it only for meshid's own state. */
  kc: KubeConfig;
  namespace: string;
  trustDomain: string;
  /** The ConfigMap the CA publishes its trust bundle in. */
  rootConfigMap: string;
  reviews: KubeReviews;
  events: { record(event: SecurityEvent): void };
  /** The CA as this server sees it (its own, or read from the Secrets when it runs none). */
  caStatus(): Promise<CaStatus>;
  userTokens?: {
    issuer: Issuer;
    keys: (SigningKeyAccessor & SigningKeyManager) | undefined;
    revocations: { list(): string[]; revoke(jtis: string[]): Promise<void> };
  };
  clock: Clock;
  log: Logger;
}

export interface DashboardContext {
  deps: DashboardDeps;
  /** Who Kubernetes sees; in anonymous mode Kubernetes' own anonymous user. */
  user: Identity;
  session: Session | undefined;
  anonymous: boolean;
  /** Kubernetes as the user, through impersonation: never as meshid's own account. */
  kube: KubeConfig;
  /** Per user: the namespaces they may list pods in, or 'all'. */
  visibility: PodVisibility;
}

export type PodVisibility = TtlCache<string, 'all' | string[]>;

/** Asked of Kubernetes once per user every few seconds: the dashboard polls several queries. */
export const newPodVisibility = (clock: Clock): PodVisibility => new TtlCache(10_000, 1000, clock);

export function dashboardContext(deps: DashboardDeps, visibility: PodVisibility, caller: Caller): DashboardContext {
  return { deps, user: caller.user, session: caller.session, anonymous: caller.via === 'anonymous', visibility, kube: impersonate(deps.kc, caller.user) };
}

/** The name events and errors use for the caller. */
export const actor = (ctx: DashboardContext): string => ctx.user.name;
