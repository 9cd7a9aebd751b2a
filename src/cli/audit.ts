import type { KubeConfig } from '@kubernetes/client-node';
import type { SecurityReason } from '../kube/index.ts';

/**
 * Records what the operator just did as a security event in meshid's namespace, with their
 * own credentials and name, as the server does for the dashboard. The audit trail is
 * best-effort: a user who may change keys but not create events still gets their change.
 */
export async function auditAsOperator(kc: KubeConfig, namespace: string, reason: SecurityReason, message: string): Promise<void> {
  const { SecurityEvents, ownUsername } = await import('../kube/index.ts');
  const { createLogger } = await import('./logging.ts');
  const user = await ownUsername(kc);
  await new SecurityEvents(kc, namespace, createLogger('meshid', 'warn')).recordNow({ reason, user, message: `${message} (meshid CLI)` });
}
