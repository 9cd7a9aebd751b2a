import 'reflect-metadata';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { before, describe, it } from 'node:test';
import * as x509 from '@peculiar/x509';
import { ManualClock, isMeshidError } from '../../src/core/index.ts';
import { createSelfSignedRoot, describeRoot, loadCaMaterial } from '../../src/ca/index.ts';
import { bundle, testCert, type TestCert } from './fixtures.ts';

const DAY = 24 * 3600 * 1000;

function caError(file: string, pattern?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(isMeshidError(error, 'ERR_CA_KEY_INVALID'), `expected ERR_CA_KEY_INVALID, got ${String(error)}`);
    assert.ok(error.message.startsWith(`${file}: `), `expected the message to name ${file}: ${error.message}`);
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}

const same = (a: string, b: string): boolean => new X509Certificate(a).raw.equals(new X509Certificate(b).raw);

describe('createSelfSignedRoot', () => {
  for (const keyType of ['ec', 'rsa'] as const) {
    it(`makes an istiod-style ${keyType} root: O=cluster.local, CA, keyCertSign|cRLSign, SKI, 10 years`, async () => {
      const clock = new ManualClock();
      const root = await createSelfSignedRoot({ keyType, clock });
      const cert = new X509Certificate(root.certPem);
      assert.equal(cert.ca, true);
      assert.equal(cert.subject, 'O=cluster.local');
      assert.equal(cert.issuer, 'O=cluster.local');
      assert.ok(cert.verify(cert.publicKey));
      assert.ok(cert.checkPrivateKey(createPrivateKey(root.keyPem)));
      assert.equal(cert.publicKey.asymmetricKeyType, keyType);
      if (keyType === 'rsa') assert.equal(cert.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
      else assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
      assert.equal(Date.parse(cert.validTo), clock.now() + 3650 * DAY);

      const parsed = new x509.X509Certificate(root.certPem);
      const basic = parsed.getExtension(x509.BasicConstraintsExtension);
      assert.ok(basic?.ca && basic.critical);
      const usage = parsed.getExtension(x509.KeyUsagesExtension);
      assert.equal(usage?.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
      assert.equal(usage?.critical, true);
      assert.ok(parsed.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
    });
  }

  it('takes the organization and lifetime it is given', async () => {
    const clock = new ManualClock();
    const root = await createSelfSignedRoot({ keyType: 'ec', organization: 'mesh.example', validDays: 30, clock });
    const cert = new X509Certificate(root.certPem);
    assert.equal(cert.subject, 'O=mesh.example');
    assert.equal(Date.parse(cert.validTo), clock.now() + 30 * DAY);
    const summary = describeRoot(root.certPem);
    assert.equal(summary.fingerprint, cert.fingerprint256.replace(/:/g, '').toLowerCase());
    assert.equal(summary.notAfter, new Date(clock.now() + 30 * DAY).toISOString());
    assert.equal(summary.subject, 'O=mesh.example');
  });
});

describe('loadCaMaterial', () => {
  let root: TestCert;
  let intermediate: TestCert;
  let signing: TestCert;
  let otherRoot: TestCert;

  before(async () => {
    root = await testCert({ name: 'root', keyType: 'rsa' });
    intermediate = await testCert({ name: 'intermediate', issuer: root });
    signing = await testCert({ name: 'cluster-1', issuer: intermediate });
    otherRoot = await testCert({ name: 'other root' });
  });

  it('takes a self-signed root alone (istio-ca-secret)', async () => {
    const ca = await createSelfSignedRoot({ keyType: 'ec' });
    const material = loadCaMaterial(ca);
    assert.deepEqual(material.chainPems, []);
    assert.equal(material.rootPems.length, 1);
    assert.ok(same(material.rootPems[0] ?? '', ca.certPem));
    assert.ok(same(material.certPem, ca.certPem));
  });

  it('takes Istio\'s cacerts layout: cert-chain.pem is ca-cert, intermediates, root', () => {
    const material = loadCaMaterial({
      certPem: signing.certPem,
      keyPem: signing.keyPem,
      certChainPem: bundle(signing, intermediate, root),
      rootCertPem: bundle(root),
    });
    assert.equal(material.chainPems.length, 2);
    assert.ok(same(material.chainPems[0] ?? '', intermediate.certPem));
    assert.ok(same(material.chainPems[1] ?? '', root.certPem));
    assert.ok(same(material.rootPems[0] ?? '', root.certPem));
  });

  it('takes a chain without ca-cert first, or without the root, and puts the anchoring root first in the bundle', () => {
    const material = loadCaMaterial({ certPem: signing.certPem, keyPem: signing.keyPem, certChainPem: bundle(intermediate), rootCertPem: bundle(otherRoot, root) });
    assert.deepEqual(
      material.chainPems.map((p) => new X509Certificate(p).subject),
      [intermediate, root].map((c) => new X509Certificate(c.certPem).subject),
    );
    assert.equal(material.rootPems.length, 2);
    assert.ok(same(material.rootPems[0] ?? '', root.certPem));
  });

  it('takes an intermediate straight under root-cert.pem without cert-chain.pem', () => {
    const material = loadCaMaterial({ certPem: intermediate.certPem, keyPem: intermediate.keyPem, rootCertPem: bundle(root) });
    assert.equal(material.chainPems.length, 1);
    assert.ok(same(material.chainPems[0] ?? '', root.certPem));
  });

  it('refuses a key that is not the certificate\'s (ca-key.pem)', () => {
    assert.throws(() => loadCaMaterial({ certPem: signing.certPem, keyPem: intermediate.keyPem, certChainPem: bundle(signing, intermediate, root), rootCertPem: bundle(root) }), caError('ca-key.pem', /does not belong/));
    assert.throws(() => loadCaMaterial({ certPem: root.certPem, keyPem: 'not a key' }), caError('ca-key.pem'));
  });

  it('refuses a certificate that may not sign (ca-cert.pem)', async () => {
    const leaf = await testCert({ name: 'not a ca', issuer: root, ca: false });
    assert.throws(() => loadCaMaterial({ certPem: leaf.certPem, keyPem: leaf.keyPem, rootCertPem: bundle(root) }), caError('ca-cert.pem', /not a CA certificate/));
    const noCertSign = await testCert({ name: 'no certSign', issuer: root, keyUsage: x509.KeyUsageFlags.digitalSignature });
    assert.throws(() => loadCaMaterial({ certPem: noCertSign.certPem, keyPem: noCertSign.keyPem, rootCertPem: bundle(root) }), caError('ca-cert.pem', /keyCertSign/));
    assert.throws(() => loadCaMaterial({ certPem: 'garbage', keyPem: root.keyPem }), caError('ca-cert.pem', /no PEM certificate/));
    assert.throws(() => loadCaMaterial({ certPem: bundle(signing, intermediate), keyPem: signing.keyPem }), caError('ca-cert.pem', /2 certificates/));
  });

  it('refuses an expired CA by the injected clock (ca-cert.pem)', async () => {
    const ca = await createSelfSignedRoot({ keyType: 'ec', validDays: 10, clock: new ManualClock() });
    assert.ok(loadCaMaterial(ca, new ManualClock(Date.UTC(2030, 0, 5))));
    assert.throws(() => loadCaMaterial(ca, new ManualClock(Date.UTC(2030, 0, 12))), caError('ca-cert.pem', /expired at 2030-01-11/));
    assert.throws(() => loadCaMaterial(ca, new ManualClock(Date.UTC(2029, 11, 1))), caError('ca-cert.pem', /not valid before/));
  });

  it('refuses a chain that does not link (cert-chain.pem)', async () => {
    const stranger = await testCert({ name: 'stranger', issuer: root });
    assert.throws(
      () => loadCaMaterial({ certPem: signing.certPem, keyPem: signing.keyPem, certChainPem: bundle(signing, stranger, root), rootCertPem: bundle(root) }),
      caError('cert-chain.pem', /certificate 1 .*stranger.* did not issue .*cluster-1/),
    );
    assert.throws(
      () => loadCaMaterial({ certPem: signing.certPem, keyPem: signing.keyPem, certChainPem: bundle(signing, intermediate, otherRoot), rootCertPem: bundle(root) }),
      caError('cert-chain.pem', /other root.* did not issue .*intermediate/),
    );
  });

  it('refuses a trust bundle that does not hold the chain\'s root, or holds a non-root (root-cert.pem)', () => {
    assert.throws(
      () => loadCaMaterial({ certPem: signing.certPem, keyPem: signing.keyPem, certChainPem: bundle(signing, intermediate, root), rootCertPem: bundle(otherRoot) }),
      caError('root-cert.pem', /does not hold .*root/),
    );
    assert.throws(() => loadCaMaterial({ certPem: signing.certPem, keyPem: signing.keyPem, certChainPem: bundle(signing, intermediate), rootCertPem: bundle(intermediate) }), caError('root-cert.pem', /not a self-signed root/));
    assert.throws(() => loadCaMaterial({ certPem: signing.certPem, keyPem: signing.keyPem, certChainPem: bundle(signing, intermediate) }), caError('root-cert.pem', /is missing/));
    assert.throws(() => loadCaMaterial({ certPem: signing.certPem, keyPem: signing.keyPem, rootCertPem: bundle(root) }), caError('root-cert.pem', /cert-chain.pem missing/));
  });
});
