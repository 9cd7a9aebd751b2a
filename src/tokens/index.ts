export {
  AUTHENTICATED_GROUP,
  UNAUTHENTICATED_GROUP,
  ANONYMOUS_USER,
  ADMIN_USER,
  ADMIN_GROUP,
  RESERVED_PREFIX,
  reservedIdentity,
  DEFAULT_IDENTITY_PREFIX,
  identityPrefixProblem,
  prefixedIdentity,
  NOT_BEFORE_BACKDATE_SECONDS,
  CLOCK_SKEW_SECONDS,
  type UserTokenClaims,
  type UserTokenHeader,
} from './user-token.ts';
export { generateSigningKeyPem, encodeKey, parsePrivateKey, parsePublicKey, publicKeyPem, type KeyFormat } from './keys.ts';
export { signUserToken, KeyedIssuer, DisabledIssuer, issuerDisabled, parseDuration, DEFAULT_MAX_VALID_FOR, type Issuer, type IssueRequest, type SigningKey } from './issuer.ts';
export { UserTokenValidator, StaticPublicKeys, noRevocations, type PublicKeySource, type Revocations, type ValidatedUser } from './validator.ts';
export { KubeSigningKeys, SIGNING_KEY_PREFIX, SIGNING_KEYS_SELECTOR, serialOf, type SigningKeyAccessor, type SigningKeyManager, type SigningKeyInfo } from './kube-signing-keys.ts';
export { KubeRevocations, REVOCATIONS_SECRET, parseRevocations } from './kube-revocations.ts';
export { bootstrapAdminToken, reissueAdminToken, adminTokenKid, ADMIN_TOKEN_SECRET } from './admin-token.ts';
export { jwks, type Jwk } from './jwks.ts';
export { issueUserToken, type IssueUserTokenDeps } from './issue-user-token.ts';
export { revokeUserTokens, checkTokenId, TOKEN_ID_FORMAT, type RevokeUserTokensDeps } from './revoke-user-tokens.ts';
export { rotateSigningKey, type RotateSigningKeyDeps } from './rotate-signing-key.ts';
