import { copyFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { KubeConfig, CoreV1Api } from '@kubernetes/client-node';
import { SignJWT } from 'jose';
import { readExtension } from '../../src/kube/index.ts';
import type { PlaygroundEnv } from '../../src/playground/index.ts';
import { testEnv } from './env.ts';

/** A private copy of a sample kubeconfig (of the host playground unless told): the CLI writes its session into it. */
export async function ownKubeconfig(user: 'admin' | 'alice' | 'bob' | 'carol', env: Pick<PlaygroundEnv, 'kubeconfigs'> = testEnv()): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `meshid-kc-${user}-`));
  const file = join(dir, basename(env.kubeconfigs[user]));
  await copyFile(env.kubeconfigs[user], file);
  return file;
}

interface StoredKey {
  kid: string;
  key: string;
}

/** The session keys as stored in Secret meshid-authentication, read with admin rights. */
export async function sessionKeys(namespace = 'meshid-system'): Promise<{ keys: StoredKey[]; resourceVersion: string }> {
  const kc = new KubeConfig();
  kc.loadFromFile(testEnv().kubeconfigs.admin);
  const secret = await kc.makeApiClient(CoreV1Api).readNamespacedSecret({ namespace, name: 'meshid-authentication' });
  const raw = Buffer.from(secret.data?.['keys.json'] ?? '', 'base64').toString('utf8');
  return { keys: JSON.parse(raw) as StoredKey[], resourceVersion: secret.metadata?.resourceVersion ?? '' };
}

/** Signs a session token with the real key, as an attacker who stole it (or a test) could. */
export async function signSession(claims: Record<string, unknown>, key: StoredKey, expSeconds: number): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ groups: ['system:masters'], caps: {}, ...claims })
    .setProtectedHeader({ alg: 'HS256', kid: key.kid })
    .setIssuer('meshid')
    .setAudience('meshid-session')
    .setSubject(typeof claims['sub'] === 'string' ? claims['sub'] : 'mallory')
    .setIssuedAt(now - 3600)
    .setExpirationTime(now + expSeconds)
    .setJti('test')
    .sign(Buffer.from(key.key, 'base64url'));
}

/**
 * The playground's meshid as users reach it: its HTTPS address and the CA that signs it, both
 * from the zero-touch extension the playground writes into the sample kubeconfigs. (Its plain
 * HTTP port takes credentials only from loopback, i.e. inside the pod.)
 */
export async function playgroundServer(env: Pick<PlaygroundEnv, 'kubeconfigs' | 'server'> = testEnv()): Promise<{ url: string; ca: string }> {
  const kc = new KubeConfig();
  kc.loadFromFile(env.kubeconfigs.admin);
  const extension = await readExtension(env.kubeconfigs.admin, kc.getCurrentContext());
  const ca = Buffer.from(extension['certificate-authority-data'] ?? '', 'base64').toString('utf8');
  if (!ca.includes('BEGIN CERTIFICATE')) throw new Error(`${env.kubeconfigs.admin} names no CA for meshid's HTTPS port`);
  return { url: env.server.https, ca };
}
