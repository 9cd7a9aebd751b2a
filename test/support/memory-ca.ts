// meshid's real CreateCertificate service and gRPC listener on loopback, with in-memory
// versions of its own interfaces behind it (DESIGN.md §4): a CaView holding one self-signed
// root, and a CallerReviewer that knows which identity each test token proves. For unit-level
// tests of the CA's request handling; TokenReview itself is the integration tests' business.
import { createLogger, MeshidError } from '../../src/core/index.ts';
import { authorityFromPem, issueLeaf, pemBundle } from '../../src/pki/index.ts';
import { CaServer, CertificateService, LeafSigner, createSelfSignedRoot, describeCa, loadCaMaterial, type CaView, type NodeImpersonation } from '../../src/ca/index.ts';
import type { CallerReviewer, ReviewedCaller } from '../../src/contract/index.ts';
import type { SecurityEvent } from '../../src/kube/index.ts';

export interface MemoryCa {
  address: string;
  rootPem: string;
  /** Test tokens and the identity each proves; anything else is refused as TokenReview would. */
  tokens: Map<string, ReviewedCaller>;
  close(): Promise<void>;
}

export interface MemoryCaOptions {
  maxTtlSeconds?: number;
  impersonation?: Pick<NodeImpersonation, 'authorize'>;
  events?: { record(event: SecurityEvent): void };
}

export async function startMemoryCa(options: MemoryCaOptions = {}): Promise<MemoryCa> {
  const root = await createSelfSignedRoot({ keyType: 'ec' });
  const material = loadCaMaterial(root);
  const signer = new LeafSigner(material);
  const view: CaView = {
    signer: () => signer,
    material: () => material,
    bundle: () => [root.certPem],
    signingRoot: () => root.certPem,
    status: () => describeCa(root.certPem, undefined, false, undefined),
    onChange: () => () => undefined,
  };
  const tokens = new Map<string, ReviewedCaller>();
  const reviewer: CallerReviewer = {
    review: async (token) => {
      const identity = tokens.get(token);
      if (!identity) throw new MeshidError('ERR_UNAUTHENTICATED', 'the test reviewer does not know this token');
      return identity;
    },
  };
  const log = createLogger('memory-ca', 'silent');
  const service = new CertificateService(view, reviewer, { trustDomain: 'cluster.local', defaultTtlSeconds: 24 * 3600, maxTtlSeconds: options.maxTtlSeconds ?? 7 * 24 * 3600,
    log,
    ...(options.impersonation ? { impersonation: options.impersonation } : {}),
    ...(options.events ? { events: options.events } : {}),
  });
  const leaf = await issueLeaf(await authorityFromPem(material.certPem, material.keyPem), { commonName: 'meshid-ca', dnsNames: ['localhost'], ips: ['127.0.0.1'], usage: 'server' });
  const serving = { certPem: pemBundle(leaf.certPem, material.certPem), keyPem: leaf.keyPem, rootPems: [root.certPem] };
  const server = new CaServer(service, { host: '127.0.0.1', port: 0, servingCert: () => serving }, log);
  await server.start();
  return { address: server.address, rootPem: root.certPem, tokens, close: () => server.stop() };
}
