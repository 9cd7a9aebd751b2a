import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { get as httpsGet } from 'node:https';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { KubeConfig, CoreV1Api } from '@kubernetes/client-node';
import { CompactEncrypt, SignJWT, generateKeyPair } from 'jose';
import { hkdfSync } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call } from '../../src/cli/http.ts';
import { readExtension, writeExtension } from '../../src/kube/index.ts';
import { testEnv } from '../support/env.ts';
import { runCli } from '../support/cli.ts';
import { ownKubeconfig, playgroundServer, sessionKeys, signSession } from '../support/session.ts';
import { refusalCode } from '../support/kube-status.ts';

const env = testEnv();
// Over HTTPS with the CA the playground names, as users reach it.
const server = await playgroundServer(env);
const http = new URL(server.url);
const tls = { ca: server.ca };

interface LoginJson {
  user: string;
  groups: string[];
  expiresAt: string;
  token: string;
  wrappedToken: string;
}

async function cliLogin(user: 'admin' | 'alice' | 'bob' | 'carol'): Promise<{ kubeconfig: string; login: LoginJson }> {
  const kubeconfig = await ownKubeconfig(user);
  const res = await runCli(['--kubeconfig', kubeconfig, 'login', '-o', 'json']);
  assert.equal(res.code, 0, res.stderr);
  return { kubeconfig, login: JSON.parse(res.stdout) as LoginJson };
}

const get = (path: string, headers: Record<string, string> = {}) => call({ method: 'GET', url: new URL(path, http), headers, tls });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const code = refusalCode;
/**
 * meshid plants a browser session only on a host name of its own, never on a shared loopback
 * name: the browser's host as `meshid dashboard`'s proxy names it (the TLS name stays 127.0.0.1).
 */
const browserHost = { 'x-forwarded-host': 'login-test.localhost' };

async function whoami(kubeconfig: string): Promise<{ name: string; groups: string[]; capabilities: Record<string, boolean> }> {
  const res = await runCli(['--kubeconfig', kubeconfig, 'whoami', '-o', 'json']);
  assert.equal(res.code, 0, res.stderr);
  return JSON.parse(res.stdout) as { name: string; groups: string[]; capabilities: Record<string, boolean> };
}

