import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { describe, it } from 'node:test';
import { createAuthority, createServiceAccountSigningKey, issueLeaf } from '../../src/pki/index.ts';

describe('playground PKI', () => {
  it('issues a client leaf that chains to its authority, with CN and O for Kubernetes', async () => {
    const ca = await createAuthority('test-ca');
    const leaf = await issueLeaf(ca, { commonName: 'alice', organizations: ['dev'], usage: 'client' });
    const caCert = new X509Certificate(ca.certPem);
    const cert = new X509Certificate(leaf.certPem);
    assert.equal(caCert.ca, true);
    assert.equal(cert.ca, false);
    assert.ok(cert.checkIssued(caCert));
    assert.ok(cert.verify(caCert.publicKey));
    assert.match(cert.subject, /CN=alice/);
    assert.match(cert.subject, /O=dev/);
    assert.ok(cert.checkPrivateKey(createPrivateKey(leaf.keyPem)));
  });

  it('puts DNS and IP SANs on a serving leaf, and it does not verify under another authority', async () => {
    const ca = await createAuthority('serving-ca');
    const other = await createAuthority('other-ca');
    const leaf = await issueLeaf(ca, { commonName: 'kube-apiserver', usage: 'server', dnsNames: ['localhost'], ips: ['127.0.0.1'] });
    const cert = new X509Certificate(leaf.certPem);
    assert.equal(cert.checkHost('localhost'), 'localhost');
    assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(cert.verify(new X509Certificate(other.certPem).publicKey), false);
  });

  it('makes a 2048-bit RSA service-account signing key whose halves match', async () => {
    const sa = await createServiceAccountSigningKey();
    const priv = createPrivateKey(sa.privatePem);
    assert.equal(priv.asymmetricKeyType, 'rsa');
    assert.equal(priv.asymmetricKeyDetails?.modulusLength, 2048);
    assert.deepEqual(createPublicKey(priv).export({ type: 'spki', format: 'pem' }), sa.publicPem);
  });
});
