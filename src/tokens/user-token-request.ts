import { MeshidError } from '../core/index.ts';
import { parseDuration, type IssueRequest } from './issuer.ts';

const MAX_GROUPS = 64;
const MAX_NAME = 253;

/**
 * Checks a request for a user token (Kuma's `POST /tokens/user` body, or the dashboard's
 * `generateUserToken`) and answers it in the issuer's terms. Each mistake has its own code.
 */
export function parseUserTokenRequest(body: unknown): IssueRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new MeshidError('ERR_INVALID_ARGUMENT', 'send JSON {"name", "groups", "validFor"}');
  const { name, groups, validFor } = body as Record<string, unknown>;
  if (typeof name !== 'string' || name.trim() === '' || name.length > MAX_NAME) throw new MeshidError('ERR_TOKEN_NAME_REQUIRED', `name is required (a string of at most ${MAX_NAME} characters)`);
  if (groups !== undefined && groups !== null && (!Array.isArray(groups) || groups.length > MAX_GROUPS || !groups.every((g) => typeof g === 'string' && g.length > 0 && g.length <= MAX_NAME))) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', `groups must be a list of at most ${MAX_GROUPS} non-empty strings`);
  }
  let validForMs = NaN;
  if (typeof validFor === 'string') {
    try {
      validForMs = parseDuration(validFor);
    } catch {
      // reported below with its own code
    }
  }
  if (!(validForMs > 0)) throw new MeshidError('ERR_VALID_FOR_INVALID', 'validFor is required, e.g. "24h"; zero and unparseable durations are refused');
  return { name, groups: (groups as string[] | null | undefined) ?? [], validForMs };
}
