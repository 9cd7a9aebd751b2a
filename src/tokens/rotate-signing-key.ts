import { audit, type Actor, type AuditTrail } from '../kube/index.ts';
import type { SigningKeyManager } from './kube-signing-keys.ts';

export interface RotateSigningKeyDeps {
  keys: Pick<SigningKeyManager, 'rotate'>;
  audit: AuditTrail;
  /** The caller's permission check (RBAC: create signingkeys.meshid.io). */
  authorize(): Promise<void>;
}

/**
 * The use case "rotate the user-token signing key": a key with the next serial signs from
 * now on, older keys keep validating until someone removes them. Answers the new serial.
 */
export async function rotateSigningKey(deps: RotateSigningKeyDeps, by: Actor): Promise<number> {
  await deps.authorize();
  const serial = await deps.keys.rotate();
  await audit(deps.audit, by, 'SigningKeyRotated', `new user-token signing key ${serial}; older keys still validate until removed`);
  return serial;
}
