import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { testEnv } from '../support/env.ts';
import { kubeRequest } from '../support/kube.ts';

const env = testEnv();

interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string; groups?: string[] };
  audiences?: string[];
}

async function tokenReview(token: string, audiences?: string[]): Promise<TokenReviewStatus> {
  const res = await kubeRequest(env.kubeconfigs.admin, 'POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, ...(audiences ? { audiences } : {}) } },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return (res.body as { status: TokenReviewStatus }).status;
}

async function canAlice(verb: string, namespace: string): Promise<boolean> {
  const res = await kubeRequest(env.kubeconfigs.admin, 'POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
    body: {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: { user: 'alice', groups: ['dev', 'system:authenticated'], resourceAttributes: { verb, resource: 'pods', namespace } },
    },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return (res.body as { status: { allowed: boolean } }).status.allowed;
}

function tokenOf(kubeconfig: string): string {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const token = kc.getCurrentUser()?.token;
  assert.ok(token, 'bob authenticates with a static token');
  return token;
}

describe('local cluster (real kube-apiserver and etcd)', () => {
  it('authenticates bob by his static token in a TokenReview, with his groups', async () => {
    const status = await tokenReview(tokenOf(env.kubeconfigs.bob));
    assert.equal(status.authenticated, true);
    assert.equal(status.user?.username, 'bob');
    assert.ok(status.user?.groups?.includes('ops'));
    assert.ok(status.user?.groups?.includes('system:authenticated'));
  });

  it('rejects an unknown token in a TokenReview', async () => {
    const status = await tokenReview('not-a-real-token');
    assert.notEqual(status.authenticated, true);
  });

  it("answers SubjectAccessReviews from alice's RBAC: pods in dev yes, kube-system no", async () => {
    assert.equal(await canAlice('list', 'dev'), true);
    assert.equal(await canAlice('get', 'dev'), true);
    assert.equal(await canAlice('delete', 'dev'), false);
    assert.equal(await canAlice('list', 'kube-system'), false);
  });

  it('lets admin impersonate alice in group dev: pods in dev allowed, kube-system forbidden', async () => {
    const asAlice = { 'Impersonate-User': 'alice', 'Impersonate-Group': 'dev' };
    const dev = await kubeRequest(env.kubeconfigs.admin, 'GET', '/api/v1/namespaces/dev/pods', { headers: asAlice });
    assert.equal(dev.status, 200);
    assert.equal((dev.body as { kind: string }).kind, 'PodList');
    const system = await kubeRequest(env.kubeconfigs.admin, 'GET', '/api/v1/namespaces/kube-system/pods', { headers: asAlice });
    assert.equal(system.status, 403);
    assert.match((system.body as { message: string }).message, /User "alice" cannot list resource "pods"/);
  });

  it('does not let alice impersonate anyone', async () => {
    const res = await kubeRequest(env.kubeconfigs.alice, 'GET', '/api/v1/namespaces/dev/pods', { headers: { 'Impersonate-User': 'admin' } });
    assert.equal(res.status, 403);
  });

  it("works with carol's exec-plugin kubeconfig through @kubernetes/client-node", async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(env.kubeconfigs.carol);
    assert.equal((kc.getCurrentUser()?.exec as { apiVersion?: string } | undefined)?.apiVersion, 'client.authentication.k8s.io/v1');
    const api = kc.makeApiClient(CoreV1Api);
    const pods = await api.listNamespacedPod({ namespace: 'dev' });
    assert.ok(Array.isArray(pods.items));
    // The plugin's token really is carol's: her RBAC stops at dev.
    await assert.rejects(api.listNamespacedPod({ namespace: 'kube-system' }), (error: { code?: number }) => error.code === 403);
  });

  it('issues a TokenRequest with audience istio-ca that validates only for that audience', async () => {
    const ns = 'dev';
    const sa = `tr-${Date.now()}`;
    const created = await kubeRequest(env.kubeconfigs.admin, 'POST', `/api/v1/namespaces/${ns}/serviceaccounts`, {
      body: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa } },
    });
    assert.equal(created.status, 201);
    const res = await kubeRequest(env.kubeconfigs.admin, 'POST', `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, {
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: ['istio-ca'], expirationSeconds: 600 } },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const token = (res.body as { status: { token: string } }).status.token;

    const good = await tokenReview(token, ['istio-ca']);
    assert.equal(good.authenticated, true);
    assert.equal(good.user?.username, `system:serviceaccount:${ns}:${sa}`);
    assert.deepEqual(good.audiences, ['istio-ca']);

    const wrong = await tokenReview(token, ['some-other-audience']);
    assert.notEqual(wrong.authenticated, true);
    // Not an API credential either: the apiserver's audiences are its issuer alone.
    const api = await tokenReview(token);
    assert.notEqual(api.authenticated, true);
  });

  it('runs kube-controller-manager: the dev namespace gets its default ServiceAccount', async () => {
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (await kubeRequest(env.kubeconfigs.admin, 'GET', '/api/v1/namespaces/dev/serviceaccounts/default')).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status, 200);
  });
});

describe('the kubectl built with the cluster', () => {
  it("runs carol's exec plugin through client-go: `kubectl auth whoami` says carol", async () => {
    const { stdout } = await promisify(execFile)(env.kubectl, ['--kubeconfig', env.kubeconfigs.carol, 'auth', 'whoami', '-o', 'json'], { timeout: 30_000 });
    const review = JSON.parse(stdout) as { status: { userInfo: { username: string; groups: string[] } } };
    assert.equal(review.status.userInfo.username, 'carol');
    assert.ok(review.status.userInfo.groups.includes('qa'));
  });
});
