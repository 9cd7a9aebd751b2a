import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { isMeshidError } from '../../src/core/index.ts';
import { SigningPool, createSelfSignedRoot, defaultSigningThreads, inlineSigning, loadCaMaterial, LeafSigner, type CaMaterial } from '../../src/ca/index.ts';
import { GO_ISTIO_EC_CSR, URI, buildCsr } from './fixtures.ts';

/** A CA whose material a test swaps, as a rotation does. */
function swappableCa(first: CaMaterial): { material(): CaMaterial; signer(): LeafSigner; use(next: CaMaterial): void } {
  let current = first;
  let signer = new LeafSigner(first);
  return {
    material: () => current,
    signer: () => signer,
    use(next) {
      current = next;
      signer = new LeafSigner(next);
    },
  };
}

const uriOf = (pem: string): string | undefined => new X509Certificate(pem).subjectAltName?.replace(/^URI:/, '');

describe('SigningPool: CSR checks and signing on worker threads', () => {
  let rootA: CaMaterial;
  let rootB: CaMaterial;
  let ca: ReturnType<typeof swappableCa>;
  let pool: SigningPool;

  before(async () => {
    rootA = loadCaMaterial(await createSelfSignedRoot({ keyType: 'ec' }));
    rootB = loadCaMaterial(await createSelfSignedRoot({ keyType: 'ec' }));
    ca = swappableCa(rootA);
    pool = new SigningPool(ca, 2);
  });
  after(async () => {
    await pool?.close();
  });

  it('signs what the event loop would: the URI, the chain, a leaf the root verifies', async () => {
    const [threaded, inline] = await Promise.all([pool.issue(buildCsr(), URI, 3600), inlineSigning(ca).issue(buildCsr(), URI, 3600)]);
    assert.equal(threaded.chain.length, inline.chain.length);
    assert.equal(threaded.chain[1], rootA.certPem);
    assert.equal(uriOf(threaded.chain[0] ?? ''), URI);
    assert.ok(new X509Certificate(threaded.chain[0] ?? '').verify(new X509Certificate(rootA.certPem).publicKey));
    assert.equal(threaded.notAfter - threaded.notBefore, inline.notAfter - inline.notBefore);
  });

  it('refuses with the same codes as the event loop: a CSR for another identity, garbage', async () => {
    for (const signing of [pool, inlineSigning(ca)]) {
      await assert.rejects(signing.issue(GO_ISTIO_EC_CSR, 'spiffe://cluster.local/ns/prod/sa/payments', 3600), (e: unknown) => isMeshidError(e, 'ERR_CSR_IDENTITY'));
      await assert.rejects(signing.issue('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', URI, 3600), (e: unknown) => isMeshidError(e, 'ERR_CSR_INVALID'));
    }
  });

  it('signs many at once across its threads, each leaf its own serial', async () => {
    const leaves = await Promise.all(Array.from({ length: 64 }, () => pool.issue(buildCsr(), URI, 600)));
    assert.equal(new Set(leaves.map((l) => l.serial)).size, 64);
  });

  it('signs with the new root from the first request after a rotation, on every thread', async () => {
    ca.use(rootB);
    const leaves = await Promise.all(Array.from({ length: 8 }, () => pool.issue(buildCsr(), URI, 600)));
    const b = new X509Certificate(rootB.certPem).publicKey;
    for (const leaf of leaves) {
      assert.equal(leaf.chain[1], rootB.certPem);
      assert.ok(new X509Certificate(leaf.chain[0] ?? '').verify(b));
    }
    ca.use(rootA);
  });

  it('refuses once closed (ERR_CA_UNAVAILABLE)', async () => {
    const closing = new SigningPool(ca, 1);
    await closing.issue(buildCsr(), URI, 600);
    await closing.close();
    await assert.rejects(closing.issue(buildCsr(), URI, 600), (e: unknown) => isMeshidError(e, 'ERR_CA_UNAVAILABLE'));
  });
});

describe('defaultSigningThreads', () => {
  it('uses one thread per core, and none on one core', () => {
    assert.deepEqual([1, 2, 3, 4, 8].map((cores) => defaultSigningThreads(cores)), [0, 2, 3, 4, 8]);
  });
});
