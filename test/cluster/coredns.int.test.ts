// Cluster DNS: CoreDNS, built from its Go module with our plugin subset, answers for the
// playground's Services with the rights of coreDnsRbac() alone, and answers every other
// name itself, since the build has no plugin that could ask anyone else.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Resolver } from 'node:dns/promises';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import {
  COREDNS_USER,
  COREDNS_VERSION,
  coreDnsRbac,
  ensureCoreDns,
  freePort,
  renderCorefile,
  spawnPeer,
  stopPid,
  type PeerProcess,
} from '../../src/cluster/index.ts';
import { applyObjects, loadKubeConfig } from '../../src/kube/index.ts';
import { testEnv } from '../support/env.ts';
import { kubeRequest } from '../support/kube.ts';
import { within } from '../support/server.ts';

const env = testEnv();
const admin = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin });
const core = admin.makeApiClient(CoreV1Api);
const NAMESPACE = 'dns-interop';

/**
 * The admin kubeconfig, impersonating system:coredns: the playground env holds no key for
 * minting a client certificate, and impersonation gives CoreDNS exactly that user's rights,
 * which is what the test is about.
 */
async function coreDnsKubeconfig(path: string): Promise<void> {
  const config = parse(await readFile(env.kubeconfigs.admin, 'utf8')) as { users: { user: Record<string, unknown> }[] };
  for (const entry of config.users) entry.user['as'] = COREDNS_USER;
  await writeFile(path, stringify(config), { mode: 0o600 });
}

describe(`CoreDNS (${COREDNS_VERSION}) as the playground's cluster DNS`, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  let resolver: Resolver;
  let clusterIp = '';
  let log = '';
  let kubeconfig = '';

  before(async () => {
    const binary = await ensureCoreDns();
    const work = await mkdtemp(join(tmpdir(), 'meshid-coredns-'));
    cleanups.push(() => rm(work, { recursive: true, force: true }));
    await applyObjects(admin, coreDnsRbac());
    kubeconfig = join(work, 'coredns.kubeconfig');
    await coreDnsKubeconfig(kubeconfig);

    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    cleanups.push(() => core.deleteNamespace({ name: NAMESPACE }));
    const service = await core.createNamespacedService({
      namespace: NAMESPACE,
      body: { metadata: { name: 'httpbin' }, spec: { selector: { app: 'httpbin' }, ports: [{ port: 8000, targetPort: 8080 }] } },
    });
    clusterIp = service.spec?.clusterIP ?? '';
    assert.ok(clusterIp, 'the apiserver gave the Service a ClusterIP');

    const [port, readyPort] = [await freePort(), await freePort()];
    const corefile = join(work, 'Corefile');
    await writeFile(corefile, renderCorefile({
      listen: '127.0.0.1',
      port,
      kubeconfig,
      clusterDomain: 'cluster.local',
      serviceCidr: '10.96.0.0/16',
      podCidr: '10.244.0.0/16',
      readyPort,
    }));
    const logFile = join(work, 'coredns.log');
    const peer: PeerProcess = spawnPeer('coredns', binary, ['-conf', corefile], { logFile, detached: false });
    cleanups.push(() => stopPid(peer.pid));
    // /ready turns 200 once the kubernetes plugin has listed what it watches: with too few
    // rights it never would, so this also checks coreDnsRbac().
    const ready = await within(30_000, async () => {
      const res = await fetch(`http://127.0.0.1:${String(readyPort)}/ready`).catch(() => undefined);
      return res?.status === 200;
    });
    log = await readFile(logFile, 'utf8').catch(() => '');
    assert.ok(ready !== undefined, `CoreDNS was not ready within 30 s:\n${log.slice(-3000)}`);

    resolver = new Resolver({ timeout: 2_000, tries: 1 });
    resolver.setServers([`127.0.0.1:${String(port)}`]);
    // A cold build of CoreDNS takes minutes on two cores; it happens here unless the peer
    // cache already holds this version.
  }, { timeout: 20 * 60_000 });

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });

  it('reads the cluster as system:coredns, whose rights are list and watch on what the plugin watches', async () => {
    const can = async (verb: string, resource: string, group = ''): Promise<boolean> => {
      const res = await kubeRequest(env.kubeconfigs.admin, 'POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
        body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { user: COREDNS_USER, resourceAttributes: { verb, resource, group } } },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return (res.body as { status: { allowed: boolean } }).status.allowed;
    };
    assert.equal(await can('watch', 'services'), true);
    assert.equal(await can('list', 'endpointslices', 'discovery.k8s.io'), true);
    assert.equal(await can('list', 'namespaces'), true);
    assert.equal(await can('list', 'pods'), false);
    assert.equal(await can('get', 'secrets'), false);
    assert.equal(await can('delete', 'services'), false);
    // The kubeconfig CoreDNS used really acts as that user, not as admin.
    const refused = await new Promise<string>((resolve) => {
      execFile(env.kubectl, ['--kubeconfig', kubeconfig, 'get', 'secrets', '-A'], (error, _stdout, stderr) => resolve(error ? stderr : 'allowed'));
    });
    assert.match(refused, /User "system:coredns" cannot list resource "secrets"/);
  });

  it('resolves a Service name to its ClusterIP, and the ClusterIP back to the name', async () => {
    // The informer may lag the create by a moment; the answer must come within seconds.
    let answer: string[] = [];
    await within(10_000, async () => {
      answer = await resolver.resolve4(`httpbin.${NAMESPACE}.svc.cluster.local`).catch(() => []);
      return answer.length > 0;
    });
    assert.deepEqual(answer, [clusterIp]);
    assert.deepEqual(await resolver.reverse(clusterIp), [`httpbin.${NAMESPACE}.svc.cluster.local`]);
  });

  it('answers SRV for the named port spec of a Service', async () => {
    const records = await resolver.resolveSrv(`httpbin.${NAMESPACE}.svc.cluster.local`);
    assert.deepEqual(records.map((r) => [r.name, r.port]), [[`httpbin.${NAMESPACE}.svc.cluster.local`, 8000]]);
  });

  it('answers NXDOMAIN for names it does not know, inside and outside the cluster domain', async () => {
    for (const name of [`nothing.${NAMESPACE}.svc.cluster.local`, 'example.com', 'meshid.meshid-system.svc']) {
      await assert.rejects(resolver.resolve4(name), { code: 'ENOTFOUND' }, name);
    }
    // A PTR outside both CIDRs lands in the root zone too.
    await assert.rejects(resolver.reverse('192.0.2.1'), { code: 'ENOTFOUND' });
  });
});
