/**
 * The dashboard's API (`/api/graphql`). Everything about Kubernetes objects is read as the
 * session's user through impersonation; meshid's own resources (signing keys, the CA,
 * registries, recovery) are authorized per user by SubjectAccessReview on `meshid.io`.
 * A refusal is a GraphQL error with `extensions.code = "FORBIDDEN"` and
 * `extensions.permission` = { verb, group, resource, namespace? }.
 */
export const SCHEMA = /* GraphQL */ `
  type Query {
    me: Me!
    "Namespaces the caller may see: all of them with list namespaces, else those where they may list pods."
    namespaces: [Namespace!]!
    "Pods with their service account and SPIFFE identity, in the namespaces the caller may list pods in."
    workloads(namespace: String): [Workload!]!
    certificateAuthority: CertificateAuthority!
    "Workload certificates the CA issued recently (the latest per identity), in namespaces the caller may list pods in."
    identities(namespace: String): [IssuedIdentity!]!
    signingKeys: [SigningKey!]!
    revokedTokens: [String!]!
    registries: [Registry!]!
    "Logins, tokens issued and revoked, rotations and recovery runs, newest first (Kubernetes Events)."
    securityEvents(limit: Int = 50): [SecurityEvent!]!
  }

  type Mutation {
    generateUserToken(name: String!, groups: [String!], validFor: String!): IssuedUserToken!
    revokeToken(id: String!): Revocation!
    rotateSigningKey: SigningKey!
    rotateCA: CertificateAuthority!
    registryAdd(name: String!, server: String!, username: String!, password: String!, email: String): Registry!
    registryRemove(name: String!): Boolean!
    "Read-only: the plan that meshid recover all would run now. A mutation because it is authorized as create recoveries.meshid.io: the plan lists every key."
    recoverPlan: RecoveryPlan!
  }

  type Me {
    name: String!
    groups: [String!]!
    uid: String
    anonymous: Boolean!
    "When the session ends (ISO 8601); absent for user tokens and anonymous mode."
    expiresAt: String
    capabilities: [Capability!]!
  }

  "One can-i answer; key is <resource>[.<group>]/<verb>."
  type Capability {
    key: String!
    verb: String!
    group: String!
    resource: String!
    allowed: Boolean!
  }

  type Namespace {
    name: String!
  }

  type Workload {
    namespace: String!
    name: String!
    serviceAccount: String!
    spiffeId: String!
    phase: String
    node: String
  }

  type RootCertificate {
    fingerprint: String!
    subject: String!
    notBefore: String!
    notAfter: String!
    pem: String!
  }

  type CertificateAuthority {
    "self-signed or plugged-in"
    mode: String!
    rootFingerprint: String!
    notAfter: String!
    trustBundle: [RootCertificate!]!
    newRootSignsAt: String
    oldRootsDroppedAt: String
    error: String
  }

  type IssuedIdentity {
    spiffeId: String!
    namespace: String!
    serviceAccount: String!
    serial: String!
    issuedAt: String!
    notAfter: String!
  }

  type SigningKey {
    serial: Int!
    createdAt: String
    "The key new tokens are signed with (the highest serial)."
    active: Boolean!
  }

  type IssuedUserToken {
    "The token's jti: what revokeToken takes."
    id: String!
    token: String!
    name: String!
    groups: [String!]!
    expiresAt: String!
  }

  type Revocation {
    id: String!
    revokedTokens: Int!
  }

  type RegistryServer {
    server: String!
    username: String!
  }

  type Registry {
    name: String!
    servers: [RegistryServer!]!
    updatedAt: String
    error: String
  }

  type SecurityEvent {
    time: String!
    "Login, TokenIssued, TokenRevoked, SigningKeyRotated, CARotationStarted, RegistryChanged, RecoveryRun, ..."
    reason: String!
    user: String!
    message: String!
    "Normal or Warning"
    type: String!
  }

  type PlannedAction {
    action: String!
    kind: String!
    namespace: String
    name: String!
    detail: String
  }

  type RecoveryStep {
    step: String!
    description: String!
    summary: String!
    blocked: String
    actions: [PlannedAction!]!
  }

  type RecoveryPlan {
    meshidNamespace: String!
    meshNamespaces: [String!]!
    steps: [RecoveryStep!]!
  }
`;
