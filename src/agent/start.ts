import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { MeshidError, type Logger } from '../core/index.ts';
import { ServiceAccountTokenReviewer, watchObjects, type SecretWatch } from '../kube/index.ts';
import { GrpcCaClient, ROOT_CONFIGMAP_KEY, SIGNING_ROOT_ANNOTATION, type CertificateSigner } from '../contract/index.ts';
import { splitPem } from '../pki/index.ts';
import type { KeyType } from './csr.ts';
import { SdsServer } from './sds-server.ts';
import { StaticTrustBundle } from './trust-bundle.ts';

export interface AgentSettings {
  socketPath: string;
  /** host:port of the workload CA. */
  caAddress: string;
  /** Name to verify the CA's certificate against, when the address is an IP or an alias. */
  caServerName?: string | undefined;
  /** Namespace whose root ConfigMap the agent reads (its own). */
  namespace: string;
  rootConfigMap: string;
  trustDomain: string;
  keyType: KeyType;
  audiences: string[];
  /** The lifetime asked of the CA (Istio's SECRET_TTL); default 24 h. */
  certificateTtlSeconds?: number;
  directoryMode?: number;
  socketMode?: number;
}

export interface RunningAgent {
  server: SdsServer;
  stop(): Promise<void>;
}

/**
 * The agent's composition root. The trust bundle comes from the CA's ConfigMap (a watch, so
 * a rotation reaches every stream), the CA client trusts that same bundle, and callers are
 * proven with TokenReview before any certificate, cached or new, is handed to them.
 */
export async function startAgent(kc: KubeConfig, settings: AgentSettings, log: Logger): Promise<RunningAgent> {
  const api = kc.makeApiClient(CoreV1Api);
  const bundle = new StaticTrustBundle();
  let signingRoot: string | undefined;
  let caClient: GrpcCaClient | undefined;
  const caClientFor = (roots: string[]): GrpcCaClient =>
    new GrpcCaClient({ address: settings.caAddress, rootCertPem: roots.join(''), ...(settings.caServerName ? { serverName: settings.caServerName } : {}) });
  // Swapped when the bundle changes: after a rotation the CA serves from the new root. Until
  // the first bundle arrives there is nothing to trust the CA with, so signing waits for it.
  const signer: CertificateSigner = {
    sign: (csr, token, ttl) => {
      if (!caClient) return Promise.reject(new MeshidError('ERR_CA_UNAVAILABLE', `no trust bundle yet from ConfigMap ${settings.namespace}/${settings.rootConfigMap}`));
      return caClient.sign(csr, token, ttl);
    },
  };
  const server = new SdsServer({
    socketPath: settings.socketPath,
    reviewer: new ServiceAccountTokenReviewer(kc, settings.audiences),
    signer,
    trustBundle: bundle,
    log,
    trustDomain: settings.trustDomain,
    keyType: settings.keyType,
    ...(settings.certificateTtlSeconds !== undefined ? { certificateTtlSeconds: settings.certificateTtlSeconds } : {}),
    ...(settings.directoryMode !== undefined ? { directoryMode: settings.directoryMode } : {}),
    ...(settings.socketMode !== undefined ? { socketMode: settings.socketMode } : {}),
  });
  const apply = (cm: V1ConfigMap): void => {
    const roots = splitPem(cm.data?.[ROOT_CONFIGMAP_KEY] ?? '');
    if (roots.length === 0) return;
    const changed = roots.join('') !== bundle.roots().join('');
    bundle.set(roots);
    if (changed || !caClient) {
      caClient?.close();
      caClient = caClientFor(roots);
    }
    const signing = cm.metadata?.annotations?.[SIGNING_ROOT_ANNOTATION];
    if (signingRoot !== undefined && signing !== undefined && signing !== signingRoot) {
      log.info({ signingRoot: signing }, 'the CA signs from a new root; renewing every certificate');
      void server.rotateCertificates().catch((error: unknown) => log.warn({ err: error }, 'renewal after a root change failed; retrying with backoff'));
    }
    signingRoot = signing ?? signingRoot;
  };
  const watch: SecretWatch = await watchObjects<V1ConfigMap>(
    kc,
    {
      path: `/api/v1/namespaces/${settings.namespace}/configmaps`,
      list: () => api.listNamespacedConfigMap({ namespace: settings.namespace, fieldSelector: `metadata.name=${settings.rootConfigMap}` }),
      fieldSelector: `metadata.name=${settings.rootConfigMap}`,
      what: `configmap ${settings.namespace}/${settings.rootConfigMap}`,
    },
    // A deleted ConfigMap keeps the last bundle: the CA puts it back shortly.
    { onUpsert: apply, onDelete: () => undefined },
    log,
  );
  await server.start();
  return {
    server,
    async stop() {
      await server.stop();
      await watch.stop();
      caClient?.close();
    },
  };
}
