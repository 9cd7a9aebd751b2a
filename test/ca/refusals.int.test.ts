// What an unauthenticated caller of the workload CA learns: one generic refusal, whatever the
// apiserver said (its text goes to meshid's log), and RESOURCE_EXHAUSTED once its address has
// used up its TokenReviews.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { status } from '@grpc/grpc-js';
import { SERVICE_ACCOUNT_ISSUER } from '../../src/cluster/index.ts';
import { ROOT_CONFIGMAP_KEY } from '../../src/ca/index.ts';
import { TOKEN_REFUSED_MESSAGE, loadKubeConfig } from '../../src/kube/index.ts';
import { testEnv } from '../support/env.ts';
import { startTestServer, within, type TestServer } from '../support/server.ts';
import { createCertificate, makeCsr, workloadToken } from '../support/workload.ts';

const env = testEnv();
const admin = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin });
const core = admin.makeApiClient(CoreV1Api);
const WORK = 'ca-refusals-work';
const NS = 'ca-refusals';
const ROOTS = 'ca-refusals-root-cert';
const REFUSED = `${TOKEN_REFUSED_MESSAGE} (ERR_UNAUTHENTICATED)`;

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
/** Shaped like one of this cluster's service-account tokens, with a signature that is not: only a TokenReview can tell. */
const forged = (): string =>
  `${b64({ alg: 'RS256', kid: 'x' })}.${b64({ iss: SERVICE_ACCOUNT_ISSUER, aud: ['istio-ca'], sub: `system:serviceaccount:${WORK}:web`, exp: Math.floor(Date.now() / 1000) + 600, jti: randomBytes(8).toString('hex') })}.${randomBytes(256).toString('base64url')}`;

describe('the CA refuses tokens without saying why', () => {
  let root = '';
  let csr = '';
  before(async () => {
    root = await readFile(env.ca.rootCert, 'utf8');
    csr = (await makeCsr()).csr;
  });
  after(async () => {
    await core.deleteNamespace({ name: WORK }).catch(() => undefined);
  });

  it('answers garbage, a wrong-audience, a default-audience and a forged token with exactly UNAUTHENTICATED "the token was not accepted"', async () => {
    const tokens = {
      garbage: randomBytes(24).toString('base64url'),
      wrongAudience: await workloadToken(admin, WORK, 'web', ['https://kubernetes.default.svc']),
      // What every pod gets by default: a token for the apiserver, which the playground no longer takes for istio-ca.
      defaultAudience: await workloadToken(admin, WORK, 'web', []),
      forged: forged(),
    };
    for (const [what, token] of Object.entries(tokens)) {
      const res = await createCertificate(env.ca.address, root, token, csr);
      assert.equal(res.code, status.UNAUTHENTICATED, what);
      assert.equal(res.details, REFUSED, what);
    }
    // The same service account's istio-ca token is accepted: the refusals were the token's, not the account's.
    const good = await createCertificate(env.ca.address, root, await workloadToken(admin, WORK, 'web'), csr);
    assert.equal(good.code, undefined, good.details);
  });
});

describe('the CA limits TokenReviews per client', () => {
  let t: TestServer;
  let root = '';
  before(async () => {
    t = await startTestServer(NS, { tokenReviews: { burst: 3, perSecond: 0.1 }, ca: { enabled: true, port: 0, keyType: 'ec', rootConfigMap: ROOTS } });
    const published = async (): Promise<string> => (await core.readNamespacedConfigMap({ namespace: NS, name: ROOTS }).catch(() => undefined))?.data?.[ROOT_CONFIGMAP_KEY] ?? '';
    assert.notEqual(await within(10_000, async () => (await published()) !== ''), undefined, 'the test CA published its root');
    root = await published();
  });
  after(async () => {
    await t.close();
  });

  it('reviews a burst of tokens from one address, then answers RESOURCE_EXHAUSTED without asking Kubernetes', async () => {
    const { csr } = await makeCsr();
    const codes = [];
    for (let i = 0; i < 8; i++) codes.push((await createCertificate(t.server.caAddress ?? '', root, forged(), csr)).code);
    assert.deepEqual(codes.slice(0, 3), [status.UNAUTHENTICATED, status.UNAUTHENTICATED, status.UNAUTHENTICATED]);
    assert.ok(codes.slice(4).every((c) => c === status.RESOURCE_EXHAUSTED), JSON.stringify(codes));
    const values = (await t.server.metrics.tokenReviews.get()).values.filter((v) => v.labels.source === 'ca');
    const count = (outcome: string): number => values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
    assert.ok(count('reviewed') <= 4, `reviews: ${count('reviewed')}`);
    assert.equal(count('reviewed') + count('rate-limited'), 8);
  });
});
