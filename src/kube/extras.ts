import { MeshidError } from '../core/index.ts';

/**
 * The user extras meshid may impersonate, granted one by one in its ClusterRole as
 * `userextras/<key>` (RBAC has no wildcard for them: `userextras/*` matches nothing). The
 * apiserver lowercases an `Impersonate-Extra-<key>` header's key before it authorizes it, so
 * the keys are lowercase here and compared lowercased.
 */
export const IMPERSONATED_EXTRA_KEYS = [
  // Service-account tokens from TokenRequest (every projected pod token): the apiserver's
  // service-account authenticator adds the bound pod, its node, and the token's ID (JTI).
  'authentication.kubernetes.io/pod-name',
  'authentication.kubernetes.io/pod-uid',
  'authentication.kubernetes.io/node-name',
  'authentication.kubernetes.io/node-uid',
  'authentication.kubernetes.io/credential-id',
  // EKS: aws-iam-authenticator's TokenReview answer (accessKeyId, arn, canonicalArn,
  // sessionName, principalId).
  'accesskeyid',
  'arn',
  'canonicalarn',
  'sessionname',
  'principalid',
] as const;

/**
 * Keys nobody may impersonate, so they are left out of the session rather than refusing the
 * login: EKS's authorizer reserves the `sigs.k8s.io/aws-iam-authenticator/` namespace, and this
 * key repeats `principalId`, which is impersonated.
 */
const UNIMPERSONABLE_EXTRA_KEYS: readonly string[] = ['sigs.k8s.io/aws-iam-authenticator/principalid'];

const GRANTED: ReadonlySet<string> = new Set(IMPERSONATED_EXTRA_KEYS);

/**
 * The extras a session carries, checked at login: a key meshid's ClusterRole does not grant
 * would make the apiserver refuse every call made as this user (403), so the login is refused
 * now, naming the key, instead of handing out a session that cannot work.
 */
export function impersonableExtra(extra: Record<string, string[]> | undefined): Record<string, string[]> | undefined {
  if (!extra) return undefined;
  const kept = Object.entries(extra).filter(([key]) => !UNIMPERSONABLE_EXTRA_KEYS.includes(key.toLowerCase()));
  const ungranted = kept.map(([key]) => key).filter((key) => !GRANTED.has(key.toLowerCase()));
  if (ungranted.length > 0) {
    const resources = ungranted.map((key) => `userextras/${key.toLowerCase()}`).join(', ');
    throw new MeshidError('ERR_EXTRA_NOT_GRANTED', `meshid may not impersonate the user extra ${ungranted.map((k) => JSON.stringify(k)).join(', ')} that Kubernetes gives this credential`, {
      hint: `Add ${resources} (verb impersonate, API group authentication.k8s.io) to meshid's ClusterRole: IMPERSONATED_EXTRA_KEYS in src/kube/extras.ts, then \`meshid install\` again.`,
    });
  }
  return kept.length > 0 ? Object.fromEntries(kept) : undefined;
}
