import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SdsClient, startAgent, type WorkloadTls } from '../../src/agent/index.ts';
import { ROOT_CONFIGMAP } from '../../src/ca/index.ts';
import { createLogger } from '../../src/core/index.ts';
import { CA_AUDIENCE, loadKubeConfig } from '../../src/kube/index.ts';
import { runCli } from '../support/cli.ts';
import { testEnv } from '../support/env.ts';
import { within } from '../support/server.ts';
import { workloadToken } from '../support/workload.ts';

const env = testEnv();
const admin = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin });
const leafOf = (tls: WorkloadTls): X509Certificate => new X509Certificate(tls.certChainPem);

describe('agent certificate lifetime (--certificate-ttl), against the playground CA', () => {
  it('asks the CA for the configured lifetime and renews at about half of it, before expiry', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshid-agent-ttl-'));
    const agent = await startAgent(
      admin,
      { socketPath: join(dir, 'sds', 'uds_path'), caAddress: env.ca.address, ...(env.ca.serverName ? { caServerName: env.ca.serverName } : {}), namespace: 'meshid-system', rootConfigMap: ROOT_CONFIGMAP, trustDomain: 'cluster.local', keyType: 'ec', audiences: [CA_AUDIENCE], certificateTtlSeconds: 30 },
      createLogger('agent-ttl-test', 'warn'),
    );
    const token = await workloadToken(admin, 'agent-ttl', 'short');
    let client: SdsClient | undefined;
    try {
      const opened = await SdsClient.first({ socket: agent.server.socketPath, token: () => token }, 20_000);
      client = opened.client;
      const received = Date.now();
      const first = leafOf(opened.tls);
      const updates: WorkloadTls[] = [];
      client.onUpdate((tls) => updates.push(tls));
      // Certificate times have whole seconds: 30 s from the issue, give or take one.
      const left = Date.parse(first.validTo) - received;
      assert.ok(left > 28_000 && left <= 31_000, `the leaf has ${left} ms left, not about 30 s`);
      assert.ok(first.subjectAltName?.includes('spiffe://cluster.local/ns/agent-ttl/sa/short'), first.subjectAltName);

      // Expected at 13.5 to 16.5 s; the old certificate expires at 30 s.
      const renewedIn = await within(25_000, async () => updates.some((u) => leafOf(u).serialNumber !== first.serialNumber));
      assert.notEqual(renewedIn, undefined, 'no renewal within 25 s of a 30 s certificate');
      const renewed = updates.map(leafOf).find((leaf) => leaf.serialNumber !== first.serialNumber);
      assert.ok(renewed && Date.parse(renewed.validTo) > Date.parse(first.validTo), 'the renewal lives longer than the certificate it replaces');
      // Both are backdated alike, so their notBefore gap is the gap between the issues: about
      // half of 30 s, not at once (as when half was taken of the backdated lifetime).
      const gap = Date.parse(renewed.validFrom) - Date.parse(first.validFrom);
      assert.ok(gap >= 12_000, `renewed ${gap} ms after the first issue`);
      assert.equal(agent.server.stats().failures, 0);
    } finally {
      client?.close();
      await agent.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a lifetime under a second, or one that is not a duration, before it starts', async () => {
    for (const ttl of ['500ms', 'soon']) {
      const res = await runCli(['agent', '--certificate-ttl', ttl, '--socket', join(tmpdir(), 'meshid-never', 'uds_path')]);
      assert.equal(res.code, 1, ttl);
      assert.match(res.stderr, /--certificate-ttl.*\[ERR_INVALID_ARGUMENT\]/, ttl);
    }
  });
});
