import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { status } from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import { loadKubeConfig } from '../../src/kube/index.ts';
import { SERVICE_ACCOUNT_ISSUER } from '../../src/cluster/index.ts';
import { ROOT_CONFIGMAP_KEY, splitPem } from '../../src/ca/index.ts';
import { testEnv } from '../support/env.ts';
import { runCli } from '../support/cli.ts';
import { startTestServer, within, type TestServer } from '../support/server.ts';
import { createCertificate, makeCsr, workloadToken } from '../support/workload.ts';

const env = testEnv();
const admin = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin });
const core = admin.makeApiClient(CoreV1Api);
const NS = 'ca-int';
const spiffe = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;
// The playground's own CA owns istio-ca-root-cert; this test's CA publishes under its own name.
const ROOTS = 'ca-int-root-cert';
const publishedRoots = async (namespace: string): Promise<string[]> =>
  splitPem((await core.readNamespacedConfigMap({ namespace, name: ROOTS }).catch(() => undefined))?.data?.[ROOT_CONFIGMAP_KEY] ?? '');

describe('workload CA against the real apiserver', () => {
  let t: TestServer;
  let address = '';
  let root = '';
  let token = '';
  before(async () => {
    t = await startTestServer(NS, { ca: { enabled: true, port: 0, keyType: 'ec', maxTtlSeconds: 7 * 24 * 3600, rootConfigMap: ROOTS } });
    address = t.server.caAddress ?? '';
    assert.notEqual(await within(10_000, async () => (await publishedRoots(NS)).length === 1), undefined, 'roots published in the CA namespace');
    root = (await publishedRoots(NS))[0] ?? '';
    token = await workloadToken(admin, 'ca-work', 'web');
  });
  after(async () => {
    await t.close();
    await core.deleteNamespace({ name: 'ca-work' }).catch(() => undefined);
  });

  it('signs a CSR for exactly the identity the token proves, leaf first and root last', async () => {
    const { csr } = await makeCsr({ uris: [spiffe('ca-work', 'web')] });
    const res = await createCertificate(address, root, token, csr);
    assert.equal(res.code, undefined, res.details);
    const chain = res.chain ?? [];
    assert.equal(chain.length, 2);
    const leaf = new X509Certificate(chain[0] ?? '');
    const ca = new X509Certificate(chain[1] ?? '');
    assert.equal(leaf.subjectAltName, `URI:${spiffe('ca-work', 'web')}`);
    assert.ok(leaf.verify(ca.publicKey));
    assert.equal(ca.toString().trim(), root.trim());
    const hours = (Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 3_600_000;
    assert.ok(hours > 23.9 && hours < 24.1, `default TTL is 24 h, got ${hours}`);
  });

  it('uses the token identity when the CSR names none', async () => {
    const res = await createCertificate(address, root, token, (await makeCsr()).csr, 3600);
    assert.equal(new X509Certificate(res.chain?.[0] ?? '').subjectAltName, `URI:${spiffe('ca-work', 'web')}`);
  });

  it('refuses tokens: none, wrong audience, another issuer, a deleted service account', async () => {
    const { csr } = await makeCsr({ uris: [spiffe('ca-work', 'web')] });
    assert.equal((await createCertificate(address, root, undefined, csr)).code, status.UNAUTHENTICATED);
    const apiToken = await workloadToken(admin, 'ca-work', 'web', ['https://kubernetes.default.svc']);
    assert.equal((await createCertificate(address, root, apiToken, csr)).code, status.UNAUTHENTICATED);
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const foreign = await new SignJWT({ sub: 'system:serviceaccount:ca-work:web' })
      .setProtectedHeader({ alg: 'RS256', kid: 'other' })
      .setIssuer('https://other-cluster.example')
      .setAudience('istio-ca')
      .setExpirationTime('10m')
      .sign(privateKey);
    assert.equal((await createCertificate(address, root, foreign, csr)).code, status.UNAUTHENTICATED);
    const doomed = await workloadToken(admin, 'ca-work', 'doomed');
    await core.deleteNamespacedServiceAccount({ namespace: 'ca-work', name: 'doomed' });
    const gone = await createCertificate(address, root, doomed, (await makeCsr({ uris: [spiffe('ca-work', 'doomed')] })).csr);
    assert.equal(gone.code, status.UNAUTHENTICATED);
  });

  it('refuses an expired token that is otherwise genuine (signed with the cluster key, accepted when fresh)', async () => {
    // The playground keeps the cluster's service-account signing key beside env.json.
    const key = createPrivateKey(await readFile(join(dirname(process.env['MESHID_TEST_ENV'] ?? ''), 'pki', 'sa.key'), 'utf8'));
    const sa = await core.readNamespacedServiceAccount({ namespace: 'ca-work', name: 'web' });
    const forge = (expOffsetS: number) =>
      new SignJWT({ 'kubernetes.io': { namespace: 'ca-work', serviceaccount: { name: 'web', uid: sa.metadata?.uid ?? '' } } })
        .setProtectedHeader({ alg: 'RS256' })
        .setIssuer(SERVICE_ACCOUNT_ISSUER)
        .setSubject('system:serviceaccount:ca-work:web')
        .setAudience('istio-ca')
        .setIssuedAt(Math.floor(Date.now() / 1000) - 7200)
        .setNotBefore(Math.floor(Date.now() / 1000) - 7200)
        .setExpirationTime(Math.floor(Date.now() / 1000) + expOffsetS)
        .sign(key);
    const { csr } = await makeCsr({ uris: [spiffe('ca-work', 'web')] });
    const fresh = await createCertificate(address, root, await forge(600), csr);
    assert.equal(fresh.code, undefined, `the same token, unexpired, must pass: ${fresh.details ?? ''}`);
    const expired = await createCertificate(address, root, await forge(-120), csr);
    assert.equal(expired.code, status.UNAUTHENTICATED);
  });

  it('refuses CSRs asking for another identity, DNS names or a CN, bad signatures and oversized ones', async () => {
    const other = await createCertificate(address, root, token, (await makeCsr({ uris: [spiffe('kube-system', 'default')] })).csr);
    assert.equal(other.code, status.PERMISSION_DENIED);
    assert.match(other.details ?? '', /ERR_CSR_IDENTITY/);
    assert.equal((await createCertificate(address, root, token, (await makeCsr({ uris: [spiffe('ca-work', 'web')], dns: ['evil.example'] })).csr)).code, status.PERMISSION_DENIED);
    assert.equal((await createCertificate(address, root, token, (await makeCsr({ cn: 'admin' })).csr)).code, status.PERMISSION_DENIED);
    const { csr } = await makeCsr({ uris: [spiffe('ca-work', 'web')] });
    const body = csr.split('\n').slice(1, -2).join('');
    const der = Buffer.from(body, 'base64');
    der[der.length - 5] = (der[der.length - 5] ?? 0) ^ 0xff;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    assert.equal((await createCertificate(address, root, token, tampered)).code, status.INVALID_ARGUMENT);
    const huge = await createCertificate(address, root, token, 'A'.repeat(200_000));
    assert.equal(huge.code, status.RESOURCE_EXHAUSTED);
    assert.equal((await createCertificate(address, root, token, 'not a csr')).code, status.INVALID_ARGUMENT);
  });

  it('refuses a lifetime above the maximum and gives the default for 0 or less', async () => {
    const { csr } = await makeCsr({ uris: [spiffe('ca-work', 'web')] });
    const long = await createCertificate(address, root, token, csr, 30 * 24 * 3600);
    assert.equal(long.code, status.INVALID_ARGUMENT);
    assert.match(long.details ?? '', /ERR_TTL_TOO_LONG/);
    const negative = await createCertificate(address, root, token, csr, -5);
    assert.equal(negative.code, undefined, negative.details);
  });

  it('publishes the root in every namespace, including one created later', async () => {
    await core.createNamespace({ body: { metadata: { name: 'ca-late' } } });
    try {
      assert.notEqual(await within(10_000, async () => (await publishedRoots('ca-late'))[0]?.trim() === root.trim()), undefined, 'ConfigMap in the new namespace');
      await core.deleteNamespacedConfigMap({ namespace: 'ca-late', name: ROOTS });
      assert.notEqual(await within(10_000, async () => (await publishedRoots('ca-late')).length === 1), undefined, 'a deleted copy comes back');
    } finally {
      await core.deleteNamespace({ name: 'ca-late' }).catch(() => undefined);
    }
  });

  it('rotates without restarts: bundle old+new, then leaves from the new root, then the old root dropped', async () => {
    const status0 = JSON.parse((await runCli(['--kubeconfig', env.kubeconfigs.admin, '-n', NS, 'ca', 'status', '-o', 'json'])).stdout) as { mode: string; rootFingerprint: string };
    assert.equal(status0.mode, 'self-signed');
    const rotated = await runCli(['--kubeconfig', env.kubeconfigs.admin, '-n', NS, 'ca', 'rotate', '--propagation', '2s', '--grace', '3s']);
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.notEqual(await within(10_000, async () => (await publishedRoots('ca-work')).length === 2), undefined, 'bundle holds old and new roots');
    const bundle = await publishedRoots('ca-work');
    assert.equal(bundle[0]?.trim(), root.trim(), 'the old root still signs, so it comes first');
    const newRoot = bundle.find((r) => r.trim() !== root.trim()) ?? '';
    const { csr } = await makeCsr({ uris: [spiffe('ca-work', 'web')] });
    let chain: string[] = [];
    assert.notEqual(
      await within(10_000, async () => {
        chain = (await createCertificate(address, bundle.join(''), token, csr)).chain ?? [];
        return chain.at(-1)?.trim() === newRoot.trim();
      }), undefined,
      'leaves come from the new root after the propagation delay',
    );
    assert.ok(new X509Certificate(chain[0] ?? '').verify(new X509Certificate(newRoot).publicKey));
    assert.notEqual(await within(15_000, async () => (await publishedRoots('ca-work')).length === 1), undefined, 'the old root leaves the bundle after the grace period');
    assert.equal((await publishedRoots('ca-work'))[0]?.trim(), newRoot.trim());
    const after = JSON.parse((await runCli(['--kubeconfig', env.kubeconfigs.admin, '-n', NS, 'ca', 'status', '-o', 'json'])).stdout) as { rootFingerprint: string };
    assert.notEqual(after.rootFingerprint, status0.rootFingerprint);
    // The CA's own serving certificate follows the root: a client trusting only the new root connects.
    const again = await createCertificate(address, newRoot, token, csr);
    assert.equal(again.code, undefined, again.details);
  });

  it('answers ca commands with one-line errors and non-zero exits', async () => {
    const res = await runCli(['--kubeconfig', env.kubeconfigs.admin, '-n', 'no-such-ns', 'ca', 'status']);
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /istio-ca-secret/);
    const bad = await runCli(['--kubeconfig', env.kubeconfigs.admin, '-n', NS, 'ca', 'rotate', '--grace', 'soon']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--grace/);
  });
});
