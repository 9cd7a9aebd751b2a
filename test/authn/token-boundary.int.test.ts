// Bearer logins against the real apiserver: a pod-bound service-account token (whose
// TokenReview carries user extras) gets a session that works through /api/k8s; a token for
// the mesh CA is not an API credential; and a flood of garbage tokens from one client costs at
// most one bucket of TokenReviews, the rest answered 429 without asking Kubernetes.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { call } from '../../src/cli/http.ts';
import { loadKubeConfig } from '../../src/kube/index.ts';
import { testEnv } from '../support/env.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { refusalCode } from '../support/kube-status.ts';

const env = testEnv();
const admin = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin });
const core = admin.makeApiClient(CoreV1Api);
const NS = 'token-boundary';
const WORK = 'token-boundary-work';
const NODE = 'token-boundary-node';
// Small, so that a flood reaches the limit at once and the refill during it is negligible.
const RATE = { burst: 20, perSecond: 0.5 };

const code = refusalCode;

describe('bearer logins and TokenReview', () => {
  let t: TestServer;
  const post = (path: string, token: string) => call({ method: 'POST', url: new URL(path, t.server.httpUrl), headers: { authorization: `Bearer ${token}` }, body: {} });
  const get = (path: string, token: string) => call({ method: 'GET', url: new URL(path, t.server.httpUrl), headers: { authorization: `Bearer ${token}` } });
  const reviewed = async (): Promise<number> =>
    (await t.server.metrics.tokenReviews.get()).values.find((v) => v.labels.source === 'login' && v.labels.outcome === 'reviewed')?.value ?? 0;

  before(async () => {
    t = await startTestServer(NS, { tokenReviews: RATE });
    await core.createNamespace({ body: { metadata: { name: WORK } } });
    await core.createNamespacedServiceAccount({ namespace: WORK, body: { metadata: { name: 'reader' } } });
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({ namespace: WORK, body: { metadata: { name: 'pod-reader' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }] } });
    await rbac.createNamespacedRoleBinding({
      namespace: WORK,
      body: { metadata: { name: 'pod-reader' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' }, subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: WORK }] },
    });
  });
  after(async () => {
    await t.close();
    await core.deleteNamespace({ name: WORK }).catch(() => undefined);
    await core.deleteNode({ name: NODE }).catch(() => undefined);
  });

  it('logs in with a pod-bound service-account token: the session carries its extras and lists pods through /api/k8s', async () => {
    // The playground has no kubelet: the pod and its node exist only as objects, which is all
    // TokenRequest needs to bind a token to them (as the kubelet's projected token is).
    const node = await core.createNode({ body: { metadata: { name: NODE } } });
    const pod = await core.createNamespacedPod({ namespace: WORK, body: { metadata: { name: 'bound' }, spec: { serviceAccountName: 'reader', nodeName: NODE, containers: [{ name: 'c', image: 'none' }] } } });
    const request = await core.createNamespacedServiceAccountToken({
      namespace: WORK,
      name: 'reader',
      body: { spec: { audiences: [], expirationSeconds: 600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: 'bound', uid: pod.metadata?.uid ?? '' } } },
    });
    const podToken = request.status?.token ?? '';

    const login = await post('/api/login', podToken);
    assert.equal(login.status, 200, JSON.stringify(login.body));
    const session = (login.body as { token: string }).token;

    const me = await get('/api/whoami', session);
    assert.equal(me.status, 200, JSON.stringify(me.body));
    const who = me.body as { name: string; extra?: Record<string, string[]> };
    assert.equal(who.name, `system:serviceaccount:${WORK}:reader`);
    assert.deepEqual(who.extra?.['authentication.kubernetes.io/pod-name'], ['bound']);
    assert.deepEqual(who.extra?.['authentication.kubernetes.io/pod-uid'], [pod.metadata?.uid]);
    assert.deepEqual(who.extra?.['authentication.kubernetes.io/node-name'], [NODE]);
    assert.deepEqual(who.extra?.['authentication.kubernetes.io/node-uid'], [node.metadata?.uid]);
    assert.match(who.extra?.['authentication.kubernetes.io/credential-id']?.[0] ?? '', /^JTI=/);

    // Every extra goes out as Impersonate-Extra-*; one the ClusterRole did not grant would make this 403.
    const pods = await get(`/api/k8s/api/v1/namespaces/${WORK}/pods`, session);
    assert.equal(pods.status, 200, JSON.stringify(pods.body));
    assert.deepEqual((pods.body as { items: { metadata: { name: string } }[] }).items.map((p) => p.metadata.name), ['bound']);
    // And RBAC still decides: the account may not read Secrets.
    assert.equal((await get(`/api/k8s/api/v1/namespaces/${WORK}/secrets`, session)).status, 403);
  });

  it('refuses a token minted for the mesh CA (audience istio-ca) as a login (401 login-failed)', async () => {
    const request = await core.createNamespacedServiceAccountToken({ namespace: WORK, name: 'reader', body: { spec: { audiences: ['istio-ca'], expirationSeconds: 600 } } });
    const res = await post('/api/login', request.status?.token ?? '');
    assert.equal(res.status, 401, JSON.stringify(res.body));
    assert.equal(code(res.body), 'login-failed');
  });

  it('200 garbage logins from one client: at most one bucket of TokenReviews, the rest 429 too-many-requests with Retry-After', async () => {
    const before = await reviewed();
    const started = performance.now();
    const answers = [];
    // Shaped like a static token, so only a TokenReview could judge it; each one new, so no refusal is remembered.
    for (let i = 0; i < 200; i++) answers.push(await post('/api/login', randomBytes(24).toString('base64url')));
    const seconds = (performance.now() - started) / 1000;
    const asked = (await reviewed()) - before;

    const refused = answers.filter((a) => a.status === 401);
    const limited = answers.filter((a) => a.status === 429);
    assert.equal(refused.length + limited.length, 200, `only 401 and 429: ${JSON.stringify([...new Set(answers.map((a) => a.status))])}`);
    assert.ok(refused.every((a) => code(a.body) === 'login-failed'));
    assert.ok(limited.every((a) => code(a.body) === 'too-many-requests' && Number(a.headers['retry-after']) >= 1), JSON.stringify(limited[0]));
    // The bucket's burst, plus what it refilled while the flood ran.
    assert.ok(asked <= RATE.burst + Math.ceil(seconds * RATE.perSecond), `${asked} TokenReviews in ${seconds.toFixed(1)} s`);
    assert.equal(refused.length, asked, 'every 401 cost a review, no 429 did');
    assert.ok(limited.length >= 200 - RATE.burst - Math.ceil(seconds * RATE.perSecond));
  });
});
