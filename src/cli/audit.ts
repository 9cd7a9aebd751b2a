import type { KubeConfig } from '@kubernetes/client-node';
import type { Actor, AuditTrail, SecurityReason } from '../kube/index.ts';

/**
 * The operator as the audit trail names them (asked of the apiserver), and the trail a use
 * case writes its event to: meshid's namespace, with the operator's own credentials, as the
 * server does for the dashboard. Best-effort: a user who may change keys but not create
 * events still gets their change.
 */
export async function operatorAudit(kc: KubeConfig, namespace: string): Promise<{ by: Actor; trail: AuditTrail }> {
  const { SecurityEvents, ownUsername } = await import('../kube/index.ts');
  const { createLogger } = await import('./logging.ts');
  const events = new SecurityEvents(kc, namespace, createLogger('meshid', 'warn'));
  return { by: { user: await ownUsername(kc), via: 'meshid CLI' }, trail: { record: (event) => events.recordNow(event) } };
}

/**
 * A use case's permission check, from the CLI: Kubernetes RBAC on the objects it writes,
 * asked with the operator's own credentials, is the check.
 */
export const kubernetesDecides = async (): Promise<void> => undefined;

/** Records what the operator just did, for acts that are the CLI's own (a recovery run). */
export async function auditAsOperator(kc: KubeConfig, namespace: string, reason: SecurityReason, message: string): Promise<void> {
  const { audit } = await import('../kube/index.ts');
  const { by, trail } = await operatorAudit(kc, namespace);
  await audit(trail, by, reason, message);
}
