// A bounded soak: logins, proxied calls and SDS traffic at a steady rate for --soak-duration
// (5 min by default, 30 s with --quick) against the playground's meshid server (login, the
// /api/k8s proxy and the workload CA all live in it) and an SDS agent process whose
// certificates live 20 s, so every held stream is renewed about every 10 s. Every error is
// counted; the RSS of the server and of the agent after a warm-up is compared with the end.
import { httpsClient, runLoad, type LoadResult } from './lib/load.ts';
import { bobSession, loginTasks, seedPods } from './lib/meshid-calls.ts';
import { sharedPlayground, userTls } from './lib/playground.ts';
import { medianRss, sampleRss } from './lib/proc.ts';
import type { Benchmark, Row } from './lib/types.ts';
import { startSdsSoak } from './soak-sds.ts';

/** Starts per second: a steady load that leaves the shared cores room, not a throughput test. */
const RATES = { logins: 40, proxied: 80, sdsConnections: 4 };
const CONCURRENCY = 8;
const TTL_SECONDS = 20;
const HOLDERS = 16;
const CHURN_IDENTITIES = 4;
const PODS = 20;
const RSS_GROWTH_GOAL = 0.1;
const MB = 1024 * 1024;

type Failures = Map<string, number>;

/** The task, with why it failed noted (runLoad itself only counts). */
function noted(failures: Failures, what: string, task: () => Promise<boolean>): () => Promise<boolean> {
  const note = (why: string): false => {
    const key = `${what}: ${why}`;
    failures.set(key, (failures.get(key) ?? 0) + 1);
    return false;
  };
  return async () => {
    try {
      return (await task()) || note('unexpected answer');
    } catch (error) {
      return note(error instanceof Error ? error.message : String(error));
    }
  };
}

/** One task, then the other, call after call. */
function alternate(first: () => Promise<boolean>, second: () => Promise<boolean>): () => Promise<boolean> {
  let n = 0;
  return () => (n++ % 2 === 0 ? first() : second());
}

const percentile = (values: number[], p: number): number => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))] ?? NaN;

export const benchmark: Benchmark = {
  name: 'soak',
  async run({ soakDurationMs: durationMs }) {
    const warmupMs = Math.min(durationMs / 2, Math.max(15_000, durationMs * 0.2));
    const windowMs = Math.min(10_000, Math.max(2_000, (durationMs - warmupMs) / 4));
    const seconds = Math.round(durationMs / 1000);
    const pg = await sharedPlayground();
    const server = pg.processes.find((p) => p.name === 'meshid-server');
    if (!server) throw new Error('the playground has no meshid-server process');
    await seedPods(pg.env.kubeconfigs.admin, PODS);

    const logins = await loginTasks(pg);
    const bob = await userTls(pg.env.kubeconfigs.bob);
    const session = { authorization: `Bearer ${await bobSession(pg)}` };
    const meshid = httpsClient({ ca: bob.meshidCa });
    const ok = async (path: string): Promise<boolean> => (await meshid('GET', new URL(path, pg.env.server.https), session)).status === 200;
    const sds = await startSdsSoak(pg, { ttlSeconds: TTL_SECONDS, holders: HOLDERS, churnIdentities: CHURN_IDENTITIES, durationMs });
    try {
      process.stderr.write(`soaking for ${seconds} s (warm-up ${Math.round(warmupMs / 1000)} s): server pid ${server.pid}, agent pid ${sds.pid}\n`);
      const failures: Failures = new Map();
      const load = (perSecond: number, task: () => Promise<boolean>): Promise<LoadResult> =>
        runLoad({ concurrency: CONCURRENCY, durationMs, perSecond, maxRequests: Math.ceil((perSecond * durationMs) / 1000) + CONCURRENCY, task });
      const [login, proxied, connections, samples] = await Promise.all([
        load(RATES.logins, alternate(noted(failures, 'login by token', logins.byToken), noted(failures, 'login by certificate', logins.byCertificate))),
        load(RATES.proxied, alternate(noted(failures, 'list pods', () => ok('/api/k8s/api/v1/namespaces/dev/pods')), noted(failures, 'get namespace', () => ok('/api/k8s/api/v1/namespaces/dev')))),
        load(RATES.sdsConnections, noted(failures, 'SDS connection', () => sds.open())),
        sampleRss({ server: server.pid, agent: sds.pid }, 1000, durationMs),
      ]);
      const renewals = sds.finish();
      for (const [why, n] of renewals.failures) failures.set(`SDS renewal: ${why}`, n);
      for (const [why, n] of failures) process.stderr.write(`  ${n} × ${why}\n`);

      const workload = (name: string, what: string, r: LoadResult): Row[] => [
        {
          benchmark: 'soak',
          measurement: `${name}: served of ${r.requests} sent (${what}, ${seconds} s)`,
          value: r.requests - r.errors,
          unit: 'req',
          goal: { text: `0 errors (${r.errors})`, met: r.errors === 0 },
        },
        { benchmark: 'soak', measurement: `${name}: latency p50 / p99`, value: r.p50Ms, unit: 'ms', baseline: { label: 'p99', value: r.p99Ms } },
      ];
      const memory = (name: string, what: string): Row => {
        const start = medianRss(samples, name, warmupMs, warmupMs + windowMs);
        const end = medianRss(samples, name, durationMs - windowMs, durationMs);
        const growth = end / start - 1;
        return {
          benchmark: 'soak',
          measurement: `${what} RSS at the end (median of ${Math.round(windowMs / 1000)} s of samples at each point)`,
          value: end / MB,
          unit: 'MB',
          baseline: { label: 'after warm-up', value: start / MB },
          goal: { text: `growth < ${RSS_GROWTH_GOAL * 100}% (${growth >= 0 ? '+' : ''}${(growth * 100).toFixed(1)}%)`, met: growth < RSS_GROWTH_GOAL },
        };
      };
      const lead = renewals.leadMs.map((ms) => ms / 1000);
      return [
        ...workload('logins', `bob's token and alice's certificate in turn, ${RATES.logins}/s`, login),
        ...workload('proxied calls', `list pods, get namespace as bob through /api/k8s, ${RATES.proxied}/s`, proxied),
        {
          benchmark: 'soak',
          measurement: `SDS renewals pushed on ${HOLDERS} open streams (${TTL_SECONDS} s certificates, each checked)`,
          value: renewals.renewals,
          unit: 'renewals',
          goal: { text: `0 errors (${renewals.errors})`, met: renewals.errors === 0 },
        },
        {
          benchmark: 'soak',
          measurement: 'SDS renewals: life left on the replaced certificate when the new one arrived, p50',
          value: percentile(lead, 0.5),
          unit: 's',
          baseline: { label: 'least', value: percentile(lead, 0) },
        },
        ...workload('SDS new connections', `first default + ROOTCA over ${CHURN_IDENTITIES} identities, ${RATES.sdsConnections}/s`, connections),
        memory('server', 'meshid server (login, proxy, CA)'),
        memory('agent', 'SDS agent'),
      ];
    } finally {
      await sds.stop();
    }
  },
};
