import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { promisify } from 'node:util';
import type { PlaygroundEnv } from '../../src/playground/index.ts';
import { splitPem } from '../../src/ca/index.ts';

const run = promisify(execFile);

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type Kubectl = (args: string[], timeoutMs?: number) => Promise<KubectlResult>;

/** kubectl as the playground's admin; a failure is an answer (its exit code and output), not a throw. */
export function adminKubectl(env: Pick<PlaygroundEnv, 'kubectl' | 'kubeconfigs'>): Kubectl {
  return (args, timeoutMs = 30_000) =>
    run(env.kubectl, ['--kubeconfig', env.kubeconfigs.admin, ...args], { timeout: timeoutMs }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: typeof error.code === 'number' ? error.code : 1, stdout: error.stdout ?? '', stderr: error.stderr ?? '' }),
    );
}

export const DEMO_NAMESPACES = ['foo', 'bar'] as const;

/**
 * sleep in each demo namespace calls httpbin in each over mTLS, from inside its pod, and
 * checks who answered and whom httpbin saw. Answers `from->to:status`, four of them.
 */
export async function demoMatrix(kubectl: Kubectl): Promise<string[]> {
  const matrix: string[] = [];
  for (const from of DEMO_NAMESPACES) {
    for (const to of DEMO_NAMESPACES) {
      const script = `fetch('http://127.0.0.1:8080/call?target=httpbin.${to}:8443&namespace=${to}').then(r=>r.text()).then(t=>process.stdout.write(t))`;
      const answer = await kubectl(['-n', from, 'exec', 'deploy/sleep', '--', 'node', '-e', script]);
      assert.equal(answer.code, 0, answer.stderr);
      const call = JSON.parse(answer.stdout) as { status?: number; body?: string; error?: string };
      if (call.status === 200) {
        const body = JSON.parse(call.body ?? '{}') as { me: string; peer: string };
        assert.equal(body.me, `spiffe://cluster.local/ns/${to}/sa/httpbin`);
        assert.equal(body.peer, `spiffe://cluster.local/ns/${from}/sa/sleep`);
      }
      matrix.push(`${from}->${to}:${call.status ?? call.error ?? '?'}`);
    }
  }
  return matrix;
}

export const FULL_MATRIX = ['foo->foo:200', 'foo->bar:200', 'bar->foo:200', 'bar->bar:200'];

/**
 * The leaf a workload serves on `ip:port`, read from outside the mesh: the handshake gets as
 * far as the server's certificate before the server asks for one of ours.
 */
export function servedLeaf(ip: string, port: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: ip, port, rejectUnauthorized: false, servername: 'httpbin' });
    socket.setTimeout(5_000, () => socket.destroy(new Error(`no TLS answer from ${ip}:${port}`)));
    socket.once('secureConnect', () => {
      const leaf = socket.getPeerX509Certificate();
      socket.destroy();
      if (leaf) resolve(leaf);
      else reject(new Error(`${ip}:${port} sent no certificate`));
    });
    socket.once('error', reject);
  });
}

/** Whether `leaf` was signed by the root in `rootPem` (meshid's roots sign leaves directly). */
export function signedBy(leaf: X509Certificate, rootPem: string): boolean {
  const root = new X509Certificate(rootPem);
  return leaf.checkIssued(root) && leaf.verify(root.publicKey);
}

/** The roots a namespace's istio-ca-root-cert holds now, as PEMs. */
export async function publishedRootPems(kubectl: Kubectl, namespace: string): Promise<string[]> {
  const cm = await kubectl(['-n', namespace, 'get', 'configmap', 'istio-ca-root-cert', '-o', 'jsonpath={.data.root-cert\\.pem}']);
  assert.equal(cm.code, 0, cm.stderr);
  return splitPem(cm.stdout);
}

export interface PodState {
  namespace: string;
  name: string;
  uid: string;
  ready: boolean;
  restarts: number;
  ip: string;
  app: string;
}

/** The pods of a namespace that are not being deleted. */
export async function livePods(kubectl: Kubectl, namespace: string, selector?: string): Promise<PodState[]> {
  const answer = await kubectl(['-n', namespace, 'get', 'pods', ...(selector ? ['-l', selector] : []), '-o', 'json']);
  assert.equal(answer.code, 0, answer.stderr);
  const list = JSON.parse(answer.stdout) as {
    items: Array<{
      metadata: { name: string; uid: string; labels?: Record<string, string>; deletionTimestamp?: string };
      status: { podIP?: string; conditions?: Array<{ type: string; status: string }>; containerStatuses?: Array<{ restartCount: number }> };
    }>;
  };
  return list.items
    .filter((p) => !p.metadata.deletionTimestamp)
    .map((p) => ({
      namespace,
      name: p.metadata.name,
      uid: p.metadata.uid,
      ready: p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
      restarts: (p.status.containerStatuses ?? []).reduce((n, c) => n + c.restartCount, 0),
      ip: p.status.podIP ?? '',
      app: p.metadata.labels?.['app'] ?? p.metadata.labels?.['app.kubernetes.io/name'] ?? '',
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Polls `check` every `everyMs` until it answers something, at most `tries` times. */
export async function eventually<T>(tries: number, everyMs: number, check: () => Promise<T | undefined>): Promise<T | undefined> {
  for (let i = 0; i < tries; i++) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  return undefined;
}

/** The matrix, retried a little: each sleep's own leaf arrives on its stream a moment after httpbin's. */
export async function settledMatrix(kubectl: Kubectl): Promise<string[]> {
  let last: string[] = [];
  await eventually(10, 1_000, async () => {
    last = await demoMatrix(kubectl);
    return last.join() === FULL_MATRIX.join() ? last : undefined;
  });
  return last;
}
