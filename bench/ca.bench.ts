// Certificates per second through meshid's CA as a workload sees it (gRPC over TLS, token
// review cached, CSR check, signing), for an RSA-2048 and a P-256 CA key, beside the
// in-process signing limit (CSR check + sign, one core) measured in the same run. The CA
// runs as its own process and the load comes from ghz (Go), so neither shares an event loop.
// Istio's istiod (pilot-discovery, built from peers/istio) is loaded with the same ghz run
// (same CSR, same service-account token, same concurrency) with a root of the same key type,
// and both are charged the CPU time their process spent (/proc/<pid>/stat) per certificate.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import { LeafSigner, checkCsr, createSelfSignedRoot, defaultSigningThreads, loadCaMaterial } from '../src/ca/index.ts';
import { CA_SERVICE_NAME, ROOT_CONFIGMAP, ROOT_CONFIGMAP_KEY } from '../src/contract/index.ts';
import { createKeyAndCsr } from '../src/agent/index.ts';
import { MESHID_BIN, ensureGhz, ensurePilotDiscovery, freePort, spawnPeer } from '../src/cluster/index.ts';
import { terminalProgress } from '../src/core/index.ts';
import { loadKubeConfig } from '../src/kube/index.ts';
import { ISTIOD_NAMESPACE, ISTIOD_SERVER_NAME, startIstiod } from './lib/istiod.ts';
import { sharedPlayground } from './lib/playground.ts';
import { childrenCpuSeconds, cpuSeconds } from './lib/proc.ts';
import { rate } from './lib/rate.ts';
import type { Benchmark, Row } from './lib/types.ts';

const GOALS = { rsa: 1_000, ec: 8_000 } as const;
const LABELS = { rsa: 'RSA-2048', ec: 'P-256' } as const;
const CONCURRENCY = 64;
const PROTO = fileURLToPath(new URL('../proto/istio-ca.proto', import.meta.url));
const FLOOR_SERVER = fileURLToPath(new URL('./lib/grpc-floor-server.ts', import.meta.url));
const run = promisify(execFile);
const URI = 'spiffe://cluster.local/ns/bench-ca/sa/load';

interface GhzReport {
  /** Nanoseconds. */
  total: number;
  statusCodeDistribution?: Record<string, number>;
  errorDistribution?: Record<string, number>;
  latencyDistribution?: { percentage: number; latency: number }[] | null;
}

interface Target {
  address: string;
  /** The root the CA's serving certificate chains to. */
  root: string;
  /** TLS server name, when the serving certificate does not name the address. */
  serverName?: string;
  /** Encrypt but do not verify the server (the floor server's certificate names nothing). */
  skipVerify?: boolean;
}

/** Keeps CONCURRENCY calls in flight for `seconds` with ghz; answers its report. */
async function ghz(binary: string, target: Target, files: { data: string; metadata: string }, seconds: number): Promise<GhzReport> {
  const args = ['--proto', PROTO, '--call', `${CA_SERVICE_NAME}/CreateCertificate`, ...(target.skipVerify ? ['--skipTLS'] : ['--cacert', target.root]), ...(target.serverName ? ['--cname', target.serverName] : []), '-D', files.data, '-M', files.metadata, '-c', String(CONCURRENCY), '--connections', '4', '-z', `${seconds}s`, '-O', 'json', target.address];
  const { stdout } = await run(binary, args, { timeout: (seconds + 30) * 1000, maxBuffer: 16 * 1024 * 1024 });
  const report = JSON.parse(stdout) as GhzReport;
  // With a duration (-z), ghz cancels the calls still in flight at the end; those are not
  // failures. A call it starts while closing fails the same way, so a few more than
  // CONCURRENCY can be cut (65 seen once under load); anything else that is not OK is a failure.
  const cut = Object.entries(report.errorDistribution ?? {}).filter(([message]) => /closing/.test(message)).reduce((sum, [, n]) => sum + n, 0);
  const notOk = Object.entries(report.statusCodeDistribution ?? {}).filter(([code]) => code !== 'OK');
  const onlyCut = cut <= 2 * CONCURRENCY && notOk.reduce((sum, [, n]) => sum + n, 0) <= cut;
  const failed = notOk.filter(([code]) => !((code === 'Unavailable' || code === 'Canceled') && onlyCut));
  if (failed.length > 0) throw new Error(`CreateCertificate failed under load: ${JSON.stringify(Object.fromEntries(failed))} ${JSON.stringify(report.errorDistribution ?? {})}`);
  return report;
}

