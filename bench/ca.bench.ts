// Certificates per second through meshid's CA as a workload sees it (gRPC over TLS, token
// review cached, CSR check, signing), for an RSA-2048 and a P-256 CA key, beside the
// in-process signing limit (CSR check + sign, one core) measured in the same run. The CA
// runs as its own process and the load comes from ghz (Go), so neither shares an event loop.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import { LeafSigner, checkCsr, createSelfSignedRoot, loadCaMaterial } from '../src/ca/index.ts';
import { CA_SERVICE_NAME, ROOT_CONFIGMAP_KEY } from '../src/contract/index.ts';
import { createKeyAndCsr } from '../src/agent/index.ts';
import { MESHID_BIN, ensureGhz, freePort, spawnPeer } from '../src/cluster/index.ts';
import { terminalProgress } from '../src/core/index.ts';
import { loadKubeConfig } from '../src/kube/index.ts';
import { sharedPlayground } from './lib/playground.ts';
import { rate } from './lib/rate.ts';
import type { Benchmark, Row } from './lib/types.ts';

const GOALS = { rsa: 1_000, ec: 8_000 } as const;
const LABELS = { rsa: 'RSA-2048', ec: 'P-256' } as const;
const CONCURRENCY = 64;
const PROTO = fileURLToPath(new URL('../proto/istio-ca.proto', import.meta.url));
const run = promisify(execFile);
const URI = 'spiffe://cluster.local/ns/bench-ca/sa/load';


interface GhzReport {
  /** Nanoseconds. */
  total: number;
  statusCodeDistribution?: Record<string, number>;
  errorDistribution?: Record<string, number>;
  latencyDistribution?: { percentage: number; latency: number }[] | null;
}

/** Keeps CONCURRENCY calls in flight for `seconds` with ghz; answers its report. */
async function ghz(binary: string, address: string, files: { root: string; data: string; metadata: string }, seconds: number): Promise<GhzReport> {
  const args = ['--proto', PROTO, '--call', `${CA_SERVICE_NAME}/CreateCertificate`, '--cacert', files.root, '-D', files.data, '-M', files.metadata, '-c', String(CONCURRENCY), '--connections', '4', '-z', `${seconds}s`, '-O', 'json', address];
  const { stdout } = await run(binary, args, { timeout: (seconds + 30) * 1000, maxBuffer: 16 * 1024 * 1024 });
  const report = JSON.parse(stdout) as GhzReport;
  // With a duration (-z), ghz cancels the calls still in flight at the end; those are not failures.
  const cut = Object.entries(report.errorDistribution ?? {}).filter(([message]) => /closing/.test(message)).reduce((sum, [, n]) => sum + n, 0);
  const failed = Object.entries(report.statusCodeDistribution ?? {}).filter(([code]) => code !== 'OK' && !((code === 'Unavailable' || code === 'Canceled') && cut <= CONCURRENCY));
  if (failed.length > 0) throw new Error(`CreateCertificate failed under load: ${JSON.stringify(Object.fromEntries(failed))} ${JSON.stringify(report.errorDistribution ?? {})}`);
  return report;
}

const percentile = (report: GhzReport, p: number): number => (report.latencyDistribution?.find((d) => d.percentage === p)?.latency ?? NaN) / 1e6;

