import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../core/index.ts';
import { SecretClient } from '../kube/index.ts';
import type { Issuer } from './issuer.ts';
import { ADMIN_GROUP, ADMIN_USER } from './user-token.ts';

export const ADMIN_TOKEN_SECRET = 'admin-user-token';
/** The bootstrap admin token lives a year; rotate the signing key to end it sooner. */
export const ADMIN_TOKEN_VALID_FOR_MS = 365 * 24 * 60 * 60 * 1000;

/**
 * On first start, Secret `admin-user-token` gets a token for user and group
 * `mesh-system:admin`. Exactly one replica writes it; an existing one is never replaced.
 * It lives a year or `maxValidForMs`, whichever is shorter: an operator who caps token
 * lifetimes means this token too, and a server that refused to start over it would help no one.
 */
export async function bootstrapAdminToken(kc: KubeConfig, namespace: string, issuer: Issuer, maxValidForMs: number, log: Logger): Promise<void> {
  const validForMs = Math.min(ADMIN_TOKEN_VALID_FOR_MS, maxValidForMs);
  const { created } = await new SecretClient(kc).createIfAbsent({ namespace, name: ADMIN_TOKEN_SECRET, key: 'admin-user-token' }, () => ({
    value: issuer.issue({ name: ADMIN_USER, groups: [ADMIN_GROUP], validForMs }),
  }));
  if (created) log.info({ secret: ADMIN_TOKEN_SECRET }, `created the admin user token; read it with: kubectl get secret ${ADMIN_TOKEN_SECRET} -n ${namespace} --template={{.data.value}} | base64 -d`);
}
