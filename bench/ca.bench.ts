// Certificates per second through meshid's CA as a workload sees it (gRPC over TLS, token
// review cached, CSR check, signing), for an RSA-2048 and a P-256 CA key, beside the
// in-process signing limit (CSR check + sign, one core) measured in the same run. The CA
// runs as its own process, so the load generator does not share its event loop.
import { webcrypto } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import { credentials, Metadata, type Client, type ServiceError } from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import { LeafSigner, ROOT_CONFIGMAP_KEY, caClientConstructor, checkCsr, createSelfSignedRoot, loadCaMaterial, type CertificateResponseMessage } from '../src/ca/index.ts';
import { MESHID_BIN, freePort, spawnPeer } from '../src/cluster/index.ts';
import { loadKubeConfig } from '../src/kube/index.ts';
import { sharedPlayground } from './lib/playground.ts';
import { rate } from './lib/rate.ts';
import type { Benchmark, Row } from './lib/types.ts';

const GOALS = { rsa: 1_000, ec: 8_000 } as const;
const LABELS = { rsa: 'RSA-2048', ec: 'P-256' } as const;
const CONCURRENCY = 64;
const URI = 'spiffe://cluster.local/ns/bench-ca/sa/load';

type CreateCertificate = Client & {
  CreateCertificate(req: unknown, md: Metadata, opts: { deadline: number }, cb: (e: ServiceError | null, r?: CertificateResponseMessage) => void): void;
};

/** The CSR Istio's agent sends by default: an RSA-2048 key and the SPIFFE URI only. */
async function rsaCsr(): Promise<string> {
  const alg = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, false, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: alg, extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: URI }])] });
  return csr.toString('pem');
}

/** Keeps CONCURRENCY calls in flight for `seconds`; answers completed calls per second. */
async function load(client: CreateCertificate, token: string, csrs: string[], seconds: number): Promise<number> {
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  const deadline = performance.now() + seconds * 1000;
  let done = 0;
  let failed = 0;
  const start = performance.now();
  const worker = async (w: number): Promise<void> => {
    for (let i = 0; performance.now() < deadline && i < 1_000_000; i++) {
      await new Promise<void>((resolve) =>
        client.CreateCertificate({ csr: csrs[(w + i) % csrs.length], validity_duration: 3600 }, md, { deadline: Date.now() + 10_000 }, (error) => {
          if (error) failed += 1;
          else done += 1;
          resolve();
        }),
      );
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
  if (failed > 0) throw new Error(`${failed} CreateCertificate calls failed`);
  return done / ((performance.now() - start) / 1000);
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
    const csrs = await Promise.all(Array.from({ length: 16 }, () => rsaCsr()));
    const rows: Row[] = [];
    for (const keyType of ['rsa', 'ec'] as const) {
      // The crypto limit: the same CSR check and signing, in this process, on one core.
      const root = await createSelfSignedRoot({ keyType });
      const signer = new LeafSigner(loadCaMaterial({ certPem: root.certPem, keyPem: root.keyPem }));
      const limit = rate(() => signer.sign({ publicKey: checkCsr(csrs[0] ?? '', URI).publicKey, uri: URI, ttlSeconds: 3600 }), quick ? 2 : 4);

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
        const Ctor = caClientConstructor();
        const client = new Ctor(`127.0.0.1:${port}`, credentials.createSsl(Buffer.from(roots))) as unknown as CreateCertificate;
        await load(client, token, csrs, 1); // warm-up: TLS, token review, JIT
        const measured = await load(client, token, csrs, seconds);
        client.close();
        rows.push({
          benchmark: 'ca',
          measurement: `certificates/s, ${LABELS[keyType]} CA key, gRPC+TLS, ${CONCURRENCY} in flight (RSA-2048 CSRs)`,
          value: measured,
          unit: '/s',
          baseline: { label: 'CSR check + sign in-process, one core', value: limit },
          goal: { text: `≥ ${GOALS[keyType].toLocaleString('en')}/s`, met: measured >= GOALS[keyType] },
        });
      } finally {
        server.child.kill('SIGTERM');
        await server.exited;
      }
    }
    return rows;
  },
};
