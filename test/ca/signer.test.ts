import 'reflect-metadata';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as x509 from '@peculiar/x509';
import { ManualClock, isMeshidError } from '../../src/core/index.ts';
import { LeafSigner, checkCsr, createSelfSignedRoot, loadCaMaterial, type CaMaterial } from '../../src/ca/index.ts';
import { GO_ISTIO_EC_CSR, GO_ISTIO_RSA_CSR, URI, buildCsr, bundle, testCert, type TestCert } from './fixtures.ts';

const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;

function leafOf(chain: string[]): X509Certificate {
  const [leaf] = chain;
  assert.ok(leaf);
  return new X509Certificate(leaf);
}

describe('LeafSigner', () => {
  let dir: string;
  const roots: Record<'ec' | 'rsa', { certPem: string; keyPem: string }> = { ec: { certPem: '', keyPem: '' }, rsa: { certPem: '', keyPem: '' } };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshid-ca-'));
    roots.ec = await createSelfSignedRoot({ keyType: 'ec' });
    roots.rsa = await createSelfSignedRoot({ keyType: 'rsa' });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const keyType of ['ec', 'rsa'] as const) {
    it(`signs a workload leaf with a ${keyType} root that Node, @peculiar/x509 and OpenSSL accept`, () => {
      const root = roots[keyType];
      const signer = new LeafSigner(loadCaMaterial(root));
      for (const csr of [GO_ISTIO_EC_CSR, GO_ISTIO_RSA_CSR]) {
        const { publicKey } = checkCsr(csr, URI);
        const chain = signer.sign({ publicKey, uri: URI, ttlSeconds: 3600 });
        assert.equal(chain.length, 2, 'leaf, then the root');
        assert.equal(chain[1], loadCaMaterial(root).certPem);
        const leaf = leafOf(chain);
        const ca = new X509Certificate(root.certPem);
        assert.ok(leaf.verify(ca.publicKey), 'signed by the CA key');
        assert.ok(leaf.checkIssued(ca));
        assert.equal(leaf.ca, false);
        assert.ok(!leaf.subject, 'empty subject');
        assert.equal(leaf.subjectAltName, `URI:${URI}`);
        assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']); // Node's keyUsage is the EKU list
        assert.ok(leaf.publicKey.equals(publicKey), 'the CSR\'s key, nothing else');
        assert.match(leaf.serialNumber, /^[0-9A-F]{1,32}$/);

        const parsed = new x509.X509Certificate(chain[0] ?? '');
        const algorithm = JSON.stringify(parsed.signatureAlgorithm);
        assert.match(algorithm, keyType === 'ec' ? /"ECDSA"/ : /"RSASSA-PKCS1-v1_5"/);
        assert.match(algorithm, /SHA-256/);
        const san = parsed.getExtension(x509.SubjectAlternativeNameExtension);
        assert.equal(san?.critical, true, 'an empty subject makes the SAN critical');
        assert.deepEqual(san?.names.toJSON(), [{ type: 'url', value: URI }]);
        const basic = parsed.getExtension(x509.BasicConstraintsExtension);
        assert.equal(basic?.ca, false);
        const usage = parsed.getExtension(x509.KeyUsagesExtension);
        assert.equal(usage?.usages, x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
        assert.equal(usage?.critical, true);
        const aki = parsed.getExtension(x509.AuthorityKeyIdentifierExtension);
        const ski = new x509.X509Certificate(root.certPem).getExtension(x509.SubjectKeyIdentifierExtension);
        assert.ok(ski && aki?.keyId === ski.keyId, 'AKI points at the root\'s SKI');

        const leafFile = join(dir, `leaf-${keyType}.pem`);
        const rootFile = join(dir, `root-${keyType}.pem`);
        writeFileSync(leafFile, chain[0] ?? '');
        writeFileSync(rootFile, root.certPem);
        const out = execFileSync('openssl', ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', rootFile, leafFile], { encoding: 'utf8' });
        assert.match(out, /: OK/);
        execFileSync('openssl', ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', rootFile, leafFile], { encoding: 'utf8' });
      }
    });
  }

  it('signs Ed25519 keys with signing usages only (RFC 8410)', () => {
    const signer = new LeafSigner(loadCaMaterial(roots.ec));
    const key = generateKeyPairSync('ed25519');
    const { publicKey } = checkCsr(buildCsr({ key }), URI);
    const chain = signer.sign({ publicKey, uri: URI, ttlSeconds: 600 });
    const usage = new x509.X509Certificate(chain[0] ?? '').getExtension(x509.KeyUsagesExtension);
    assert.equal(usage?.usages, x509.KeyUsageFlags.digitalSignature);
    assert.ok(leafOf(chain).publicKey.equals(key.publicKey));
    const leafFile = join(dir, 'leaf-ed25519.pem');
    const rootFile = join(dir, 'root-ed25519-test.pem');
    writeFileSync(leafFile, chain[0] ?? '');
    writeFileSync(rootFile, chain[1] ?? '');
    assert.match(execFileSync('openssl', ['verify', '-x509_strict', '-CAfile', rootFile, leafFile], { encoding: 'utf8' }), /: OK/);
  });

  it('gives every leaf its own positive 128-bit-range serial', () => {
    const signer = new LeafSigner(loadCaMaterial(roots.ec));
    const { publicKey } = checkCsr(GO_ISTIO_EC_CSR, URI);
    const serials = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const der = leafOf(signer.sign({ publicKey, uri: URI, ttlSeconds: 60 })).raw;
      // The serial INTEGER follows the [0] version: tag 02, length 1..17, no negative first byte.
      assert.equal(der[13], 0x02);
      const length = der[14] ?? 0;
      assert.ok(length >= 1 && length <= 17);
      assert.equal((der[15] ?? 0) & 0x80, 0);
      serials.add(der.subarray(15, 15 + length).toString('hex'));
    }
    assert.equal(serials.size, 300);
  });

  it('starts a leaf a minute back, ends it after its TTL, and never past the CA', async () => {
    const clock = new ManualClock();
    const root = await createSelfSignedRoot({ keyType: 'ec', validDays: 1, clock });
    const signer = new LeafSigner(loadCaMaterial(root, clock), clock);
    const { publicKey } = checkCsr(GO_ISTIO_EC_CSR, URI);
    clock.advance(HOUR);
    let leaf = leafOf(signer.sign({ publicKey, uri: URI, ttlSeconds: 3600 }));
    assert.equal(Date.parse(leaf.validFrom), clock.now() - 60_000);
    assert.equal(Date.parse(leaf.validTo), clock.now() + HOUR);
    leaf = leafOf(signer.sign({ publicKey, uri: URI, ttlSeconds: 2 * 86_400 }));
    assert.equal(Date.parse(leaf.validTo), Date.parse(new X509Certificate(root.certPem).validTo), 'clamped to the CA');
    assert.equal(signer.notAfter.getTime(), Date.parse(new X509Certificate(root.certPem).validTo));
    clock.advance(DAY);
    assert.throws(() => signer.sign({ publicKey, uri: URI, ttlSeconds: 60 }), (e: unknown) => isMeshidError(e, 'ERR_CA_KEY_INVALID') && /expired/.test(e.message));
  });

  it('returns the chain leaf, signing CA, intermediates, root, and clamps to the shortest-lived of them', async () => {
    const root: TestCert = await testCert({ name: 'root', notAfter: new Date(Date.now() + 30 * DAY) });
    const intermediate = await testCert({ name: 'intermediate', issuer: root });
    const signing = await testCert({ name: 'cluster-1', issuer: intermediate, keyType: 'rsa' });
    const material: CaMaterial = loadCaMaterial({ certPem: signing.certPem, keyPem: signing.keyPem, certChainPem: bundle(signing, intermediate, root), rootCertPem: bundle(root) });
    const signer = new LeafSigner(material);
    const { publicKey } = checkCsr(GO_ISTIO_RSA_CSR, URI);
    const chain = signer.sign({ publicKey, uri: URI, ttlSeconds: 90 * 86_400 });
    assert.deepEqual(
      chain.slice(1).map((p) => new X509Certificate(p).subject),
      [signing, intermediate, root].map((c) => new X509Certificate(c.certPem).subject),
    );
    const certs = chain.map((p) => new X509Certificate(p));
    for (let i = 0; i + 1 < certs.length; i++) assert.ok(certs[i]?.verify((certs[i + 1] as X509Certificate).publicKey), `link ${i}`);
    assert.equal(Date.parse(leafOf(chain).validTo), root.cert.notAfter.getTime(), 'the root expires first here');

    const rootFile = join(dir, 'root.pem');
    const untrusted = join(dir, 'untrusted.pem');
    const leafFile = join(dir, 'leaf.pem');
    writeFileSync(rootFile, chain.at(-1) ?? '');
    writeFileSync(untrusted, chain.slice(1, -1).join(''));
    writeFileSync(leafFile, chain[0] ?? '');
    assert.match(execFileSync('openssl', ['verify', '-x509_strict', '-CAfile', rootFile, '-untrusted', untrusted, leafFile], { encoding: 'utf8' }), /: OK/);
  });

  it('refuses a nonsensical TTL, URI or key (ERR_INVALID_ARGUMENT)', () => {
    const signer = new LeafSigner(loadCaMaterial(roots.ec));
    const { publicKey } = checkCsr(GO_ISTIO_EC_CSR, URI);
    const invalid = (e: unknown): boolean => isMeshidError(e, 'ERR_INVALID_ARGUMENT');
    assert.throws(() => signer.sign({ publicKey, uri: URI, ttlSeconds: 0 }), invalid);
    assert.throws(() => signer.sign({ publicKey, uri: URI, ttlSeconds: Number.NaN }), invalid);
    assert.throws(() => signer.sign({ publicKey, uri: 'spiffe://a b', ttlSeconds: 60 }), invalid);
    assert.throws(() => signer.sign({ publicKey: generateKeyPairSync('x25519').publicKey, uri: URI, ttlSeconds: 60 }), invalid);
    assert.throws(() => signer.sign({ publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, uri: URI, ttlSeconds: 60 }), invalid);
  });

  it('refuses CA material whose key is not the certificate\'s (ERR_CA_KEY_INVALID)', () => {
    assert.throws(() => new LeafSigner({ ...loadCaMaterial(roots.ec), keyPem: roots.rsa.keyPem }), (e: unknown) => isMeshidError(e, 'ERR_CA_KEY_INVALID'));
  });
});
