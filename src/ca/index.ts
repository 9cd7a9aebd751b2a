export { CA_SERVICE_NAME, caServiceDefinition, caClientConstructor, type CertificateRequestMessage, type CertificateResponseMessage } from './proto.ts';
export {
  CA_SECRET,
  PLUGGED_CA_SECRET,
  ROOT_CONFIGMAP,
  ROOT_CONFIGMAP_KEY,
  SIGNING_ROOT_ANNOTATION,
  DEFAULT_PROPAGATION_MS,
  DEFAULT_GRACE_MS,
  parseCaSecret,
  serializeCaSecret,
  announceRoot,
  advanceRotation,
  keepTrusting,
  trustBundle,
  splitPem,
  type StoredCa,
} from './state.ts';
export { KubeCa, describeCa, CA_SECRET_KEY_LABEL, type CaStatus, type CaView } from './kube-ca.ts';
export { RootPublisher } from './root-publisher.ts';
export { CaServer, CertificateService, DEFAULT_CA_PORT, DEFAULT_TTL_SECONDS, MAX_REQUEST_BYTES, type CallerReviewer } from './grpc-server.ts';
export { startCa, type CaSettings, type RunningCa } from './start.ts';
export { caStatus, rotateCa, plugCa, type RotateOptions, type PlugInput } from './admin.ts';
export { DEFAULT_TRUST_DOMAIN, identityFromUsername, spiffeId, type WorkloadIdentity } from './identity.ts';
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
