// The SDS side of bench/soak.bench.ts: a `meshid agent` process of its own (the playground's
// asks for 24 h certificates, so it would renew nothing in a soak) with short-lived
// certificates from the playground's CA, workloads that hold streams open and check every
// certificate pushed to them, and new connections opened one after another.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SdsClient, type WorkloadTls } from '../src/agent/index.ts';
import { splitPem } from '../src/ca/index.ts';
import { MESHID_BIN, spawnPeer, stopPid, type PeerProcess } from '../src/cluster/index.ts';
import { AGENT_SERVICE_ACCOUNT } from '../src/install/index.ts';
import { loadKubeConfig, serviceAccountKubeconfig } from '../src/kube/index.ts';
import type { Playground } from '../src/playground/index.ts';
import { workloadToken } from '../test/support/workload.ts';
import { checkDistFresh } from './agent-server.ts';

const NAMESPACE = 'bench-soak';
const MESHID_NAMESPACE = 'meshid-system';

export interface SdsSoakOptions {
  ttlSeconds: number;
  /** Identities whose streams stay open for the whole soak, to receive renewals. */
  holders: number;
  /** Identities the new connections take turns with. */
  churnIdentities: number;
  durationMs: number;
}

export interface RenewalReport {
  /** New certificates pushed on the open streams. */
  renewals: number;
  /** Late renewals, expired certificates, invalid certificates, stream errors. */
  errors: number;
  failures: Map<string, number>;
  /** Per renewal: milliseconds the replaced certificate still had when the new one arrived. */
  leadMs: number[];
}

export interface SdsSoak {
  /** The agent process, for its RSS. */
  pid: number;
  /** One new connection: both resources, a valid certificate for the identity, closed; throws why not. */
  open(): Promise<boolean>;
  /** Stops watching and answers what the open streams received; their last certificates must still be valid. */
  finish(): RenewalReport;
  stop(): Promise<void>;
}

interface Holder {
  uri: string;
  client: SdsClient | undefined;
  serial: string | undefined;
  notAfter: number;
  /** The current certificate was seen to expire unrenewed (counted once). */
  expired: boolean;
  /** The stream failed (counted once); nothing more is expected of it. */
  lost: boolean;
}

const uriOf = (i: number): string => `spiffe://cluster.local/ns/${NAMESPACE}/sa/w${i}`;

/**
 * Why the set is not what a workload may use now, or undefined when it is: a leaf for its own
 * key and identity, valid now, signed by the next certificate up, and a chain that ends at a
 * root in the bundle.
 */
function tlsProblem(tls: WorkloadTls, uri: string, now: number): string | undefined {
  const chain = splitPem(tls.certChainPem).map((pem) => new X509Certificate(pem));
  const roots = splitPem(tls.rootsPem).map((pem) => new X509Certificate(pem));
  const [leaf] = chain;
  const top = chain.at(-1);
  if (!leaf || !top) return 'no certificate';
  if (!leaf.checkPrivateKey(createPrivateKey(tls.keyPem))) return 'key and certificate do not match';
  if (!(leaf.subjectAltName ?? '').split(', ').includes(`URI:${uri}`)) return 'certificate for another identity';
  if (now < Date.parse(leaf.validFrom) || now >= Date.parse(leaf.validTo)) return 'certificate not valid now';
  const issuer = chain[1] ?? roots.find((root) => leaf.checkIssued(root));
  if (!issuer || !leaf.verify(issuer.publicKey)) return 'leaf not signed by its issuer';
  if (!roots.some((root) => root.fingerprint256 === top.fingerprint256 || (top.checkIssued(root) && top.verify(root.publicKey)))) return 'chain does not end at a root of the bundle';
  return undefined;
}

async function startAgentProcess(pg: Playground, dir: string, ttlSeconds: number, durationMs: number): Promise<{ agent: PeerProcess; socket: string }> {
  checkDistFresh(join(import.meta.dirname, '..', 'dist'));
  const admin = loadKubeConfig({ kubeconfig: pg.env.kubeconfigs.admin });
  // The agent's own service account, as the playground's agent runs.
  const kubeconfig = join(dir, 'agent.kubeconfig');
  await writeFile(kubeconfig, await serviceAccountKubeconfig(admin, MESHID_NAMESPACE, AGENT_SERVICE_ACCOUNT, Math.max(3600, durationMs / 1000 + 600)), { mode: 0o600 });
  const socket = join(dir, 'sds', 'uds_path');
  const logFile = join(dir, 'agent.log');
  const args = [MESHID_BIN, 'agent', '--kubeconfig', kubeconfig, '-n', MESHID_NAMESPACE, '--socket', socket, '--ca-address', pg.env.ca.address, '--certificate-ttl', `${ttlSeconds}s`];
  const agent = spawnPeer('soak-agent', process.execPath, args, { logFile, detached: false });
  let exited: string | undefined;
  void agent.exited.then((how) => (exited = how));
  for (let i = 0; i < 150; i++) {
    if (exited !== undefined) throw new Error(`the soak's agent exited (${exited}); see ${logFile}`);
    if ((await stat(socket).catch(() => undefined))?.isSocket()) return { agent, socket };
    await sleep(100);
  }
  await stopPid(agent.pid);
  throw new Error(`the soak's agent did not listen within 15 s; see ${logFile}`);
}

