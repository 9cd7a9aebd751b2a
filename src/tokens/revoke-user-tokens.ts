import { MeshidError } from '../core/index.ts';
import { audit, type Actor, type AuditTrail } from '../kube/index.ts';

/**
 * The one format of a token id, wherever a revocation comes from (CLI, dashboard): its `jti`
 * claim, 1 to 256 printable ASCII characters without spaces. meshid's own are UUIDs; a token
 * issued elsewhere (offline, another control plane's key) may carry any such id.
 */
const TOKEN_ID = /^[\x21-\x7e]{1,256}$/;

export const TOKEN_ID_FORMAT = 'a token id (its jti claim): 1 to 256 printable ASCII characters, no spaces';

export function checkTokenId(id: string): string {
  if (!TOKEN_ID.test(id)) throw new MeshidError('ERR_INVALID_ARGUMENT', `${JSON.stringify(id)} is not ${TOKEN_ID_FORMAT}`);
  return id;
}

export interface RevokeUserTokensDeps {
  /** Secret `user-token-revocations` (KubeRevocations), or an in-memory list in tests. */
  revocations: { revoke(jtis: string[]): Promise<void> };
  audit: AuditTrail;
  /** The caller's permission check (RBAC: create revocations.meshid.io), asked once the ids are known good. */
  authorize(): Promise<void>;
}

/**
 * The use case "revoke user tokens": ids are checked, added to Secret
 * `user-token-revocations` (every replica refuses them within seconds), and audited as one
 * event naming them all.
 */
export async function revokeUserTokens(deps: RevokeUserTokensDeps, by: Actor, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) throw new MeshidError('ERR_INVALID_ARGUMENT', 'name at least one token id to revoke');
  const jtis = ids.map(checkTokenId);
  await deps.authorize();
  await deps.revocations.revoke(jtis);
  await audit(deps.audit, by, 'TokenRevoked', `revoked user token${jtis.length === 1 ? '' : 's'} ${jtis.join(', ')}`);
}
