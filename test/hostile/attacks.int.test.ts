// The named attacks of issue #8 that need the real cluster: RBAC behind the impersonating
// proxy, TokenReview behind the workload CA, and the server's own listeners (slowloris). Each
// must fail to get in. The rest are in attacks.test.ts.
import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { readFile, writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { status } from '@grpc/grpc-js';
import { call } from '../../src/cli/http.ts';
import { SERVICE_ACCOUNT } from '../../src/install/index.ts';
import { decodeSecret, loadKubeConfig, serviceAccountKubeconfig } from '../../src/kube/index.ts';
import { ADMIN_TOKEN_SECRET, SIGNING_KEY_PREFIX, parsePrivateKey } from '../../src/tokens/index.ts';
import { testEnv } from '../support/env.ts';
import { kubeRequest } from '../support/kube.ts';
import { rawExchange } from '../support/raw-http.ts';
import { startTestServer, within, type TestServer } from '../support/server.ts';
import { createCertificate, makeCsr, workloadToken } from '../support/workload.ts';
import { b64 } from './arbitraries.ts';
import { refusalCode } from '../support/kube-status.ts';
import { OFF_NODE } from '../support/placement.ts';

const env = testEnv();
const admin = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin });
const core = admin.makeApiClient(CoreV1Api);
const NS = 'attacks-int';
const WORK = 'attacks-work';
const spiffe = (ns: string, sa: string): string => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;
// Small on purpose, so that slow clients are cut within seconds.
const LIMITS = { headersTimeoutMs: 1_000, requestTimeoutMs: 2_000, keepAliveTimeoutMs: 1_000, idleTimeoutMs: 1_500 };

