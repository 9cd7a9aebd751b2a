// List pods through meshid's impersonation proxy against the same list sent straight to
// kube-apiserver, with the same client in the same run.
import { httpsClient, runLoad, type LoadResult } from './lib/load.ts';
import { bobSession, seedPods } from './lib/meshid-calls.ts';
import { sharedPlayground, userTls } from './lib/playground.ts';
import type { Benchmark, Row } from './lib/types.ts';

const PODS = 20;
const CONCURRENCY = 16;
const DURATION_MS = 8_000;
const SEQUENTIAL = 400;

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

    // Warm both paths (connections, caches), then measure each the same way.
    await runLoad({ concurrency: 4, durationMs: 1500, maxRequests: 500, task: directTask });
    await runLoad({ concurrency: 4, durationMs: 1500, maxRequests: 500, task: meshidTask });
    const load = (task: () => Promise<boolean>): Promise<LoadResult> => runLoad({ concurrency: CONCURRENCY, durationMs: DURATION_MS, maxRequests: 100_000, task });
    const tDirect = await load(directTask);
    const tMeshid = await load(meshidTask);
    const tImpersonating = await load(impersonatingTask);
    const seq = (task: () => Promise<boolean>): Promise<LoadResult> => runLoad({ concurrency: 1, durationMs: 20_000, maxRequests: SEQUENTIAL, task });
    const lDirect = await seq(directTask);
    const lMeshid = await seq(meshidTask);
    const added = lMeshid.p50Ms - lDirect.p50Ms;
    const ratio = tMeshid.perSecond / tDirect.perSecond;
    const errors = tDirect.errors + tMeshid.errors + tImpersonating.errors + lDirect.errors + lMeshid.errors;
    const rows: Row[] = [
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
        measurement: `same list sent by admin with Impersonate-* headers, straight to kube-apiserver`,
        value: tImpersonating.perSecond,
        unit: 'req/s',
        baseline: { label: 'kube-apiserver direct', value: tDirect.perSecond },
      },
      {
        benchmark: 'proxy',
        measurement: `p50 latency, one at a time (${SEQUENTIAL} requests each)`,
        value: lMeshid.p50Ms,
        unit: 'ms',
        baseline: { label: 'kube-apiserver direct', value: lDirect.p50Ms },
        goal: { text: `added <= 1 ms (added ${added.toFixed(2)} ms)`, met: added <= 1 },
      },
    ];
    if (errors > 0) rows.push({ benchmark: 'proxy', measurement: 'failed requests', value: errors, unit: '', goal: { text: '0', met: false } });
    return rows;
  },
};
