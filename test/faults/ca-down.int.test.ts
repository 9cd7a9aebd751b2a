// The workload CA is down for 10 simulated minutes: a real CA (startCa, against the real
// apiserver) and a real SDS agent share one ManualClock, so hours of certificate life pass in
// seconds; SDS clients hold their streams open over the agent's Unix socket throughout.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GrpcCaClient, ManualScheduler, SdsClient, SdsServer, StaticTrustBundle, type WorkloadTls } from '../../src/agent/index.ts';
import { startCa, type CaSettings, type RunningCa } from '../../src/ca/index.ts';
import { freePort } from '../../src/cluster/index.ts';
import { ManualClock, createLogger } from '../../src/core/index.ts';
import { AGENT_SERVICE_ACCOUNT } from '../../src/install/index.ts';
import { CA_AUDIENCE, ServiceAccountTokenReviewer, loadKubeConfig } from '../../src/kube/index.ts';
import { deleteConfigMapsNamed } from '../support/kube.ts';
import { installNamespace } from '../support/server.ts';
import { workloadToken } from '../support/workload.ts';

const NAMESPACE = 'faults-ca-down';
/** Not the playground's `istio-ca-root-cert`: this CA must not overwrite the real one. */
const ROOT_CONFIGMAP = 'faults-ca-down-root';
const MINUTE = 60_000;
/** Leaves live 20 minutes, so the agent wants to renew (at half) inside the outage. */
const TTL_SECONDS = 20 * 60;
const OUTAGE_MS = 10 * MINUTE;
const STEP_MS = 30_000;

const leafOf = (tls: WorkloadTls): X509Certificate => new X509Certificate(tls.certChainPem);
const validAt = (cert: X509Certificate, now: number): boolean => Date.parse(cert.validFrom) <= now && now <= Date.parse(cert.validTo);

describe('CA down for 10 simulated minutes', { timeout: 150_000 }, () => {
  it('agents keep serving valid certificates while the CA is down, and renew on the open stream when it returns', async () => {
    const installed = await installNamespace(NAMESPACE);
    const clock = new ManualClock(Date.now());
    const scheduler = new ManualScheduler(clock);
    const log = createLogger('faults-ca-down', 'silent');
    const caKc = loadKubeConfig({ kubeconfig: await installed.kubeconfigFor() });
    const settings: CaSettings = {
      namespace: NAMESPACE,
      host: '127.0.0.1',
      port: await freePort(),
      trustDomain: 'cluster.local',
      keyType: 'ec',
      defaultTtlSeconds: TTL_SECONDS,
      maxTtlSeconds: 24 * 3600,
      audiences: [CA_AUDIENCE],
      rootConfigMap: ROOT_CONFIGMAP,
      serviceNames: [`meshid-ca.${NAMESPACE}.svc`],
    };
    let ca: RunningCa | undefined = await startCa(caKc, settings, log, clock);
    const roots = ca.ca.bundle();
    const signer = new GrpcCaClient({ address: `127.0.0.1:${settings.port}`, rootCertPem: roots.join('') });
    const dir = await mkdtemp(join(tmpdir(), 'meshid-faults-ca-down-'));
    const agent = new SdsServer({
      socketPath: join(dir, 'sds', 'agent.sock'),
      reviewer: new ServiceAccountTokenReviewer(loadKubeConfig({ kubeconfig: await installed.kubeconfigFor(AGENT_SERVICE_ACCOUNT) }), [CA_AUDIENCE], clock),
      signer,
      trustBundle: new StaticTrustBundle(roots),
      log,
      clock,
      scheduler,
      certificateTtlSeconds: TTL_SECONDS,
      random: () => 0.5,
    });
    let client: SdsClient | undefined;
    try {
      await agent.start();
      // An hour's token: the apiserver checks it on its own (real) clock, which barely moves.
      const token = await workloadToken(installed.admin, `${NAMESPACE}-app`, 'web', [CA_AUDIENCE], 3600);
      const first = await SdsClient.first({ socket: agent.socketPath, token: () => token });
      client = first.client;
      const pushed: WorkloadTls[] = [];
      client.onUpdate((tls) => pushed.push(tls));
      const original = leafOf(first.tls);
      assert.ok(original.verify(new X509Certificate(roots[0] ?? '').publicKey), 'signed by the real CA');
      const served = (): WorkloadTls => pushed.at(-1) ?? first.tls;
      const settle = (): Promise<void> => sleep(150);

      // Five quiet minutes, then the CA goes away with the leaf at a quarter of its life.
      scheduler.advance(5 * MINUTE);
      await settle();
      await ca.stop();
      ca = undefined;
      const failuresBefore = agent.stats().failures;

      for (let elapsed = 0; elapsed < OUTAGE_MS; elapsed += STEP_MS) {
        scheduler.advance(STEP_MS);
        await settle();
        const now = clock.now();
        assert.ok(validAt(leafOf(served()), now), `at +${(now - Date.parse(original.validFrom)) / MINUTE} min the served certificate is still valid`);
      }
      assert.equal(pushed.length, 0, 'nothing new could be issued while the CA was down');
      assert.ok(agent.stats().failures > failuresBefore, 'the agent tried to renew during the outage, and kept the old certificate');
      assert.ok(clock.now() >= Date.parse(original.validFrom) + (TTL_SECONDS * 1000) / 2, 'the outage covered the renewal time');

      ca = await startCa(caKc, settings, log, clock);
      // Retries back off to at most a simulated minute; grpc's own reconnect runs on real time.
      let renewed: WorkloadTls | undefined;
      for (let i = 0; i < 120 && !renewed; i++) {
        scheduler.advance(10_000);
        await sleep(250);
        renewed = pushed.find((tls) => tls.keyPem !== first.tls.keyPem);
      }
      assert.ok(renewed, 'a new certificate arrived on the open stream after the CA returned');
      const fresh = leafOf(renewed);
      assert.notEqual(fresh.serialNumber, original.serialNumber);
      assert.ok(validAt(fresh, clock.now()), 'the new certificate is valid now');
      assert.ok(Date.parse(fresh.validTo) > Date.parse(original.validTo), 'and outlives the old one');
      assert.ok(fresh.verify(new X509Certificate(roots[0] ?? '').publicKey), 'signed by the same root: the CA came back with its key');
      assert.equal(fresh.subjectAltName, `URI:spiffe://cluster.local/ns/${NAMESPACE}-app/sa/web`);
    } finally {
      client?.close();
      await agent.stop();
      signer.close();
      await ca?.stop();
      await deleteConfigMapsNamed(installed.admin, ROOT_CONFIGMAP);
      await installed.remove();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