describe('named attacks against the real cluster', () => {
  let t: TestServer;
  let base = '';
  let root = '';
  let caRoot = '';
  before(async () => {
    t = await startTestServer(NS, LIMITS);
    base = t.server.httpUrl;
    root = decodeSecret(await core.readNamespacedSecret({ namespace: NS, name: ADMIN_TOKEN_SECRET }))['value'] ?? '';
    caRoot = await readFile(env.ca.rootCert, 'utf8');
  });
  after(async () => {
    await t.close();
    await core.deleteNamespace({ name: WORK }).catch(() => undefined);
  });

  const api = (method: string, path: string, token: string, body?: unknown) => call({ method, url: new URL(path, base), headers: { authorization: `Bearer ${token}` }, ...(body === undefined ? {} : { body }) });
  const code = refusalCode;

  it('a user token claiming group system:masters gains nothing beyond what RBAC grants the named user', async () => {
    // How it is kept out, layer by layer:
    // 1. The server's service account may impersonate any user and group (RBAC cannot say
    //    "any group but system:masters"), and the apiserver trims spaces around header values.
    //    Shown here with that account's own credentials, straight at the apiserver:
    const file = join(await mkdtemp(join(tmpdir(), 'attacks-sa-')), 'server.kubeconfig');
    await writeFile(file, await serviceAccountKubeconfig(admin, NS, SERVICE_ACCOUNT, 600));
    const direct = await kubeRequest(file, 'GET', '/api/v1/namespaces/kube-system/secrets', { headers: { 'Impersonate-User': 'eve', 'Impersonate-Group': ' system:masters' } });
    assert.equal(direct.status, 200, 'the server account could make anyone cluster-admin: meshid itself must refuse');
    // 2. So meshid never issues a token that names a system: group, padded or not ...
    for (const groups of [['system:masters'], [' system:masters']]) {
      const res = await api('POST', '/tokens/user', root, { name: 'eve', groups, validFor: '1h' });
      assert.equal(res.status, 400);
      assert.equal(code(res.body), 'token-identity-reserved');
    }
    // 3. ... never accepts one, even signed with its real key (read here as an attacker who stole it would) ...
    const keySecret = decodeSecret(await core.readNamespacedSecret({ namespace: NS, name: `${SIGNING_KEY_PREFIX}1` }));
    const privateKey = parsePrivateKey(keySecret['value'] ?? '');
    const now = Math.floor(Date.now() / 1000);
    const input = `${b64({ alg: 'RS256', kid: '1', typ: 'JWT' })}.${b64({ Name: 'eve', Groups: [' system:masters'], exp: now + 3600, nbf: now - 5, iat: now - 5, jti: 'forged' })}`;
    const masters = `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
    const refused = await api('GET', '/api/k8s/api/v1/namespaces/kube-system/secrets', masters);
    assert.equal(refused.status, 401);
    assert.equal(code(refused.body), 'token-invalid');
    // 4. ... and a token that passes is impersonated as exactly its name and groups, so
    //    Kubernetes RBAC decides: eve in group dev may not read kube-system's Secrets.
    const eve = await api('POST', '/tokens/user', root, { name: 'eve', groups: ['dev'], validFor: '1h' });
    assert.equal(eve.status, 200);
    const denied = await api('GET', '/api/k8s/api/v1/namespaces/kube-system/secrets', String(eve.body));
    assert.equal(denied.status, 403);
    assert.equal((denied.body as { reason?: string }).reason, 'Forbidden');
    assert.match((denied.body as { message: string }).message, /User "mesh-system:eve" cannot list resource "secrets"/);
  });

  it('a CSR for another SPIFFE ID', async () => {
    const token = await workloadToken(admin, WORK, 'web');
    const other = await createCertificate(env.ca.address, caRoot, token, (await makeCsr({ uris: [spiffe('kube-system', 'default')] })).csr);
    assert.equal(other.code, status.PERMISSION_DENIED);
    assert.match(other.details ?? '', /ERR_CSR_IDENTITY/);
    const own = await createCertificate(env.ca.address, caRoot, token, (await makeCsr({ uris: [spiffe(WORK, 'web')] })).csr);
    assert.equal(own.code, undefined, `the same token and its own identity pass: ${own.details ?? ''}`);
  });

  it('a service-account token with the wrong audience, or for a deleted pod or service account', async () => {
    const { csr } = await makeCsr();
    const apiAudience = await workloadToken(admin, WORK, 'web', ['https://kubernetes.default.svc']);
    assert.equal((await createCertificate(env.ca.address, caRoot, apiAudience, csr)).code, status.UNAUTHENTICATED);

    const doomed = await workloadToken(admin, WORK, 'doomed');
    await core.deleteNamespacedServiceAccount({ namespace: WORK, name: 'doomed' });
    assert.equal((await createCertificate(env.ca.address, caRoot, doomed, csr)).code, status.UNAUTHENTICATED);

    // A pod-bound token, as the kubelet projects it: valid while the pod exists. The
    // playground has no kubelet, so the pod is never scheduled and is deleted at once.
    const pod = await core.createNamespacedPod({ namespace: WORK, body: { metadata: { name: 'bound' }, spec: { ...OFF_NODE, serviceAccountName: 'web', containers: [{ name: 'c', image: 'none' }] } } });
    const bound = await core.createNamespacedServiceAccountToken({
      namespace: WORK,
      name: 'web',
      body: { spec: { audiences: ['istio-ca'], expirationSeconds: 600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: 'bound', uid: pod.metadata?.uid ?? '' } } },
    });
    const podToken = bound.status?.token ?? '';
    assert.equal((await createCertificate(env.ca.address, caRoot, podToken, csr)).code, undefined, 'accepted while the pod exists');
    await core.deleteNamespacedPod({ namespace: WORK, name: 'bound', gracePeriodSeconds: 0 });
    // The CA reuses an accepted review for 10 s (SERVICE_ACCOUNT_REVIEW_TTL_MS), so the refusal comes within that.
    const refused = await within(15_000, async () => (await createCertificate(env.ca.address, caRoot, podToken, csr)).code === status.UNAUTHENTICATED);
    assert.notEqual(refused, undefined, 'a token of a deleted pod is refused within 15 s');
  });

  it('slowloris-style slow requests (the server times out)', async () => {
    const port = Number(new URL(base).port);
    const problemCode = (body: string): unknown => (JSON.parse(body) as { code?: unknown }).code;
    // Header bytes a few at a time, never finished: each byte keeps the connection from idling.
    const head = 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ';
    const slowHead = await rawExchange(port, [...head, ...'a'.repeat(200)], { gapMs: 50, timeoutMs: 15_000 });
    assert.equal(slowHead.status, 408);
    assert.equal(problemCode(slowHead.body), 'request-timeout');
    assert.ok(slowHead.closedAfterMs !== undefined && slowHead.closedAfterMs < 5_000, `closed within 5 s, not ${String(slowHead.closedAfterMs)} ms`);

    // Headers at once, then a body a byte at a time.
    const start = 'POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n';
    const slowBody = await rawExchange(port, [start, ...'{'.repeat(300)], { gapMs: 50, timeoutMs: 15_000 });
    assert.equal(slowBody.status, 408);
    assert.equal(problemCode(slowBody.body), 'request-timeout');
    assert.ok(slowBody.closedAfterMs !== undefined && slowBody.closedAfterMs < 6_000, `closed within 6 s, not ${String(slowBody.closedAfterMs)} ms`);

    // A connection that sends nothing at all.
    const silent = await rawExchange(port, [], { timeoutMs: 15_000 });
    assert.ok(silent.closedAfterMs !== undefined && silent.closedAfterMs < 5_000, `closed within 5 s, not ${String(silent.closedAfterMs)} ms`);

    // Oversized headers are answered by the listener, with a problem too.
    const big = await rawExchange(port, [`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(20 * 1024)}\r\n\r\n`]);
    assert.equal(big.status, 431);
    assert.equal(problemCode(big.body), 'headers-too-large');
  });

  it('a watch through /api/k8s keeps streaming past the request and idle timeouts', async () => {
    const bob = new KubeConfig();
    bob.loadFromFile(env.kubeconfigs.bob);
    const login = await call({ method: 'POST', url: new URL('/api/login', base), headers: { authorization: `Bearer ${bob.getCurrentUser()?.token ?? ''}` } });
    assert.equal(login.status, 200);
    const session = (login.body as { token: string }).token;
    const name = `watched-${Date.now()}`;
    const controller = new AbortController();
    let text = '';
    const watch = fetch(`${base}/api/k8s/api/v1/namespaces/dev/configmaps?watch=true&fieldSelector=metadata.name%3D${name}`, { headers: { authorization: `Bearer ${session}` }, signal: controller.signal }).then(async (res) => {
      assert.equal(res.status, 200);
      const decoder = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        text += decoder.decode(chunk);
        if (text.includes('"ADDED"')) break;
      }
    });
    // Quiet for longer than both limits, then an event.
    await new Promise((r) => setTimeout(r, LIMITS.requestTimeoutMs + LIMITS.idleTimeoutMs));
    await core.createNamespacedConfigMap({ namespace: 'dev', body: { metadata: { name }, data: { a: 'b' } } });
    try {
      await Promise.race([watch, new Promise((_, reject) => setTimeout(() => reject(new Error('no watch event within 10 s')), 10_000))]);
    } finally {
      controller.abort();
      await core.deleteNamespacedConfigMap({ namespace: 'dev', name }).catch(() => undefined);
    }
    assert.match(text, new RegExp(`"ADDED".*${name}`));
  });
});
