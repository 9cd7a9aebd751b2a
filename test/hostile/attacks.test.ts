// The named attacks of issue #8 that need no cluster, each one a test that must fail to get
// in, through the outermost surface an attacker reaches: the HTTP API (a listening app with
// in-memory credentials and a recording stand-in for the apiserver behind the proxy), the CA's
// gRPC listener, and the agent's Unix socket. The ones that need real Kubernetes (RBAC,
// TokenReview, the server's own listener limits) are in attacks.int.test.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { SignJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import { ManualClock, createLogger } from '../../src/core/index.ts';
import { SESSION_TTL_MS } from '../../src/authn/index.ts';
import { limitListener } from '../../src/server/limits.ts';
import { bearer, fetchSecrets, request, startHarness } from '../agent/support.ts';
import { assertKubeStatus, kubeStatusCode } from '../support/kube-status.ts';
import { TOKEN_ISSUERS_GROUP, alice, assertProblem, cookieHeader, fakeApiServer, login, memoryUserTokens, testApp, upstreamAt, type TestApp, DASHBOARD_PROXY } from '../support/app.ts';
import { startMemoryCa } from '../support/memory-ca.ts';
import { rawExchange } from '../support/raw-http.ts';
import { createCertificate, makeCsr } from '../support/workload.ts';
import { b64 } from './arbitraries.ts';

const HOUR_S = 3600;

