import { MeshidError } from '../core/index.ts';

/**
 * The steps, in the order `recover all` takes them. Kubernetes credentials go first, so an
 * attacker holding a stolen service-account token cannot read the keys made next; then the
 * keys to meshid's own API (sessions, user tokens); then the CA, once only legitimate callers
 * can still get a certificate from the new root; the registry last, as it needs new
 * credentials from outside the cluster.
 */
export const STEPS = ['service-account-tokens', 'jwt-key', 'signing-key', 'ca', 'registry'] as const;
export type StepName = (typeof STEPS)[number];

export const STEP_DESCRIPTIONS: Record<StepName, string> = {
  'service-account-tokens': 'delete service-account token Secrets and restart the workloads in the mesh namespaces',
  'jwt-key': 'replace the session key (Secret meshid-authentication): every session is refused at once',
  'signing-key': 'new user-token signing key, re-issued admin token, every other key removed',
  ca: 'new root CA, distributed through istio-ca-root-cert; agents push new roots and leaves',
  registry: 'list the registry credentials, guide their re-keying, reconcile the pull secrets',
};

export function isStep(value: string): value is StepName {
  return (STEPS as readonly string[]).includes(value);
}

/** `all` or one step name. */
export function parseSteps(value: string): StepName[] {
  if (value === 'all') return [...STEPS];
  if (isStep(value)) return [value];
  throw new MeshidError('ERR_INVALID_ARGUMENT', `unknown recovery step "${value}"`, { hint: `Use one of: ${STEPS.join(', ')}, all.` });
}
