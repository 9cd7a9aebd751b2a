// Several real `meshid server --ca` processes share one installation: started together on an
// empty one they make exactly one of each key, and when one dies in the middle of a rotation
// the others finish it. An empty installation is the honest "empty cluster" for meshid:
// all of its state lives in its namespace.
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { decodeProtectedHeader } from 'jose';
import { KubeSessionKeys, SESSION_SECRET_NAME, SESSION_TTL_MS } from '../../src/authn/index.ts';
import { parseKeys } from '../../src/authn/session-keys.ts';
import { CA_SECRET, PLUGGED_CA_SECRET, ROOT_CONFIGMAP_KEY, describeRoot, parseCaSecret, rotateCa, splitPem } from '../../src/ca/index.ts';
import { createLogger } from '../../src/core/index.ts';
import { SecretClient, decodeSecret, type SecretStrings } from '../../src/kube/index.ts';
import { testEnv } from '../support/env.ts';
import { deleteConfigMapsNamed } from '../support/kube.ts';
import { startServerProcess, type ServerProcess } from '../support/meshid-process.ts';
import { installNamespace, within, type TestInstall } from '../support/server.ts';
import { createCertificate, makeCsr, workloadToken } from '../support/workload.ts';

const REPLICAS = 3;
/** Each race is a fresh installation and three processes; two are enough to see it is no fluke. */
const RACES = 2;

interface Replicas {
  installed: TestInstall;
  servers: ServerProcess[];
  rootConfigMap: string;
  logDir: string;
  close(): Promise<void>;
}

/** A fresh installation and REPLICAS server processes started at the same moment. */
async function startReplicas(namespace: string): Promise<Replicas> {
  // Its own root ConfigMap name: this CA must not fight the playground's over istio-ca-root-cert.
  const rootConfigMap = `${namespace}-root`;
  const installed = await installNamespace(namespace, undefined, rootConfigMap);
  const logDir = await mkdtemp(join(tmpdir(), `meshid-${namespace}-`));
  const kubeconfig = await installed.kubeconfigFor();
  const started = await Promise.allSettled(
    // Replica i signs on i worker threads (0: the event loop), so every way of signing meets the same rotation.
    Array.from({ length: REPLICAS }, (_, i) => startServerProcess({ name: `replica-${i}`, namespace, kubeconfig, logDir, ca: { rootConfigMap, signingThreads: i }, readyMs: 90_000 })),
  );
  const servers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const close = async (): Promise<void> => {
    await Promise.all(servers.map((s) => s.stop()));
    await deleteConfigMapsNamed(installed.admin, rootConfigMap);
    await installed.remove();
    await rm(logDir, { recursive: true, force: true });
  };
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await close();
    throw failed.reason;
  }
  return { installed, servers, rootConfigMap, logDir, close };
}

function bobToken(): string {
  const kc = new KubeConfig();
  kc.loadFromFile(testEnv().kubeconfigs.bob);
  const token = kc.getCurrentUser()?.token;
  assert.ok(token, 'bob has a static token');
  return token;
}

async function login(server: ServerProcess): Promise<string> {
  const res = await fetch(`${server.http}/api/login`, { method: 'POST', headers: { authorization: `Bearer ${bobToken()}` } });
  assert.equal(res.status, 200, await res.clone().text());
  return ((await res.json()) as { token: string }).token;
}

async function whoami(server: ServerProcess, token: string): Promise<{ status: number; name?: string }> {
  const res = await fetch(`${server.http}/api/whoami`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, ...(res.ok ? { name: ((await res.json()) as { name: string }).name } : {}) };
}

/** The root a replica's CA signs with: the last certificate of a chain it issues now. */
async function signingRoot(server: ServerProcess, rootsPem: string, admin: KubeConfig, namespace: string): Promise<string> {
  const token = await workloadToken(admin, `${namespace}-app`, 'web');
  const { csr } = await makeCsr();
  const answer = await createCertificate(server.caAddress ?? '', rootsPem, token, csr);
  assert.ok(answer.chain && answer.chain.length >= 2, `${server.name} issued a chain (${answer.details ?? ''})`);
  return describeRoot(answer.chain.at(-1) ?? '').fingerprint;
}

const count = (text: string, pattern: RegExp): number => text.match(new RegExp(pattern, 'g'))?.length ?? 0;

