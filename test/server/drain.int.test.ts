import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../src/core/index.ts';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import { installNamespace, type TestInstall } from '../support/server.ts';

// What a server pod does between SIGTERM and exit (`meshid server` calls close with drainMs):
// it still answers, on its open connections and on new ones, but every answer closes its
// connection so keep-alive clients move to another replica before the listeners go.
const NS = 'drain-test';

/** One GET on a given agent: the status, the Connection header, and whether the socket was reused. */
function get(base: string, path: string, agent: Agent): Promise<{ status: number; connection: string | undefined; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, reused: req.reusedSocket }));
    });
    req.setTimeout(5_000, () => req.destroy(new Error(`no answer to ${path}`)));
    req.on('error', reject);
    req.end();
  });
}

describe('meshid server drains before it stops', () => {
  // Started by hand rather than with startTestServer, whose close would close it a second time.
  let installed: TestInstall;
  let server: RunningServer;
  before(async () => {
    installed = await installNamespace(NS);
    server = await startServer({ kubeconfig: await installed.kubeconfigFor(), namespace: NS, host: '127.0.0.1', httpPort: 0, httpsPort: 0 }, { log: createLogger(NS, 'silent') });
  });
  after(async () => {
    await installed.remove();
  });

  it('keeps answering while draining, ends every keep-alive connection, then stops listening', async () => {
    const base = server.httpUrl;
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await get(base, '/healthz', agent);
      assert.equal(first.status, 200);
      assert.equal(first.connection, 'keep-alive');

      const closing = server.close({ drainMs: 1_500 });
      // The same connection answers once more, and says it is the last time.
      const onOpen = await get(base, '/readyz', agent);
      assert.equal(onOpen.reused, true);
      // Still 200: the pod is already out of the endpoints, and this client is being moved off.
      assert.equal(onOpen.status, 200);
      assert.equal(onOpen.connection, 'close');
      // A new connection (kube-proxy may still route one here) is answered too, and closed.
      const fresh = await get(base, '/healthz', agent);
      assert.equal(fresh.reused, false);
      assert.equal(fresh.status, 200);
      assert.equal(fresh.connection, 'close');

      await closing;
      await assert.rejects(get(base, '/healthz', agent), { code: 'ECONNREFUSED' });
    } finally {
      agent.destroy();
    }
  });
});
