import type { KubeConfig } from '@kubernetes/client-node';
import { MeshidError, systemClock, type Clock, type Logger } from '../core/index.ts';
import { SecurityEvents, ServiceAccountTokenReviewer, TokenReviewGuard } from '../kube/index.ts';
import { authorityFromPem, issueLeaf, pemBundle } from '../pki/index.ts';
import type { CaKeyType } from './authority.ts';
import { CaServer, CertificateService } from './grpc-server.ts';
import { DEFAULT_TRUSTED_NODE_ACCOUNTS, NodeImpersonation } from './impersonation.ts';
import { IssuanceLedger } from './issued.ts';
import { KubeCa } from './kube-ca.ts';
import { KubeNodePods } from './node-pods.ts';
import { RootPublisher } from './root-publisher.ts';
import { defaultSigningThreads } from './signing.ts';
import { SigningPool } from './signing-pool.ts';

const SERVING_RENEW_MS = 7 * 24 * 3600_000;

export interface CaSettings {
  namespace: string;
  host: string;
  port: number;
  trustDomain: string;
  keyType: CaKeyType;
  defaultTtlSeconds: number;
  maxTtlSeconds: number;
  audiences: string[];
  rootConfigMap: string;
  /** Names the serving certificate answers to, besides localhost and 127.0.0.1. */
  serviceNames: string[];
  /** Node proxies (`namespace/serviceaccount`) that may ask for certificates of pods on their node; Istio's ztunnel by default. */
  trustedNodeAccounts?: readonly string[];
  /** Worker threads that check and sign CSRs; absent: defaultSigningThreads() (none with an injected clock). */
  signingThreads?: number | undefined;
}

export interface RunningCa {
  address: string;
  ca: KubeCa;
  publisher: RootPublisher;
  stop(): Promise<void>;
}

/**
 * The CA's composition root: key material from Secrets, root publishing, and the gRPC listener.
 * `guard` stands before every TokenReview of a caller's token (the server passes one with its
 * per-client limits); by default it only refuses what is not a JWT and remembers refusals.
 */
export async function startCa(kc: KubeConfig, settings: CaSettings, log: Logger, clock?: Clock, guard?: TokenReviewGuard): Promise<RunningCa> {
  const ca = new KubeCa(kc, { namespace: settings.namespace, keyType: settings.keyType, log, ...(clock ? { clock } : {}) });
  await ca.start();
  const publisher = new RootPublisher(kc, ca, log, settings.rootConfigMap);
  await publisher.start();
  const ledger = new IssuanceLedger(kc, settings.namespace, log, clock);
  ledger.start();
  // Threads sign by the system clock: a CA given another clock (tests) signs on its event loop.
  const otherClock = clock !== undefined && clock !== systemClock;
  const threads = settings.signingThreads ?? (otherClock ? 0 : defaultSigningThreads());
  if (otherClock && threads > 0) throw new MeshidError('ERR_INVALID_ARGUMENT', 'signing threads keep the system clock: a CA with an injected clock signs on its event loop (signingThreads 0)');
  const pool = threads > 0 ? new SigningPool(ca, threads) : undefined;

  const service = new CertificateService(ca, new ServiceAccountTokenReviewer(kc, settings.audiences, clock, guard ?? new TokenReviewGuard({ jwtOnly: true, ...(clock ? { clock } : {}) })), {
    ledger,
    impersonation: new NodeImpersonation({ trustedNodeAccounts: settings.trustedNodeAccounts ?? DEFAULT_TRUSTED_NODE_ACCOUNTS, trustDomain: settings.trustDomain, pods: new KubeNodePods(kc) }),
    events: new SecurityEvents(kc, settings.namespace, log, clock),
    trustDomain: settings.trustDomain,
    defaultTtlSeconds: settings.defaultTtlSeconds,
    maxTtlSeconds: settings.maxTtlSeconds,
    log,
    ...(clock ? { clock } : {}),
    ...(pool ? { signing: pool } : {}),
  });
  let serving = await servingCertificate(ca, settings);
  const server = new CaServer(service, { host: settings.host, port: settings.port, servingCert: () => serving }, log);
  await server.start();
  const renew = (why: string): void => {
    void servingCertificate(ca, settings)
      .then(async (next) => {
        serving = next;
        await server.reloadCertificate();
        log.info({ why }, 'renewed the CA serving certificate');
      })
      .catch((error: unknown) => log.error({ err: error }, 'could not renew the CA serving certificate'));
  };
  let signing = ca.material().certPem;
  const unsubscribe = ca.onChange(() => {
    if (ca.material().certPem === signing) return;
    signing = ca.material().certPem;
    renew('the signing root changed');
  });
  // Well inside the serving certificate's 30 days.
  const timer = setInterval(() => renew('periodic'), SERVING_RENEW_MS);
  timer.unref();
  log.info({ address: server.address, trustDomain: settings.trustDomain, signingThreads: threads }, 'workload CA listening');
  return {
    address: server.address,
    ca,
    publisher,
    async stop() {
      unsubscribe();
      clearInterval(timer);
      await server.stop();
      await pool?.close();
      await ledger.stop();
      await publisher.stop();
      await ca.stop();
    },
  };
}

/** Signed by the CA itself, as istiod's is, so a workload that trusts the root trusts the CA. */
async function servingCertificate(ca: KubeCa, settings: CaSettings): Promise<{ certPem: string; keyPem: string; rootPems: string[] }> {
  const material = ca.material();
  const leaf = await issueLeaf(await authorityFromPem(material.certPem, material.keyPem), {
    commonName: settings.serviceNames[0] ?? 'meshid-ca',
    dnsNames: [...settings.serviceNames, 'localhost'],
    ips: ['127.0.0.1'],
    usage: 'server',
    validDays: 30,
  });
  return { certPem: pemBundle(leaf.certPem, material.certPem, ...material.chainPems.slice(0, -1)), keyPem: leaf.keyPem, rootPems: ca.bundle() };
}
