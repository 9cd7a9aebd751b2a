export { createAuthority, authorityFromPem, issueLeaf, createServiceAccountSigningKey, pemBundle, type Authority, type KeyPairPem, type LeafRequest } from './pki.ts';
