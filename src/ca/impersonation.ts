import { MeshidError } from '../core/index.ts';
import { isNamespaceName, isServiceAccountName, parseSpiffeId, type ReviewedCaller, type WorkloadIdentity } from '../contract/index.ts';

/**
 * The key in CreateCertificate's request `metadata` (a protobuf Struct, field 4 of
 * IstioCertificateRequest) under which Istio's node proxy, ztunnel, names the SPIFFE ID it asks
 * a certificate for on behalf of a pod on its node. Istio's name (pkg/security), not ours.
 */
export const IMPERSONATED_IDENTITY_FIELD = 'ImpersonatedIdentity';

/** Istio's chart trusts ztunnel's service account in istiod's namespace; meshid trusts the same by default. */
export const DEFAULT_TRUSTED_NODE_ACCOUNTS: readonly string[] = ['istio-system/ztunnel'];

/** `namespace/serviceaccount`, the format of Istio's CA_TRUSTED_NODE_ACCOUNTS, or undefined when it is not one. */
export function parseNodeAccount(text: string): WorkloadIdentity | undefined {
  const [namespace = '', serviceAccount = '', ...rest] = text.split('/');
  return rest.length === 0 && isNamespaceName(namespace) && isServiceAccountName(serviceAccount) ? { namespace, serviceAccount } : undefined;
}

/**
 * What the authorization needs to know about pods. The real one lists them from Kubernetes
 * (KubeNodePods); unit tests hold them in memory.
 */
export interface NodePods {
  /** The node the pod runs on, or undefined when no pod of that name (and uid, when given) exists. */
  nodeOf(namespace: string, name: string, uid?: string): Promise<string | undefined>;
  /** Whether a pod that runs as `identity` is on `node` and has not finished. */
  runsOn(node: string, identity: WorkloadIdentity): Promise<boolean>;
}

export interface NodeImpersonationOptions {
  /** Node-proxy service accounts as `namespace/name`; empty refuses every impersonation. */
  trustedNodeAccounts: readonly string[];
  trustDomain: string;
  pods: NodePods;
}

/** Why an impersonation was refused, for the security event: which node the caller was on, if known. */
export interface RefusedImpersonation {
  requested: string;
  node?: string;
}

/**
 * Istio's node authorization for CA requests (security/pkg/server/ca/node_auth.go): a node
 * proxy may ask for the identity of any pod on its own node, and nobody else may ask for an
 * identity not their own. A proxy that could name any identity would hold every workload's
 * identity in the mesh; bounded to its node, it holds what the node's kubelet already does.
 */
export class NodeImpersonation {
  readonly #trusted: ReadonlySet<string>;

  constructor(private readonly options: NodeImpersonationOptions) {
    const bad = options.trustedNodeAccounts.filter((account) => !parseNodeAccount(account));
    if (bad.length > 0) throw new MeshidError('ERR_INVALID_ARGUMENT', `ca.trustedNodeAccounts ${JSON.stringify(bad)} must be namespace/serviceaccount`);
    this.#trusted = new Set(options.trustedNodeAccounts);
  }

  /**
   * The identity `caller` may have certified in place of its own, or a MeshidError:
   * ERR_NODE_IMPERSONATION_DENIED when the caller is no node proxy or no such pod runs on its
   * node, ERR_INVALID_ARGUMENT for a name that is no workload SPIFFE ID, ERR_UNAUTHENTICATED
   * when the caller's token does not prove which node it is on.
   */
  async authorize(caller: ReviewedCaller, requested: string): Promise<WorkloadIdentity> {
    // The caller first, as Istio does: a workload that is no node proxy learns nothing about
    // which identities exist or where they run.
    if (!this.#trusted.has(`${caller.namespace}/${caller.serviceAccount}`)) {
      throw new MeshidError('ERR_NODE_IMPERSONATION_DENIED', `${caller.namespace}/${caller.serviceAccount} may not ask for another workload's certificate: it is not a node proxy`, {
        hint: 'only the service accounts in the server config\'s ca.trustedNodeAccounts (default istio-system/ztunnel) may send ImpersonatedIdentity',
      });
    }
    const identity = parseSpiffeId(requested);
    if (!identity) throw new MeshidError('ERR_INVALID_ARGUMENT', `ImpersonatedIdentity ${JSON.stringify(requested.slice(0, 300))} is not spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`);
    if (identity.trustDomain !== this.options.trustDomain) {
      throw new MeshidError('ERR_NODE_IMPERSONATION_DENIED', `${requested} is not in this CA's trust domain ${this.options.trustDomain}`);
    }
    const node = await this.#callerNode(caller);
    const wanted = { namespace: identity.namespace, serviceAccount: identity.serviceAccount };
    if (!(await this.options.pods.runsOn(node, wanted))) {
      throw new MeshidError('ERR_NODE_IMPERSONATION_DENIED', `no pod of ${wanted.namespace}/${wanted.serviceAccount} runs on node ${node}, the caller's node`);
    }
    return wanted;
  }

  /**
   * The node from the token itself when Kubernetes bound it there (1.32 and later); it is as
   * good as the pod's: a pod never changes node, and the apiserver stops accepting a bound token
   * once its pod is gone. Older clusters name only the pod, so its node is looked up, and the
   * pod must still be the one the token was issued for (same uid), as istiod checks.
   */
  async #callerNode(caller: ReviewedCaller): Promise<string> {
    const pod = caller.pod;
    if (!pod) {
      throw new MeshidError('ERR_UNAUTHENTICATED', 'the node proxy\'s token is not bound to a pod, so it does not prove which node the proxy runs on', {
        hint: 'send the proxy pod\'s projected service-account token (audience istio-ca), not a long-lived Secret token',
      });
    }
    const node = pod.nodeName ?? (await this.options.pods.nodeOf(caller.namespace, pod.name, pod.uid));
    // A node name is a DNS subdomain, the service-account rule; anything else could not be
    // put in a field selector safely.
    if (!node || !isServiceAccountName(node)) {
      throw new MeshidError('ERR_UNAUTHENTICATED', `the node proxy's pod ${caller.namespace}/${pod.name} is not running on a node`);
    }
    return node;
  }
}
