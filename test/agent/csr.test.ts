import 'reflect-metadata';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import { describe, it } from 'node:test';
import * as x509 from '@peculiar/x509';
import { createKeyAndCsr } from '../../src/agent/index.ts';
import { readLeaf } from '../../src/pki/index.ts';
import { LeafSigner, checkCsr, createSelfSignedRoot, loadCaMaterial } from '../../src/ca/index.ts';
import { createAuthority, issueLeaf } from '../../src/pki/index.ts';

const URI = 'spiffe://cluster.local/ns/shop/sa/web';

describe('the CSR', () => {
  for (const keyType of ['ec', 'rsa'] as const) {
    it(`(${keyType}) holds only the SPIFFE URI, under an empty subject, and verifies`, async () => {
      const { keyPem, csrPem, spki } = await createKeyAndCsr(URI, keyType);
      const csr = new x509.Pkcs10CertificateRequest(csrPem);
      assert.equal(await csr.verify(), true);
      assert.equal(csr.subject, '');
      assert.equal(csr.extensions.length, 1);
      const [extension] = csr.extensions;
      assert.equal(extension?.type, '2.5.29.17');
      const san = new x509.SubjectAlternativeNameExtension(extension.rawData);
      assert.equal(san.critical, true, 'critical, because the subject is empty');
      assert.deepEqual(san.names.items.map((n) => [n.type, n.value]), [['url', URI]]);
      assert.equal((csr.signatureAlgorithm as unknown as { name: string }).name, keyType === 'ec' ? 'ECDSA' : 'RSASSA-PKCS1-v1_5');
      // meshid's CA accepts it.
      assert.ok(checkCsr(csrPem, URI).publicKey);
      // The key is PKCS#8 PEM, of the asked kind, and its public half is the CSR's.
      const key = createPrivateKey(keyPem);
      assert.equal(key.asymmetricKeyType, keyType);
      if (keyType === 'ec') assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
      else assert.equal(key.asymmetricKeyDetails?.modulusLength, 2048);
      assert.deepEqual(createPublicKey(key).export({ type: 'spki', format: 'der' }), spki);
      assert.deepEqual(Buffer.from(csr.publicKey.rawData), spki);
    });
  }

  it('makes a new key every time', async () => {
    const a = await createKeyAndCsr(URI);
    const b = await createKeyAndCsr(URI);
    assert.notEqual(a.keyPem, b.keyPem);
  });
});

describe('reading the leaf', () => {
  function same(pem: string): void {
    const node = new X509Certificate(pem);
    const leaf = readLeaf(pem);
    assert.equal(leaf.serial, node.serialNumber);
    assert.equal(leaf.notBefore, Date.parse(node.validFrom));
    assert.equal(leaf.notAfter, Date.parse(node.validTo));
    assert.deepEqual(leaf.spki, node.publicKey.export({ type: 'spki', format: 'der' }));
    const uris = (node.subjectAltName ?? '').split(/,\s*/).filter((n) => n.startsWith('URI:')).map((n) => n.slice(4));
    assert.deepEqual(leaf.uris, uris);
  }

  it('agrees with X509Certificate on leaves from meshid CA and from the playground PKI', async () => {
    const root = await createSelfSignedRoot({ keyType: 'ec' });
    const signer = new LeafSigner(loadCaMaterial({ certPem: root.certPem, keyPem: root.keyPem }));
    for (const keyType of ['ec', 'rsa'] as const) {
      const { csrPem } = await createKeyAndCsr(URI, keyType);
      const [leaf] = signer.sign({ publicKey: checkCsr(csrPem, URI).publicKey, uri: URI, ttlSeconds: 3600 });
      same(leaf ?? '');
    }
    const ca = await createAuthority('leaf test');
    same((await issueLeaf(ca, { commonName: 'x', usage: 'server', dnsNames: ['a.example'], ips: ['127.0.0.1'] })).certPem);
    same(ca.certPem);
  });

  it('reads GeneralizedTime (2050 and later), several URIs, and a serial with its sign byte', async () => {
    const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '00ff01',
      name: 'CN=far future',
      notBefore: new Date(Date.UTC(2049, 11, 31, 23, 59, 59)),
      notAfter: new Date(Date.UTC(2061, 5, 15, 12, 0, 0)),
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      keys,
      extensions: [
        new x509.SubjectAlternativeNameExtension([
          { type: 'dns', value: 'a.example' },
          { type: 'url', value: URI },
          { type: 'url', value: 'spiffe://other/ns/a/sa/b' },
        ]),
      ],
    });
    const pem = cert.toString('pem');
    same(pem);
    const leaf = readLeaf(pem);
    assert.equal(leaf.notAfter, Date.UTC(2061, 5, 15, 12, 0, 0));
    assert.equal(leaf.notBefore, Date.UTC(2049, 11, 31, 23, 59, 59));
    assert.deepEqual(leaf.uris, [URI, 'spiffe://other/ns/a/sa/b']);
  });

  it('refuses what is not a certificate', () => {
    assert.throws(() => readLeaf('no pem here'), /no PEM/);
    assert.throws(() => readLeaf('-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n'));
  });
});
