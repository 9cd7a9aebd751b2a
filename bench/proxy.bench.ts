// List pods through meshid's impersonation proxy against the same list sent straight to
// kube-apiserver and through `kubectl proxy` (the playground's kubectl, as bob), with the same
// client in the same run. meshid's and kubectl proxy's own CPU time per request is read from
// /proc around their runs.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort, spawnPeer } from '../src/cluster/index.ts';
import { playgroundServerFiles } from '../src/playground/index.ts';
import { httpClient, httpsClient, runLoad, type LoadResult } from './lib/load.ts';
import { bobSession, seedPods } from './lib/meshid-calls.ts';
import { sharedPlayground, userTls } from './lib/playground.ts';
import { cpuSeconds } from './lib/proc.ts';
import type { Benchmark, Row } from './lib/types.ts';

const PODS = 20;
const CONCURRENCY = 16;
const DURATION_MS = 8_000;
const SEQUENTIAL = 400;
const FLOOR_PROXY = fileURLToPath(new URL('./lib/node-floor-proxy.ts', import.meta.url));

export const benchmark: Benchmark = {
  name: 'proxy',
  async run() {
    const pg = await sharedPlayground();
    await seedPods(pg.env.kubeconfigs.admin, PODS);
    const bob = await userTls(pg.env.kubeconfigs.bob);
    if (!bob.token) throw new Error('bob has no token');
    const idToken = await bobSession(pg);

    const admin = await userTls(pg.env.kubeconfigs.admin);
    const direct = httpsClient({ ca: bob.ca });
    const asAdmin = httpsClient({ ca: admin.ca, ...(admin.cert ? { cert: admin.cert } : {}), ...(admin.key ? { key: admin.key } : {}) });
    const viaMeshid = httpsClient({ ca: bob.meshidCa });
    const directUrl = new URL('/api/v1/namespaces/dev/pods', bob.server);
    const meshidUrl = new URL('/api/k8s/api/v1/namespaces/dev/pods', pg.env.server.https);
    const directTask = async (): Promise<boolean> => (await direct('GET', directUrl, { authorization: `Bearer ${bob.token}` })).status === 200;
    // What any impersonating proxy pays inside kube-apiserver: the same list, sent by admin
    // with the Impersonate-* headers meshid would add.
    const impersonatingTask = async (): Promise<boolean> =>
      (await asAdmin('GET', directUrl, { 'impersonate-user': 'bob', 'impersonate-group': 'ops' })).status === 200;
    const meshidTask = async (): Promise<boolean> => (await viaMeshid('GET', meshidUrl, { authorization: `Bearer ${idToken}` })).status === 200;

    const rows: Row[] = [];
    let errors = 0;
    const server = pg.processes.find((p) => p.name === 'meshid-server');
    if (!server) throw new Error('the playground has no meshid-server process');

    // kubectl proxy as bob: it forwards with bob's token, so the apiserver judges bob as it
    // does for the direct list and for meshid's impersonated one.
    const dir = await mkdtemp(join(tmpdir(), 'meshid-bench-proxy-'));
    const kubectlPort = await freePort();
    const kubectl = spawnPeer('kubectl-proxy', pg.env.kubectl, ['proxy', '--kubeconfig', pg.env.kubeconfigs.bob, '--address', '127.0.0.1', '--port', String(kubectlPort)], { logFile: join(dir, 'kubectl-proxy.log'), detached: false });
    // The floor: a bare Node.js proxy with meshid's serving certificate, credential and upstream agent.
    const files = playgroundServerFiles(pg.cluster.dir);
    const floorPort = await freePort();
    const floor = spawnPeer('node-floor-proxy', process.execPath, ['--import', 'tsx', FLOOR_PROXY, String(floorPort), files.certFile, files.keyFile, files.kubeconfig, 'bob', 'ops'], { logFile: join(dir, 'node-floor-proxy.log'), detached: false });
    try {
      // kubectl proxy serves plain HTTP on loopback only; that is how it is used.
      const viaKubectl = httpClient();
      const kubectlUrl = new URL(`http://127.0.0.1:${kubectlPort}/api/v1/namespaces/dev/pods`);
      const kubectlTask = async (): Promise<boolean> => (await viaKubectl('GET', kubectlUrl, {})).status === 200;
      const floorUrl = new URL(`https://127.0.0.1:${floorPort}/api/k8s/api/v1/namespaces/dev/pods`);
      const floorTask = async (): Promise<boolean> => (await viaMeshid('GET', floorUrl, {})).status === 200;
      /** Both peers were just started: each is measured once it answers, for at most 10 s. */
      const answering = async (task: () => Promise<boolean>, what: string, log: string): Promise<void> => {
        for (let i = 0; i < 100; i++) {
          if (await task().catch(() => false)) return;
          await sleep(100);
        }
        throw new Error(`${what} did not answer; see ${dir}/${log}`);
      };
      await answering(kubectlTask, 'kubectl proxy', 'kubectl-proxy.log');
      await answering(floorTask, 'the Node.js floor proxy', 'node-floor-proxy.log');

      // Warm every path (connections, caches), then measure each the same way.
      for (const task of [directTask, meshidTask, kubectlTask, floorTask]) await runLoad({ concurrency: 4, durationMs: 1500, maxRequests: 500, task });
      const load = (task: () => Promise<boolean>): Promise<LoadResult> => runLoad({ concurrency: CONCURRENCY, durationMs: DURATION_MS, maxRequests: 100_000, task });
      /** A load run with the CPU seconds `pid` spent during it. */
      const loadWithCpu = async (task: () => Promise<boolean>, pid: number): Promise<LoadResult & { cpu: number }> => {
        const before = await cpuSeconds(pid);
        const result = await load(task);
        return { ...result, cpu: (await cpuSeconds(pid)) - before };
      };
      const tDirect = await load(directTask);
      const tMeshid = await loadWithCpu(meshidTask, server.pid);
      const tKubectl = await loadWithCpu(kubectlTask, kubectl.pid);
      const tFloor = await loadWithCpu(floorTask, floor.pid);
      const tImpersonating = await load(impersonatingTask);
      const seq = (task: () => Promise<boolean>): Promise<LoadResult> => runLoad({ concurrency: 1, durationMs: 20_000, maxRequests: SEQUENTIAL, task });
      const lDirect = await seq(directTask);
      const lMeshid = await seq(meshidTask);
      const lKubectl = await seq(kubectlTask);
      const added = lMeshid.p50Ms - lDirect.p50Ms;
      const ratio = tMeshid.perSecond / tDirect.perSecond;
      const meshidCpuMs = (tMeshid.cpu * 1000) / tMeshid.requests;
      const kubectlCpuMs = (tKubectl.cpu * 1000) / tKubectl.requests;
      const floorCpuMs = (tFloor.cpu * 1000) / tFloor.requests;
      errors = tDirect.errors + tMeshid.errors + tKubectl.errors + tFloor.errors + tImpersonating.errors + lDirect.errors + lMeshid.errors + lKubectl.errors;
      rows.push(
        {
          benchmark: 'proxy',
          measurement: `list ${PODS} pods as bob, ${CONCURRENCY} concurrent, ${DURATION_MS / 1000} s (p99 ${tMeshid.p99Ms.toFixed(1)} vs ${tDirect.p99Ms.toFixed(1)} ms)`,
          value: tMeshid.perSecond,
          unit: 'req/s',
          baseline: { label: 'kube-apiserver direct', value: tDirect.perSecond },
          goal: { text: 'ratio >= 0.9', met: ratio >= 0.9 },
        },
        {
          benchmark: 'proxy',
          measurement: `same list through kubectl proxy as bob (plain HTTP on loopback; p99 ${tKubectl.p99Ms.toFixed(1)} ms)`,
          value: tMeshid.perSecond,
          unit: 'req/s',
          baseline: { label: 'kubectl proxy', value: tKubectl.perSecond },
          goal: { text: 'ratio >= 1.2', met: tMeshid.perSecond >= 1.2 * tKubectl.perSecond },
        },
        {
          benchmark: 'proxy',
          measurement: `CPU-ms of the proxy process per proxied request (user+sys, /proc; meshid's server also holds its CA and login)`,
          value: meshidCpuMs,
          unit: 'ms',
          baseline: { label: 'kubectl proxy', value: kubectlCpuMs },
          goal: { text: '<= 0.5 ms', met: meshidCpuMs <= 0.5 },
        },
        {
          benchmark: 'proxy',
          measurement: `the same CPU per request for a bare Node.js proxy (node:https in and out, meshid's certificate, credential and agent; nothing else; ${tFloor.perSecond.toFixed(0)} req/s)`,
          value: meshidCpuMs,
          unit: 'ms',
          baseline: { label: 'Node.js floor', value: floorCpuMs },
        },
        {
          benchmark: 'proxy',
          measurement: `same list sent by admin with Impersonate-* headers, straight to kube-apiserver`,
          value: tImpersonating.perSecond,
          unit: 'req/s',
          baseline: { label: 'kube-apiserver direct', value: tDirect.perSecond },
        },
        {
          benchmark: 'proxy',
          measurement: `p50 latency, one at a time (${SEQUENTIAL} requests each; kubectl proxy ${lKubectl.p50Ms.toFixed(2)} ms)`,
          value: lMeshid.p50Ms,
          unit: 'ms',
          baseline: { label: 'kube-apiserver direct', value: lDirect.p50Ms },
          goal: { text: `added <= 1 ms (added ${added.toFixed(2)} ms)`, met: added <= 1 },
        },
      );
    } finally {
      for (const peer of [kubectl, floor]) peer.child.kill('SIGTERM');
      await Promise.all([kubectl.exited, floor.exited]);
      await rm(dir, { recursive: true, force: true });
    }
    if (errors > 0) rows.push({ benchmark: 'proxy', measurement: 'failed requests', value: errors, unit: '', goal: { text: '0', met: false } });
    return rows;
  },
};
