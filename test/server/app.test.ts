import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { ManualClock, systemClock } from '../../src/core/index.ts';
import { issueLeaf } from '../../src/pki/index.ts';
import { PROOF_CONTEXT, SESSION_TTL_MS } from '../../src/authn/index.ts';
import { assertKubeStatus } from '../support/kube-status.ts';
import { alice, assertProblem, caps, cookieHeader, fakeApiServer, login, testApp, upstreamAt, type LoginBody, type Seen, DASHBOARD_PROXY } from '../support/app.ts';

function setCookies(res: LightMyRequestResponse): string[] {
  const value = res.headers['set-cookie'];
  return Array.isArray(value) ? value : value === undefined ? [] : [String(value)];
}

describe('login API', async () => {
  const clock = new ManualClock(Date.now());
  const { app, tokens, metrics, clientCa } = await testApp({ clock });
  after(() => app.close());

  it('logs in with Authorization: Bearer and answers user, capabilities, token, wrapped token and expiry', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/login', headers: { authorization: 'Bearer good' } });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    const body = res.json<LoginBody>();
    assert.deepEqual(body.user, { name: 'alice', groups: ['dev', 'system:authenticated'] });
    assert.deepEqual(body.capabilities, caps);
    assert.equal(body.expiresAt, new Date(clock.now() + SESSION_TTL_MS).toISOString());
    assert.deepEqual((await tokens.verify(body.token)).user, alice);
    assert.equal(await tokens.unwrap(body.wrappedToken), body.token);
  });

  it('logs in with X-Authorization, which survives the kube-apiserver service proxy', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/login', headers: { 'x-authorization': 'Bearer good' } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json<LoginBody>().user.name, 'alice');
  });

  it('answers the uid when the user has one', async () => {
    assert.deepEqual((await login(app, 'carol')).user, { name: 'carol', groups: ['qa'], uid: 'carol-uid' });
  });

  it('refuses a token Kubernetes does not accept with 401 login-failed', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/login', headers: { authorization: 'Bearer bad' } });
    assertProblem(res, 401, 'login-failed');
  });

  it('refuses an Authorization header that is not a Bearer token with 400 invalid-request', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/login', headers: { authorization: 'Basic YWxpY2U6cGFzcw==' } });
    assertProblem(res, 400, 'invalid-request');
  });

  it('refuses a body that is not JSON with 400 invalid-request', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/login', headers: { 'content-type': 'application/json' }, payload: '{not json' });
    assertProblem(res, 400, 'invalid-request');
  });

  it('refuses a request with neither a token nor a certificate proof with 400 invalid-request', async () => {
    for (const payload of [{}, { certificate: 'x' }, { certificate: '', challenge: 'c', signature: 's' }]) {
      const res = await app.inject({ method: 'POST', url: '/api/login', payload });
      assertProblem(res, 400, 'invalid-request');
    }
  });

  it('refuses a body over the limit with 413 payload-too-large', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/login', payload: { certificate: 'x'.repeat(70_000), challenge: 'c', signature: 's' } });
    assertProblem(res, 413, 'payload-too-large');
  });

  it('logs in with a client certificate that signed a challenge from GET /api/login/challenge', async () => {
    const challengeRes = await app.inject({ method: 'GET', url: '/api/login/challenge' });
    assert.equal(challengeRes.statusCode, 200);
    const { challenge, expiresAt } = challengeRes.json<{ challenge: string; expiresAt: number }>();
    assert.equal(expiresAt, clock.now() + 60_000);

    const leaf = await issueLeaf(clientCa, { commonName: 'dora', organizations: ['dev'], usage: 'client' });
    const signature = sign('sha256', Buffer.from(PROOF_CONTEXT + challenge), leaf.keyPem).toString('base64');

    const res = await app.inject({ method: 'POST', url: '/api/login', payload: { certificate: leaf.certPem, challenge, signature } });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json<LoginBody>().user, { name: 'dora', groups: ['dev', 'system:authenticated'] });

    const forged = await app.inject({ method: 'POST', url: '/api/login', payload: { certificate: leaf.certPem, challenge, signature: Buffer.from('nope').toString('base64') } });
    assertProblem(forged, 401, 'login-failed');
    const stale = await app.inject({ method: 'POST', url: '/api/login', payload: { certificate: leaf.certPem, challenge: 'x.y.z', signature } });
    assertProblem(stale, 401, 'challenge-invalid');
  });

  it('hands a session to the browser: GET /api/login?wrapped-token= sets the cookies and redirects with 303', async () => {
    const { wrappedToken, token } = await login(app);
    const res = await app.inject({ method: 'GET', url: `/api/login?wrapped-token=${encodeURIComponent(wrappedToken)}`, headers: DASHBOARD_PROXY });
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers['location'], '/');
    assert.equal(res.headers['cache-control'], 'no-store');

    const session = res.cookies.find((c) => c.name === 'meshid_session');
    const csrf = res.cookies.find((c) => c.name === 'meshid_csrf');
    assert.equal(session?.value, token);
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(session.path, '/');
    assert.ok(session.maxAge !== undefined && session.maxAge > SESSION_TTL_MS / 1000 - 60 && session.maxAge <= SESSION_TTL_MS / 1000, String(session.maxAge));
    assert.ok(csrf && csrf.value.length >= 16);
    assert.equal(csrf.sameSite, 'Strict');
    assert.notEqual(csrf.httpOnly, true, 'the dashboard must be able to read the CSRF cookie');

    const raw = setCookies(res);
    const sessionRaw = raw.find((c) => c.startsWith('meshid_session='));
    assert.ok(sessionRaw);
    assert.match(sessionRaw, /; HttpOnly/i);
    assert.match(sessionRaw, /; SameSite=Strict/i);
    // inject speaks plain HTTP, so the cookies are not marked Secure.
    for (const cookie of raw) assert.doesNotMatch(cookie, /; Secure/i);
  });

  it('refuses a wrapped token the second time with 401 wrapped-token-replayed', async () => {
    const { wrappedToken } = await login(app);
    const url = `/api/login?wrapped-token=${encodeURIComponent(wrappedToken)}`;
    assert.equal((await app.inject({ method: 'GET', url, headers: DASHBOARD_PROXY })).statusCode, 303);
    const again = await app.inject({ method: 'GET', url, headers: DASHBOARD_PROXY });
    assertProblem(again, 401, 'wrapped-token-replayed');
    assert.equal(again.headers['set-cookie'], undefined);
  });

  it('shows a browser a page, not JSON, for a used, expired or cross-site handoff; API clients keep problem+json', async () => {
    const html = { ...DASHBOARD_PROXY, accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };
    const page = (res: { statusCode: number; headers: Record<string, unknown>; body: string }, status: number, what: RegExp): void => {
      assert.equal(res.statusCode, status, res.body);
      assert.match(String(res.headers['content-type']), /^text\/html/);
      assert.match(String(res.headers['content-security-policy']), /script-src 'self'/);
      assert.doesNotMatch(res.body, /<script|<style|style=/);
      assert.match(res.body, /<code>meshid dashboard<\/code>/);
      assert.match(res.body, what);
      assert.equal(res.headers['set-cookie'], undefined);
    };
    const { wrappedToken } = await login(app);
    const url = `/api/login?wrapped-token=${encodeURIComponent(wrappedToken)}`;
    assert.equal((await app.inject({ method: 'GET', url, headers: html })).statusCode, 303);
    page(await app.inject({ method: 'GET', url, headers: html }), 401, /already used/);
    assertProblem(await app.inject({ method: 'GET', url, headers: { ...DASHBOARD_PROXY, accept: 'application/json' } }), 401, 'wrapped-token-replayed');

    const stale = await login(app);
    clock.advance(10_000);
    page(await app.inject({ method: 'GET', url: `/api/login?wrapped-token=${encodeURIComponent(stale.wrappedToken)}`, headers: html }), 401, /expired or is not valid/);
    page(await app.inject({ method: 'GET', url: '/api/login?wrapped-token=garbage', headers: html }), 401, /expired or is not valid/);

    const fresh = await login(app);
    page(await app.inject({ method: 'GET', url: `/api/login?wrapped-token=${encodeURIComponent(fresh.wrappedToken)}`, headers: { ...html, 'sec-fetch-site': 'cross-site' } }), 403, /Another site/);
  });

  it('refuses a wrapped token after 10 s, a garbage one, and a missing one', async () => {
    const { wrappedToken } = await login(app);
    clock.advance(10_000);
    assertProblem(await app.inject({ method: 'GET', url: `/api/login?wrapped-token=${encodeURIComponent(wrappedToken)}`, headers: DASHBOARD_PROXY }), 401, 'wrapped-token-invalid');
    assertProblem(await app.inject({ method: 'GET', url: '/api/login?wrapped-token=garbage', headers: DASHBOARD_PROXY }), 401, 'wrapped-token-invalid');
    assertProblem(await app.inject({ method: 'GET', url: '/api/login' }), 400, 'invalid-request');
    assertProblem(await app.inject({ method: 'GET', url: '/api/login?wrapped-token=', headers: DASHBOARD_PROXY }), 400, 'invalid-request');
  });

  it('hands a session over from JSON wrappedToken, and refuses a form POST (a cross-site form could send one) with 415', async () => {
    const form = await app.inject({
      method: 'POST',
      url: '/api/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: `wrapped-token=${encodeURIComponent((await login(app)).wrappedToken)}`,
    });
    assertProblem(form, 415, 'unsupported-media-type');
    assert.equal(form.cookies.length, 0);

    const json = await app.inject({ method: 'POST', url: '/api/login', payload: { wrappedToken: (await login(app)).wrappedToken }, headers: DASHBOARD_PROXY });
    assert.equal(json.statusCode, 303);
    assert.ok(json.cookies.some((c) => c.name === 'meshid_session'));
  });

  it('refuses a wrappedToken field that is not a non-empty string with 400 invalid-request', async () => {
    for (const wrappedToken of [123, '', null, 'x'.repeat(16 * 1024 + 1)]) {
      const res = await app.inject({ method: 'POST', url: '/api/login', payload: { wrappedToken }, headers: DASHBOARD_PROXY });
      assertProblem(res, 400, 'invalid-request');
    }
  });

  it('answers GET /api/whoami for a Bearer token, an X-Authorization token and the session cookie', async () => {
    const { token, wrappedToken } = await login(app);
    const expected = { name: 'alice', groups: ['dev', 'system:authenticated'], capabilities: caps };
    for (const headers of [{ authorization: `Bearer ${token}` }, { 'x-authorization': `Bearer ${token}` }]) {
      const res = await app.inject({ method: 'GET', url: '/api/whoami', headers });
      assert.equal(res.statusCode, 200);
      const body = res.json<Record<string, unknown>>();
      assert.deepEqual({ name: body['name'], groups: body['groups'], capabilities: body['capabilities'] }, expected);
      assert.equal(body['expiresAt'], new Date((await tokens.verify(token)).expiresAt).toISOString());
    }
    const handoff = await app.inject({ method: 'GET', url: `/api/login?wrapped-token=${encodeURIComponent(wrappedToken)}`, headers: DASHBOARD_PROXY });
    const res = await app.inject({ method: 'GET', url: '/api/whoami', headers: { cookie: cookieHeader(handoff).cookie } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json<{ name: string }>().name, 'alice');
  });

  it('answers GET /api/whoami with 401 unauthenticated when there is no credential', async () => {
    assertProblem(await app.inject({ method: 'GET', url: '/api/whoami' }), 401, 'unauthenticated');
  });

  it('answers GET /api/whoami with 401 token-invalid for a forged token', async () => {
    assertProblem(await app.inject({ method: 'GET', url: '/api/whoami', headers: { authorization: 'Bearer not.a.token' } }), 401, 'token-invalid');
    // A Kubernetes credential is not a meshid session.
    assertProblem(await app.inject({ method: 'GET', url: '/api/whoami', headers: { authorization: 'Bearer good' } }), 401, 'token-invalid');
  });

  it('answers GET /api/whoami with 401 token-expired once the session is over', async () => {
    const { token } = await login(app);
    clock.advance(SESSION_TTL_MS + 1000);
    assertProblem(await app.inject({ method: 'GET', url: '/api/whoami', headers: { authorization: `Bearer ${token}` } }), 401, 'token-expired');
  });

  it('clears both cookies on POST /api/logout', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/logout' });
    assert.equal(res.statusCode, 204);
    for (const name of ['meshid_session', 'meshid_csrf']) {
      const cookie = res.cookies.find((c) => c.name === name);
      assert.ok(cookie, name);
      assert.equal(cookie.value, '');
      assert.equal(cookie.path, '/');
      assert.ok(cookie.expires !== undefined && cookie.expires.getTime() <= Date.now(), `${name} must expire at once`);
    }
  });

  it('counts logins by type and result in /metrics', async () => {
    await app.inject({ method: 'POST', url: '/api/login', headers: { authorization: 'Bearer good' } });
    await app.inject({ method: 'POST', url: '/api/login', headers: { authorization: 'Bearer bad' } });
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.match(res.body, /# TYPE meshid_logins_total counter/);
    assert.match(res.body, /meshid_logins_total\{type="bearer",result="success"\} [1-9]/);
    assert.match(res.body, /meshid_logins_total\{type="bearer",result="failure"\} [1-9]/);
    assert.match(res.body, /meshid_http_request_duration_seconds_count\{route="\/api\/login",method="POST",status="200"\}/);
    const counter = await metrics.logins.get();
    assert.ok(counter.values.length >= 2);
  });
});

