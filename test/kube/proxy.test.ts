import assert from 'node:assert/strict';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startDashboardProxy, urlUpstream } from '../../src/cli/dashboard-proxy.ts';
import { endSocket, endToEndHeaders, rawHead } from '../../src/kube/index.ts';
import { createAuthority, issueLeaf } from '../../src/pki/index.ts';
import { proxyRequest, proxyUpgrade } from '../../src/server/k8s-proxy.ts';
import { upstreamAt } from '../support/app.ts';

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1), plus one a sender names in its Connection header.
 * Trailer is left out: Node refuses it on a message without chunked encoding.
 */
const REQUEST_HOP = { connection: 'keep-alive, x-hop-request', 'x-hop-request': '1', 'keep-alive': 'timeout=5', te: 'trailers', 'proxy-authorization': 'Basic eDp4', 'proxy-connection': 'keep-alive' };
const ANSWER_HOP = { connection: 'x-hop-answer', 'x-hop-answer': '1', 'proxy-authenticate': 'Basic', 'proxy-connection': 'close' };
const named = (headers: object): string[] => Object.keys(headers).filter((h) => h !== 'connection' && h !== 'keep-alive');

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
}

function get(port: number, host: string, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/api/v1/namespaces', headers: { host, ...headers }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('both reverse proxies strip the same hop-by-hop headers', () => {
  let upstream: Server;
  let upstreamPort = 0;
  let caPem = '';
  const seen: IncomingHttpHeaders[] = [];
  const closers: (() => Promise<void>)[] = [];

  before(async () => {
    const ca = await createAuthority('proxy-core-test');
    const leaf = await issueLeaf(ca, { commonName: '127.0.0.1', ips: ['127.0.0.1'], usage: 'server' });
    caPem = ca.certPem;
    upstream = createHttpsServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { 'content-type': 'application/json', 'x-end-answer': '1', ...ANSWER_HOP }).end('{}');
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamPort = (upstream.address() as AddressInfo).port;
    closers.push(() => new Promise((resolve) => upstream.close(() => resolve())));
  });
  after(async () => {
    for (const close of closers.reverse()) await close();
  });

  async function throughServer(): Promise<{ sent: IncomingHttpHeaders; answer: Answer }> {
    const k8s = upstreamAt(upstreamPort, caPem, undefined);
    const front = createServer((req, res) => proxyRequest(req, res, req.url ?? '/', undefined, k8s, () => res.writeHead(503).end()));
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => front.close(() => (k8s.close(), resolve()))));
    const answer = await get((front.address() as AddressInfo).port, '127.0.0.1', { ...REQUEST_HOP, 'x-end': '1' });
    return { sent: seen.at(-1) ?? {}, answer };
  }

  async function throughDashboardProxy(): Promise<{ sent: IncomingHttpHeaders; answer: Answer }> {
    const proxy = await startDashboardProxy(urlUpstream(new URL(`https://127.0.0.1:${upstreamPort}`), { ca: caPem }), { port: 0, handoff: () => Promise.resolve('unused') });
    closers.push(() => proxy.close());
    const answer = await get(proxy.port, proxy.host, { ...REQUEST_HOP, 'x-end': '1' });
    return { sent: seen.at(-1) ?? {}, answer };
  }

  it('neither forwards a hop-by-hop request header, nor one the client named in Connection', async () => {
    const server = await throughServer();
    const cli = await throughDashboardProxy();
    for (const { sent, answer } of [server, cli]) {
      assert.equal(answer.status, 200);
      assert.equal(sent['x-end'], '1', 'end-to-end headers pass');
      assert.deepEqual(named(REQUEST_HOP).filter((h) => h in sent), []);
      // Node's own client connection to the upstream may say keep-alive; never the client's list.
      assert.doesNotMatch(String(sent.connection ?? ''), /x-hop-request/);
    }
  });

  it('neither relays a hop-by-hop answer header, nor one the upstream named in Connection', async () => {
    const server = await throughServer();
    const cli = await throughDashboardProxy();
    for (const { answer } of [server, cli]) {
      assert.equal(answer.headers['x-end-answer'], '1');
      assert.deepEqual(named(ANSWER_HOP).filter((h) => h in answer.headers), []);
      assert.doesNotMatch(String(answer.headers.connection ?? ''), /x-hop-answer/);
    }
  });
});

interface Upgraded {
  status: number;
  upgrade: string | undefined;
  echoed: string;
}