export async function startSdsSoak(pg: Playground, options: SdsSoakOptions): Promise<SdsSoak> {
  const dir = await mkdtemp(join(tmpdir(), 'meshid-bench-soak-'));
  const { agent, socket } = await startAgentProcess(pg, dir, options.ttlSeconds, options.durationMs);
  const admin = loadKubeConfig({ kubeconfig: pg.env.kubeconfigs.admin });
  const identities = options.holders + options.churnIdentities;
  // Projected tokens as the kubelet mounts them, valid for the whole soak.
  const expiration = Math.max(3600, Math.ceil(options.durationMs / 1000) + 600);
  const tokens: string[] = [];
  for (let i = 0; i < identities; i++) tokens.push(await workloadToken(admin, NAMESPACE, `w${i}`, ['istio-ca'], expiration));

  const report: RenewalReport = { renewals: 0, errors: 0, failures: new Map(), leadMs: [] };
  const fail = (why: string): void => {
    report.errors += 1;
    report.failures.set(why, (report.failures.get(why) ?? 0) + 1);
  };
  const holders: Holder[] = Array.from({ length: options.holders }, (_, i) => ({ uri: uriOf(i), client: undefined, serial: undefined, notAfter: 0, expired: false, lost: false }));
  const received = (holder: Holder, tls: WorkloadTls): void => {
    const now = Date.now();
    const problem = tlsProblem(tls, holder.uri, now);
    if (problem) return fail(`pushed: ${problem}`);
    const leaf = new X509Certificate(splitPem(tls.certChainPem)[0] ?? '');
    // A ROOTCA push repeats the current leaf.
    if (leaf.serialNumber === holder.serial) return;
    if (holder.serial !== undefined) {
      report.renewals += 1;
      report.leadMs.push(holder.notAfter - now);
      if (holder.notAfter <= now && !holder.expired) fail('renewal arrived after the certificate expired');
    }
    holder.serial = leaf.serialNumber;
    holder.notAfter = Date.parse(leaf.validTo);
    holder.expired = false;
  };
  try {
    for (const [i, holder] of holders.entries()) {
      const token = tokens[i] ?? '';
      const lost = (error: Error): void => {
        if (holder.lost) return;
        holder.lost = true;
        fail(`stream error: ${error.message}`);
      };
      const opened = await SdsClient.first({ socket, token: () => token, onError: lost }, 20_000);
      holder.client = opened.client;
      received(holder, opened.tls);
      opened.client.onUpdate((tls) => received(holder, tls));
    }
  } catch (error) {
    for (const holder of holders) holder.client?.close();
    await stopPid(agent.pid);
    throw error;
  }
  // A certificate that expires with no renewal pushed is an error even if one comes later.
  const watchdog = setInterval(() => {
    const now = Date.now();
    for (const holder of holders) {
      if (holder.serial !== undefined && !holder.expired && !holder.lost && now >= holder.notAfter) {
        holder.expired = true;
        fail('certificate expired before its renewal arrived');
      }
    }
  }, 500);

  let turn = 0;
  return {
    pid: agent.pid,
    async open() {
      const i = options.holders + (turn++ % options.churnIdentities);
      const token = tokens[i] ?? '';
      const { client, tls } = await SdsClient.first({ socket, token: () => token }, 10_000);
      client.close();
      const problem = tlsProblem(tls, uriOf(i), Date.now());
      if (problem) throw new Error(problem);
      return true;
    },
    finish() {
      clearInterval(watchdog);
      const now = Date.now();
      for (const holder of holders) if (!holder.expired && !holder.lost && now >= holder.notAfter) fail('certificate expired at the end');
      return report;
    },
    async stop() {
      clearInterval(watchdog);
      for (const holder of holders) holder.client?.close();
      await stopPid(agent.pid);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
