import assert from 'node:assert/strict';
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { describe, it } from 'node:test';
import { isMeshidError } from '../../src/core/index.ts';
import type { Identity } from '../../src/authn/index.ts';
import { impersonationHeaders } from '../../src/kube/index.ts';
import { K8S_PREFIX, proxyUpgrade, upstreamPath } from '../../src/server/k8s-proxy.ts';
import { Agent } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import type { IncomingMessage } from 'node:http';

const EXTRA_PREFIX = 'impersonate-extra-';

describe('impersonationHeaders', () => {
  it('sets Impersonate-User and one Impersonate-Group value per group', () => {
    assert.deepEqual(impersonationHeaders({ name: 'alice', groups: ['dev', 'system:authenticated'] }), {
      'impersonate-user': 'alice',
      'impersonate-group': ['dev', 'system:authenticated'],
    });
  });

  it('copies the groups, so a later change to the identity does not leak into the headers', () => {
    const user: Identity = { name: 'alice', groups: ['dev'] };
    const headers = impersonationHeaders(user);
    user.groups.push('system:masters');
    assert.deepEqual(headers['impersonate-group'], ['dev']);
  });

  it('leaves out Impersonate-Group, Impersonate-Uid and extras when the user has none', () => {
    assert.deepEqual(impersonationHeaders({ name: 'bob', groups: [], uid: '', extra: {} }), { 'impersonate-user': 'bob' });
  });

  it('sets Impersonate-Uid when the user has one', () => {
    assert.equal(impersonationHeaders({ name: 'carol', groups: [], uid: 'c-123' })['impersonate-uid'], 'c-123');
  });

  it('sends each extra as Impersonate-Extra-<key> with all its values', () => {
    const headers = impersonationHeaders({ name: 'carol', groups: [], extra: { scopes: ['read', 'write'], empty: [] } });
    assert.deepEqual(headers[`${EXTRA_PREFIX}scopes`], ['read', 'write']);
    assert.deepEqual(headers[`${EXTRA_PREFIX}empty`], []);
  });

  it('percent-encodes and lower-cases extra keys, so Kubernetes decodes them back', () => {
    const extra = {
      'authentication.kubernetes.io/pod-name': ['p1'],
      'Example.COM/Team': ['a'],
      'with space': ['b'],
      '100%': ['c'],
      'ünïcode': ['d'],
    };
    const headers = impersonationHeaders({ name: 'svc', groups: [], extra });
    assert.deepEqual(headers[`${EXTRA_PREFIX}authentication.kubernetes.io%2fpod-name`], ['p1']);
    assert.deepEqual(headers[`${EXTRA_PREFIX}example.com%2fteam`], ['a']);
    assert.deepEqual(headers[`${EXTRA_PREFIX}with%20space`], ['b']);
    assert.deepEqual(headers[`${EXTRA_PREFIX}100%25`], ['c']);
    assert.deepEqual(headers[`${EXTRA_PREFIX}%c3%bcn%c3%afcode`], ['d']);

    const names = Object.keys(headers).filter((h) => h.startsWith(EXTRA_PREFIX));
    assert.equal(names.length, Object.keys(extra).length);
    for (const name of names) {
      assert.equal(name, name.toLowerCase());
      assert.ok(
        Object.keys(extra).some((key) => decodeURIComponent(name.slice(EXTRA_PREFIX.length)) === key.toLowerCase()),
        `${name} does not decode to any extra key`,
      );
    }
  });

  // Kubernetes accepts the identities below: extra keys are percent-decoded, and names and
  // groups are UTF-8 bytes (client-go sends them raw). A header Node refuses makes the proxied
  // request throw instead of reaching the apiserver.
  it('turns every extra key into a valid header name, parentheses included', () => {
    const headers = impersonationHeaders({ name: 'svc', groups: [], extra: { 'scope(s)': ['x'], "it's*!": ['y'] } });
    const names = Object.keys(headers).filter((h) => h.startsWith(EXTRA_PREFIX));
    assert.equal(names.length, 2);
    for (const name of names) assert.doesNotThrow(() => validateHeaderName(name), name);
  });

  it('turns a user name and groups outside Latin-1 into header values Node can send', () => {
    const headers = impersonationHeaders({ name: '张三', groups: ['开发'] });
    for (const [name, value] of Object.entries(headers)) {
      for (const v of [value].flat()) assert.doesNotThrow(() => validateHeaderValue(name, String(v)), `value of ${name}`);
    }
  });
});