const percentile = (report: GhzReport, p: number): number => (report.latencyDistribution?.find((d) => d.percentage === p)?.latency ?? NaN) / 1e6;


interface Measured {
  perSecond: number;
  /** CPU seconds of the CA's process per certificate. */
  cpuPerCert: number;
  /** CPU seconds kube-apiserver spent per certificate meanwhile (the CA's TokenReviews, mostly). */
  apiserverCpuPerCert: number;
  /** CPU seconds ghz itself spent per certificate: the load shares the cores with the CA. */
  ghzCpuPerCert: number;
  report: GhzReport;
}

/**
 * A warm-up, then `seconds` of load; the CPU time of the CA's process and of kube-apiserver
 * is read around the measured run.
 */
async function measure(binary: string, pids: { ca: number; apiserver: number }, target: Target, files: { data: string; metadata: string }, seconds: number): Promise<Measured> {
  await ghz(binary, target, files, 1); // warm-up: TLS, token review, JIT
  const before = { ca: await cpuSeconds(pids.ca), apiserver: await cpuSeconds(pids.apiserver), ghz: await childrenCpuSeconds() };
  const report = await ghz(binary, target, files, seconds);
  const cpu = (await cpuSeconds(pids.ca)) - before.ca;
  const apiserverCpu = (await cpuSeconds(pids.apiserver)) - before.apiserver;
  const ghzCpu = (await childrenCpuSeconds()) - before.ghz;
  const completed = report.statusCodeDistribution?.['OK'] ?? 0;
  return { perSecond: completed / (report.total / 1e9), cpuPerCert: cpu / completed, apiserverCpuPerCert: apiserverCpu / completed, ghzCpuPerCert: ghzCpu / completed, report };
}

/** Polls until `ready` answers, at most `tries` times `everyMs` apart. */
async function waitFor<T>(ready: () => Promise<T | undefined>, tries: number, everyMs: number): Promise<T | undefined> {
  for (let i = 0; i < tries; i++) {
    const value = await ready().catch(() => undefined);
    if (value !== undefined) return value;
    await sleep(everyMs);
  }
  return undefined;
}

