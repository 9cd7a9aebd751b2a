import { decodeJwt } from 'jose';
import type { IssuedUserToken } from '../contract/index.ts';
import { audit, type Actor, type AuditTrail } from '../kube/index.ts';
import { issuerDisabled, type Issuer } from './issuer.ts';
import { parseUserTokenRequest } from './user-token-request.ts';

export interface IssueUserTokenDeps {
  issuer: Issuer;
  audit: AuditTrail;
  /** The caller's permission check (RBAC: create usertokens.meshid.io), asked once the request is known good. */
  authorize(): Promise<void>;
}

/**
 * The use case "issue a user token online", for Kuma's `POST /tokens/user` and the
 * dashboard alike: the request is checked first (each mistake with its own code), a control
 * plane without an issuer says so before RBAC is asked anything, and every token issued is
 * audited by its `jti`.
 */
export async function issueUserToken(deps: IssueUserTokenDeps, by: Actor, body: unknown): Promise<IssuedUserToken> {
  const request = parseUserTokenRequest(body);
  if (!deps.issuer.enabled) throw issuerDisabled();
  await deps.authorize();
  const token = deps.issuer.issue(request);
  const claims = decodeJwt(token);
  const id = String(claims.jti);
  await audit(deps.audit, by, 'TokenIssued', `issued user token ${id} for ${request.name} (groups ${request.groups.join(', ') || 'none'})`);
  return { id, token, name: request.name, groups: request.groups, expiresAt: new Date(Number(claims.exp) * 1000).toISOString() };
}