/** An upgrade as kubectl exec asks for one (SPDY); answers what came back through the proxy. */
function upgradeThrough(port: number, host: string, path: string): Promise<Upgraded> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host, connection: 'Upgrade', upgrade: 'SPDY/3.1' }, agent: false });
    req.on('upgrade', (res, socket) => {
      let echoed = '';
      socket.on('data', (c: Buffer) => {
        echoed += c.toString();
        if (echoed === 'ping') {
          socket.destroy();
          resolve({ status: res.statusCode ?? 0, upgrade: res.headers.upgrade, echoed });
        }
      });
      socket.write('ping');
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, upgrade: undefined, echoed: body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('both reverse proxies relay upgrades (exec, port-forward) and refusals', () => {
  const closers: (() => Promise<void>)[] = [];
  let upstreamPort = 0;
  let caPem = '';

  before(async () => {
    const ca = await createAuthority('proxy-upgrade-test');
    const leaf = await issueLeaf(ca, { commonName: '127.0.0.1', ips: ['127.0.0.1'], usage: 'server' });
    caPem = ca.certPem;
    const upstream = createHttpsServer({ cert: leaf.certPem, key: leaf.keyPem }, (_req, res) => res.writeHead(404).end());
    // An apiserver that upgrades to an echo, or refuses as RBAC would.
    upstream.on('upgrade', (req, socket) => {
      if (req.url?.includes('refuse')) return endSocket(socket, 403, { 'content-type': 'application/json' }, '{"kind":"Status","code":403}');
      socket.write(rawHead(101, undefined, { connection: 'Upgrade', upgrade: String(req.headers.upgrade) }));
      socket.pipe(socket);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamPort = (upstream.address() as AddressInfo).port;
    closers.push(() => new Promise((resolve) => (upstream.closeAllConnections(), upstream.close(() => resolve()))));
  });
  after(async () => {
    for (const close of closers.reverse()) await close();
  });

  it('joins the sockets on 101 and relays a refusal with its status, through /api/k8s and the dashboard proxy alike', async () => {
    const k8s = upstreamAt(upstreamPort, caPem, undefined);
    const front = createServer((_req, res) => res.writeHead(404).end());
    front.on('upgrade', (req, socket, head) => proxyUpgrade(req, socket, head, req.url ?? '/', undefined, k8s, () => endSocket(socket, 503)));
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => (front.closeAllConnections(), front.close(() => (k8s.close(), resolve())))));
    const proxy = await startDashboardProxy(urlUpstream(new URL(`https://127.0.0.1:${upstreamPort}`), { ca: caPem }), { port: 0, handoff: () => Promise.resolve('unused') });
    closers.push(() => proxy.close());

    const routes = [
      { port: (front.address() as AddressInfo).port, host: '127.0.0.1' },
      { port: proxy.port, host: proxy.host },
    ];
    for (const { port, host } of routes) {
      assert.deepEqual(await upgradeThrough(port, host, '/api/v1/namespaces/dev/pods/web/exec?command=sh'), { status: 101, upgrade: 'SPDY/3.1', echoed: 'ping' });
      const refused = await upgradeThrough(port, host, '/api/v1/namespaces/dev/pods/refuse/exec');
      assert.equal(refused.status, 403);
      assert.match(refused.echoed, /"code":403/);
    }
  });
});

describe('endToEndHeaders and rawHead', () => {
  it('drops the RFC 9110 list and Connection-named headers, case-insensitively', () => {
    assert.deepEqual(endToEndHeaders({ connection: 'Keep-Alive, X-Private', 'x-private': 'a', 'keep-alive': 'timeout=1', upgrade: 'websocket', te: 'trailers', accept: 'application/json' }), { accept: 'application/json' });
  });

  it('writes a status line with the standard reason when none is given, and every value of a list', () => {
    assert.equal(rawHead(403, undefined, { 'set-cookie': ['a=1', 'b=2'], 'content-length': '0' }), 'HTTP/1.1 403 Forbidden\r\nset-cookie: a=1\r\nset-cookie: b=2\r\ncontent-length: 0\r\n\r\n');
    assert.equal(rawHead(101, 'Switching Protocols', ['Upgrade', 'SPDY/3.1', 'Connection', 'Upgrade']), 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: SPDY/3.1\r\nConnection: Upgrade\r\n\r\n');
  });
});
