import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { request as httpsRequest } from 'node:https';
import { describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { Metadata, credentials, status } from '@grpc/grpc-js';
import { SdsClient, sdsClientConstructor, type WorkloadTls } from '../../src/agent/index.ts';
import { ack, bearer, binaryCredential, openStream, request, workloadOf } from '../agent/support.ts';
import { loadKubeConfig } from '../../src/kube/index.ts';
import { createAuthority, issueLeaf } from '../../src/pki/index.ts';
import { MESH_PROXY_GID } from '../../src/install/index.ts';
import { testNodeEnv } from '../support/env.ts';
import { FULL_MATRIX, adminKubectl, livePods, settledMatrix } from '../support/node-demo.ts';
import { runCli } from '../support/cli.ts';
import { within } from '../support/server.ts';
import { workloadToken } from '../support/workload.ts';

// The demo runs as pods on the playground's node, with the agent's socket mounted from its hostPath.
const env = testNodeEnv();
const kubectl = adminKubectl(env);
const HTTPBIN_PORT = 8443;
const admin = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin });

/** httpbin's pod address in `namespace`, reached from the host as any outsider would. */
async function httpbinAddress(namespace: string): Promise<string> {
  const pod = (await livePods(kubectl, namespace, 'app=httpbin')).find((p) => p.ready);
  assert.ok(pod, `a Ready httpbin pod in ${namespace}`);
  return `${pod.ip}:${HTTPBIN_PORT}`;
}

function directCall(address: string, tls: { cert?: string; key?: string }): Promise<number | string> {
  const [host, port] = address.split(':');
  return new Promise((resolve) => {
    const req = httpsRequest({ host, port: Number(port), path: '/', rejectUnauthorized: false, ...tls }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    req.end();
  });
}

describe("Istio's SDS demo in the playground: sleep and httpbin pods in foo and bar", () => {
  it('answers 200 on all four sleep → httpbin paths over mTLS with SPIFFE checks', async () => {
    assert.deepEqual(await settledMatrix(kubectl), FULL_MATRIX);
  });

  it('refuses a client with no mesh certificate, or one from another CA', async () => {
    const httpbin = await httpbinAddress('foo');
    const bare = await directCall(httpbin, {});
    assert.notEqual(bare, 200);
    assert.equal(typeof bare, 'string', `expected a TLS failure, got ${String(bare)}`);
    const stranger = await issueLeaf(await createAuthority('not-the-mesh'), { commonName: 'sleep', usage: 'client' });
    const foreign = await directCall(httpbin, { cert: stranger.certPem, key: stranger.keyPem });
    assert.equal(typeof foreign, 'string', `expected a TLS failure, got ${String(foreign)}`);
  });

  it('follows the xDS rules with real tokens: version and nonce, ACK not answered, NACK not retried, unknown names refused, one certificate per identity', async () => {
    const token = await workloadToken(admin, 'sds-rules', 'api');
    const Ctor = sdsClientConstructor();
    const client = new Ctor(`unix://${env.agent.socket}`, credentials.createInsecure());
    try {
      const a = openStream(client, binaryCredential(token));
      a.send(request(['default']));
      const first = await a.next(15_000);
      assert.ok(first.version_info !== '' && first.nonce !== '');
      const leaf = new X509Certificate(workloadOf(first.resources[0]).chainPem);
      assert.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/sds-rules/sa/api');
      a.send(ack(first, ['default']));
      await a.nothingFor(500);
      a.send(request(['default'], { version_info: 'v0', response_nonce: first.nonce, error_detail: { code: 3, message: 'rejected by the test' } }));
      await a.nothingFor(500);

      // A second stream of the same identity, with the other credential form, gets the same certificate.
      const b = openStream(client, bearer(token));
      b.send(request(['default']));
      assert.equal(new X509Certificate(workloadOf((await b.next(15_000)).resources[0]).chainPem).serialNumber, leaf.serialNumber);

      const unknown = openStream(client, binaryCredential(token));
      unknown.send(request(['spiffe://cluster.local/ns/kube-system/sa/default']));
      const refused = await unknown.status();
      assert.equal(refused.code, status.INVALID_ARGUMENT);
      assert.match(refused.details ?? '', /kube-system/);

      const anonymous = openStream(client, new Metadata());
      anonymous.send(request(['default']));
      assert.equal((await anonymous.status()).code, status.UNAUTHENTICATED);
      for (const probe of [a, b]) probe.close();
    } finally {
      client.close();
      await admin.makeApiClient(CoreV1Api).deleteNamespace({ name: 'sds-rules' }).catch(() => undefined);
    }
  });

  it("serves the socket with mode 0660 to the proxies' group, in the hostPath folder only root may write", async () => {
    const socket = await stat(env.agent.socket);
    assert.equal(socket.mode & 0o777, 0o660);
    assert.equal(socket.gid, MESH_PROXY_GID);
    // The kubelet made the hostPath folder (DirectoryOrCreate, 0755): nobody but root may
    // replace the socket in it, and only root and the proxies' group may connect to it.
    const folder = await stat(dirname(env.agent.socket));
    assert.equal(folder.uid, 0);
    assert.equal(folder.mode & 0o022, 0, `folder mode ${(folder.mode & 0o777).toString(8)}`);
  });

  it('pushes a rotated root as ROOTCA, then a leaf from it, on the open stream; the demo keeps working', async () => {
    const token = await workloadToken(admin, 'sds-demo', 'watcher');
    const updates: WorkloadTls[] = [];
    const { client, tls } = await SdsClient.first({ socket: env.agent.socket, token: () => token });
    updates.push(tls);
    client.onUpdate((next) => updates.push(next));
    try {
      const rootsBefore = tls.rootsPem.match(/BEGIN CERTIFICATE/g)?.length ?? 0;
      const leafBefore = new X509Certificate(tls.certChainPem);
      const rotated = await runCli(['--kubeconfig', env.kubeconfigs.admin, 'ca', 'rotate', '--propagation', '3s', '--grace', '4s']);
      assert.equal(rotated.code, 0, rotated.stderr);
      assert.notEqual(await within(15_000, async () => updates.some((u) => (u.rootsPem.match(/BEGIN CERTIFICATE/g)?.length ?? 0) === rootsBefore + 1)), undefined, 'ROOTCA with old and new roots');
      assert.notEqual(
        await within(20_000, async () => {
          const last = updates.at(-1);
          return !!last && !new X509Certificate(last.certChainPem).verify(new X509Certificate(tls.rootsPem).publicKey);
        }), undefined,
        'a new leaf on the same stream',
      );
      const last = updates.at(-1) ?? tls;
      const newLeaf = new X509Certificate(last.certChainPem);
      assert.notEqual(newLeaf.serialNumber, leafBefore.serialNumber);
      assert.notEqual(await within(20_000, async () => (updates.at(-1)?.rootsPem.match(/BEGIN CERTIFICATE/g)?.length ?? 0) === 1), undefined, 'the old root leaves the bundle');
      assert.deepEqual(await settledMatrix(kubectl), FULL_MATRIX, 'after rotation, every sleep → httpbin path');
    } finally {
      client.close();
      await admin.makeApiClient(CoreV1Api).deleteNamespace({ name: 'sds-demo' }).catch(() => undefined);
    }
  });
});