export const benchmark: Benchmark = {
  name: 'ca',
  async run({ quick }) {
    const seconds = quick ? 3 : 8;
    const playground = await sharedPlayground();
    const admin = loadKubeConfig({ kubeconfig: playground.env.kubeconfigs.admin });
    const core = admin.makeApiClient(CoreV1Api);
    for (const name of ['bench-ca', ISTIOD_NAMESPACE]) await core.createNamespace({ body: { metadata: { name } } }).catch(() => undefined);
    await core.createNamespacedServiceAccount({ namespace: 'bench-ca', body: { metadata: { name: 'load' } } }).catch(() => undefined);
    const token = (await core.createNamespacedServiceAccountToken({ namespace: 'bench-ca', name: 'load', body: { spec: { audiences: ['istio-ca'], expirationSeconds: 3600 } } })).status?.token ?? '';
    // Istio's agent sends RSA-2048 CSRs by default; meshid's agent makes the same shape.
    const csr = (await createKeyAndCsr(URI, 'rsa')).csrPem;
    const binary = await ensureGhz({ progress: terminalProgress() });
    const istiodBinary = await ensurePilotDiscovery({ progress: terminalProgress() });
    const apiserver = playground.processes.find((p) => p.name === 'kube-apiserver');
    if (!apiserver) throw new Error('the playground has no kube-apiserver process');
    // MESHID_BENCH_CPU_PROF=<dir>: meshid's CA writes a V8 CPU profile there when it stops.
    const profileDir = process.env['MESHID_BENCH_CPU_PROF'];
    const rows: Row[] = [];
    for (const keyType of ['rsa', 'ec'] as const) {
      // The crypto limit: the same CSR check and signing, in this process, on one core.
      const root = await createSelfSignedRoot({ keyType });
      const signer = new LeafSigner(loadCaMaterial({ certPem: root.certPem, keyPem: root.keyPem }));
      const limit = rate(() => signer.sign({ publicKey: checkCsr(csr, URI).publicKey, uri: URI, ttlSeconds: 3600 }), quick ? 2 : 4);

      const namespace = `bench-ca-${keyType}`;
      await core.createNamespace({ body: { metadata: { name: namespace } } }).catch(() => undefined);
      const dir = await mkdtemp(join(tmpdir(), 'meshid-bench-ca-'));
      const files = { data: join(dir, 'data.json'), metadata: join(dir, 'metadata.json') };
      await writeFile(files.data, JSON.stringify({ csr: csr, validity_duration: 3600 }));
      await writeFile(files.metadata, JSON.stringify({ authorization: `Bearer ${token}` }));

      const rootConfigMap = `${namespace}-root`;
      /** meshid's CA under the ghz load; `signingThreads` unset is the default for this machine. */
      const runMeshid = async (signingThreads?: number): Promise<Measured> => {
        const name = `ca-${keyType}${signingThreads === undefined ? '' : `-${signingThreads}-threads`}`;
        const config = join(dir, `${name}.json`);
        await writeFile(config, JSON.stringify({ ca: { keyType, rootConfigMap, ...(signingThreads === undefined ? {} : { signingThreads }) }, userTokens: { enableIssuer: false } }));
        const port = await freePort();
        const httpPort = await freePort();
        const server = spawnPeer(name, process.execPath, [...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), MESHID_BIN, 'server', '--kubeconfig', playground.env.kubeconfigs.admin, '-n', namespace, '--host', '127.0.0.1', '--http-port', String(httpPort), '--https-port', String(await freePort()), '--ca', '--ca-port', String(port), '--config', config], { logFile: join(dir, `${name}.log`), detached: false });
        try {
          // Ready (its CA listening) before its roots are read: a second run finds them published by the first.
          const ready = await waitFor(async () => ((await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => undefined))?.status === 200) || undefined, 200, 100);
          const roots = ready && (await waitFor(async () => (await core.readNamespacedConfigMap({ namespace, name: rootConfigMap })).data?.[ROOT_CONFIGMAP_KEY] || undefined, 200, 100));
          if (!roots) throw new Error(`the ${keyType} CA did not start; see ${dir}/${name}.log`);
          await writeFile(join(dir, 'root.pem'), roots);
          return await measure(binary, { ca: server.pid, apiserver: apiserver.pid }, { address: `127.0.0.1:${port}`, root: join(dir, 'root.pem') }, files, seconds);
        } finally {
          server.child.kill('SIGTERM');
          await server.exited;
        }
      };
      const meshid = await runMeshid();
      // The same CA with its CSR checks and signatures on the event loop, not on worker threads.
      const eventLoop = await runMeshid(0);

      // istiod with a plugged-in root of the same key type, made the same way as meshid's.
      const istiodDir = join(dir, 'istiod');
      const istiodRoot = await createSelfSignedRoot({ keyType });
      // meshid's root as the playground's server published it, to check istiod left it alone.
      const published = async (): Promise<string | undefined> => (await core.readNamespacedConfigMap({ namespace: 'default', name: ROOT_CONFIGMAP }).catch(() => undefined))?.data?.[ROOT_CONFIGMAP_KEY];
      const meshidRoot = await published();
      const istiod = await startIstiod(istiodBinary, playground.env.kubeconfigs.admin, istiodDir, istiodRoot);
      let peer: Measured;
      try {
        await writeFile(join(dir, 'istiod-root.pem'), istiodRoot.certPem);
        const target: Target = { address: istiod.address, root: join(dir, 'istiod-root.pem'), serverName: ISTIOD_SERVER_NAME };
        // Ready once it signs: its CA port opens only after its informers have synced.
        const up = await waitFor(async () => (await ghz(binary, target, files, 1)).statusCodeDistribution?.['OK'], 120, 500);
        if (!up) throw new Error(`istiod did not start signing; see ${istiod.logFile}`);
        peer = await measure(binary, { ca: istiod.process.pid, apiserver: apiserver.pid }, target, files, seconds);
      } finally {
        istiod.process.child.kill('SIGTERM');
        await istiod.process.exited;
      }
      if ((await published()) !== meshidRoot) throw new Error(`istiod changed the playground's ${ROOT_CONFIGMAP} ConfigMap; see ${istiod.logFile}`);

      const label = LABELS[keyType];
      rows.push({
        benchmark: 'ca',
        measurement: `certificates/s, ${label} CA key, gRPC+TLS, ${CONCURRENCY} in flight from ghz (RSA-2048 CSRs)`,
        value: meshid.perSecond,
        unit: '/s',
        baseline: { label: 'CSR check + sign in-process, one core', value: limit },
        goal: { text: `≥ ${GOALS[keyType].toLocaleString('en')}/s`, met: meshid.perSecond >= GOALS[keyType] },
      });
      rows.push({
        benchmark: 'ca',
        measurement: `the same, signing on the event loop (ca.signingThreads: 0; CPU-ms per certificate ${(eventLoop.cpuPerCert * 1000).toFixed(2)})`,
        value: eventLoop.perSecond,
        unit: '/s',
        baseline: { label: `default: ${defaultSigningThreads()} signing threads`, value: meshid.perSecond },
      });
      rows.push({
        benchmark: 'ca',
        measurement: `certificates/s against istiod, ${label} root each, same ghz load and token`,
        value: meshid.perSecond,
        unit: '/s',
        baseline: { label: 'istiod', value: peer.perSecond },
        goal: { text: '≥ istiod', met: meshid.perSecond >= peer.perSecond },
      });
      // ghz and the CA share the cores: what a certificate costs the CA's own process is the fairer comparison.
      rows.push({
        benchmark: 'ca',
        measurement: `CPU-ms of the CA process per certificate, ${label} (user+sys, /proc)`,
        value: meshid.cpuPerCert * 1000,
        unit: 'ms',
        baseline: { label: 'istiod', value: peer.cpuPerCert * 1000 },
        goal: { text: '≤ istiod', met: meshid.cpuPerCert <= peer.cpuPerCert },
      });
      // istiod sends a TokenReview per certificate; meshid reuses an answer for 10 s.
      rows.push({
        benchmark: 'ca',
        measurement: `CPU-ms of kube-apiserver per certificate meanwhile, ${label} (token reviews)`,
        value: meshid.apiserverCpuPerCert * 1000,
        unit: 'ms',
        baseline: { label: 'istiod', value: peer.apiserverCpuPerCert * 1000 },
      });
      // With ghz on the same cores, certificates/s can be at most cores / (CA + ghz + apiserver CPU per certificate).
      rows.push({
        benchmark: 'ca',
        measurement: `CPU-ms of ghz (the load) per certificate, ${label}`,
        value: meshid.ghzCpuPerCert * 1000,
        unit: 'ms',
        baseline: { label: 'istiod', value: peer.ghzCpuPerCert * 1000 },
      });
      rows.push({
        benchmark: 'ca',
        measurement: `latency p50 / p99 under that load, ${label} CA key (ms; istiod ${percentile(peer.report, 50).toFixed(1)} / ${percentile(peer.report, 99).toFixed(1)})`,
        value: percentile(meshid.report, 50),
        unit: 'ms',
        baseline: { label: 'p99', value: percentile(meshid.report, 99) },
      });
    }

    // The floor: grpc-js with the same TLS, load and message, and no CA work at all.
    const dir = await mkdtemp(join(tmpdir(), 'meshid-bench-ca-floor-'));
    const serving = await createSelfSignedRoot({ keyType: 'ec' });
    await writeFile(join(dir, 'cert.pem'), serving.certPem);
    await writeFile(join(dir, 'key.pem'), serving.keyPem, { mode: 0o600 });
    const files = { data: join(dir, 'data.json'), metadata: join(dir, 'metadata.json') };
    await writeFile(files.data, JSON.stringify({ csr: csr, validity_duration: 3600 }));
    await writeFile(files.metadata, JSON.stringify({ authorization: `Bearer ${token}` }));
    const floorPort = await freePort();
    const floor = spawnPeer('grpc-floor', process.execPath, [...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), '--import', 'tsx', FLOOR_SERVER, String(floorPort), join(dir, 'cert.pem'), join(dir, 'key.pem')], { logFile: join(dir, 'floor.log'), detached: false });
    try {
      const target: Target = { address: `127.0.0.1:${floorPort}`, root: '', skipVerify: true };
      const up = await waitFor(async () => (await ghz(binary, target, files, 1)).statusCodeDistribution?.['OK'], 60, 500);
      if (!up) throw new Error(`the grpc-js floor server did not answer; see ${dir}/floor.log`);
      const bare = await measure(binary, { ca: floor.pid, apiserver: apiserver.pid }, target, files, seconds);
      rows.push({
        benchmark: 'ca',
        measurement: `grpc-js alone (same server options, TLS and load, a fixed answer): calls/s; CPU-ms per call ${(bare.cpuPerCert * 1000).toFixed(2)}`,
        value: bare.perSecond,
        unit: '/s',
      });
    } finally {
      floor.child.kill('SIGTERM');
      await floor.exited;
    }
    return rows;
  },
};
