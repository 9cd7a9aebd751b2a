// Issue #13, items 3, 8 and 9 against the real cluster: credentials a browser sends by itself
// (the session cookie, a TLS client certificate) used by a page of another origin, over a
// websocket upgrade and over unsafe methods, and a proxied workload's answer on meshid's origin.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { call } from '../../src/cli/http.ts';
import { loadKubeConfig } from '../../src/kube/index.ts';
import { createAuthority, issueLeaf } from '../../src/pki/index.ts';
import { testEnv } from '../support/env.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { refusalCode } from '../support/kube-status.ts';

const env = testEnv();
/** The browser-facing host `meshid dashboard`'s local proxy announces in X-Forwarded-Host. */
const OWN_HOST = 'q4rbrowsertest.localhost:50500';
const OWN_ORIGIN = `http://${OWN_HOST}`;

const code = refusalCode;

/** The first line and headers of what the server answers to a raw HTTP/1.1 upgrade over TLS. */
function upgrade(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const lines = [`GET ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
    let text = '';
    const timer = setTimeout(() => socket.destroy(), 10_000);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      // A 101 keeps the connection open: its head is all there is to read.
      if (/^HTTP\/1\.1 101/.test(text) && text.includes('\r\n\r\n')) socket.destroy();
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, body: text.slice(text.indexOf('\r\n\r\n') + 4) });
    });
    socket.on('error', reject);
  });
}

/** A POST with a body of the given type, as an HTML form would send it (call() always sends JSON). */
function postRaw(url: URL, type: string, body: string, tls: RequestOptions): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: 'POST', headers: { 'content-type': type, 'content-length': String(Buffer.byteLength(body)) }, ...tls }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('credentials a browser sends by itself, against the real cluster', () => {
  let t: TestServer;
  let adminCa: Awaited<ReturnType<typeof createAuthority>>;
  let cookie = '';
  let csrf = '';
  let httpsPort = 0;

  before(async () => {
    adminCa = await createAuthority('browser-admin-clients');
    const caFile = join(await mkdtemp(join(tmpdir(), 'meshid-browser-ca-')), 'ca.crt');
    await writeFile(caFile, adminCa.certPem);
    t = await startTestServer('browser-creds', { adminClientCerts: { caFile } });
    httpsPort = Number(new URL(t.server.httpsUrl).port);
    // alice's session, handed to a browser the way `meshid dashboard`'s proxy does it.
    const bob = loadKubeConfig({ kubeconfig: env.kubeconfigs.bob }).getCurrentUser()?.token ?? '';
    const login = await call({ method: 'POST', url: new URL('/api/login', t.server.httpsUrl), headers: { authorization: `Bearer ${bob}` }, tls: { rejectUnauthorized: false } });
    assert.equal(login.status, 200);
    const wrapped = (login.body as { wrappedToken: string }).wrappedToken;
    const handoff = await call({ method: 'GET', url: new URL(`/api/login?wrapped-token=${encodeURIComponent(wrapped)}`, t.server.httpsUrl), headers: { 'x-forwarded-host': OWN_HOST, 'sec-fetch-site': 'same-origin' }, tls: { rejectUnauthorized: false } });
    assert.equal(handoff.status, 303);
    const set = ([] as string[]).concat(handoff.headers['set-cookie'] ?? []);
    const pick = (name: string): string => set.map((c) => c.split(';')[0] ?? '').find((c) => c.startsWith(`${name}=`)) ?? '';
    cookie = [pick('meshid_session'), pick('meshid_csrf')].join('; ');
    csrf = pick('meshid_csrf').split('=')[1] ?? '';
    assert.ok(cookie.includes('meshid_session='));
  });
  after(async () => t.close());

  it('a page on another port opens a websocket watch with the cookie: 403 cross-origin-refused, the same origin gets 101 from the apiserver', async () => {
    const path = '/api/k8s/api/v1/namespaces/dev/pods?watch=1';
    for (const origin of ['http://127.0.0.1:8080', 'http://localhost:50500', 'null']) {
      const res = await upgrade(httpsPort, path, { Cookie: cookie, Origin: origin, 'X-Forwarded-Host': OWN_HOST });
      assert.equal(res.status, 403, origin);
      assert.equal(code(JSON.parse(res.body)), 'cross-origin-refused');
    }
    const sameSite = await upgrade(httpsPort, path, { Cookie: cookie, Origin: OWN_ORIGIN, 'Sec-Fetch-Site': 'same-site', 'X-Forwarded-Host': OWN_HOST });
    assert.equal(sameSite.status, 403);
    const exec = await upgrade(httpsPort, '/api/k8s/api/v1/namespaces/dev/pods/web/exec?command=sh&stdin=true', { Cookie: cookie, Origin: 'http://127.0.0.1:8080', 'X-Forwarded-Host': OWN_HOST });
    assert.equal(exec.status, 403);
    assert.equal(code(JSON.parse(exec.body)), 'cross-origin-refused');
    const own = await upgrade(httpsPort, path, { Cookie: cookie, Origin: OWN_ORIGIN, 'X-Forwarded-Host': OWN_HOST });
    assert.equal(own.status, 101, 'the dashboard itself may still watch');
  });

  it('a cross-site read with the cookie is refused before Kubernetes is asked', async () => {
    const tls = { rejectUnauthorized: false };
    const from = (headers: Record<string, string>) => call({ method: 'GET', url: new URL('/api/k8s/api/v1/namespaces/dev/pods', t.server.httpsUrl), headers: { cookie, 'x-forwarded-host': OWN_HOST, ...headers }, tls });
    assert.equal((await from({ 'sec-fetch-site': 'same-origin', origin: OWN_ORIGIN })).status, 200);
    const cross = await from({ 'sec-fetch-site': 'same-site' });
    assert.equal(cross.status, 403);
    assert.equal(code(cross.body), 'cross-origin-refused');
    const mutation = await call({ method: 'POST', url: new URL('/api/graphql', t.server.httpsUrl), headers: { cookie, 'x-csrf-token': csrf, origin: 'http://127.0.0.1:8080', 'x-forwarded-host': OWN_HOST }, body: { query: 'mutation { rotateSigningKey { serial } }' }, tls });
    assert.equal(mutation.status, 403);
    assert.equal(code(mutation.body), 'cross-origin-refused');
  });

  it('a cross-site form runs nothing with the admin client certificate; kumactl-style calls still work', async () => {
    const client = await issueLeaf(adminCa, { commonName: 'admin', usage: 'client' });
    const tls = { rejectUnauthorized: false, cert: client.certPem, key: client.keyPem };
    const url = new URL('/tokens/user', t.server.httpsUrl);
    const crossSite = await call({ method: 'POST', url, headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }, body: { name: 'eve', validFor: '1h' }, tls });
    assert.equal(crossSite.status, 403);
    assert.equal(code(crossSite.body), 'cross-origin-refused');
    const gql = await call({ method: 'POST', url: new URL('/api/graphql', t.server.httpsUrl), headers: { origin: 'https://evil.example' }, body: { query: 'mutation { rotateSigningKey { serial } }' }, tls });
    assert.equal(gql.status, 403);
    assert.equal(code(gql.body), 'cross-origin-refused');
    // An HTML form can send only urlencoded, multipart or text/plain bodies: none is accepted.
    for (const type of ['application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x']) {
      const form = await postRaw(url, type, 'name=eve&validFor=1h', tls);
      assert.equal(form.status, 415, type);
      assert.equal(code(JSON.parse(form.body)), 'unsupported-media-type');
    }
    const kumactl = await call({ method: 'POST', url, body: { name: 'ci', validFor: '1h' }, tls });
    assert.equal(kumactl.status, 200, 'a program (no Origin, no Sec-Fetch-Site) with the certificate still issues');
  });

  it("a workload's page through the service proxy plants no cookie and runs no script on meshid's origin", async () => {
    // The apiserver's own answer through a proxy path: whatever comes back is sandboxed.
    const res = await call({ method: 'GET', url: new URL('/api/k8s/api/v1/namespaces/default/services/https:kubernetes:443/proxy/version', t.server.httpsUrl), headers: { cookie, 'x-forwarded-host': OWN_HOST }, tls: { rejectUnauthorized: false } });
    assert.equal(res.headers['content-security-policy'], 'sandbox');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['set-cookie'], undefined);
  });
});
