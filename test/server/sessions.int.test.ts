import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { ManualClock, createLogger } from '../../src/core/index.ts';
import { KubeUsedOnce, SESSION_REVOCATIONS_SECRET, usedOnceName } from '../../src/authn/index.ts';
import { proveCertificate } from '../../src/cli/connect.ts';
import { call, type HttpAnswer } from '../../src/cli/http.ts';
import { decodeSecret, loadKubeConfig, readExtension } from '../../src/kube/index.ts';
import type { RunningServer } from '../../src/server/index.ts';
import { runCli } from '../support/cli.ts';
import { testEnv } from '../support/env.ts';
import { startReplica, startTestServer, within, type TestServer } from '../support/server.ts';
import { ownKubeconfig, playgroundServer } from '../support/session.ts';
import { legacyTokenSecret, waitForDefaultAccount } from '../recovery/support.ts';
import { refusalCode } from '../support/kube-status.ts';
import { OFF_NODE } from '../support/placement.ts';

const env = testEnv();
const admin = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin });
const core = admin.makeApiClient(CoreV1Api);
/** meshid's installation, and the namespace of the workloads whose tokens log in. */
const NS = 'sessions-srv';
const WORK = 'sessions-work';
/** A host name of its own: meshid plants no browser session on a loopback name. */
const BROWSER_HOST = 'sessions-test.localhost';

const code = (answer: HttpAnswer): unknown => refusalCode(answer.body);
const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });
const whoami = (base: string, token: string): Promise<HttpAnswer> => call({ method: 'GET', url: new URL('/api/whoami', base), headers: bearer(token) });
const handoff = (base: string, wrapped: string, headers: Record<string, string> = {}): Promise<HttpAnswer> =>
  call({ method: 'GET', url: new URL(`/api/login?wrapped-token=${encodeURIComponent(wrapped)}`, base), headers: { host: BROWSER_HOST, ...headers } });

interface Login {
  token: string;
  wrappedToken: string;
  expiresAt: string;
}

async function loginWith(base: string, kubeToken: string): Promise<Login> {
  const answer = await call({ method: 'POST', url: new URL('/api/login', base), headers: bearer(kubeToken) });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body as Login;
}

async function requestToken(serviceAccount: string, options: { pod?: { name: string; uid: string }; seconds?: number } = {}): Promise<string> {
  const answer = await core.createNamespacedServiceAccountToken({
    namespace: WORK,
    name: serviceAccount,
    body: {
      spec: {
        // No audiences: the apiserver's own, so the token is an API credential.
        audiences: [],
        expirationSeconds: options.seconds ?? 3600,
        ...(options.pod ? { boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: options.pod.name, uid: options.pod.uid } } : {}),
      },
    },
  });
  return answer.status?.token ?? '';
}

/** The sample user's client certificate and key, as kubectl would send them. */
async function clientCertificate(user: 'alice'): Promise<{ type: 'certificate'; certPem: string; keyPem: string }> {
  const kc = new KubeConfig();
  kc.loadFromFile(env.kubeconfigs[user]);
  const opts: { headers: Record<string, string>; cert?: unknown; key?: unknown } = { headers: {} };
  await kc.applyToHTTPSOptions(opts as Parameters<KubeConfig['applyToHTTPSOptions']>[0]);
  return { type: 'certificate', certPem: String(opts.cert), keyPem: String(opts.key) };
}

/** `tls` for the playground's own meshid, which is reached over HTTPS. */
async function challengeOf(base: string, tls?: { ca: string }): Promise<string> {
  const answer = await call({ method: 'GET', url: new URL('/api/login/challenge', base), ...(tls ? { tls } : {}) });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return (answer.body as { challenge: string }).challenge;
}

const certificateLogin = (base: string, proof: unknown, tls?: { ca: string }): Promise<HttpAnswer> =>
  call({ method: 'POST', url: new URL('/api/login', base), body: proof, ...(tls ? { tls } : {}) });