/** User plus system CPU time of a process so far, from /proc (clock ticks are 100 Hz on Linux). */
async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export const benchmark: Benchmark = {
  name: 'ca',
  async run({ quick }) {
    const seconds = quick ? 3 : 8;
    const playground = await sharedPlayground();
    const admin = loadKubeConfig({ kubeconfig: playground.env.kubeconfigs.admin });
    const core = admin.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'bench-ca' } } }).catch(() => undefined);
    await core.createNamespacedServiceAccount({ namespace: 'bench-ca', body: { metadata: { name: 'load' } } }).catch(() => undefined);
    const token = (await core.createNamespacedServiceAccountToken({ namespace: 'bench-ca', name: 'load', body: { spec: { audiences: ['istio-ca'], expirationSeconds: 3600 } } })).status?.token ?? '';
    // Istio's agent sends RSA-2048 CSRs by default; meshid's agent makes the same shape.
    const csr = (await createKeyAndCsr(URI, 'rsa')).csrPem;
    const binary = await ensureGhz({ progress: terminalProgress() });
    const rows: Row[] = [];
    for (const keyType of ['rsa', 'ec'] as const) {
      // The crypto limit: the same CSR check and signing, in this process, on one core.
      const root = await createSelfSignedRoot({ keyType });
      const signer = new LeafSigner(loadCaMaterial({ certPem: root.certPem, keyPem: root.keyPem }));
      const limit = rate(() => signer.sign({ publicKey: checkCsr(csr, URI).publicKey, uri: URI, ttlSeconds: 3600 }), quick ? 2 : 4);

      const namespace = `bench-ca-${keyType}`;
      await core.createNamespace({ body: { metadata: { name: namespace } } }).catch(() => undefined);
      const dir = await mkdtemp(join(tmpdir(), 'meshid-bench-ca-'));
      const config = join(dir, 'config.json');
      const rootConfigMap = `${namespace}-root`;
      await writeFile(config, JSON.stringify({ ca: { keyType, rootConfigMap }, userTokens: { enableIssuer: false } }));
      const port = await freePort();
      const server = spawnPeer(`ca-${keyType}`, process.execPath, [MESHID_BIN, 'server', '--kubeconfig', playground.env.kubeconfigs.admin, '-n', namespace, '--host', '127.0.0.1', '--http-port', String(await freePort()), '--https-port', String(await freePort()), '--ca', '--ca-port', String(port), '--config', config], { logFile: join(dir, 'server.log'), detached: false });
      try {
        let roots = '';
        for (let i = 0; i < 200 && !roots; i++) {
          roots = (await core.readNamespacedConfigMap({ namespace, name: rootConfigMap }).catch(() => undefined))?.data?.[ROOT_CONFIGMAP_KEY] ?? '';
          if (!roots) await sleep(100);
        }
        if (!roots) throw new Error(`the ${keyType} CA did not start; see ${dir}/server.log`);
        const files = { root: join(dir, 'root.pem'), data: join(dir, 'data.json'), metadata: join(dir, 'metadata.json') };
        await writeFile(files.root, roots);
        await writeFile(files.data, JSON.stringify({ csr: csr, validity_duration: 3600 }));
        await writeFile(files.metadata, JSON.stringify({ authorization: `Bearer ${token}` }));
        await ghz(binary, `127.0.0.1:${port}`, files, 1); // warm-up: TLS, token review, JIT
        const cpuBefore = await cpuSeconds(server.pid);
        const report = await ghz(binary, `127.0.0.1:${port}`, files, seconds);
        const cpu = (await cpuSeconds(server.pid)) - cpuBefore;
        const completed = report.statusCodeDistribution?.['OK'] ?? 0;
        const measured = completed / (report.total / 1e9);
        rows.push({
          benchmark: 'ca',
          measurement: `certificates/s, ${LABELS[keyType]} CA key, gRPC+TLS, ${CONCURRENCY} in flight from ghz (RSA-2048 CSRs)`,
          value: measured,
          unit: '/s',
          baseline: { label: 'CSR check + sign in-process, one core', value: limit },
          goal: { text: `≥ ${GOALS[keyType].toLocaleString('en')}/s`, met: measured >= GOALS[keyType] },
        });
        // ghz and the CA share two cores: what one CPU-second of the CA buys is the fairer comparison.
        rows.push({ benchmark: 'ca', measurement: `certificates per CPU-second of the CA process, ${LABELS[keyType]} CA key`, value: completed / cpu, unit: '/s', baseline: { label: 'CSR check + sign in-process, one core', value: limit } });
        rows.push({ benchmark: 'ca', measurement: `latency p50 / p99 under that load, ${LABELS[keyType]} CA key (ms)`, value: percentile(report, 50), unit: 'ms', baseline: { label: 'p99', value: percentile(report, 99) } });
      } finally {
        server.child.kill('SIGTERM');
        await server.exited;
      }
    }
    return rows;
  },
};