describe('zero-touch login against the real cluster', () => {
  it('logs bob in by token, alice by certificate and carol by exec plugin, with capabilities from RBAC', async () => {
    const bob = await whoami((await cliLogin('bob')).kubeconfig);
    assert.equal(bob.name, 'bob');
    assert.ok(bob.groups.includes('ops'));
    assert.equal(bob.capabilities['pods/list'], true, 'bob views cluster-wide');
    assert.equal(bob.capabilities['usertokens.meshid.io/create'], false);

    const alice = await whoami((await cliLogin('alice')).kubeconfig);
    assert.equal(alice.name, 'alice');
    assert.deepEqual(alice.groups, ['dev', 'system:authenticated']);
    assert.equal(alice.capabilities['pods/list'], false, 'alice may list pods in dev only, not cluster-wide');

    const carol = await whoami((await cliLogin('carol')).kubeconfig);
    assert.equal(carol.name, 'carol');
    assert.ok(carol.groups.includes('qa'));

    const admin = await whoami((await cliLogin('admin')).kubeconfig);
    assert.ok(Object.values(admin.capabilities).every(Boolean), 'system:masters may do everything');
  });

  it("proxies as the user: alice lists pods in dev and is forbidden in kube-system, also through the cluster's kubectl", async () => {
    const { login, kubeconfig } = await cliLogin('alice');
    const dev = await get('/api/k8s/api/v1/namespaces/dev/pods', bearer(login.token));
    assert.equal(dev.status, 200);
    assert.equal((dev.body as { kind: string }).kind, 'PodList');
    const system = await get('/api/k8s/api/v1/namespaces/kube-system/pods', bearer(login.token));
    assert.equal(system.status, 403);
    assert.match((system.body as { message: string }).message, /User "alice" cannot list/);

    // kubectl sends a bearer token only over TLS: use meshid's HTTPS port and its CA.
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    const ca = Buffer.from((await readExtension(kubeconfig, kc.getCurrentContext()))['certificate-authority-data'] ?? '', 'base64');
    const caFile = join(await mkdtemp(join(tmpdir(), 'meshid-ca-')), 'ca.crt');
    await writeFile(caFile, ca);
    const { stdout } = await promisify(execFile)(env.kubectl, ['--server', `${env.server.https}/api/k8s`, '--certificate-authority', caFile, '--token', login.token, 'auth', 'whoami', '-o', 'json'], { timeout: 30_000 });
    const review = JSON.parse(stdout) as { status: { userInfo: { username: string; groups: string[] } } };
    assert.equal(review.status.userInfo.username, 'alice');
    assert.ok(review.status.userInfo.groups.includes('dev'));
  });

  it('streams a watch through the proxy', async () => {
    const { login } = await cliLogin('bob');
    const name = `watched-${Date.now()}`;
    const admin = new KubeConfig();
    admin.loadFromFile(env.kubeconfigs.admin);
    const events: string[] = [];
    const controller = new AbortController();
    const watch = new Promise<void>((resolve, reject) => {
      const req = httpsGet(new URL(`/api/k8s/api/v1/namespaces/dev/configmaps?watch=true&fieldSelector=metadata.name%3D${name}`, http), { headers: bearer(login.token), ca: server.ca, signal: controller.signal }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`watch answered ${String(res.statusCode)}`));
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          events.push(chunk);
          if (events.join('').includes('"ADDED"')) resolve();
        });
      });
      req.on('error', reject);
    });
    await new Promise((r) => setTimeout(r, 300));
    await admin.makeApiClient(CoreV1Api).createNamespacedConfigMap({ namespace: 'dev', body: { metadata: { name }, data: { a: 'b' } } });
    await Promise.race([watch, new Promise((_, reject) => setTimeout(() => reject(new Error('no watch event within 10 s')), 10_000))]);
    controller.abort();
    assert.match(events.join(''), new RegExp(`"ADDED".*${name}`));
  });

  it('refuses smuggled Impersonate-* headers in any case, even with a valid session', async () => {
    const { login } = await cliLogin('alice');
    for (const header of ['Impersonate-User', 'impersonate-group', 'IMPERSONATE-EXTRA-scopes', 'Impersonate-Uid']) {
      const res = await get('/api/k8s/api/v1/namespaces/kube-system/pods', { ...bearer(login.token), [header]: 'system:admin' });
      assert.equal(res.status, 403, header);
      assert.equal(code(res.body), 'impersonation-forbidden');
    }
  });

  it('refuses forged, alg-confused and expired session tokens with 401, never 500', async () => {
    const { keys } = await sessionKeys();
    const real = keys[0];
    assert.ok(real);
    const forged = await signSession({ sub: 'mallory' }, { kid: real.kid, key: Buffer.alloc(32, 7).toString('base64url') }, 3600);
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', kid: real.kid })).toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'mallory', groups: ['system:masters'], caps: {}, iss: 'meshid', aud: 'meshid-session', exp: 9999999999, iat: 1, jti: 'x' })).toString('base64url')}.`;
    const { privateKey } = await generateKeyPair('RS256');
    const rs256 = await new SignJWT({ groups: ['system:masters'], caps: {} }).setProtectedHeader({ alg: 'RS256', kid: real.kid }).setSubject('mallory').setIssuer('meshid').setAudience('meshid-session').setIssuedAt().setExpirationTime('1h').setJti('x').sign(privateKey);
    for (const [label, token] of [['forged', forged], ['alg none', none], ['RS256 confusion', rs256]] as const) {
      const res = await get('/api/whoami', bearer(token));
      assert.equal(res.status, 401, label);
      assert.equal(code(res.body), 'token-invalid', label);
      const proxied = await get('/api/k8s/api/v1/namespaces', bearer(token));
      assert.equal(proxied.status, 401, label);
    }
    const expired = await signSession({ sub: 'alice', groups: ['dev'] }, real, -60);
    const res = await get('/api/whoami', bearer(expired));
    assert.equal(res.status, 401);
    assert.equal(code(res.body), 'token-expired');
  });

  it('logs in again by itself when the stored ID token is refused with 401', async () => {
    const { kubeconfig, login } = await cliLogin('bob');
    const { keys } = await sessionKeys();
    assert.ok(keys[0]);
    const expired = await signSession({ sub: 'bob', groups: ['ops'] }, keys[0], -60);
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    const context = kc.getCurrentContext();
    // The CLI believes its token is good for hours; the server says it is expired.
    await writeExtension(kubeconfig, context, { ...(await readExtension(kubeconfig, context)), token: expired, expiresAt: login.expiresAt });
    const me = await whoami(kubeconfig);
    assert.equal(me.name, 'bob');
    const after = await readExtension(kubeconfig, context);
    assert.notEqual(after.token, expired, 'a fresh token was stored');
  });

  it('hands a session to the browser once: cookie flags, replay refused, expired refused', async () => {
    const { login } = await cliLogin('alice');
    const first = await get(`/api/login?wrapped-token=${encodeURIComponent(login.wrappedToken)}`, browserHost);
    assert.equal(first.status, 303);
    assert.equal(first.headers['location'], '/');
    const cookies = ([] as string[]).concat(first.headers['set-cookie'] ?? []);
    const session = cookies.find((c) => c.startsWith('meshid_session='));
    assert.ok(session);
    assert.match(session, /HttpOnly/i);
    assert.match(session, /SameSite=Strict/i);
    const replay = await get(`/api/login?wrapped-token=${encodeURIComponent(login.wrappedToken)}`, browserHost);
    assert.equal(replay.status, 401);
    assert.equal(code(replay.body), 'wrapped-token-replayed');

    const { keys } = await sessionKeys();
    assert.ok(keys[0]);
    const key = new Uint8Array(hkdfSync('sha256', Buffer.from(keys[0].key, 'base64url'), new Uint8Array(0), 'meshid wrapped token v1', 32));
    const stale = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify({ t: login.token, jti: 'stale', exp: Date.now() - 1000 })))
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: keys[0].kid })
      .encrypt(key);
    const expired = await get(`/api/login?wrapped-token=${encodeURIComponent(stale)}`, browserHost);
    assert.equal(expired.status, 401);
    assert.equal(code(expired.body), 'wrapped-token-invalid');

    // The cookie authenticates reads, but a write without the CSRF header is refused.
    const cookieHeader = cookies.map((c) => c.split(';')[0]).join('; ');
    const read = await get('/api/k8s/api/v1/namespaces/dev/pods', { cookie: cookieHeader });
    assert.equal(read.status, 200);
    const write = await call({ method: 'POST', url: new URL('/api/k8s/api/v1/namespaces/dev/configmaps', http), tls, headers: { cookie: cookieHeader }, body: { metadata: { name: 'csrf' } } });
    assert.equal(write.status, 403);
    assert.equal(code(write.body), 'csrf-token-required');
  });

  it('sets the cookie Secure on HTTPS', async () => {
    const { kubeconfig, login } = await cliLogin('bob');
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    const ext = await readExtension(kubeconfig, kc.getCurrentContext());
    const ca = Buffer.from(ext['certificate-authority-data'] ?? '', 'base64').toString('utf8');
    const res = await call({ method: 'GET', url: new URL(`/api/login?wrapped-token=${encodeURIComponent(login.wrappedToken)}`, env.server.https), headers: browserHost, tls: { ca } });
    assert.equal(res.status, 303);
    const session = ([] as string[]).concat(res.headers['set-cookie'] ?? []).find((c) => c.startsWith('meshid_session='));
    assert.match(session ?? '', /;\s*Secure/i);
  });

  it('answers bad login input with problem+json codes', async () => {
    const noCredential = await call({ method: 'POST', url: new URL('/api/login', http), tls, body: { hello: 'world' } });
    assert.equal(noCredential.status, 400);
    assert.equal(code(noCredential.body), 'invalid-request');
    const badToken = await call({ method: 'POST', url: new URL('/api/login', http), tls, headers: bearer('not-a-kube-token') });
    assert.equal(badToken.status, 401);
    assert.equal(code(badToken.body), 'login-failed');
    assert.equal(badToken.headers['content-type'], 'application/problem+json; charset=utf-8');
    const huge = await call({ method: 'POST', url: new URL('/api/login', http), tls, body: { certificate: 'x'.repeat(200_000), challenge: 'c', signature: 's' } });
    assert.equal(huge.status, 413);
  });

  it('recreates a deleted session key and refuses the sessions the old one signed', async () => {
    const { login } = await cliLogin('bob');
    const before = await sessionKeys();
    const kc = new KubeConfig();
    kc.loadFromFile(env.kubeconfigs.admin);
    await kc.makeApiClient(CoreV1Api).deleteNamespacedSecret({ namespace: 'meshid-system', name: 'meshid-authentication' });
    let after: Awaited<ReturnType<typeof sessionKeys>> | undefined;
    for (let i = 0; i < 100 && !after; i++) {
      after = await sessionKeys().catch(() => undefined);
      if (!after) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(after, 'the Secret came back within 10 s');
    assert.notEqual(after.keys[0]?.kid, before.keys[0]?.kid);
    let status = 0;
    for (let i = 0; i < 50 && status !== 401; i++) {
      status = (await get('/api/whoami', bearer(login.token))).status;
      if (status !== 401) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status, 401, 'the old session is refused');
    const again = await cliLogin('bob');
    assert.equal((await get('/api/whoami', bearer(again.login.token))).status, 200);
  });
});
