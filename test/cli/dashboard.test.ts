import assert from 'node:assert/strict';
import { createServer as createHttpServer, request, type IncomingHttpHeaders } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect as netConnect, type AddressInfo } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { MeshidError, isMeshidError } from '../../src/core/index.ts';
import { createAuthority, issueLeaf, pemBundle } from '../../src/pki/index.ts';
import { pickMeshidPod, portForwardUpstream, type PortForwarder } from '../../src/cli/dashboard-port-forward.ts';
import { localhostName, serviceProxyUpstream, startDashboardProxy, urlUpstream, type ProxyAddress, type RunningDashboardProxy } from '../../src/cli/dashboard-proxy.ts';
import { defaultOpener, openFile, redirectPage, writeLaunchFile } from '../../src/cli/browser-open.ts';
import { refreshTarget } from '../support/browser.ts';

const closers: (() => Promise<unknown> | void)[] = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

function pod(name: string, o: { phase?: string; ready?: boolean; deleting?: boolean } = {}): V1Pod {
  return {
    metadata: { name, ...(o.deleting ? { deletionTimestamp: new Date() } : {}) },
    status: { phase: o.phase ?? 'Running', conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
  };
}

/** The proxy's login, for tests that never open the handoff link. */
const noHandoff = (): Promise<string> => Promise.reject(new Error('this test opens no handoff link'));

/**
 * A raw request to the local proxy on 127.0.0.1 with its own Host unless the test sends
 * another: nothing here resolves a `.localhost` name.
 */
function rawGet(
  proxy: { port: number; host: string },
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port: proxy.port, path, method, headers: { host: proxy.host, ...headers } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    })
      .on('error', reject)
      .end();
  });
}

describe('dashboard --port-forward: pod selection', () => {
  it('picks the first running, ready, not terminating meshid pod by name', () => {
    const pods = [pod('meshid-c'), pod('meshid-a', { deleting: true }), pod('meshid-b', { ready: false }), pod('meshid-0', { phase: 'Pending' }), pod('meshid-d')];
    assert.equal(pickMeshidPod(pods, 'meshid-system'), 'meshid-c');
  });

  it('stays on the pod it uses while that pod is Ready, and leaves it once it terminates', () => {
    assert.equal(pickMeshidPod([pod('meshid-a'), pod('meshid-b')], 'mesh', 'meshid-b'), 'meshid-b');
    assert.equal(pickMeshidPod([pod('meshid-a'), pod('meshid-b', { deleting: true })], 'mesh', 'meshid-b'), 'meshid-a');
    assert.equal(pickMeshidPod([pod('meshid-a'), pod('meshid-c')], 'mesh', 'meshid-b'), 'meshid-a', 'a pod that is gone');
  });

  it('says in one line that there is no running pod, and what to use instead', () => {
    assert.throws(
      () => pickMeshidPod([pod('meshid-a', { ready: false }), pod('meshid-b', { phase: 'Pending' })], 'mesh'),
      (error: unknown) => isMeshidError(error, 'ERR_NOT_FOUND') && error.message === 'no running meshid pod in mesh: use the default service proxy or --url' && !error.message.includes('\n'),
    );
    assert.throws(() => pickMeshidPod([], 'mesh'), /no running meshid pod in mesh/);
  });
});

/** A meshid pod's HTTPS port on loopback, with a serving certificate from a CA of its own; it records what reaches it. */
async function fakeMeshidPod(): Promise<{ ca: string; port: number; seen: string[] }> {
  const ca = await createAuthority('test-meshid');
  const leaf = await issueLeaf(ca, { commonName: 'meshid', usage: 'server', dnsNames: ['localhost'] });
  const seen: string[] = [];
  const meshid = createHttpsServer({ cert: pemBundle(leaf.certPem, ca.certPem), key: leaf.keyPem }, (req, res) => {
    seen.push(`${req.method ?? ''} ${req.url ?? ''} auth=${req.headers.authorization ?? ''}`);
    res.writeHead(303, { location: '/', 'set-cookie': ['meshid_session=abc; Path=/; HttpOnly; SameSite=Strict'] }).end();
  });
  await new Promise<void>((r) => meshid.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => meshid.close(r)));
  return { ca: ca.certPem, port: (meshid.address() as AddressInfo).port, seen };
}

