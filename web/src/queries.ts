// Every GraphQL document the dashboard sends, beside the shape of its answer. The documents
// are validated against the server's schema by test/web/queries.test.ts, so a drift between
// the two fails a unit test rather than a page.
import type { IssuedUserToken } from '../../src/contract/issued-user-token.ts';

export interface Capability {
  key: string;
  verb: string;
  group: string;
  resource: string;
  allowed: boolean;
}

export interface Me {
  name: string;
  groups: string[];
  uid: string | null;
  anonymous: boolean;
  expiresAt: string | null;
  capabilities: Capability[];
}

export const ME = /* GraphQL */ `
  query Me {
    me {
      name
      groups
      uid
      anonymous
      expiresAt
      capabilities { key verb group resource allowed }
    }
  }
`;
export interface MeResult {
  me: Me;
}

export interface SecurityEvent {
  time: string;
  reason: string;
  user: string;
  message: string;
  type: string;
}

export const SECURITY_EVENTS = /* GraphQL */ `
  query SecurityEvents($limit: Int) {
    securityEvents(limit: $limit) { time reason user message type }
  }
`;
export interface SecurityEventsResult {
  securityEvents: SecurityEvent[];
}

export interface SigningKey {
  serial: number;
  createdAt: string | null;
  active: boolean;
}

export const SIGNING_KEYS = /* GraphQL */ `
  query SigningKeys {
    signingKeys { serial createdAt active }
  }
`;
export interface SigningKeysResult {
  signingKeys: SigningKey[];
}

export const REVOKED_TOKENS = /* GraphQL */ `
  query RevokedTokens {
    revokedTokens
  }
`;
export interface RevokedTokensResult {
  revokedTokens: string[];
}


export type { IssuedUserToken };

export const GENERATE_USER_TOKEN = /* GraphQL */ `
  mutation GenerateUserToken($name: String!, $groups: [String!], $validFor: String!) {
    generateUserToken(name: $name, groups: $groups, validFor: $validFor) { id token name groups expiresAt }
  }
`;
export interface GenerateUserTokenResult {
  generateUserToken: IssuedUserToken;
}

export const REVOKE_TOKEN = /* GraphQL */ `
  mutation RevokeToken($id: String!) {
    revokeToken(id: $id) { id revokedTokens }
  }
`;
export interface RevokeTokenResult {
  revokeToken: { id: string; revokedTokens: number };
}

export const ROTATE_SIGNING_KEY = /* GraphQL */ `
  mutation RotateSigningKey {
    rotateSigningKey { serial createdAt active }
  }
`;
export interface RotateSigningKeyResult {
  rotateSigningKey: SigningKey;
}

export interface RootCertificate {
  fingerprint: string;
  subject: string;
  notBefore: string;
  notAfter: string;
}

export interface CertificateAuthority {
  mode: string;
  rootFingerprint: string;
  notAfter: string;
  trustBundle: RootCertificate[];
  newRootSignsAt: string | null;
  oldRootsDroppedAt: string | null;
  error: string | null;
}

const CA_FIELDS = 'mode rootFingerprint notAfter trustBundle { fingerprint subject notBefore notAfter } newRootSignsAt oldRootsDroppedAt error';

export const CERTIFICATE_AUTHORITY = /* GraphQL */ `
  query CertificateAuthority {
    certificateAuthority { ${CA_FIELDS} }
  }
`;
export interface CertificateAuthorityResult {
  certificateAuthority: CertificateAuthority;
}

export const ROTATE_CA = /* GraphQL */ `
  mutation RotateCA {
    rotateCA { ${CA_FIELDS} }
  }
`;
export interface RotateCaResult {
  rotateCA: CertificateAuthority;
}

export const NAMESPACES = /* GraphQL */ `
  query Namespaces {
    namespaces { name }
  }
`;
export interface NamespacesResult {
  namespaces: { name: string }[];
}

export interface Workload {
  namespace: string;
  name: string;
  serviceAccount: string;
  spiffeId: string;
  phase: string | null;
  node: string | null;
}

export interface IssuedIdentity {
  spiffeId: string;
  namespace: string;
  serviceAccount: string;
  serial: string;
  issuedAt: string;
  notAfter: string;
}

// Separate documents: both roots are non-null, so one refusal would null the other's answer too.
export const WORKLOADS = /* GraphQL */ `
  query Workloads($namespace: String) {
    workloads(namespace: $namespace) { namespace name serviceAccount spiffeId phase node }
  }
`;
export interface WorkloadsResult {
  workloads: Workload[];
}

export const IDENTITIES = /* GraphQL */ `
  query Identities($namespace: String) {
    identities(namespace: $namespace) { spiffeId namespace serviceAccount serial issuedAt notAfter }
  }
`;
export interface IdentitiesResult {
  identities: IssuedIdentity[];
}

export interface PlannedAction {
  action: string;
  kind: string;
  namespace: string | null;
  name: string;
  detail: string | null;
}

export interface RecoveryStep {
  step: string;
  description: string;
  summary: string;
  blocked: string | null;
  actions: PlannedAction[];
}

export interface RecoveryPlan {
  meshidNamespace: string;
  meshNamespaces: string[];
  steps: RecoveryStep[];
}

export const RECOVER_PLAN = /* GraphQL */ `
  mutation RecoverPlan {
    recoverPlan {
      meshidNamespace
      meshNamespaces
      steps { step description summary blocked actions { action kind namespace name detail } }
    }
  }
`;
export interface RecoverPlanResult {
  recoverPlan: RecoveryPlan;
}

export interface Registry {
  name: string;
  servers: { server: string; username: string }[];
  updatedAt: string | null;
  error: string | null;
}

export const REGISTRIES = /* GraphQL */ `
  query Registries {
    registries { name servers { server username } updatedAt error }
  }
`;
export interface RegistriesResult {
  registries: Registry[];
}

export const REGISTRY_ADD = /* GraphQL */ `
  mutation RegistryAdd($name: String!, $server: String!, $username: String!, $password: String!, $email: String) {
    registryAdd(name: $name, server: $server, username: $username, password: $password, email: $email) { name }
  }
`;
export interface RegistryAddResult {
  registryAdd: { name: string };
}

export const REGISTRY_REMOVE = /* GraphQL */ `
  mutation RegistryRemove($name: String!) {
    registryRemove(name: $name)
  }
`;
export interface RegistryRemoveResult {
  registryRemove: boolean;
}
