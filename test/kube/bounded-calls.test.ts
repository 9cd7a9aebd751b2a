import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, Watch } from '@kubernetes/client-node';
import { kubeCall } from '../../src/authn/index.ts';
import { isMeshidError } from '../../src/core/index.ts';
import { isKubeUnavailable, loadKubeConfig } from '../../src/kube/index.ts';

const TIMEOUT_MS = 300;

/**
 * A peer that takes every request and never answers, as an apiserver whose etcd is gone
 * does; a watch gets its headers, then silence, as a quiet watch does.
 */
async function withSilentPeer(fn: (kubeconfig: string) => Promise<void>): Promise<void> {
  const held: ServerResponse[] = [];
  const server = createServer((req, res) => {
    if (req.url?.includes('watch=true')) res.writeHead(200, { 'content-type': 'application/json' }).flushHeaders();
    held.push(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const dir = await mkdtemp(join(tmpdir(), 'meshid-bounded-'));
  const kubeconfig = join(dir, 'kubeconfig');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await writeFile(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      // Plain HTTP on loopback: client-node allows it only with TLS verification off.
      clusters: [{ name: 'silent', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'someone', user: { token: 'not-a-secret' } }],
      contexts: [{ name: 'silent', context: { cluster: 'silent', user: 'someone' } }],
      'current-context': 'silent',
    }),
  );
  try {
    await fn(kubeconfig);
  } finally {
    for (const res of held) res.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  }
}

describe('calls to Kubernetes are bounded in time', () => {
  it('an API call without an answer fails as "Kubernetes is unavailable" once its time is up', () =>
    withSilentPeer(async (kubeconfig) => {
      const api = loadKubeConfig({ kubeconfig, requestTimeoutMs: TIMEOUT_MS }).makeApiClient(CoreV1Api);
      const started = Date.now();
      await assert.rejects(api.listNamespace(), (error: unknown) => isKubeUnavailable(error));
      await assert.rejects(kubeCall(() => api.listNamespace()), (error: unknown) => isMeshidError(error, 'ERR_KUBE_UNAVAILABLE'));
      assert.ok(Date.now() - started < 10 * TIMEOUT_MS, 'both gave up after about their timeout, not the peer');
    }));

  it('a watch is not an API call: it stays open however long it is quiet', () =>
    withSilentPeer(async (kubeconfig) => {
      let ended: unknown = 'open';
      const watch = await new Watch(loadKubeConfig({ kubeconfig, requestTimeoutMs: TIMEOUT_MS })).watch('/api/v1/namespaces', {}, () => undefined, (error: unknown) => {
        ended = error;
      });
      await sleep(4 * TIMEOUT_MS);
      assert.equal(ended, 'open');
      watch.abort();
    }));
});