describe('upstreamPath', () => {
  it('maps /api/k8s/<rest> to /<rest>, query included', () => {
    assert.equal(K8S_PREFIX, '/api/k8s');
    assert.equal(upstreamPath('/api/k8s/api/v1/namespaces/dev/pods'), '/api/v1/namespaces/dev/pods');
    assert.equal(upstreamPath('/api/k8s/api/v1/pods?labelSelector=app%3Dweb&watch=true'), '/api/v1/pods?labelSelector=app%3Dweb&watch=true');
    assert.equal(upstreamPath('/api/k8s/apis/apps/v1/'), '/apis/apps/v1/');
  });

  it('maps the bare prefix to the apiserver root', () => {
    assert.equal(upstreamPath('/api/k8s'), '/');
    assert.equal(upstreamPath('/api/k8s/'), '/');
    assert.equal(upstreamPath('/api/k8s?timeout=1s'), '/?timeout=1s');
  });

  it('passes percent-encoding through untouched', () => {
    assert.equal(upstreamPath('/api/k8s/api/v1/namespaces/a%2Fb'), '/api/v1/namespaces/a%2Fb');
    assert.equal(upstreamPath('/api/k8s/api/v1/%zz'), '/api/v1/%zz');
  });

  it('allows dots that are not whole segments, and dot segments in the query', () => {
    assert.equal(upstreamPath('/api/k8s/apis/example.com/v1/configmaps/..data'), '/apis/example.com/v1/configmaps/..data');
    assert.equal(upstreamPath('/api/k8s/api/v1/namespaces/.hidden/...'), '/api/v1/namespaces/.hidden/...');
    assert.equal(upstreamPath('/api/k8s/api?path=../../etc'), '/api?path=../../etc');
  });

  it('refuses paths outside the prefix with ERR_NOT_FOUND', () => {
    for (const url of ['/api/k8sx', '/api/k8s-evil/api', '/api/other', '/', '', 'api/k8s/api']) {
      assert.throws(() => upstreamPath(url), (e) => isMeshidError(e, 'ERR_NOT_FOUND'), url);
    }
  });

  it('refuses dot segments, plain or percent-encoded in any case, with ERR_INVALID_ARGUMENT', () => {
    for (const url of [
      '/api/k8s/..',
      '/api/k8s/../healthz',
      '/api/k8s/api/../../healthz',
      '/api/k8s/./api',
      '/api/k8s/api/v1/.',
      '/api/k8s/%2e%2e/healthz',
      '/api/k8s/%2E%2E/healthz',
      '/api/k8s/.%2e/healthz',
      '/api/k8s/%2e./healthz',
      '/api/k8s/api/%2e/v1',
      '/api/k8s/../x?y=1',
    ]) {
      assert.throws(() => upstreamPath(url), (e) => isMeshidError(e, 'ERR_INVALID_ARGUMENT'), url);
    }
  });
});

describe('proxyUpgrade', () => {
  it('reports an apiserver that is not there, so the client gets a 503 rather than a closed socket', async () => {
    // A port that was just free: nothing listens on it.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const agent = new Agent();
    const upstream = { url: new URL(`https://127.0.0.1:${port}`), agent, tls: {}, authorization: () => undefined, close: () => agent.destroy() };
    const req = { method: 'GET', headers: { upgrade: 'websocket', connection: 'Upgrade' } } as unknown as IncomingMessage;
    const socket = new PassThrough();
    const error = await new Promise<Error>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('onUnavailable was not called within 5 s')), 5000);
      proxyUpgrade(req, socket, Buffer.alloc(0), '/api/v1/namespaces/dev/pods/p/exec', { name: 'alice', groups: [] }, upstream, (e) => {
        clearTimeout(timer);
        resolve(e);
      });
    });
    assert.equal((error as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    assert.equal(socket.destroyed, false, 'the socket stays open for the 503 answer');
    upstream.close();
  });
});