describe('sessions against the real cluster: they end with their credential, on logout, and hand over once', () => {
  let t: TestServer;
  let replica: RunningServer;
  let a = '';
  let b = '';

  before(async () => {
    // A short re-check interval, so a revoked credential shows within a test's patience.
    t = await startTestServer(NS, { sessions: { recheckSeconds: 1 } });
    replica = await startReplica(NS, { sessions: { recheckSeconds: 1 } });
    a = t.server.httpUrl;
    b = replica.httpUrl;
    await core.createNamespace({ body: { metadata: { name: WORK } } });
    await waitForDefaultAccount(core, WORK);
  });

  after(async () => {
    await replica.close();
    await t.close();
    await core.deleteNamespace({ name: WORK }).catch(() => undefined);
  });

  it('meshid recover service-account-tokens alone ends the sessions of the tokens it deletes, on every replica', async () => {
    const token = await legacyTokenSecret(core, WORK, 'legacy-token');
    const { token: session } = await loginWith(a, token);
    assert.equal((await whoami(a, session)).status, 200);
    assert.equal((await whoami(b, session)).status, 200);

    const recovered = await runCli(['--kubeconfig', env.kubeconfigs.admin, '-n', NS, 'recover', 'service-account-tokens', '--yes', '--mesh-namespaces', WORK], { timeoutMs: 120_000 });
    assert.equal(recovered.code, 0, recovered.stderr);
    // The apiserver caches an accepted token for 10 s, meshid's login cache for 10 s more; then one re-check interval.
    const refused = await within(30_000, async () => (await whoami(a, session)).status === 401 && (await whoami(b, session)).status === 401);
    assert.notEqual(refused, undefined, 'the session is refused on both replicas within 30 s');
    for (const base of [a, b]) assert.equal(code(await whoami(base, session)), 'session-credential-revoked');
  });

  it('a session from a pod-bound token is capped at the token expiry and ends when the pod is deleted', async () => {
    const pod = await core.createNamespacedPod({ namespace: WORK, body: { metadata: { name: 'bound' }, spec: { ...OFF_NODE, containers: [{ name: 'c', image: 'none' }] } } });
    const token = await requestToken('default', { pod: { name: 'bound', uid: pod.metadata?.uid ?? '' }, seconds: 600 });
    const before = Date.now();
    const login = await loginWith(a, token);
    const expires = Date.parse(login.expiresAt);
    assert.ok(expires <= before + 600_000 + 5_000 && expires > before + 500_000, `a 10-minute token gets a session of at most 10 minutes, not until ${login.expiresAt}`);
    // Until the extras of pod-bound tokens may be impersonated, /api/k8s would refuse them: whoami shows the session itself.
    assert.equal((await whoami(a, login.token)).status, 200);

    await core.deleteNamespacedPod({ namespace: WORK, name: 'bound', gracePeriodSeconds: 0 });
    const refused = await within(30_000, async () => (await whoami(b, login.token)).status === 401);
    assert.notEqual(refused, undefined, 'the session of a deleted pod is refused within 30 s');
    assert.equal(code(await whoami(b, login.token)), 'session-credential-revoked');
  });

  it('caps a session at the exec plugin expiry the CLI reports (carol: a static token, a 15-minute ExecCredential)', async () => {
    const kubeconfig = await ownKubeconfig('carol');
    const before = Date.now();
    const res = await runCli(['--kubeconfig', kubeconfig, '-n', NS, 'login', '--url', a, '-o', 'json']);
    assert.equal(res.code, 0, res.stderr);
    const expires = Date.parse((JSON.parse(res.stdout) as { expiresAt: string }).expiresAt);
    // The plugin ran somewhere between the two clock readings.
    assert.ok(expires <= Date.now() + 15 * 60_000 && expires >= before + 15 * 60_000 - 1_000, `session ends with the ExecCredential, not at ${new Date(expires).toISOString()}`);
  });

  it('a wrapped token opens one session on one replica: the same token on the other is wrapped-token-replayed', async () => {
    const login = await loginWith(a, await requestToken('default'));
    const first = await handoff(b, login.wrappedToken);
    assert.equal(first.status, 303, JSON.stringify(first.body));
    for (const base of [a, b]) {
      const again = await handoff(base, login.wrappedToken);
      assert.equal(again.status, 401);
      assert.equal(code(again), 'wrapped-token-replayed');
    }
    // The use is one Secret named after a hash of the token's id, never the id or the token.
    const marks = await core.listNamespacedSecret({ namespace: NS, labelSelector: 'meshid.io/key=used-once' });
    assert.ok(marks.items.length >= 1);
    for (const mark of marks.items) assert.deepEqual(mark.data ?? {}, {});
  });

  it('refuses a cross-site or same-site handoff (login CSRF) without using the token up, and form-encoded login bodies', async () => {
    const login = await loginWith(a, await requestToken('default'));
    for (const site of ['cross-site', 'same-site']) {
      const refused = await handoff(a, login.wrappedToken, { 'sec-fetch-site': site });
      assert.equal(refused.status, 403, site);
      assert.equal(code(refused), 'cross-origin-refused', site);
      assert.equal(refused.headers['set-cookie'], undefined);
    }
    assert.equal((await handoff(a, login.wrappedToken, { 'sec-fetch-site': 'same-origin' })).status, 303, 'same-origin passes, and the token was not spent by the refusals');
    assert.equal((await handoff(a, (await loginWith(a, await requestToken('default'))).wrappedToken, { 'sec-fetch-site': 'none' })).status, 303, 'a typed address passes');
    assert.equal((await handoff(a, (await loginWith(a, await requestToken('default'))).wrappedToken)).status, 303, 'a program without Sec-Fetch-Site passes');

    // No form bodies: a cross-site HTML form can send one without a preflight.
    const raw = await fetch(new URL('/api/login', a), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `wrapped-token=${encodeURIComponent((await loginWith(a, await requestToken('default'))).wrappedToken)}`,
    });
    assert.equal(raw.status, 415);
    assert.equal(((await raw.json()) as { code: string }).code, 'unsupported-media-type');
  });

  it('a certificate proof is accepted once: replayed to the other replica it is challenge-invalid, and one made for another meshid is refused', async () => {
    const alice = await clientCertificate('alice');
    const proof = proveCertificate(alice, await challengeOf(a));
    assert.equal((await certificateLogin(a, proof)).status, 200);
    for (const base of [b, a]) {
      const replayed = await certificateLogin(base, proof);
      assert.equal(replayed.status, 401);
      assert.equal(code(replayed), 'challenge-invalid');
    }
    // The playground's own meshid is another installation: its challenge, properly signed, is no good here.
    const playground = await playgroundServer(env);
    const foreign = proveCertificate(alice, await challengeOf(playground.url, { ca: playground.ca }));
    const refused = await certificateLogin(a, foreign);
    assert.equal(refused.status, 401);
    assert.equal(code(refused), 'challenge-invalid');
    assert.equal((await certificateLogin(playground.url, foreign, { ca: playground.ca })).status, 200, 'control: the same proof is good where it was made for');
  });

  it('logout ends the session on every replica within a second or two, through the API and through meshid logout', async () => {
    const login = await loginWith(a, await requestToken('default'));
    assert.equal((await whoami(b, login.token)).status, 200);
    const out = await call({ method: 'POST', url: new URL('/api/logout', a), headers: bearer(login.token) });
    assert.equal(out.status, 204);
    const refused = await within(2_000, async () => (await whoami(b, login.token)).status === 401);
    assert.notEqual(refused, undefined, 'the other replica refuses the session within 2 s');
    assert.equal(code(await whoami(b, login.token)), 'token-revoked');
    assert.equal(code(await whoami(a, login.token)), 'token-revoked');
    const list = decodeSecret(await core.readNamespacedSecret({ namespace: NS, name: SESSION_REVOCATIONS_SECRET }))['value'] ?? '';
    assert.match(list, /^[0-9a-f-]{36}@\d+(,[0-9a-f-]{36}@\d+)*$/, 'entries name the session and its expiry, nothing else');

    // A cookie session logs out only with its CSRF token: a cross-site form cannot end it.
    const other = await loginWith(a, await requestToken('default'));
    const cookie = await call({ method: 'POST', url: new URL('/api/logout', a), headers: { host: BROWSER_HOST, cookie: `meshid_session=${other.token}; meshid_csrf=c` } });
    assert.equal(cookie.status, 403);
    assert.equal(code(cookie), 'csrf-token-required');
    assert.equal((await whoami(b, other.token)).status, 200);

    const kubeconfig = await ownKubeconfig('bob');
    const loggedIn = await runCli(['--kubeconfig', kubeconfig, '-n', NS, 'login', '--url', a, '-o', 'json']);
    assert.equal(loggedIn.code, 0, loggedIn.stderr);
    const cliToken = (JSON.parse(loggedIn.stdout) as { token: string }).token;
    const loggedOut = await runCli(['--kubeconfig', kubeconfig, '-n', NS, 'logout', '--url', a]);
    assert.equal(loggedOut.code, 0, loggedOut.stderr);
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    assert.equal((await readExtension(kubeconfig, kc.getCurrentContext())).token, undefined, 'the kubeconfig forgets the session');
    assert.notEqual(await within(2_000, async () => (await whoami(b, cliToken)).status === 401), undefined);
    assert.equal(code(await whoami(b, cliToken)), 'token-revoked');
  });

  it('used-once marks are swept after their expiry by the next use, and a first use after that wins again', async () => {
    const clock = new ManualClock(Date.now());
    const log = createLogger('sessions-used-once', 'silent');
    const [one, two] = [new KubeUsedOnce(admin, NS, log, clock), new KubeUsedOnce(admin, NS, log, clock)];
    const id = `sweep-${Date.now()}`;
    assert.equal(await one.claim('challenge', id, clock.now() + 60_000), true);
    assert.equal(await two.claim('challenge', id, clock.now() + 60_000), false, 'a second replica loses');
    clock.advance(120_000);
    assert.ok((await two.sweep()) >= 1);
    await assert.rejects(core.readNamespacedSecret({ namespace: NS, name: usedOnceName('challenge', id) }), 'the mark is gone');
    assert.equal(await one.claim('challenge', id, clock.now() + 60_000), true);
  });
});