/** Stands in for pods/portforward: pods in `reachable` tunnel to `port`, any other pod is refused as the apiserver refuses a deleted one. */
function fakeForwarder(port: number, reachable: string[], calls: string[]): PortForwarder {
  return {
    portForward(namespace: string, podName: string, ports: number[], output: Writable, _err: Writable | null, input: Readable) {
      calls.push(`${namespace}/${podName}:${ports.join(',')}`);
      if (!reachable.includes(podName)) return Promise.reject(new Error(`pods "${podName}" not found`));
      const socket = netConnect(port, '127.0.0.1');
      input.pipe(socket);
      socket.pipe(output);
      return Promise.resolve({ close: () => socket.destroy(), on: (event: string, f: () => void) => socket.on(event, f) });
    },
  };
}

describe('dashboard --port-forward: the tunnel (a fake forwarder standing in for pods/portforward)', () => {
  it('reaches the pod over TLS through the tunnel and keeps the browser on the local origin', async () => {
    const meshid = await fakeMeshidPod();
    const calls: string[] = [];
    const upstream = portForwardUpstream(new KubeConfig(), 'mesh', 'meshid-a', { ca: meshid.ca, forwarder: fakeForwarder(meshid.port, ['meshid-a'], calls) });
    const proxy = await startDashboardProxy(upstream, { port: 0, handoff: noHandoff });
    closers.push(() => proxy.close());

    const answer = await rawGet(proxy, '/api/login?wrapped-token=w', { authorization: 'Bearer kube' });
    assert.equal(answer.status, 303);
    assert.equal(answer.headers.location, `${proxy.origin}/`);
    assert.deepEqual(answer.headers['set-cookie'], ['meshid_session=abc; Path=/; HttpOnly; SameSite=Strict']);
    assert.deepEqual(meshid.seen, ['GET /api/login?wrapped-token=w auth=Bearer kube'], 'Authorization reaches the pod as is: no apiserver strips it');
    assert.deepEqual(calls, ['mesh/meshid-a:5682']);
  });

  it('after a failed tunnel, finds a Ready pod again and moves there; only the failed request is lost', async () => {
    const meshid = await fakeMeshidPod();
    const calls: string[] = [];
    const asked: string[] = [];
    const switches: string[] = [];
    // meshid-a was deleted: the apiserver refuses tunnels to it, and meshid-b is Ready.
    const upstream = portForwardUpstream(new KubeConfig(), 'mesh', 'meshid-a', {
      ca: meshid.ca,
      forwarder: fakeForwarder(meshid.port, ['meshid-b'], calls),
      repick: (current) => (asked.push(current), Promise.resolve('meshid-b')),
      onSwitch: (from, to) => switches.push(`${from}->${to}`),
    });
    const proxy = await startDashboardProxy(upstream, { port: 0, handoff: noHandoff, onError: () => undefined });
    closers.push(() => proxy.close());

    assert.equal((await rawGet(proxy, '/one')).status, 502, 'the request on the dead tunnel fails');
    assert.deepEqual(asked, [], 'nothing is looked up before a tunnel fails');
    assert.equal((await rawGet(proxy, '/two')).status, 303);
    assert.equal((await rawGet(proxy, '/three')).status, 303);
    assert.deepEqual(asked, ['meshid-a'], 'one look-up, told which pod failed');
    assert.deepEqual(switches, ['meshid-a->meshid-b']);
    assert.deepEqual(calls.slice(0, 2), ['mesh/meshid-a:5682', 'mesh/meshid-b:5682']);
    assert.deepEqual(meshid.seen.map((line) => line.split(' ')[1]), ['/two', '/three']);
  });
});

