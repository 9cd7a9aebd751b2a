import { KubeConfig, type RequestContext } from '@kubernetes/client-node';
import { MeshidError } from '../core/index.ts';

/**
 * A request to Kubernetes that has no answer after this long counts as an outage. Without a
 * bound, an apiserver that lost etcd holds each call for its own 60 s request timeout, and
 * whoever waits on meshid waits with it.
 */
export const KUBE_REQUEST_TIMEOUT_MS = 10_000;

/** Every API client made from it gives up after `timeoutMs`; watches are not API clients and stay open. */
class BoundedKubeConfig extends KubeConfig {
  constructor(private readonly timeoutMs: number) {
    super();
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    // Armed after authentication, so a slow exec credential plugin is not counted.
    if (!context.getSignal()) context.setSignal(AbortSignal.timeout(this.timeoutMs));
  }
}

export interface KubeTarget {
  /** Path to a kubeconfig file; like kubectl, falls back to $KUBECONFIG, then ~/.kube/config. */
  kubeconfig?: string | undefined;
  context?: string | undefined;
  /** How long one API call may wait for its answer; default KUBE_REQUEST_TIMEOUT_MS. */
  requestTimeoutMs?: number;
}

/**
 * Loads credentials the way kubectl does, so `--kubeconfig` and `--context` mean the same.
 * Unlike kubectl, each API call is bounded in time.
 */
export function loadKubeConfig(target: KubeTarget = {}): KubeConfig {
  const kc = new BoundedKubeConfig(target.requestTimeoutMs ?? KUBE_REQUEST_TIMEOUT_MS);
  try {
    if (target.kubeconfig) kc.loadFromFile(target.kubeconfig);
    else kc.loadFromDefault();
  } catch (error) {
    throw new MeshidError('ERR_KUBECONFIG', `cannot read kubeconfig ${target.kubeconfig ?? '(default)'}`, {
      cause: error,
      hint: 'Pass --kubeconfig PATH or set KUBECONFIG to a readable kubeconfig file.',
    });
  }
  if (target.context) {
    if (!kc.getContextObject(target.context)) {
      throw new MeshidError('ERR_KUBECONFIG', `context "${target.context}" is not in the kubeconfig`, {
        hint: `Known contexts: ${kc.getContexts().map((c) => c.name).join(', ') || 'none'}.`,
      });
    }
    kc.setCurrentContext(target.context);
  }
  if (!kc.getCurrentCluster()) {
    throw new MeshidError('ERR_KUBECONFIG', 'the kubeconfig has no current cluster', {
      hint: 'Pick one with --context NAME, or run `meshid up` for a local playground.',
    });
  }
  return kc;
}
