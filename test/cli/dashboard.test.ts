import assert from 'node:assert/strict';
import { createServer as createHttpServer, request, type IncomingHttpHeaders } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect as netConnect, type AddressInfo } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { isMeshidError } from '../../src/core/index.ts';
import { createAuthority, issueLeaf, pemBundle } from '../../src/pki/index.ts';
import { pickMeshidPod, portForwardUpstream, type PortForwarder } from '../../src/cli/dashboard-port-forward.ts';
import { serviceProxyUpstream, startDashboardProxy } from '../../src/cli/dashboard-proxy.ts';

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

/** A raw GET to the local proxy, with whatever Host and path the test wants. */
function rawGet(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
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

  it('says in one line that there is no running pod, and what to use instead', () => {
    assert.throws(
      () => pickMeshidPod([pod('meshid-a', { ready: false }), pod('meshid-b', { phase: 'Pending' })], 'mesh'),
      (error: unknown) => isMeshidError(error, 'ERR_NOT_FOUND') && error.message === 'no running meshid pod in mesh: use the default service proxy or --url' && !error.message.includes('\n'),
    );
    assert.throws(() => pickMeshidPod([], 'mesh'), /no running meshid pod in mesh/);
  });
});

describe('dashboard --port-forward: the tunnel (a fake forwarder standing in for pods/portforward)', () => {
  it('reaches the pod over TLS through the tunnel and keeps the browser on the local origin', async () => {
    const ca = await createAuthority('test-meshid');
    const leaf = await issueLeaf(ca, { commonName: 'meshid', usage: 'server', dnsNames: ['localhost'] });
    const seen: string[] = [];
    const meshid = createHttpsServer({ cert: pemBundle(leaf.certPem, ca.certPem), key: leaf.keyPem }, (req, res) => {
      seen.push(`${req.method ?? ''} ${req.url ?? ''} auth=${req.headers.authorization ?? ''}`);
      res.writeHead(303, { location: '/', 'set-cookie': ['meshid_session=abc; Path=/; HttpOnly; SameSite=Strict'] }).end();
    });
    await new Promise<void>((r) => meshid.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => meshid.close(r)));
    const meshidPort = (meshid.address() as AddressInfo).port;
    const calls: string[] = [];
    const forwarder: PortForwarder = {
      portForward(namespace: string, podName: string, ports: number[], output: Writable, _err: Writable | null, input: Readable) {
        calls.push(`${namespace}/${podName}:${ports.join(',')}`);
        const socket = netConnect(meshidPort, '127.0.0.1');
        input.pipe(socket);
        socket.pipe(output);
        return Promise.resolve({ close: () => socket.destroy(), on: (event: string, f: () => void) => socket.on(event, f) });
      },
    };
    const upstream = portForwardUpstream(new KubeConfig(), 'mesh', 'meshid-a', { ca: ca.certPem, forwarder });
    const proxy = await startDashboardProxy(upstream, { port: 0 });
    closers.push(() => proxy.close());

    const answer = await rawGet(proxy.port, '/api/login?wrapped-token=w', { authorization: 'Bearer kube' });
    assert.equal(answer.status, 303);
    assert.equal(answer.headers.location, `${proxy.origin}/`);
    assert.deepEqual(answer.headers['set-cookie'], ['meshid_session=abc; Path=/; HttpOnly; SameSite=Strict']);
    assert.deepEqual(seen, ['GET /api/login?wrapped-token=w auth=Bearer kube'], 'Authorization reaches the pod as is: no apiserver strips it');
    assert.deepEqual(calls, ['mesh/meshid-a:5682']);
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
    const proxy = await startDashboardProxy(serviceProxyUpstream(kc, 'mesh'), { port: 0 });
    closers.push(() => proxy.close());

    const login = await rawGet(proxy.port, '/api/login?wrapped-token=w');
    assert.equal(login.status, 303);
    assert.equal(login.headers.location, `${proxy.origin}/`);
    assert.deepEqual(login.headers['set-cookie'], ['meshid_session=s; Path=/; HttpOnly']);

    const page = await rawGet(proxy.port, '/');
    assert.equal(page.body, '<a href="/app.js">x</a><img src="http://elsewhere/y">');

    const api = await rawGet(proxy.port, '/api/whoami?x=1', { authorization: 'Bearer meshid-token', cookie: 'meshid_session=s', 'impersonate-user': 'root' });
    assert.deepEqual(JSON.parse(api.body), { path: '/api/whoami?x=1' });
    const last = seen.at(-1) ?? {};
    assert.equal(last.authorization, 'Bearer kube-token');
    assert.equal(last['x-authorization'], 'Bearer meshid-token');
    assert.equal(last.cookie, 'meshid_session=s');
    assert.equal(last['impersonate-user'], undefined);

    const first = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: proxy.port, path: '/watch', headers: { host: `localhost:${proxy.port}` } }, (res) => {
        res.once('data', (c: Buffer) => {
          resolve(c.toString());
          req.destroy();
        });
      });
      req.on('error', (e) => (e.message.includes('socket hang up') ? undefined : reject(e)));
      req.end();
    });
    assert.equal(first, '{"type":"ADDED"}\n', 'the first event arrives while the answer is still open');

    assert.equal((await rawGet(proxy.port, '/api/whoami', { host: `evil.example:${proxy.port}` })).status, 403, 'other Host names are refused');
    assert.equal((await rawGet(proxy.port, '/../../../api/v1/secrets')).status, 400, 'nothing outside the meshid Service');
    const before = seen.length;
    assert.equal((await rawGet(proxy.port, '/%2e%2e/%2e%2e/%2e%2e/api/v1/secrets')).status, 400);
    assert.equal(seen.length, before);
  });

  it('says in one line, with a hint, that the port is taken', async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
    const first = await startDashboardProxy(serviceProxyUpstream(kc, 'mesh'), { port: 0 });
    closers.push(() => first.close());
    await assert.rejects(startDashboardProxy(serviceProxyUpstream(kc, 'mesh'), { port: first.port }), (error: unknown) => {
      return isMeshidError(error, 'ERR_INVALID_ARGUMENT') && error.message === `port ${first.port} on 127.0.0.1 is in use` && /--port 0/.test(error.hint ?? '');
    });
  });
});
