// What benchmarks ask of the playground's meshid server, written once: the two logins, a
// session for the proxy, and the pods the proxied list returns.
import { sign } from 'node:crypto';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { PROOF_CONTEXT } from '../../src/authn/index.ts';
import { call } from '../../src/cli/http.ts';
import type { Playground } from '../../src/playground/index.ts';
import { httpsClient } from './load.ts';
import { userTls } from './playground.ts';

export interface LoginTasks {
  /** `POST /api/login` with bob's bearer token; true on 200. */
  byToken: () => Promise<boolean>;
  /** alice's client certificate: a challenge, then the signed proof; true on 200. */
  byCertificate: () => Promise<boolean>;
}

export async function loginTasks(pg: Playground): Promise<LoginTasks> {
  const bob = await userTls(pg.env.kubeconfigs.bob);
  const alice = await userTls(pg.env.kubeconfigs.alice);
  const { token } = bob;
  const { cert, key } = alice;
  if (!token || !cert || !key) throw new Error('sample users lack credentials');
  const meshid = httpsClient({ ca: bob.meshidCa });
  const loginUrl = new URL('/api/login', pg.env.server.https);
  const challengeUrl = new URL('/api/login/challenge', pg.env.server.https);
  return {
    byToken: async () => (await meshid('POST', loginUrl, { authorization: `Bearer ${token}` })).status === 200,
    byCertificate: async () => {
      const c = await meshid('GET', challengeUrl, {});
      if (c.status !== 200) return false;
      const challenge = (JSON.parse(c.body) as { challenge: string }).challenge;
      const signature = sign('sha256', Buffer.from(PROOF_CONTEXT + challenge), key).toString('base64');
      return (await meshid('POST', loginUrl, {}, JSON.stringify({ certificate: cert, challenge, signature }))).status === 200;
    },
  };
}

/** A session (ID token) for bob, the user proxied calls are made as. */
export async function bobSession(pg: Playground): Promise<string> {
  const bob = await userTls(pg.env.kubeconfigs.bob);
  if (!bob.token) throw new Error('bob has no token');
  const login = await call({ method: 'POST', url: new URL('/api/login', pg.env.server.http), headers: { authorization: `Bearer ${bob.token}` } });
  return (login.body as { token: string }).token;
}

/** Pods in namespace dev for the proxied lists to return (they stay Pending: no kubelet). */
export async function seedPods(adminKubeconfig: string, count: number): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromFile(adminKubeconfig);
  const api = kc.makeApiClient(CoreV1Api);
  for (let i = 0; i < count; i++) {
    await api
      .createNamespacedPod({ namespace: 'dev', body: { metadata: { name: `bench-${i}` }, spec: { containers: [{ name: 'c', image: 'registry.invalid/none:1' }] } } })
      .catch(() => undefined);
  }
}