describe('dashboard proxy through the service proxy (a fake apiserver)', () => {
  it('adds the kube credential, moves a meshid token to X-Authorization, drops Impersonate-*, maps links and Location back, streams', async () => {
    const prefix = '/api/v1/namespaces/mesh/services/https:meshid:5682/proxy';
    const seen: IncomingHttpHeaders[] = [];
    const apiserver = createHttpServer((req, res) => {
      seen.push(req.headers);
      const path = req.url ?? '';
      if (!path.startsWith(`${prefix}/`)) return void res.writeHead(404).end();
      const rest = path.slice(prefix.length);
      if (rest.startsWith('/api/login')) return void res.writeHead(303, { location: `${prefix}/`, 'set-cookie': ['meshid_session=s; Path=/; Domain=apiserver.example; HttpOnly'] }).end();
      if (rest === '/') return void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<a href="${prefix}/app.js">x</a><img src="http://elsewhere/${'y'}">`);
      if (rest.startsWith('/watch')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"type":"ADDED"}\n');
        return; // stays open, like a watch
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ path: rest }));
    });
    await new Promise<void>((r) => apiserver.listen(0, '127.0.0.1', r));
    closers.push(() => {
      apiserver.closeAllConnections();
      return new Promise((r) => apiserver.close(r));
    });
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `http://127.0.0.1:${(apiserver.address() as AddressInfo).port}`, skipTLSVerify: true }],
      users: [{ name: 'u', token: 'kube-token' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const proxy = await startDashboardProxy(serviceProxyUpstream(kc, 'mesh'), { port: 0, handoff: noHandoff });
    closers.push(() => proxy.close());

    const login = await rawGet(proxy, '/api/login?wrapped-token=w');
    assert.equal(login.status, 303);
    assert.equal(login.headers.location, `${proxy.origin}/`);
    assert.deepEqual(login.headers['set-cookie'], ['meshid_session=s; Path=/; HttpOnly']);

    const page = await rawGet(proxy, '/');
    assert.equal(page.body, '<a href="/app.js">x</a><img src="http://elsewhere/y">');

    const api = await rawGet(proxy, '/api/whoami?x=1', {
      authorization: 'Bearer meshid-token',
      cookie: 'meshid_session=s',
      'impersonate-user': 'root',
      'x-forwarded-host': 'evil.example',
      forwarded: 'host=evil.example',
    });
    assert.deepEqual(JSON.parse(api.body), { path: '/api/whoami?x=1' });
    const last = seen.at(-1) ?? {};
    assert.equal(last.authorization, 'Bearer kube-token');
    assert.equal(last['x-authorization'], 'Bearer meshid-token');
    assert.equal(last.cookie, 'meshid_session=s');
    assert.equal(last['impersonate-user'], undefined);
    assert.equal(last['x-forwarded-host'], proxy.host, "the browser's origin, whatever the client claimed");
    assert.equal(last['x-forwarded-proto'], 'http');
    assert.equal(last.forwarded, undefined);

    const first = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: proxy.port, path: '/watch', headers: { host: proxy.host } }, (res) => {
        res.once('data', (c: Buffer) => {
          resolve(c.toString());
          req.destroy();
        });
      });
      req.on('error', (e) => (e.message.includes('socket hang up') ? undefined : reject(e)));
      req.end();
    });
    assert.equal(first, '{"type":"ADDED"}\n', 'the first event arrives while the answer is still open');

    const before403 = seen.length;
    for (const host of [`evil.example:${proxy.port}`, `127.0.0.1:${proxy.port}`, `localhost:${proxy.port}`, `[::1]:${proxy.port}`, `other.localhost:${proxy.port}`, proxy.host.replace(/:\d+$/, ':1')]) {
      assert.equal((await rawGet(proxy, '/api/whoami', { host, cookie: 'meshid_session=s' })).status, 403, `Host ${host} is refused`);
    }
    assert.equal(seen.length, before403, 'a refused Host reaches nothing upstream');
    assert.equal((await rawGet(proxy, '/api/whoami', { host: proxy.host.toUpperCase() })).status, 200, 'host names are case-insensitive');
    assert.equal((await rawGet(proxy, '/../../../api/v1/secrets')).status, 400, 'nothing outside the meshid Service');
    const before = seen.length;
    assert.equal((await rawGet(proxy, '/%2e%2e/%2e%2e/%2e%2e/api/v1/secrets')).status, 400);
    assert.equal(seen.length, before);
  });

  it('says in one line, with a hint, that the port is taken', async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
    const first = await startDashboardProxy(serviceProxyUpstream(kc, 'mesh'), { port: 0, handoff: noHandoff });
    closers.push(() => first.close());
    await assert.rejects(startDashboardProxy(serviceProxyUpstream(kc, 'mesh'), { port: first.port, handoff: noHandoff }), (error: unknown) => {
      return isMeshidError(error, 'ERR_INVALID_ARGUMENT') && error.message === `port ${first.port} on 127.0.0.1 is in use` && /--port 0/.test(error.hint ?? '');
    });
  });
});

