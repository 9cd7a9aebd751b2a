// A real `meshid agent` process is SIGKILLed and started again on the same socket: its
// clients reconnect and get fresh keys, and no key it ever handed out is on disk or in a log.
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SdsClient, type WorkloadTls } from '../../src/agent/index.ts';
import { AGENT_SERVICE_ACCOUNT } from '../../src/install/index.ts';
import { loadKubeConfig, serviceAccountKubeconfig } from '../../src/kube/index.ts';
import { testEnv } from '../support/env.ts';
import { keyNeedles, scanForKeyMaterial } from '../support/key-scan.ts';
import { startAgentProcess } from '../support/meshid-process.ts';
import { within } from '../support/server.ts';
import { workloadToken } from '../support/workload.ts';

/** The playground's installation: its CA signs, its ConfigMap carries the roots. */
const MESHID_NAMESPACE = 'meshid-system';
const WORKLOAD_NAMESPACE = 'faults-agent-restart';
const SERVICE_ACCOUNTS = ['web', 'api'] as const;

interface Workload {
  serviceAccount: string;
  client: SdsClient;
  updates: WorkloadTls[];
}

const leafOf = (tls: WorkloadTls): X509Certificate => new X509Certificate(tls.certChainPem);

/** The certificate is for this key, names this workload, and chains to a root the client trusts. */
function assertUsable(tls: WorkloadTls, serviceAccount: string): void {
  const leaf = leafOf(tls);
  assert.ok(leaf.checkPrivateKey(createPrivateKey(tls.keyPem)), 'the certificate is for the key served with it');
  assert.equal(leaf.subjectAltName, `URI:spiffe://cluster.local/ns/${WORKLOAD_NAMESPACE}/sa/${serviceAccount}`);
  const roots = tls.rootsPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const chain = tls.certChainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const top = new X509Certificate(chain.at(-1) ?? '');
  assert.ok(roots.some((pem) => top.verify(new X509Certificate(pem).publicKey)), 'the chain ends at a trusted root');
}

describe('agent restarted', { timeout: 150_000 }, () => {
  it('clients reconnect and get fresh keys; no key was ever written to disk or a log', async () => {
    const env = testEnv();
    const admin = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin });
    // Everything the agent could write to by convention lives here: its socket directory, home,
    // cache, temp and working directories, and its stdout and stderr.
    const work = await mkdtemp(join(tmpdir(), 'meshid-faults-agent-'));
    const dirs = { sds: join(work, 'sds'), home: join(work, 'home'), cache: join(work, 'home', '.cache'), tmp: join(work, 'tmp'), cwd: join(work, 'cwd'), logs: join(work, 'logs') };
    for (const d of Object.values(dirs)) await mkdir(d, { recursive: true });
    const planted = await mkdtemp(join(tmpdir(), 'meshid-faults-planted-'));
    const kubeconfig = join(work, 'agent.kubeconfig');
    await writeFile(kubeconfig, await serviceAccountKubeconfig(admin, MESHID_NAMESPACE, AGENT_SERVICE_ACCOUNT, 3600), { mode: 0o600 });
    const socket = join(dirs.sds, 'uds_path');
    const agent = await startAgentProcess({
      name: 'meshid-agent',
      namespace: MESHID_NAMESPACE,
      kubeconfig,
      socket,
      caAddress: env.ca.address,
      caServerName: env.ca.serverName,
      logDir: dirs.logs,
      cwd: dirs.cwd,
      // Debug logs: the most the agent ever says is what gets scanned.
      env: { ...process.env, HOME: dirs.home, XDG_CACHE_HOME: dirs.cache, TMPDIR: dirs.tmp, MESHID_LOG_LEVEL: 'debug' },
    });
    const workloads: Workload[] = [];
    try {
      for (const serviceAccount of SERVICE_ACCOUNTS) {
        const token = await workloadToken(admin, WORKLOAD_NAMESPACE, serviceAccount);
        const updates: WorkloadTls[] = [];
        const client = new SdsClient({ socket, token: () => token, onUpdate: (tls) => updates.push(tls) });
        client.start();
        workloads.push({ serviceAccount, client, updates });
      }
      for (const w of workloads) assert.notEqual(await within(20_000, async () => w.updates.length > 0), undefined, `${w.serviceAccount} got a certificate`);
      const before = workloads.map((w) => w.updates.at(-1) as WorkloadTls);
      workloads.forEach((w, i) => assertUsable(before[i] as WorkloadTls, w.serviceAccount));

      await agent.kill();
      const seen = workloads.map((w) => w.updates.length);
      await agent.restart();
      // The same clients, never told anything: they reopen their streams by themselves.
      for (const [i, w] of workloads.entries()) {
        const fresh = (): WorkloadTls | undefined => w.updates.slice(seen[i]).find((tls) => tls.keyPem !== before[i]?.keyPem);
        assert.notEqual(await within(30_000, async () => fresh() !== undefined), undefined, `${w.serviceAccount} reconnected and got a new key`);
        const after = fresh() as WorkloadTls;
        assertUsable(after, w.serviceAccount);
        assert.notEqual(leafOf(after).serialNumber, leafOf(before[i] as WorkloadTls).serialNumber, 'a new certificate too');
      }
      assert.equal((await agent.logs()).match(/SDS agent listening/g)?.length, 2, 'the scanned log is both runs of the agent');

      const keys = [...new Set(workloads.flatMap((w) => w.updates.map((tls) => tls.keyPem)))];
      assert.ok(keys.length >= 4, 'two keys per workload, before and after');

      // The scanner can fail: a key planted as PEM in one file and as raw DER inside another is found.
      const [first, second] = keys as [string, string];
      await writeFile(join(planted, 'key.pem'), first);
      const der = createPrivateKey(second).export({ format: 'der', type: 'pkcs8' });
      await writeFile(join(planted, 'blob.bin'), Buffer.concat([Buffer.from('header'), der, Buffer.from('trailer')]));
      const control = await scanForKeyMaterial([planted], keys);
      assert.ok(control.hits.some((h) => h.file.endsWith('key.pem') && h.what === 'a PEM private-key marker'));
      assert.ok(control.hits.some((h) => h.file.endsWith('key.pem') && h.what === 'key 1: PEM body line 1'));
      assert.ok(control.hits.some((h) => h.file.endsWith('blob.bin') && h.what === 'key 2: PKCS#8 DER, raw'));
      assert.ok(keyNeedles(first, 'key 1').length >= 8, 'every form of a key is looked for');

      const scan = await scanForKeyMaterial([work], keys);
      assert.ok(scan.files.includes(agent.logFile), 'the agent log was scanned');
      assert.deepEqual(scan.hits, [], `no key material in ${scan.files.length} files`);
    } finally {
      for (const w of workloads) w.client.close();
      await agent.stop();
      await rm(work, { recursive: true, force: true });
      await rm(planted, { recursive: true, force: true });
    }
  });
});
