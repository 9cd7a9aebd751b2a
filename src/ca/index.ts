// What the CA shares with its clients lives in the contract and pki; re-exported here for the
// CA's own users (install, recovery, the server), who know these as the CA's names.
export { ROOT_CONFIGMAP, ROOT_CONFIGMAP_KEY, SIGNING_ROOT_ANNOTATION, DEFAULT_CA_PORT } from '../contract/index.ts';
export { splitPem } from '../pki/index.ts';
export {
  CA_SECRET,
  PLUGGED_CA_SECRET,
  parseCaSecret,
  serializeCaSecret,
  announceRoot,
  advanceRotation,
  keepTrusting,
  trustBundle,
  type StoredCa,
} from './state.ts';
export { KubeCa, describeCa, CA_SECRET_KEY_LABEL, type CaStatus, type CaView } from './kube-ca.ts';
export { RootPublisher } from './root-publisher.ts';
export { CaServer, CertificateService, DEFAULT_TTL_SECONDS, MAX_REQUEST_BYTES } from './grpc-server.ts';
export { IMPERSONATED_IDENTITY_FIELD, DEFAULT_TRUSTED_NODE_ACCOUNTS, NodeImpersonation, parseNodeAccount, type NodePods, type NodeImpersonationOptions } from './impersonation.ts';
export { KubeNodePods } from './node-pods.ts';
export { startCa, type CaSettings, type RunningCa } from './start.ts';
export { DEFAULT_PROPAGATION_MS, DEFAULT_GRACE_MS } from './rotation-defaults.ts';
export { caStatus, rotateCa, plugCa, publishedBundle, type RotateOptions, type PlugInput, type CaAudit, type PublishedBundle } from './admin.ts';
export { MAX_CSR_BYTES, checkCsr, type CheckedCsr } from './csr.ts';
export {
  createSelfSignedRoot,
  describeRoot,
  loadCaMaterial,
  type CaFiles,
  type CaKeyType,
  type CaMaterial,
  type RootSummary,
  type SelfSignedRootOptions,
} from './authority.ts';
export { LeafSigner, type SignRequest, type IssuedLeaf } from './signer.ts';
export { IssuanceLedger, ISSUED_CONFIGMAP, MAX_LEDGER_ENTRIES, mergeIssued, readIssued, type IssuedIdentity } from './issued.ts';
export { inlineSigning, defaultSigningThreads, type CertificateSigning } from './signing.ts';
export { SigningPool } from './signing-pool.ts';