describe('browser handoff with the system clock, as in production', async () => {
  const { app } = await testApp({ clock: systemClock });
  after(() => app.close());

  it('sets the session cookie and redirects, whatever the millisecond', async () => {
    // Session expiry is whole seconds (JWT exp) while the wall clock is not, so the cookie
    // lifetime is fractional unless the handoff rounds it. Three tries make a lucky whole-second
    // pass (1 in 1000 each) practically impossible.
    for (let attempt = 0; attempt < 3; attempt++) {
      const { wrappedToken } = await login(app);
      const res = await app.inject({ method: 'GET', url: `/api/login?wrapped-token=${encodeURIComponent(wrappedToken)}`, headers: DASHBOARD_PROXY });
      assert.equal(res.statusCode, 303, res.body);
      const session = res.cookies.find((c) => c.name === 'meshid_session');
      assert.ok(session?.maxAge !== undefined && Number.isInteger(session.maxAge) && session.maxAge > 35_900);
    }
  });
});

describe('app basics', async () => {
  let ready = true;
  const { app } = await testApp({ ready: () => ready });
  after(() => app.close());

  it('answers /healthz with 200', async () => {
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: 'ok' });
  });

  it('answers /readyz with 200 when ready and 503 before', async () => {
    ready = true;
    assert.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200);
    ready = false;
    const res = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(res.statusCode, 503);
    assert.deepEqual(res.json(), { status: 'starting' });
  });

  it('answers an unknown route with 404 not-found as problem+json', async () => {
    for (const url of ['/nope', '/api/loginx', '/api/k8sx']) {
      const problem = assertProblem(await app.inject({ method: 'GET', url, headers: DASHBOARD_PROXY }), 404, 'not-found');
      assert.equal(problem.title, 'Not found');
    }
  });

  it('answers an unsupported content type with 415', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/login', headers: { 'content-type': 'application/xml' }, payload: '<x/>' });
    assertProblem(res, 415, 'unsupported-media-type');
  });

  it('answers a body over the limit with a 413, and reads the rest so the sending client gets no EPIPE', async () => {
    // The answer goes out after the headers, while the client is still writing the body. A
    // connection closed right after the answer makes those writes fail (EPIPE, ECONNRESET),
    // and where the network delays the answer a little, the client sees that error instead.
    const listening = await testApp({});
    await listening.app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const port = (listening.app.server.address() as AddressInfo).port;
      const body = Buffer.alloc(16 * 1024 * 1024, 0x20);
      const outcome = await new Promise<{ status: number | undefined; body: string; writeError: string | undefined }>((resolve) => {
        let answer: { status: number | undefined; body: string } | undefined;
        let writeError: string | undefined;
        const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/api/login', agent: false, headers: { 'content-type': 'application/json', 'content-length': String(body.length) } }, (res) => {
          const got: Buffer[] = [];
          res.on('data', (c: Buffer) => got.push(c));
          res.on('end', () => (answer = { status: res.statusCode, body: Buffer.concat(got).toString() }));
        });
        req.on('error', (error) => (writeError = String(error)));
        // Settled once the connection is gone: a write that failed has said so by then.
        req.on('close', () => resolve({ status: answer?.status, body: answer?.body ?? '', writeError }));
        req.end(body);
      });
      assert.equal(outcome.writeError, undefined, 'the client could send its whole body');
      assert.equal(outcome.status, 413);
      assert.equal((JSON.parse(outcome.body) as { code?: string }).code, 'payload-too-large');
    } finally {
      await listening.app.close();
    }
  });
});