/** A proxy in front of a fake meshid that records what reaches it, with a counting login. */
async function handoffRig(login: () => Promise<string> = () => Promise.resolve('wrapped+token/1')): Promise<{
  proxy: RunningDashboardProxy;
  seen: IncomingHttpHeaders[];
  logins: ProxyAddress[];
}> {
  const seen: IncomingHttpHeaders[] = [];
  const meshid = createHttpServer((req, res) => {
    seen.push({ ...req.headers, ':path': req.url ?? '' });
    res.writeHead(303, { location: '/', 'set-cookie': ['meshid_session=s; Path=/; HttpOnly; SameSite=Strict'] }).end();
  });
  await new Promise<void>((r) => meshid.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => meshid.close(r)));
  const logins: ProxyAddress[] = [];
  const proxy = await startDashboardProxy(urlUpstream(new URL(`http://127.0.0.1:${(meshid.address() as AddressInfo).port}`)), {
    port: 0,
    handoff: (address) => {
      logins.push(address);
      return login();
    },
  });
  closers.push(() => proxy.close());
  return { proxy, seen, logins };
}

describe('dashboard proxy: its own host name', () => {
  it('is 128 random bits as one lower-case DNS label under localhost', () => {
    assert.equal(localhostName(Buffer.alloc(16)), `${'a'.repeat(26)}.localhost`);
    assert.equal(localhostName(Buffer.alloc(16, 0xff)), `${'7'.repeat(25)}4.localhost`, 'the last 3 bits are padded with zeros');
    const names = new Set(Array.from({ length: 50 }, () => localhostName()));
    assert.equal(names.size, 50);
    for (const name of names) assert.match(name, /^[a-z2-7]{26}\.localhost$/);
  });

  it('serves at http://<name>.localhost:<port>, listening on 127.0.0.1 only', async () => {
    const { proxy } = await handoffRig();
    assert.match(proxy.origin, /^http:\/\/[a-z2-7]{26}\.localhost:\d+$/);
    assert.equal(proxy.host, proxy.origin.slice('http://'.length));
    assert.match(proxy.handoffUrl, new RegExp(`^${proxy.origin.replaceAll('.', '\\.')}/\\.meshid/handoff/[A-Za-z0-9_-]{22}$`));
    await assert.rejects(
      new Promise((resolve, reject) => netConnect(proxy.port, '::1').on('connect', resolve).on('error', reject)),
      (error: NodeJS.ErrnoException) => error.code === 'ECONNREFUSED' || error.code === 'EADDRNOTAVAIL',
    );
  });
});

