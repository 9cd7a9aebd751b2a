export type { IssuedUserToken } from './issued-user-token.ts';
export { CAPABILITIES, CAPABILITY_KEYS, LOGIN_CAPABILITIES, MESHID_GROUP, MESHID_RESOURCES, capabilityKey, type Capability, type CapabilityName } from './capabilities.ts';
export { ADMIN_GROUP, CLUSTER_DOMAIN, MESHID_SERVICE, caServiceNames, DEFAULT_CA_PORT, ROOT_CONFIGMAP, ROOT_CONFIGMAP_KEY, SIGNING_ROOT_ANNOTATION } from './names.ts';
export {
  DEFAULT_TRUST_DOMAIN,
  TRUST_DOMAIN_HINT,
  checkTrustDomain,
  identityFromUsername,
  isNamespaceName,
  isServiceAccountName,
  isTrustDomain,
  isWorkloadIdentity,
  parseSpiffeId,
  spiffeId,
  type BoundPod,
  type CallerReviewer,
  type ReviewedCaller,
  type SpiffeIdentity,
  type WorkloadIdentity,
} from './identity.ts';
export { CA_SERVICE_NAME, caServiceDefinition, caClientConstructor, type CertificateRequestMessage, type CertificateResponseMessage } from './ca-proto.ts';
export { GrpcCaClient, type CertificateSigner, type GrpcCaClientOptions } from './ca-client.ts';
