import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { isMeshidError, type ErrorCode } from '../../src/core/index.ts';
import { MAX_CSR_BYTES, checkCsr } from '../../src/ca/index.ts';
import { TAG, encodeOid, extension, sequence, tlv } from '../../src/pki/index.ts';
import { GO_ISTIO_EC_CSR, GO_ISTIO_RSA_CSR, URI, buildCsr, name, peculiarCsr, san, uriName } from './fixtures.ts';

function refusedWith(code: ErrorCode, pattern?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(isMeshidError(error, code), `expected ${code}, got ${String(error)}`);
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}

describe('checkCsr: what it accepts', () => {
  it('takes the CSRs Istio\'s agent sends (Go, O="" subject, critical URI SAN), EC and RSA', () => {
    const ec = checkCsr(GO_ISTIO_EC_CSR, URI);
    assert.equal(ec.publicKey.asymmetricKeyType, 'ec');
    assert.equal(ec.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const rsa = checkCsr(GO_ISTIO_RSA_CSR, URI);
    assert.equal(rsa.publicKey.asymmetricKeyType, 'rsa');
    assert.equal(rsa.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
  });

  it('takes @peculiar/x509 CSRs for EC and RSA keys, with the URI or with no SAN at all', async () => {
    for (const keyType of ['ec', 'rsa'] as const) {
      assert.equal(checkCsr(await peculiarCsr(keyType), URI).publicKey.asymmetricKeyType, keyType);
      assert.equal(checkCsr(await peculiarCsr(keyType, []), URI).publicKey.asymmetricKeyType, keyType);
    }
  });

  it('takes an OpenSSL CSR with an empty subject', () => {
    const pem = execFileSync(
      'openssl',
      ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', '/dev/null', '-subj', '/', '-addext', `subjectAltName=critical,URI:${URI}`],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    );
    assert.equal(checkCsr(pem, URI).publicKey.asymmetricKeyDetails?.namedCurve, 'secp384r1');
  });

  it('takes Ed25519 keys, and requests within what the leaf gets anyway', () => {
    const key = generateKeyPairSync('ed25519');
    assert.equal(checkCsr(buildCsr({ key, extensions: [san(uriName(URI))] }), URI).publicKey.asymmetricKeyType, 'ed25519');
    const modest = buildCsr({
      extensions: [
        san(uriName(URI)),
        extension('2.5.29.19', true, sequence()), // CA:false
        extension('2.5.29.15', true, Uint8Array.of(TAG.BIT_STRING, 2, 5, 0xa0)), // digitalSignature, keyEncipherment
        extension('2.5.29.37', false, sequence(encodeOid('1.3.6.1.5.5.7.3.1'), encodeOid('1.3.6.1.5.5.7.3.2'))),
        extension('2.5.29.14', false, tlv(TAG.OCTET_STRING, Buffer.alloc(20, 1))),
      ],
    });
    assert.equal(checkCsr(modest, URI).publicKey.asymmetricKeyType, 'ec');
  });

  it('takes surrounding whitespace but hands out a key equal to the CSR\'s', () => {
    const { publicKey } = checkCsr(`\n  ${GO_ISTIO_EC_CSR}\n\n`, URI);
    assert.equal(publicKey.type, 'public');
    assert.equal(publicKey.export({ format: 'jwk' }).x, 'k0FMhQqzDlSc_8qATXopiYbJMD78_SDM81rt_otS718');
  });
});

describe('checkCsr: identity refusals (ERR_CSR_IDENTITY)', () => {
  const cases: [string, () => string, RegExp][] = [
    ['another SPIFFE URI', () => buildCsr({ extensions: [san(uriName('spiffe://cluster.local/ns/kube-system/sa/admin'))] }), /URI "spiffe:\/\/cluster.local\/ns\/kube-system\/sa\/admin"/],
    ['two URIs, one right', () => buildCsr({ extensions: [san(uriName(URI), uriName('spiffe://cluster.local/ns/x/sa/y'))] }), /URI "spiffe:\/\/cluster.local\/ns\/x\/sa\/y"/],
    ['the right URI twice', () => buildCsr({ extensions: [san(uriName(URI), uriName(URI))] }), /2 URI SANs/],
    ['a DNS SAN', () => buildCsr({ extensions: [san(uriName(URI), [0x82, 'api.example.com'])] }), /DNS name "api.example.com"/],
    ['an IP SAN', () => buildCsr({ extensions: [san([0x87, Buffer.from([10, 0, 0, 1])])] }), /IP address 10.0.0.1/],
    ['an email SAN', () => buildCsr({ extensions: [san([0x81, 'root@example.com'])] }), /email address "root@example.com"/],
    ['a CN', () => buildCsr({ subject: name(['2.5.4.3', 'sleep.default.svc']) }), /subject CN="sleep.default.svc"/],
    ['a CN equal to the URI', () => buildCsr({ subject: name(['2.5.4.3', URI]) }), /subject CN=/],
    ['a non-empty O', () => buildCsr({ subject: name(['2.5.4.10', 'system:masters', TAG.PRINTABLE_STRING]) }), /subject O="system:masters"/],
    ['CA:true', () => buildCsr({ extensions: [extension('2.5.29.19', true, sequence(Uint8Array.of(TAG.BOOLEAN, 1, 0xff)))] }), /basicConstraints CA:true/],
    ['keyUsage keyCertSign', () => buildCsr({ extensions: [extension('2.5.29.15', true, Uint8Array.of(TAG.BIT_STRING, 2, 1, 0x86))] }), /keyUsage keyCertSign/],
    ['extKeyUsage codeSigning', () => buildCsr({ extensions: [extension('2.5.29.37', false, sequence(encodeOid('1.3.6.1.5.5.7.3.3')))] }), /extended key usage 1.3.6.1.5.5.7.3.3/],
    ['nameConstraints', () => buildCsr({ extensions: [extension('2.5.29.30', true, sequence())] }), /extension 2.5.29.30/],
    ['a challengePassword', () => buildCsr({ attributes: [sequence(encodeOid('1.2.840.113549.1.9.7'), tlv(TAG.SET, tlv(TAG.UTF8_STRING, Buffer.from('pw'))))] }), /challengePassword/],
  ];
  for (const [what, make, pattern] of cases) {
    it(`refuses ${what}`, () => {
      assert.throws(() => checkCsr(make(), URI), refusedWith('ERR_CSR_IDENTITY', pattern));
    });
  }

  it('refuses the Istio CSR when the caller is someone else', () => {
    assert.throws(() => checkCsr(GO_ISTIO_EC_CSR, 'spiffe://cluster.local/ns/default/sa/other'), refusedWith('ERR_CSR_IDENTITY', /sa\/sleep/));
  });
});

describe('checkCsr: malformed requests', () => {
  it('refuses a tampered signature and a tampered body (ERR_CSR_INVALID)', () => {
    const der = Buffer.from(GO_ISTIO_EC_CSR.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
    const reencode = (bytes: Buffer): string => `-----BEGIN CERTIFICATE REQUEST-----\n${bytes.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const badSignature = Buffer.from(der);
    badSignature[badSignature.length - 5] = (badSignature[badSignature.length - 5] ?? 0) ^ 0x01;
    assert.throws(() => checkCsr(reencode(badSignature), URI), refusedWith('ERR_CSR_INVALID', /signature does not verify/));
    // Flip one bit of the public key's X coordinate: still a valid structure, not the signer's key.
    const badKey = Buffer.from(der);
    const at = der.indexOf(Buffer.from([0x04, 0x93, 0x41]));
    badKey[at + 20] = (badKey[at + 20] ?? 0) ^ 0x01;
    assert.throws(() => checkCsr(reencode(badKey), URI), refusedWith('ERR_CSR_INVALID'));
  });

  it('refuses an oversized CSR before parsing it (ERR_CSR_TOO_LARGE)', () => {
    const huge = `${GO_ISTIO_EC_CSR}${' '.repeat(MAX_CSR_BYTES)}`;
    assert.throws(() => checkCsr(huge, URI), refusedWith('ERR_CSR_TOO_LARGE'));
  });

  it('refuses garbage, other PEM types, two blocks and an empty string (ERR_CSR_INVALID)', () => {
    const certificate = GO_ISTIO_EC_CSR.replace(/CERTIFICATE REQUEST/g, 'CERTIFICATE');
    for (const input of ['', 'hello', '-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----', '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----', certificate, GO_ISTIO_EC_CSR + GO_ISTIO_EC_CSR]) {
      assert.throws(() => checkCsr(input, URI), refusedWith('ERR_CSR_INVALID'), JSON.stringify(input.slice(0, 40)));
    }
    assert.throws(() => checkCsr(undefined as unknown as string, URI), refusedWith('ERR_CSR_INVALID'));
  });

  it('refuses an RSA-1024 key and unsupported curves (ERR_CSR_INVALID)', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    assert.throws(() => checkCsr(buildCsr({ key: small, extensions: [san(uriName(URI))] }), URI), refusedWith('ERR_CSR_INVALID', /1024 bits; at least 2048/));
    const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
    assert.throws(() => checkCsr(buildCsr({ key: k1 }), URI), refusedWith('ERR_CSR_INVALID', /curve 1.3.132.0.10/));
  });

  it('refuses a malformed SAN as invalid, not as an identity question', () => {
    assert.throws(() => checkCsr(buildCsr({ extensions: [extension('2.5.29.17', false, sequence())] }), URI), refusedWith('ERR_CSR_INVALID', /2.5.29.17/));
  });
});