describe('anonymous mode', async () => {
  const { app } = await testApp({ anonymousAuth: true });
  after(() => app.close());

  it('refuses every login route with 400 auth-disabled', async () => {
    assertProblem(await app.inject({ method: 'POST', url: '/api/login', headers: { authorization: 'Bearer good' } }), 400, 'auth-disabled');
    assertProblem(await app.inject({ method: 'GET', url: '/api/login/challenge' }), 400, 'auth-disabled');
    assertProblem(await app.inject({ method: 'GET', url: '/api/login?wrapped-token=x', headers: DASHBOARD_PROXY }), 400, 'auth-disabled');
  });

  it('answers /api/whoami as the anonymous server', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/whoami' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json<{ anonymous: boolean }>().anonymous, true);
  });
});

// ---------------------------------------------------------------------------------------
// The Kubernetes proxy, against a local HTTPS server that plays the apiserver.

/** A raw HTTP request to a listening app, with the path sent exactly as written. */
function rawRequest(
  port: number,
  method: string,
  path: string,
  headers: OutgoingHttpHeaders = {},
  body?: string,
  timeoutMs = 10_000,
): Promise<{ statusCode: number | undefined; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ statusCode: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer to ${method} ${path} within ${timeoutMs} ms`)));
    req.end(body);
  });
}

describe('Kubernetes proxy', async () => {
  const upstreamServer = await fakeApiServer();
  const upstream = upstreamAt(upstreamServer.port, upstreamServer.caPem, 'Bearer server-token');
  const { app, tokens } = await testApp({ upstream });
  let port = 0;
  let token = '';

  before(async () => {
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as AddressInfo).port;
    token = (await login(app)).token;
  });
  after(async () => {
    await app.close();
    upstream.close();
    upstreamServer.server.closeAllConnections();
    await new Promise((resolve) => upstreamServer.server.close(resolve));
  });

  const lastSeen = (): Seen => {
    const last = upstreamServer.seen.at(-1);
    assert.ok(last, 'the fake apiserver saw no request');
    return last;
  };

  it('refuses any client Impersonate-* header, whatever its case, with 403 impersonation-forbidden', async () => {
    const seenBefore = upstreamServer.seen.length;
    for (const name of ['Impersonate-User', 'impersonate-group', 'IMPERSONATE-EXTRA-foo', 'Impersonate-Uid']) {
      const res = await app.inject({ method: 'GET', url: '/api/k8s/api/v1/pods', headers: { authorization: `Bearer ${token}`, [name]: 'admin' } });
      const status = assertKubeStatus(res, 403, 'impersonation-forbidden');
      // kubectl prints the reason and the message alone: both say what happened and what to do.
      assert.equal(status.reason, 'Forbidden');
      assert.match(status.message, new RegExp(`${name.toLowerCase()} is not accepted.*Drop --as`));
    }
    assert.equal(upstreamServer.seen.length, seenBefore);
  });

  it('refuses a request without a session with 401 unauthenticated', async () => {
    const status = assertKubeStatus(await app.inject({ method: 'GET', url: '/api/k8s/api/v1/pods' }), 401, 'unauthenticated');
    assert.equal(status.reason, 'Unauthorized');
    assert.match(status.message, /meshid login/);
    // The same refusal anywhere but the Kubernetes proxy stays problem+json.
    assertProblem(await app.inject({ method: 'GET', url: '/api/k8sx' }), 404, 'not-found');
    assertProblem(await app.inject({ method: 'GET', url: '/api/whoami' }), 401, 'unauthenticated');
    assertKubeStatus(await app.inject({ method: 'GET', url: '/api/k8s/api/v1/pods', headers: { authorization: 'Bearer forged' } }), 401, 'token-invalid');
  });

  it('calls the apiserver as the user: impersonation, the server credential, and none of the client credentials', async () => {
    const csrf = 'c'.repeat(24);
    const res = await rawRequest(port, 'GET', '/api/k8s/api/v1/namespaces/dev/pods?limit=1', {
      authorization: `Bearer ${token}`,
      cookie: `meshid_session=${token}; meshid_csrf=${csrf}; other=1`,
      'x-csrf-token': csrf,
      'x-remote-user': 'admin',
      'x-remote-group': 'system:masters',
      'proxy-authorization': 'Basic eDp5',
      accept: 'application/json',
    });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.headers['x-from-upstream'], 'yes');
    assert.deepEqual(JSON.parse(res.body), { kind: 'Echo', method: 'GET', url: '/api/v1/namespaces/dev/pods?limit=1' });

    const seen = lastSeen();
    assert.equal(seen.url, '/api/v1/namespaces/dev/pods?limit=1');
    assert.equal(seen.headers['impersonate-user'], 'alice');
    assert.deepEqual(seen.distinct['impersonate-group'], ['dev', 'system:authenticated']);
    assert.deepEqual(seen.distinct['authorization'], ['Bearer server-token']);
    assert.equal(seen.headers['accept'], 'application/json');
    for (const name of ['cookie', 'x-authorization', 'x-csrf-token', 'x-remote-user', 'x-remote-group', 'proxy-authorization', 'impersonate-uid']) {
      assert.equal(seen.headers[name], undefined, `${name} must not reach the apiserver`);
    }
    assert.equal(JSON.stringify(seen.headers).includes(token), false, 'the session token must not reach the apiserver');
  });

  it('sends the uid and extras of a user who has them', async () => {
    const carolToken = (await login(app, 'carol')).token;
    const res = await rawRequest(port, 'GET', '/api/k8s/api/v1/namespaces', { 'x-authorization': `Bearer ${carolToken}` });
    assert.equal(res.statusCode, 201);
    const seen = lastSeen();
    assert.equal(seen.headers['impersonate-user'], 'carol');
    assert.deepEqual(seen.distinct['impersonate-group'], ['qa']);
    assert.equal(seen.headers['impersonate-uid'], 'carol-uid');
    assert.deepEqual(seen.distinct['impersonate-extra-scopes'], ['read', 'write']);
    assert.equal(seen.headers['x-authorization'], undefined);
  });

  it('streams a request body up and relays the upstream status', async () => {
    const body = JSON.stringify({ kind: 'Pod', metadata: { name: 'p' } });
    const res = await rawRequest(port, 'POST', '/api/k8s/api/v1/namespaces/dev/pods?status=418', { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body);
    assert.equal(res.statusCode, 418);
    const seen = lastSeen();
    assert.equal(seen.method, 'POST');
    assert.equal(seen.body, body);
    assert.equal(seen.headers['content-type'], 'application/json');
    assert.equal(seen.headers['content-length'], String(Buffer.byteLength(body)));
  });

  it('works through app.inject as well', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/k8s/version', headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.statusCode, 201);
    assert.equal(res.json<{ url: string }>().url, '/version');
    assert.equal(lastSeen().headers['impersonate-user'], 'alice');
  });

  it('maps /api/k8s alone to the apiserver root', async () => {
    const res = await rawRequest(port, 'GET', '/api/k8s', { authorization: `Bearer ${token}` });
    assert.equal(res.statusCode, 201);
    assert.equal(lastSeen().url, '/');
  });

  it('lets a cookie session read without a CSRF token', async () => {
    const handoff = await app.inject({ method: 'GET', url: `/api/login?wrapped-token=${encodeURIComponent((await login(app)).wrappedToken)}`, headers: DASHBOARD_PROXY });
    const { cookie } = cookieHeader(handoff);
    const res = await rawRequest(port, 'GET', '/api/k8s/api/v1/pods', { cookie });
    assert.equal(res.statusCode, 201);
    assert.equal(lastSeen().headers['impersonate-user'], 'alice');
    assert.equal(lastSeen().headers['cookie'], undefined);
  });

  it('refuses a cookie-authenticated write without a matching X-CSRF-Token with 403 csrf-token-required', async () => {
    const handoff = await app.inject({ method: 'GET', url: `/api/login?wrapped-token=${encodeURIComponent((await login(app)).wrappedToken)}`, headers: DASHBOARD_PROXY });
    const { cookie, csrf } = cookieHeader(handoff);
    const seenBefore = upstreamServer.seen.length;
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      assertKubeStatus(await app.inject({ method, url: '/api/k8s/api/v1/namespaces/dev/pods', headers: { cookie }, payload: '{}' }), 403, 'csrf-token-required');
    }
    assertKubeStatus(await app.inject({ method: 'POST', url: '/api/k8s/api/v1/namespaces/dev/pods', headers: { cookie, 'x-csrf-token': csrf + 'x' }, payload: '{}' }), 403, 'csrf-token-required');
    assertKubeStatus(
      await app.inject({ method: 'POST', url: '/api/k8s/api/v1/namespaces/dev/pods', headers: { cookie: cookie.replace(/; meshid_csrf=.*/, ''), 'x-csrf-token': csrf }, payload: '{}' }),
      403,
      'csrf-token-required',
    );
    assert.equal(upstreamServer.seen.length, seenBefore);

    const ok = await rawRequest(port, 'POST', '/api/k8s/api/v1/namespaces/dev/pods', { cookie, 'x-csrf-token': csrf, 'content-type': 'application/json' }, '{}');
    assert.equal(ok.statusCode, 201);
    assert.equal(lastSeen().headers['x-csrf-token'], undefined);
  });

  it('answers, rather than hangs, for a user whose name is outside Latin-1', async () => {
    // A client certificate with CN=张三 (UTF8String) logs in fine; its session must be usable or refused.
    const { token: unicodeToken } = await tokens.issue({ name: '张三', groups: ['开发'] }, {});
    const res = await rawRequest(port, 'GET', '/api/k8s/api/v1/pods', { authorization: `Bearer ${unicodeToken}` }, undefined, 3000);
    assert.ok(res.statusCode !== undefined && res.statusCode > 0);
  });

  it('refuses dot segments, plain or percent-encoded, with 400 invalid-request', async () => {
    const seenBefore = upstreamServer.seen.length;
    for (const path of ['/api/k8s/api/../../healthz', '/api/k8s/%2e%2e/healthz', '/api/k8s/api/%2E%2e/secrets', '/api/k8s/./api', '/api/k8s/api/v1/%2e']) {
      const res = await rawRequest(port, 'GET', path, { authorization: `Bearer ${token}` });
      assertKubeStatus(res, 400, 'invalid-request');
    }
    assert.equal(upstreamServer.seen.length, seenBefore);
  });
});

describe('Kubernetes proxy in other set-ups', async () => {
  it("impersonates system:anonymous in anonymous mode, never acting as the server's own account", async () => {
    const upstreamServer = await fakeApiServer();
    const upstream = upstreamAt(upstreamServer.port, upstreamServer.caPem, 'Bearer server-token');
    const { app } = await testApp({ anonymousAuth: true, upstream });
    try {
      const res = await app.inject({ method: 'GET', url: '/api/k8s/api/v1/pods' });
      assert.equal(res.statusCode, 201);
      const seen = upstreamServer.seen.at(-1);
      assert.ok(seen);
      assert.equal(seen.headers['authorization'], 'Bearer server-token');
      assert.equal(seen.headers['impersonate-user'], 'system:anonymous');
      assert.equal(seen.headers['impersonate-group'], 'system:unauthenticated');
      assertKubeStatus(await app.inject({ method: 'GET', url: '/api/k8s/api/v1/pods', headers: { 'impersonate-user': 'admin' } }), 403, 'impersonation-forbidden');
    } finally {
      await app.close();
      upstream.close();
      upstreamServer.server.closeAllConnections();
      await new Promise((resolve) => upstreamServer.server.close(resolve));
    }
  });

  it('never forwards the user token when the server itself has no token credential', async () => {
    const upstreamServer = await fakeApiServer();
    const upstream = upstreamAt(upstreamServer.port, upstreamServer.caPem, undefined);
    const { app } = await testApp({ upstream });
    try {
      const { token } = await login(app);
      const res = await app.inject({ method: 'GET', url: '/api/k8s/api', headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.statusCode, 201);
      const seen = upstreamServer.seen.at(-1);
      assert.ok(seen);
      assert.equal(seen.headers['authorization'], undefined);
      assert.equal(seen.headers['impersonate-user'], 'alice');
    } finally {
      await app.close();
      upstream.close();
      upstreamServer.server.closeAllConnections();
      await new Promise((resolve) => upstreamServer.server.close(resolve));
    }
  });

  it('answers 503 kube-unavailable with Retry-After when the apiserver cannot be reached', async () => {
    const { app } = await testApp();
    try {
      const { token } = await login(app);
      const res = await app.inject({ method: 'GET', url: '/api/k8s/api', headers: { authorization: `Bearer ${token}` } });
      const status = assertKubeStatus(res, 503, 'kube-unavailable');
      assert.equal(status.reason, 'ServiceUnavailable');
      assert.equal(status.details.retryAfterSeconds, 5);
      assert.equal(res.headers['retry-after'], '5');
    } finally {
      await app.close();
    }
  });
});

describe('credentials a browser sends by itself', async () => {
  const upstreamServer = await fakeApiServer();
  const upstream = upstreamAt(upstreamServer.port, upstreamServer.caPem, 'Bearer server-token');
  const { app } = await testApp({ upstream });
  const session = async (): Promise<{ cookie: string; csrf: string }> =>
    cookieHeader(await app.inject({ method: 'GET', url: `/api/login?wrapped-token=${encodeURIComponent((await login(app)).wrappedToken)}`, headers: DASHBOARD_PROXY }));
  after(async () => {
    await app.close();
    upstream.close();
    upstreamServer.server.closeAllConnections();
    await new Promise((resolve) => upstreamServer.server.close(resolve));
  });

  it('plants no session on a host name every local program shares: 403 shared-origin-refused', async () => {
    for (const host of ['127.0.0.1:5682', 'localhost:50500', '[::1]:5682', '127.0.0.2']) {
      const res = await app.inject({ method: 'GET', url: `/api/login?wrapped-token=${encodeURIComponent((await login(app)).wrappedToken)}`, headers: { host } });
      assertProblem(res, 403, 'shared-origin-refused');
      assert.equal(res.headers['set-cookie'], undefined);
    }
    const own = await app.inject({ method: 'GET', url: `/api/login?wrapped-token=${encodeURIComponent((await login(app)).wrappedToken)}`, headers: { host: 'meshid.example.com' } });
    assert.equal(own.statusCode, 303);
  });

  it('refuses the cookie for a page of another origin or site, on reads too (403 cross-origin-refused)', async () => {
    const { cookie } = await session();
    const from = (headers: Record<string, string>) => app.inject({ method: 'GET', url: '/api/whoami', headers: { cookie, ...DASHBOARD_PROXY, ...headers } });
    assert.equal((await from({ origin: 'http://k7dq2test.localhost:50500', 'sec-fetch-site': 'same-origin' })).statusCode, 200);
    assert.equal((await from({ 'sec-fetch-site': 'none' })).statusCode, 200);
    assertProblem(await from({ origin: 'http://127.0.0.1:8080' }), 403, 'cross-origin-refused');
    assertProblem(await from({ origin: 'http://k7dq2test.localhost:9999' }), 403, 'cross-origin-refused');
    assertProblem(await from({ 'sec-fetch-site': 'same-site' }), 403, 'cross-origin-refused');
    assertProblem(await from({ 'sec-fetch-site': 'cross-site' }), 403, 'cross-origin-refused');
    assertProblem(await from({ origin: 'null' }), 403, 'cross-origin-refused');
  });

  it('judges a bearer token by itself: a page cannot make the browser send one', async () => {
    const { token } = await login(app);
    const res = await app.inject({ method: 'GET', url: '/api/whoami', headers: { authorization: `Bearer ${token}`, origin: 'http://elsewhere.example', 'sec-fetch-site': 'cross-site' } });
    assert.equal(res.statusCode, 200);
  });

  it('relays no Set-Cookie from a proxied workload, and sandboxes what it answers', async () => {
    const { cookie } = await session();
    const res = await app.inject({ method: 'GET', url: '/api/k8s/api/v1/namespaces/dev/services/web:80/proxy/', headers: { cookie } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['set-cookie'], undefined);
    assert.equal(res.headers['content-security-policy'], 'sandbox');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
  });

  it('takes credentials over plain HTTP from this host only (403 https-required), and serves health and metrics to anyone', async () => {
    const remote = { remoteAddress: '10.9.8.7' };
    const { token } = await login(app);
    assertProblem(await app.inject({ method: 'GET', url: '/api/whoami', headers: { authorization: `Bearer ${token}` }, ...remote }), 403, 'https-required');
    assertProblem(await app.inject({ method: 'POST', url: '/api/login', headers: { authorization: 'Bearer good' }, ...remote }), 403, 'https-required');
    assertKubeStatus(await app.inject({ method: 'GET', url: '/api/k8s/api/v1/pods', headers: { authorization: `Bearer ${token}` }, ...remote }), 403, 'https-required');
    assert.equal((await app.inject({ method: 'GET', url: '/healthz', ...remote })).statusCode, 200);
    assert.equal((await app.inject({ method: 'GET', url: '/metrics', ...remote })).statusCode, 200);
    assert.equal((await app.inject({ method: 'GET', url: '/api/whoami', headers: { authorization: `Bearer ${token}` }, remoteAddress: '::ffff:127.0.0.1' })).statusCode, 200);
  });

  it('answers 401 unauthenticated on every route that does not opt out', async () => {
    for (const [method, url] of [['GET', '/api/whoami'], ['GET', '/api/k8s/api/v1/pods'], ['POST', '/api/k8s/api/v1/namespaces'], ['DELETE', '/api/k8s/api/v1/namespaces/dev']] as const) {
      (url.startsWith('/api/k8s') ? assertKubeStatus : assertProblem)(await app.inject({ method, url }), 401, 'unauthenticated');
    }
    assert.equal(upstreamServer.seen.length, 1, 'only the proxied call of the sandbox test reached the apiserver');
  });
});