describe('dashboard proxy: the handoff when the browser arrives', () => {
  it('logs in only when the link is opened, once, and sends the browser to meshid on its own origin', async () => {
    const { proxy, seen, logins } = await handoffRig();
    const path = new URL(proxy.handoffUrl).pathname;
    assert.equal(logins.length, 0, 'no login before the browser comes');

    const wrongHost = await rawGet(proxy, path, { host: `127.0.0.1:${proxy.port}` });
    assert.equal(wrongHost.status, 403);
    assert.equal(logins.length, 0, 'a refused Host does not use the link up');

    const first = await rawGet(proxy, path, { accept: 'text/html' });
    assert.equal(first.status, 200);
    assert.match(String(first.headers['content-type']), /^text\/html/);
    assert.equal(first.headers['cache-control'], 'no-store');
    assert.equal(first.headers['referrer-policy'], 'no-referrer');
    assert.equal(first.headers['content-security-policy'], "default-src 'none'");
    assert.equal(first.body, redirectPage(`/api/login?wrapped-token=${encodeURIComponent('wrapped+token/1')}`), 'a page of this origin leads on to meshid');
    assert.equal(refreshTarget(first.body), `/api/login?wrapped-token=${encodeURIComponent('wrapped+token/1')}`);
    assert.deepEqual(logins, [{ origin: proxy.origin, host: proxy.host, port: proxy.port }]);
    assert.equal(seen.length, 0, 'the link itself never reaches meshid');

    const login = await rawGet(proxy, refreshTarget(first.body));
    assert.equal(login.status, 303);
    assert.equal(login.headers.location, `${proxy.origin}/`);
    assert.equal(seen[0]?.[':path'], `/api/login?wrapped-token=${encodeURIComponent('wrapped+token/1')}`);
    assert.equal(seen[0]?.['x-forwarded-host'], proxy.host);
    assert.equal(seen[0]?.['x-forwarded-proto'], 'http');

    const again = await rawGet(proxy, path, { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' });
    assert.equal(again.status, 410);
    assert.match(String(again.headers['content-type']), /^text\/html/);
    assert.equal(again.headers['content-security-policy'], "default-src 'none'");
    assert.match(again.body, /data-code="handoff-used"/);
    assert.match(again.body, /already used/);
    assert.match(again.body, /Run `meshid dashboard` again/);

    const api = await rawGet(proxy, path, { accept: 'application/json' });
    assert.equal(api.status, 410);
    assert.equal(api.headers['content-type'], 'application/problem+json');
    assert.deepEqual(JSON.parse(api.body), {
      type: 'https://meshid.io/problems/handoff-used',
      title: 'This dashboard link was already used',
      status: 410,
      code: 'handoff-used',
      detail: 'A link works once. Run `meshid dashboard` again for a new one.',
    });
    assert.equal(logins.length, 1, 'one login for one link');
  });

  it('refuses other codes, other methods and upgrades under /.meshid/, and never forwards them', async () => {
    const { proxy, seen, logins } = await handoffRig();
    const path = new URL(proxy.handoffUrl).pathname;
    const code = path.split('/').at(-1) ?? '';
    const flipped = `${code.slice(0, -1)}${code.endsWith('A') ? 'B' : 'A'}`;
    for (const other of [`/.meshid/handoff/${flipped}`, `/.meshid/handoff/${code}x`, '/.meshid/handoff/', `/.meshid/other/${code}`, '/.meshid/']) {
      const answer = await rawGet(proxy, other);
      assert.equal(answer.status, 404, other);
      assert.equal((JSON.parse(answer.body) as { code: string }).code, 'handoff-unknown');
    }
    const post = await rawGet(proxy, path, {}, 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET');
    const upgrade = (to: string, host: string): Promise<number> =>
      new Promise<number>((resolve, reject) => {
        request({ host: '127.0.0.1', port: proxy.port, path: to, headers: { host, connection: 'Upgrade', upgrade: 'websocket' } })
          .on('response', (res) => resolve(res.statusCode ?? 0))
          .on('error', reject)
          .end();
      });
    assert.equal(await upgrade(path, proxy.host), 404);
    assert.equal(await upgrade('/api/k8s/api/v1/pods?watch=1', `127.0.0.1:${proxy.port}`), 403, 'an upgrade under a loopback Host is refused too');
    assert.equal(logins.length, 0);
    assert.equal(seen.length, 0);
    assert.equal((await rawGet(proxy, path)).status, 200, 'the link still works after all that');
  });

  it('a failed login shows what failed and leaves the link usable', async () => {
    let fail = true;
    const { proxy, logins } = await handoffRig(() =>
      fail ? Promise.reject(new MeshidError('ERR_LOGIN_FAILED', 'login failed: the credential was not accepted (login-failed)')) : Promise.resolve('w'),
    );
    const path = new URL(proxy.handoffUrl).pathname;
    const failed = await rawGet(proxy, path, { accept: 'text/html' });
    assert.equal(failed.status, 502);
    assert.match(failed.body, /data-code="handoff-failed"/);
    assert.match(failed.body, /the credential was not accepted/);
    fail = false;
    const retried = await rawGet(proxy, path);
    assert.equal(retried.status, 200);
    assert.equal(refreshTarget(retried.body), '/api/login?wrapped-token=w');
    assert.equal(logins.length, 2);
  });
});

describe('dashboard proxy straight at a meshid URL', () => {
  it("verifies meshid's certificate with the given CA, and refuses one it does not sign", async () => {
    const ca = await createAuthority('test-meshid');
    const leaf = await issueLeaf(ca, { commonName: 'meshid', usage: 'server', ips: ['127.0.0.1'] });
    const seen: string[] = [];
    const meshid = createHttpsServer({ cert: pemBundle(leaf.certPem, ca.certPem), key: leaf.keyPem }, (req, res) => {
      seen.push(`${req.method ?? ''} ${req.url ?? ''} auth=${req.headers.authorization ?? ''} xfh=${String(req.headers['x-forwarded-host'])}`);
      res.writeHead(303, { location: `https://127.0.0.1:${(meshid.address() as AddressInfo).port}/` }).end();
    });
    await new Promise<void>((r) => meshid.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => meshid.close(r)));
    const base = new URL(`https://127.0.0.1:${(meshid.address() as AddressInfo).port}`);

    const trusted = await startDashboardProxy(urlUpstream(base, { ca: ca.certPem }), { port: 0, handoff: noHandoff });
    closers.push(() => trusted.close());
    const answer = await rawGet(trusted, '/api/login?wrapped-token=w', { authorization: 'Bearer kube' });
    assert.equal(answer.status, 303);
    assert.equal(answer.headers.location, `${trusted.origin}/`, "meshid's own origin maps back to the local one");
    assert.deepEqual(seen, [`GET /api/login?wrapped-token=w auth=Bearer kube xfh=${trusted.host}`]);

    const other = await createAuthority('someone-else');
    const untrusted = await startDashboardProxy(urlUpstream(base, { ca: other.certPem }), { port: 0, handoff: noHandoff, onError: () => undefined });
    closers.push(() => untrusted.close());
    assert.equal((await rawGet(untrusted, '/api/whoami')).status, 502);
    assert.equal(seen.length, 1, 'nothing reached a server the CA does not vouch for');

    const skipping = await startDashboardProxy(urlUpstream(base, { rejectUnauthorized: false }), { port: 0, handoff: noHandoff });
    closers.push(() => skipping.close());
    assert.equal((await rawGet(skipping, '/api/whoami')).status, 303, '--insecure-skip-tls-verify');
  });
});

describe('opening a browser without a secret on its command line', () => {
  it('writes a 0600 launch page in a fresh 0700 directory under the runtime dir, and removes it', async () => {
    const runtime = await mkdtemp(join(tmpdir(), 'meshid-runtime-'));
    closers.push(() => rm(runtime, { recursive: true, force: true }));
    const url = 'http://abc.localhost:5/.meshid/handoff/x"y&z';
    const launch = await writeLaunchFile(url, { env: { XDG_RUNTIME_DIR: runtime } });
    assert.equal(dirname(dirname(launch.path)), runtime);
    assert.match(basename(dirname(launch.path)), /^meshid-dashboard-/);
    assert.equal((await stat(launch.path)).mode & 0o777, 0o600);
    assert.equal((await stat(dirname(launch.path))).mode & 0o777, 0o700);
    const page = await readFile(launch.path, 'utf8');
    assert.equal(page, redirectPage(url));
    assert.equal(refreshTarget(page), url);
    assert.match(page, /<meta http-equiv="refresh" content="0;url=http:\/\/abc\.localhost:5\/\.meshid\/handoff\/x&#34;y&#38;z">/);
    assert.doesNotMatch(page, /<script/i);
    await launch.remove();
    await assert.rejects(stat(dirname(launch.path)), { code: 'ENOENT' });

    const fallback = await writeLaunchFile(url, { env: {} });
    assert.equal(dirname(dirname(fallback.path)), tmpdir(), 'no runtime dir: the temp dir');
    await fallback.remove();
  });

  it('gives the opener the path alone, and says when there is no opener', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshid-opener-'));
    closers.push(() => rm(dir, { recursive: true, force: true }));
    const opener = join(dir, 'fake-open');
    await writeFile(opener, `#!/bin/sh\nprintf '%s\\n' "$@" > '${dir}/argv'\n`, { mode: 0o700 });
    openFile('/some/launch.html', () => assert.fail('the opener started'), opener);
    let argv = '';
    for (let i = 0; i < 50 && !argv.endsWith('\n'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      argv = await readFile(join(dir, 'argv'), 'utf8').catch(() => '');
    }
    assert.equal(argv, '/some/launch.html\n');

    const missing = await new Promise<string>((resolve) => openFile('/some/launch.html', resolve, join(dir, 'no-such-opener')));
    assert.equal(missing, join(dir, 'no-such-opener'));
    assert.equal(defaultOpener('linux'), 'xdg-open');
    assert.equal(defaultOpener('darwin'), 'open');
  });
});