/** A CA Secret is whole: the root, an announced next root and retiring roots all parse, each key fits its certificate. */
function assertCaConsistent(data: SecretStrings, where: string): void {
  const stored = parseCaSecret(data);
  const pair = (certPem: string, keyPem: string, what: string): void => {
    const cert = new X509Certificate(certPem);
    assert.ok(cert.checkPrivateKey(createPrivateKey(keyPem)), `${where}: the ${what} key fits its certificate`);
    assert.ok(cert.verify(cert.publicKey), `${where}: the ${what} is a self-signed root`);
  };
  pair(stored.caCert, stored.caKey, 'signing root');
  if (data['next-ca-cert.pem'] || data['next-ca-key.pem']) {
    assert.ok(stored.next, `${where}: a half-announced next root (cert, key and signAt go together)`);
    pair(stored.next.cert, stored.next.key, 'announced root');
  }
  if (data['previous-roots.pem']) {
    assert.ok(stored.previous, `${where}: retiring roots come with their drop time`);
    for (const pem of stored.previous.certs) new X509Certificate(pem);
    assert.equal(splitPem(data['previous-roots.pem']).join(''), stored.previous.certs.join(''), `${where}: nothing but whole certificates among the retiring roots`);
  }
}

describe('server replicas', { timeout: 170_000 }, () => {
  it(`${REPLICAS} replicas started together on an empty installation make exactly one session key, one signing key and one CA root (${RACES} races)`, async () => {
    for (let race = 1; race <= RACES; race++) {
      const namespace = `faults-replicas-${race}`;
      const replicas = await startReplicas(namespace);
      try {
        const { installed, servers } = replicas;
        const secrets = (await installed.admin.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace })).items;
        const named = (pattern: RegExp): string[] => secrets.map((s) => s.metadata?.name ?? '').filter((n) => pattern.test(n)).sort();
        assert.deepEqual(named(/^meshid-authentication$/), [SESSION_SECRET_NAME]);
        assert.deepEqual(named(/^user-token-signing-key-/), ['user-token-signing-key-1'], 'one signing key, serial 1');
        assert.deepEqual(named(/^(istio-ca-secret|cacerts)$/), [CA_SECRET], `one self-signed root, no ${PLUGGED_CA_SECRET}`);
        assert.deepEqual(named(/^admin-user-token$/), ['admin-user-token']);

        const secretData = (name: string): SecretStrings => decodeSecret(secrets.find((s) => s.metadata?.name === name) ?? {});
        const sessionKeys = parseKeys(secretData(SESSION_SECRET_NAME)['keys.json']);
        assert.equal(sessionKeys.length, 1, 'one session key in the Secret');
        assertCaConsistent(secretData(CA_SECRET), `race ${race}`);
        const root = secretData(CA_SECRET)['ca-cert.pem'] ?? '';

        // What the replicas say they did: one of them made each key, the others read it.
        const logs = await Promise.all(servers.map((s) => s.logs()));
        assert.equal(count(logs.join(''), /created the session key/), 1);
        assert.equal(count(logs.join(''), /created the first user-token signing key/), 1);
        assert.equal(count(logs.join(''), /created a self-signed root CA/), 1);
        // Each replica signs the way it was told to: replica i on i threads.
        for (const [i, log] of logs.entries()) assert.match(log, new RegExp(`"signingThreads":${i}[,}].*workload CA listening`), `replica-${i} signs on ${i} threads`);

        // One key, seen by all: a session from any replica is good on every other.
        for (const [i, issuer] of servers.entries()) {
          const token = await login(issuer);
          assert.equal(decodeProtectedHeader(token).kid, sessionKeys[0]?.kid);
          for (const other of servers.filter((_, j) => j !== i)) assert.deepEqual(await whoami(other, token), { status: 200, name: 'bob' }, `${issuer.name}'s session on ${other.name}`);
        }
        const adminToken = secretData('admin-user-token')['value'] ?? '';
        for (const s of servers) assert.equal((await whoami(s, adminToken)).status, 200, `the bootstrapped admin token is good on ${s.name}`);

        // One root: every replica's CA signs with it, and it is the only one published.
        for (const s of servers) assert.equal(await signingRoot(s, root, installed.admin, namespace), describeRoot(root).fingerprint, `${s.name} signs with the one root`);
        const published = await installed.admin.makeApiClient(CoreV1Api).readNamespacedConfigMap({ namespace, name: replicas.rootConfigMap });
        assert.deepEqual(splitPem(published.data?.[ROOT_CONFIGMAP_KEY] ?? ''), splitPem(root));
      } finally {
        await replicas.close();
      }
    }
  });

  it('one replica killed mid-rotation: the others finish the CA rotation, and no Secret is ever half-written', async () => {
    const namespace = 'faults-rotation';
    const replicas = await startReplicas(namespace);
    const { installed, servers } = replicas;
    const secrets = new SecretClient(installed.admin);
    // Every version of the two Secrets that the rotations write, as anyone reading them saw it.
    const observed = new Map<string, SecretStrings>();
    let watching = true;
    let rotated = '';
    const observer = (async () => {
      while (watching) {
        for (const name of [CA_SECRET, SESSION_SECRET_NAME]) {
          const secret = await secrets.read(namespace, name);
          if (secret) observed.set(`${name}@${secret.metadata?.resourceVersion ?? ''}`, decodeSecret(secret));
        }
        await sleep(50);
      }
    })();
    try {
      const oldRoot = describeRoot(decodeSecret((await secrets.read(namespace, CA_SECRET)) ?? {})['ca-cert.pem'] ?? '').fingerprint;
      const sessionBefore = await login(servers[0] as ServerProcess);

      const rotation = await rotateCa(installed.admin, namespace, { propagationMs: 3_000, graceMs: 6_000, audit: undefined });
      rotated = rotation.newRoot;
      await new KubeSessionKeys(installed.admin, { namespace, sessionTtlMs: SESSION_TTL_MS, log: createLogger('faults-rotation', 'silent') }).rotate();
      const stored = async () => parseCaSecret(decodeSecret((await secrets.read(namespace, CA_SECRET)) ?? {}));

      // Step 2 (the new root signs) is taken by whichever replica's timer fires first: kill that one.
      assert.notEqual(await within(20_000, async () => describeRoot((await stored()).caCert).fingerprint === rotation.newRoot), undefined, 'the new root signs');
      const stepper = async (step: RegExp): Promise<ServerProcess[]> => {
        const logs = await Promise.all(servers.map((s) => s.logs()));
        return servers.filter((_, i) => step.test(logs[i] ?? ''));
      };
      await within(5_000, async () => (await stepper(/"step":"new root signs"/)).length > 0);
      const [killed] = await stepper(/"step":"new root signs"/);
      assert.ok(killed, 'one replica logged taking step 2');
      await killed.kill();
      const survivors = servers.filter((s) => s !== killed);

      // Step 3 (the old root leaves the bundle) falls to a survivor.
      assert.notEqual(await within(30_000, async () => (await stored()).previous === undefined), undefined, 'the old root was dropped');
      const final = await stored();
      assert.equal(describeRoot(final.caCert).fingerprint, rotation.newRoot);
      assert.equal(final.next, undefined);
      const droppers = await stepper(/"step":"old roots dropped"/);
      assert.ok(droppers.length >= 1 && !droppers.includes(killed), `a survivor took step 3 (${droppers.map((s) => s.name).join(', ')})`);

      for (const s of survivors) {
        assert.equal(await signingRoot(s, final.caCert, installed.admin, namespace), rotation.newRoot, `${s.name} signs with the new root`);
        // The rotated session key: old sessions still verify, new ones are signed with the new key.
        assert.deepEqual(await whoami(s, sessionBefore), { status: 200, name: 'bob' }, `a session from before the rotation is good on ${s.name}`);
        assert.notEqual(decodeProtectedHeader(await login(s)).kid, decodeProtectedHeader(sessionBefore).kid, `${s.name} signs with the new session key`);
      }
      const published = async (): Promise<string[]> =>
        splitPem((await installed.admin.makeApiClient(CoreV1Api).readNamespacedConfigMap({ namespace, name: replicas.rootConfigMap })).data?.[ROOT_CONFIGMAP_KEY] ?? '').map((pem) => describeRoot(pem).fingerprint);
      assert.notEqual(await within(10_000, async () => JSON.stringify(await published()) === JSON.stringify([rotation.newRoot])), undefined, 'only the new root is published');
      assert.notEqual(oldRoot, rotation.newRoot);
    } finally {
      watching = false;
      await observer;
      await replicas.close();
    }

    // Every version anyone could have read was whole.
    const caVersions = [...observed].filter(([k]) => k.startsWith(`${CA_SECRET}@`));
    for (const [key, data] of caVersions) assertCaConsistent(data, key);
    const states = new Set(caVersions.map(([, data]) => (data['next-ca-cert.pem'] ? 'announced' : data['previous-roots.pem'] ? 'switched' : describeRoot(data['ca-cert.pem'] ?? '').fingerprint === rotated ? 'done' : 'before')));
    assert.deepEqual([...states].sort(), ['announced', 'before', 'done', 'switched'], 'every state of the rotation was observed');
    for (const [key, data] of [...observed].filter(([k]) => k.startsWith(`${SESSION_SECRET_NAME}@`))) {
      assert.ok(parseKeys(data['keys.json']).length >= 1, `${key} holds whole session keys`);
    }
  });
});
