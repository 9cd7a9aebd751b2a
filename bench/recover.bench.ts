// The compromise drill's `meshid recover all --yes`, timed per step from its JSON report,
// against an installation of its own in the shared playground (a meshid server with the CA,
// mesh namespaces with legacy token Secrets and workloads, a registry entry). The CA step is
// shown beside the wait it cannot avoid: the propagation delay plus the grace period.
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AppsV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { MESHID_BIN } from '../src/cluster/index.ts';
import { createLogger } from '../src/core/index.ts';
import { install, uninstall, SERVICE_ACCOUNT } from '../src/install/index.ts';
import { loadKubeConfig, serviceAccountKubeconfig } from '../src/kube/index.ts';
import type { RecoveryReport, StepName } from '../src/recovery/index.ts';
import { RegistryStore, dockerConfigFor } from '../src/registry/index.ts';
import { startServer } from '../src/server/index.ts';
import { sharedPlayground } from './lib/playground.ts';
import type { Benchmark, Row } from './lib/types.ts';

const run = promisify(execFile);
const NS = 'bench-recover';
const ROOTS = 'bench-recover-root-cert';
const REGISTRY = 'bench-recover-registry';
const APPS = ['bench-recover-a', 'bench-recover-b', 'bench-recover-c'];
const PROPAGATION_S = 5;
const GRACE_S = 5;
const WORKLOADS_PER_NAMESPACE = 5;

async function until(ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out setting up the recovery benchmark');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What a compromised mesh namespace holds: legacy token Secrets and workloads to restart. */
async function populate(admin: KubeConfig, namespace: string): Promise<void> {
  const core = admin.makeApiClient(CoreV1Api);
  const apps = admin.makeApiClient(AppsV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await until(15_000, () => core.readNamespacedServiceAccount({ namespace, name: 'default' }).then(() => true, () => false));
  for (let i = 0; i < 2; i++) {
    await core.createNamespacedSecret({ namespace, body: { metadata: { name: `legacy-${i}`, annotations: { 'kubernetes.io/service-account.name': 'default' } }, type: 'kubernetes.io/service-account-token' } });
  }
  for (let i = 0; i < WORKLOADS_PER_NAMESPACE; i++) {
    const labels = { app: `w${i}` };
    // Zero replicas: the playground has no kubelet, and a rollout of none is complete at once.
    await apps.createNamespacedDeployment({ namespace, body: { metadata: { name: `w${i}` }, spec: { replicas: 0, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'app', image: 'registry.example.com/app:1' }] } } } } });
  }
  await until(15_000, async () => (await core.listNamespacedSecret({ namespace, fieldSelector: 'type=kubernetes.io/service-account-token' })).items.every((s) => s.data?.['token']));
}

export const benchmark: Benchmark = {
  name: 'recover',
  async run() {
    const playground = await sharedPlayground();
    const adminFile = playground.env.kubeconfigs.admin;
    const admin = loadKubeConfig({ kubeconfig: adminFile });
    const core = admin.makeApiClient(CoreV1Api);
    await install(admin, { namespace: NS, anonymousAuth: false, image: 'meshid:bench', replicas: 0, rootConfigMap: ROOTS });
    const file = join(await mkdtemp(join(tmpdir(), 'meshid-bench-recover-')), 'server.kubeconfig');
    await writeFile(file, await serviceAccountKubeconfig(admin, NS, SERVICE_ACCOUNT, 3600));
    const server = await startServer(
      { kubeconfig: file, namespace: NS, host: '127.0.0.1', httpPort: 0, httpsPort: 0, ca: { enabled: true, port: 0, keyType: 'ec', rootConfigMap: ROOTS } },
      { log: createLogger(NS, 'silent') },
    );
    try {
      for (const namespace of APPS) await populate(admin, namespace);
      await new RegistryStore(admin, REGISTRY).add('corp', dockerConfigFor('registry.example.com', 'robot', 'bench-password'));
      await until(15_000, async () => (await core.readNamespacedConfigMap({ namespace: NS, name: ROOTS }).catch(() => undefined)) !== undefined);

      const mesh = [NS, REGISTRY, ...APPS];
      const started = Date.now();
      const { stdout } = await run(
        process.execPath,
        [
          MESHID_BIN, '--kubeconfig', adminFile, '-n', NS, 'recover', 'all', '--yes', '-o', 'json',
          '--mesh-namespaces', mesh.join(','), '--registry-namespace', REGISTRY, '--root-configmap', ROOTS,
          '--ca-propagation', `${PROPAGATION_S}s`, '--ca-grace', `${GRACE_S}s`, '--url', server.httpUrl,
        ],
        { timeout: 300_000, maxBuffer: 16 * 1024 * 1024 },
      );
      const wall = (Date.now() - started) / 1000;
      const report = JSON.parse(stdout) as RecoveryReport;
      if (!report.ok) throw new Error(`recover all did not complete: ${stdout}`);
      const step = (name: StepName) => report.steps.find((s) => s.step === name);
      const objects = (name: StepName) => step(name)?.objects.length ?? 0;
      const row = (name: StepName, what: string, extra: Partial<Row> = {}): Row => ({
        benchmark: 'recover',
        measurement: `step ${name}: ${what}`,
        value: (step(name)?.durationMs ?? NaN) / 1000,
        unit: 's',
        ...extra,
      });
      const checks = report.verification.checks;
      return [
        row('service-account-tokens', `${objects('service-account-tokens')} objects in ${mesh.length} namespaces (token Secrets deleted, Deployments restarted)`),
        row('jwt-key', 'session key replaced'),
        row('signing-key', 'new key, admin token re-issued, old key removed (waits for the server to sign with the new key)'),
        row('ca', `new root; propagation ${PROPAGATION_S} s, grace ${GRACE_S} s, then every copy of the bundle checked`, {
          baseline: { label: 'propagation + grace', value: PROPAGATION_S + GRACE_S },
        }),
        row('registry', `1 entry reconciled into ${mesh.length - 1} namespaces`),
        { benchmark: 'recover', measurement: `verification: ${checks.filter((c) => c.status === 'passed').length} of ${checks.length} checks passed`, value: report.verification.durationMs / 1000, unit: 's' },
        {
          benchmark: 'recover',
          measurement: '`meshid recover all --yes`, whole command (plan, steps, verification)',
          value: wall,
          unit: 's',
          baseline: { label: 'sum of the steps', value: report.steps.reduce((sum, s) => sum + s.durationMs, 0) / 1000 },
          goal: { text: '< 60 s', met: wall < 60 },
        },
      ];
    } finally {
      await server.close();
      await uninstall(admin, { namespace: NS, purge: false });
      for (const namespace of [NS, REGISTRY, ...APPS]) await core.deleteNamespace({ name: namespace }).catch(() => undefined);
    }
  },
};
