// Interop: Istio's own pilot-agent, built from the istio.io/istio module, gets its workload
// certificate from meshid's CA exactly as it would from istiod.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { ISTIO_VERSION, ensurePilotAgent, freePort } from '../../src/cluster/index.ts';
import { ROOT_CONFIGMAP, ROOT_CONFIGMAP_KEY, splitPem } from '../../src/ca/index.ts';
import { loadKubeConfig } from '../../src/kube/index.ts';
import { testEnv } from '../support/env.ts';
import { within } from '../support/server.ts';
import { workloadToken } from '../support/workload.ts';

const env = testEnv();
const admin = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin });
const core = admin.makeApiClient(CoreV1Api);

describe(`Istio pilot-agent (${ISTIO_VERSION}) against meshid's CA`, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('obtains a certificate for its own SPIFFE ID with CA_ADDR and a projected token', async () => {
    const binary = await ensurePilotAgent();
    const work = await mkdtemp(join(tmpdir(), 'meshid-pilot-agent-'));
    cleanups.push(() => rm(work, { recursive: true, force: true }));
    // pilot-agent reads its token from this fixed path, relative to its working directory.
    await mkdir(join(work, 'var/run/secrets/tokens'), { recursive: true });
    await writeFile(join(work, 'var/run/secrets/tokens/istio-token'), await workloadToken(admin, 'istio-interop', 'demo-sa'));
    cleanups.push(() => core.deleteNamespace({ name: 'istio-interop' }));
    const roots = (await core.readNamespacedConfigMap({ namespace: 'meshid-system', name: ROOT_CONFIGMAP })).data?.[ROOT_CONFIGMAP_KEY] ?? '';
    const rootFile = join(work, 'root.pem');
    await writeFile(rootFile, roots);
    const out = join(work, 'out');
    await mkdir(out);

    // On the host, outside the cluster's DNS, pilot-agent is in a VM's place: as Istio's VM
    // guide does, the CA's Service name goes into /etc/hosts (a private copy, bound over the
    // real one in a mount namespace of pilot-agent's own), and CA_ADDR names the Service.
    const [caIp = '', caPort = ''] = env.ca.address.split(':');
    const hosts = join(work, 'hosts');
    await writeFile(hosts, `127.0.0.1 localhost\n${caIp} ${env.ca.serverName ?? 'localhost'}\n`);
    const [command, args] = env.ca.serverName
      ? ['unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$1" proxy', hosts, binary]]
      : [binary, ['proxy']];
    const child = spawn(command, args, {
      cwd: work,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: '/usr/bin:/bin',
        HOME: work,
        CA_ADDR: env.ca.serverName ? `${env.ca.serverName}:${caPort}` : env.ca.address,
        CA_ROOT_CA: rootFile,
        XDS_ROOT_CA: rootFile,
        OUTPUT_CERTS: out,
        DISABLE_ENVOY: 'true',
        GRPC_XDS_BOOTSTRAP: '',
        POD_NAME: 'demo-0',
        POD_NAMESPACE: 'istio-interop',
        SERVICE_ACCOUNT: 'demo-sa',
        TRUST_DOMAIN: 'cluster.local',
        ISTIO_META_CLUSTER_ID: 'Kubernetes',
        PROXY_CONFIG: JSON.stringify({ statusPort: await freePort() }),
      },
    });
    let log = '';
    child.stdout.on('data', (c: Buffer) => (log += c.toString()));
    child.stderr.on('data', (c: Buffer) => (log += c.toString()));
    cleanups.push(async () => {
      child.kill('SIGKILL');
    });

    const wrote = await within(60_000, async () => (await readFile(join(out, 'cert-chain.pem'), 'utf8').catch(() => '')).includes('END CERTIFICATE'));
    assert.ok(wrote !== undefined, `pilot-agent wrote no certificate within 60 s:\n${log.slice(-3000)}`);

    const chain = splitPem(await readFile(join(out, 'cert-chain.pem'), 'utf8'));
    const leaf = new X509Certificate(chain[0] ?? '');
    assert.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/istio-interop/sa/demo-sa');
    const root = new X509Certificate(await readFile(join(out, 'root-cert.pem'), 'utf8'));
    assert.ok(leaf.verify(root.publicKey), 'the leaf chains to the root meshid published');
    assert.ok(splitPem(roots).some((r) => new X509Certificate(r).fingerprint256 === root.fingerprint256));
    // The key it wrote is the one the certificate is for: the CSR was its own.
    const key = createPrivateKey(await readFile(join(out, 'key.pem'), 'utf8'));
    assert.equal(createPublicKey(key).export({ type: 'spki', format: 'pem' }), leaf.publicKey.export({ type: 'spki', format: 'pem' }));
  });
});
