import { KubeConfig } from '@kubernetes/client-node';
import { MeshidError } from '../core/index.ts';

export interface KubeTarget {
  /** Path to a kubeconfig file; like kubectl, falls back to $KUBECONFIG, then ~/.kube/config. */
  kubeconfig?: string | undefined;
  context?: string | undefined;
}

/** Loads credentials the way kubectl does, so `--kubeconfig` and `--context` mean the same. */
export function loadKubeConfig(target: KubeTarget = {}): KubeConfig {
  const kc = new KubeConfig();
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
