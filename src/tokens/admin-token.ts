import type { KubeConfig } from '@kubernetes/client-node';
import { decodeProtectedHeader } from 'jose';
import { systemClock, type Clock, type Logger } from '../core/index.ts';
import { SecretClient, decodeSecret, type SecretSpec } from '../kube/index.ts';
import { signUserToken, type IssueRequest, type Issuer, type SigningKey } from './issuer.ts';
import { ADMIN_GROUP, ADMIN_USER } from './user-token.ts';

export const ADMIN_TOKEN_SECRET = 'admin-user-token';
/** The bootstrap admin token lives a year; rotate the signing key to end it sooner. */
const ADMIN_TOKEN_VALID_FOR_MS = 365 * 24 * 60 * 60 * 1000;
/** Where the token sits in the Secret: `kubectl get secret admin-user-token --template={{.data.value}}`. */
const VALUE = 'value';

const spec = (namespace: string): SecretSpec => ({ namespace, name: ADMIN_TOKEN_SECRET, key: 'admin-user-token' });
const adminRequest = (validForMs: number): IssueRequest => ({ name: ADMIN_USER, groups: [ADMIN_GROUP], validForMs });

/**
 * On first start, Secret `admin-user-token` gets a token for user and group
 * `mesh-system:admin`. Exactly one replica writes it; an existing one is never replaced.
 * It lives a year or `maxValidForMs`, whichever is shorter: an operator who caps token
 * lifetimes means this token too, and a server that refused to start over it would help no one.
 */
export async function bootstrapAdminToken(kc: KubeConfig, namespace: string, issuer: Issuer, maxValidForMs: number, log: Logger): Promise<void> {
  const validForMs = Math.min(ADMIN_TOKEN_VALID_FOR_MS, maxValidForMs);
  const { created } = await new SecretClient(kc).createIfAbsent(spec(namespace), () => ({ [VALUE]: issuer.issue(adminRequest(validForMs)) }));
  if (created) log.info({ secret: ADMIN_TOKEN_SECRET }, `created the admin user token; read it with: kubectl get secret ${ADMIN_TOKEN_SECRET} -n ${namespace} --template={{.data.value}} | base64 -d`);
}

/** The `kid` of a token's header (the serial of the key that signed it), if it has one. */
function kidOf(token: string): string | undefined {
  try {
    const kid = decodeProtectedHeader(token).kid;
    return typeof kid === 'string' ? kid : undefined;
  } catch {
    return undefined;
  }
}

/** Which key signed the stored admin token; undefined when there is no Secret `admin-user-token`. */
export async function adminTokenKid(kc: KubeConfig, namespace: string): Promise<{ kid: string | undefined } | undefined> {
  const secret = await new SecretClient(kc).read(namespace, ADMIN_TOKEN_SECRET);
  return secret ? { kid: kidOf(decodeSecret(secret)[VALUE] ?? '') } : undefined;
}

/**
 * Re-issues an existing admin token with `key` (recovery, once new signing keys replace the
 * old), for a year as bootstrap does. Answers whether it wrote: nothing is written when there
 * is no Secret, or when it already holds a token of that key (a resumed run).
 */
export async function reissueAdminToken(kc: KubeConfig, namespace: string, key: SigningKey, clock: Clock = systemClock): Promise<boolean> {
  const secrets = new SecretClient(kc);
  const admin = await secrets.read(namespace, ADMIN_TOKEN_SECRET);
  if (!admin) return false;
  const current = decodeSecret(admin)[VALUE];
  if (current && kidOf(current) === key.kid) return false;
  await secrets.replace(spec(namespace), admin.metadata?.resourceVersion ?? '', { [VALUE]: signUserToken(key, adminRequest(ADMIN_TOKEN_VALID_FOR_MS), clock) });
  return true;
}