describe('named attacks that must fail to get in', async () => {
  const clock = new ManualClock(Date.now());
  const userTokens = memoryUserTokens(clock);
  const upstreamServer = await fakeApiServer();
  const upstream = upstreamAt(upstreamServer.port, upstreamServer.caPem, 'Bearer server-token');
  let t: TestApp;
  let port = 0;
  let issuer = '';
  const now = (): number => Math.floor(clock.now() / 1000);
  /** A compact JWS with any header and claims, signed by whatever the attack needs. */
  const jws = (header: Record<string, unknown>, claims: Record<string, unknown>, signature: (input: string) => Buffer): string => {
    const input = `${b64(header)}.${b64(claims)}`;
    return `${input}.${signature(input).toString('base64url')}`;
  };
  const claims = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ Name: 'mallory', Groups: ['dev'], exp: now() + HOUR_S, nbf: now() - 5, iat: now() - 5, jti: randomBytes(8).toString('hex'), ...extra });
  const rs256 = (input: string): Buffer => sign('sha256', Buffer.from(input), userTokens.signingKey.privateKey);
  const whoami = (headers: Record<string, string>) => t.app.inject({ method: 'GET', url: '/api/whoami', headers });
  const proxied = (headers: Record<string, string>, method = 'GET') => t.app.inject({ method, url: '/api/k8s/api/v1/namespaces/kube-system/secrets', headers, ...(method === 'GET' ? {} : { payload: '{}' }) });
  /** Asserts the attack reached nothing behind the proxy. */
  const untouched = async (attack: () => Promise<unknown>): Promise<void> => {
    const before = upstreamServer.seen.length;
    await attack();
    assert.equal(upstreamServer.seen.length, before, 'a request reached the apiserver');
  };

  before(async () => {
    t = await testApp({ clock, upstream, userTokens: userTokens.deps });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    port = (t.app.server.address() as AddressInfo).port;
    issuer = (await t.tokens.issue({ name: 'ops', groups: [TOKEN_ISSUERS_GROUP] }, {})).token;
  });
  after(async () => {
    await t.app.close();
    upstream.close();
    upstreamServer.server.closeAllConnections();
    await new Promise((resolve) => upstreamServer.server.close(resolve));
  });

  it('alg none', async () => {
    const session = (await login(t.app)).token;
    const unsigned = [
      jws({ alg: 'none', kid: '1', typ: 'JWT' }, claims(), () => Buffer.alloc(0)),
      jws({ alg: 'none', kid: decodeProtectedHeader(session).kid }, { ...decodeJwt(session), sub: 'admin', groups: ['system:masters'] }, () => Buffer.alloc(0)),
    ];
    for (const token of unsigned) {
      assertProblem(await whoami({ authorization: `Bearer ${token}` }), 401, 'token-invalid');
      await untouched(async () => assertKubeStatus(await proxied({ authorization: `Bearer ${token}` }), 401, 'token-invalid'));
    }
  });

  it('RS/HS confusion', async () => {
    // HMAC keyed with the public key, which an attacker has: accepted only by a verifier that lets the token pick its algorithm.
    for (const format of ['pkcs1', 'spki'] as const) {
      const secret = userTokens.publicKey.export({ type: format, format: 'pem' });
      const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: '1' }).sign(Buffer.from(secret));
      assertProblem(await whoami({ authorization: `Bearer ${token}` }), 401, 'token-invalid');
    }
    // The other way round: a session (HS256) forged as RS256 with an attacker's key under the session kid.
    const session = (await login(t.app)).token;
    const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const forged = jws({ alg: 'RS256', kid: decodeProtectedHeader(session).kid }, decodeJwt(session), (input) => sign('sha256', Buffer.from(input), attacker));
    assertProblem(await whoami({ authorization: `Bearer ${forged}` }), 401, 'token-invalid');
  });

  it('a kid with path traversal', async () => {
    for (const kid of ['../1', '../../../../etc/passwd', '1/../1', './1', '%2e%2e%2f1', '/dev/null']) {
      const token = jws({ alg: 'RS256', kid, typ: 'JWT' }, claims(), rs256);
      assertProblem(await whoami({ authorization: `Bearer ${token}` }), 401, 'token-invalid');
    }
  });

  it('an expired token, and one not yet valid', async () => {
    assertProblem(await whoami({ authorization: `Bearer ${jws({ alg: 'RS256', kid: '1', typ: 'JWT' }, claims({ exp: now() - 1 }), rs256)}` }), 401, 'token-expired');
    assertProblem(await whoami({ authorization: `Bearer ${jws({ alg: 'RS256', kid: '1', typ: 'JWT' }, claims({ nbf: now() + HOUR_S }), rs256)}` }), 401, 'token-invalid');
    const session = (await login(t.app)).token;
    clock.advance(SESSION_TTL_MS);
    try {
      assertProblem(await whoami({ authorization: `Bearer ${session}` }), 401, 'token-expired');
    } finally {
      // Back to the present the other attacks' sessions live in.
      clock.advance(-SESSION_TTL_MS);
    }
  });

  it('a revoked jti', async () => {
    const issued = await t.app.inject({ method: 'POST', url: '/tokens/user', headers: { authorization: `Bearer ${issuer}` }, payload: { name: 'robot', groups: ['bots'], validFor: '1h' } });
    assert.equal(issued.statusCode, 200, issued.body);
    assert.equal((await whoami({ authorization: `Bearer ${issued.body}` })).statusCode, 200);
    userTokens.revoked.add(String(decodeJwt(issued.body).jti));
    assertProblem(await whoami({ authorization: `Bearer ${issued.body}` }), 401, 'token-revoked');
    await untouched(async () => assertKubeStatus(await proxied({ authorization: `Bearer ${issued.body}` }), 401, 'token-revoked'));
  });

  it('a replayed wrapped token', async () => {
    const { wrappedToken } = await login(t.app);
    const url = `/api/login?wrapped-token=${encodeURIComponent(wrappedToken)}`;
    assert.equal((await t.app.inject({ method: 'GET', url, headers: DASHBOARD_PROXY })).statusCode, 303);
    const replay = await t.app.inject({ method: 'GET', url, headers: DASHBOARD_PROXY });
    assertProblem(replay, 401, 'wrapped-token-replayed');
    assert.equal(replay.headers['set-cookie'], undefined);
    assertProblem(await t.app.inject({ method: 'POST', url: '/api/login', payload: { wrappedToken }, headers: DASHBOARD_PROXY }), 401, 'wrapped-token-replayed');
  });

  it('a forged cookie', async () => {
    const { token } = await login(t.app);
    const [h, p, s] = token.split('.');
    const forgeries = [
      // Signed with a key the attacker made up, under the real kid.
      await new SignJWT({ ...decodeJwt(token), sub: 'admin', groups: ['system:masters'] }).setProtectedHeader({ alg: 'HS256', kid: String(decodeProtectedHeader(token).kid) }).sign(randomBytes(32)),
      // The real signature over an edited payload.
      `${h ?? ''}.${b64({ ...decodeJwt(token), sub: 'admin' })}.${s ?? ''}`,
      `${h ?? ''}.${p ?? ''}.`,
      'forged',
    ];
    for (const cookie of forgeries) {
      assertProblem(await whoami({ cookie: `meshid_session=${cookie}` }), 401, 'token-invalid');
      await untouched(async () => assertKubeStatus(await proxied({ cookie: `meshid_session=${cookie}` }), 401, 'token-invalid'));
    }
  });

  it('cross-site POST without the CSRF defence', async () => {
    const handoff = await t.app.inject({ method: 'GET', url: `/api/login?wrapped-token=${encodeURIComponent((await login(t.app, 'good')).wrappedToken)}`, headers: DASHBOARD_PROXY });
    const { cookie, csrf } = cookieHeader(handoff);
    // What a page on another site can make a browser send: the cookies, but never our header.
    await untouched(async () => {
      for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) assertKubeStatus(await proxied({ cookie }, method), 403, 'csrf-token-required');
      assertKubeStatus(await proxied({ cookie, 'x-csrf-token': `${csrf}x` }, 'POST'), 403, 'csrf-token-required');
    });
    const form = await t.app.inject({ method: 'POST', url: '/tokens/user', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'name=eve&validFor=1h' });
    assertProblem(form, 403, 'csrf-token-required');
  });

  it('Impersonate-* smuggling, including case and duplicate tricks', async () => {
    const session = (await login(t.app)).token;
    const heads = [
      ['Impersonate-User: admin', 'impersonate-user: admin'],
      ['IMPERSONATE-GROUP: system:masters', 'Impersonate-Group: system:masters'],
      ['iMpErSoNaTe-uId: 0'],
      ['Impersonate-Extra-Scopes: cluster-admin'],
      ['Impersonate_User: admin'],
      ['X-Note: a', 'Impersonate-User: admin', 'Impersonate-User: admin'],
    ];
    await untouched(async () => {
      for (const lines of heads) {
        const res = await rawExchange(port, [`GET /api/k8s/api/v1/namespaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${session}\r\n${lines.join('\r\n')}\r\nConnection: close\r\n\r\n`]);
        assert.equal(res.status, 403, lines.join(' | '));
        assert.equal(kubeStatusCode(res.body), 'impersonation-forbidden');
      }
      // A header folded onto the line before it (obs-fold) is not HTTP/1.1 this server speaks.
      const folded = await rawExchange(port, [`GET /api/k8s/api/v1/namespaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${session}\r\nX-Note: a\r\n Impersonate-User: admin\r\nConnection: close\r\n\r\n`]);
      assert.equal(folded.status, 400);
    });
  });

  it('a user token claiming group system:masters', async () => {
    // At issue: reserved names are refused, also when padded (the apiserver trims header values) or cased.
    for (const groups of [['system:masters'], [' system:masters'], ['\tSystem:Masters']]) {
      const res = await t.app.inject({ method: 'POST', url: '/tokens/user', headers: { authorization: `Bearer ${issuer}` }, payload: { name: 'eve', groups, validFor: '1h' } });
      assertProblem(res, 400, 'token-identity-reserved');
    }
    // At validation: correctly signed with the real key, still refused.
    for (const Groups of [['system:masters'], ['dev', ' system:masters'], ['system:masters\t']]) {
      const token = jws({ alg: 'RS256', kid: '1', typ: 'JWT' }, claims({ Groups }), rs256);
      assertProblem(await whoami({ authorization: `Bearer ${token}` }), 401, 'token-invalid');
      await untouched(async () => assertKubeStatus(await proxied({ authorization: `Bearer ${token}` }), 401, 'token-invalid'));
    }
    // Through the proxy: an identity that would arrive changed is never impersonated, whatever its source.
    const padded = (await t.tokens.issue({ ...alice, groups: [' system:masters'] }, {})).token;
    await untouched(async () => assertKubeStatus(await proxied({ authorization: `Bearer ${padded}` }), 403, 'forbidden'));
  });

  it('oversized headers and bodies', async () => {
    const big = JSON.stringify({ name: 'x'.repeat(70 * 1024), validFor: '1h' });
    assertProblem(await t.app.inject({ method: 'POST', url: '/api/login', headers: { 'content-type': 'application/json' }, payload: big }), 413, 'payload-too-large');
    assertProblem(await t.app.inject({ method: 'POST', url: '/tokens/user', headers: { authorization: `Bearer ${issuer}`, 'content-type': 'application/json' }, payload: big }), 413, 'payload-too-large');
    // Over Node's 16 KiB of headers: answered by the listener before any route, as the server sets it up.
    limitListener(t.app.server, { headersTimeoutMs: 10_000, requestTimeoutMs: 60_000, keepAliveTimeoutMs: 72_000, idleTimeoutMs: 120_000 }, createLogger('attacks', 'silent'));
    const head = await rawExchange(port, [`GET /api/whoami HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(20 * 1024)}\r\n\r\n`]);
    assert.equal(head.status, 431);
    assert.match(head.headers['content-type'] ?? '', /^application\/problem\+json/);
    assert.equal((JSON.parse(head.body) as { code: string }).code, 'headers-too-large');
    assert.notEqual(head.closedAfterMs, undefined, 'the connection is closed after the answer');

    // gRPC: the CA takes at most 64 KiB per message; the agent refuses a "token" no service account would have.
    const ca = await startMemoryCa();
    try {
      ca.tokens.set('token-web', { namespace: 'shop', serviceAccount: 'web' });
      const huge = await createCertificate(ca.address, ca.rootPem, 'token-web', `${(await makeCsr()).csr}${' '.repeat(70 * 1024)}`);
      assert.equal(huge.code, status.RESOURCE_EXHAUSTED);
      assert.equal((await createCertificate(ca.address, ca.rootPem, 'token-web', 'A'.repeat(40 * 1024))).code, status.INVALID_ARGUMENT);
      // Known to the reviewer, yet refused for its size before any TokenReview would be asked.
      ca.tokens.set('x'.repeat(20 * 1024), { namespace: 'shop', serviceAccount: 'web' });
      assert.equal((await createCertificate(ca.address, ca.rootPem, 'x'.repeat(20 * 1024), (await makeCsr()).csr)).code, status.UNAUTHENTICATED);
    } finally {
      await ca.close();
    }
    const h = await startHarness();
    try {
      h.reviewer.add('x'.repeat(20 * 1024), 'shop', 'web');
      h.reviewer.add('token-web', 'shop', 'web');
      await assert.rejects(fetchSecrets(h.client(), bearer('x'.repeat(20 * 1024)), request(['default'])), { code: status.UNAUTHENTICATED });
      assert.equal(h.reviewer.calls, 0, 'an oversized token never reaches TokenReview');
      await assert.rejects(fetchSecrets(h.client(), bearer('token-web'), request(Array.from({ length: 100_000 }, (_, i) => `n${i}`))), { code: status.INVALID_ARGUMENT });
    } finally {
      await h.close();
    }
  });

  it('the SDS socket opened by a user without permission', async () => {
    // The agent's socket is 0660 in a 0750 directory: only its owner and its group get in.
    const base = await mkdtemp(join(tmpdir(), 'meshid-sds-perm-'));
    await chmod(base, 0o755);
    const h = await startHarness({ socketDir: join(base, 'sds') });
    const PROXIES_GID = 4242;
    try {
      await chown(join(base, 'sds'), 0, PROXIES_GID);
      await chown(h.socketPath, 0, PROXIES_GID);
      const connectAs = (gid: number): string => {
        const script = `require('net').connect(${JSON.stringify(h.socketPath)}).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); })`;
        const run = spawnSync('setpriv', ['--reuid=65534', `--regid=${gid}`, '--clear-groups', process.execPath, '-e', script], { encoding: 'utf8', timeout: 10_000 });
        assert.equal(run.status, 0, run.stderr);
        return run.stdout.trim();
      };
      assert.equal(connectAs(65534), 'EACCES');
      assert.equal(connectAs(PROXIES_GID), 'connected');
    } finally {
      await h.close();
      await rm(base, { recursive: true, force: true });
    }
  });
});
