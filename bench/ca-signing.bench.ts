// The workload CA's hot path on one core: checking a CSR (parse, key import, self-signature)
// and signing a leaf, for a P-256 and an RSA-2048 CA, each beside the bare OpenSSL operations
// it cannot avoid, measured in the same run. `npm run bench -- --only ca-signing`.
import 'reflect-metadata';
import { createPrivateKey, createPublicKey, sign, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { createKeyAndCsr } from '../src/agent/index.ts';
import * as x509 from '@peculiar/x509';
import { LeafSigner, checkCsr, createSelfSignedRoot, loadCaMaterial } from '../src/ca/index.ts';
import { TAG, bitStringBytes, children, readRoot, slice } from '../src/pki/index.ts';
import { rate } from './lib/rate.ts';
import type { Benchmark, Row } from './lib/types.ts';

const URI = 'spiffe://cluster.local/ns/default/sa/sleep';
const GOALS = { ec: 8_000, rsa: 1_000 } as const;
const LABELS = { ec: 'P-256', rsa: 'RSA-2048' } as const;
type KeyType = keyof typeof LABELS;


/** The CSR's signed bytes, signature and key as JWK, for the bare-OpenSSL baseline. */
function csrParts(pem: string): { info: Buffer; signature: Buffer; jwk: JsonWebKey } {
  const der = new x509.Pkcs10CertificateRequest(pem).rawData;
  const buf = Buffer.from(der);
  const [info, , signature] = children(buf, readRoot(buf, TAG.SEQUENCE, 'CSR'));
  if (!info || !signature) throw new Error('not a CSR');
  const { publicKey } = checkCsr(pem, URI);
  return { info: slice(buf, info), signature: bitStringBytes(buf, signature), jwk: publicKey.export({ format: 'jwk' }) };
}

export const benchmark: Benchmark = {
  name: 'ca-signing',
  async run({ quick }) {
    const seconds = quick ? 0.5 : 2;
    const rows: Row[] = [];
    const row = (measurement: string, value: number, baseline?: Row['baseline'], goal?: Row['goal']): void => {
      rows.push({ benchmark: 'ca-signing', measurement, value, unit: '/s', ...(baseline ? { baseline } : {}), ...(goal ? { goal } : {}) });
      process.stderr.write(`${measurement}: ${value.toFixed(0)}/s\n`);
    };

    // The CSRs meshid's own agent sends: empty subject, the SPIFFE ID as the only SAN.
    const csrs = { ec: (await createKeyAndCsr(URI, 'ec')).csrPem, rsa: (await createKeyAndCsr(URI, 'rsa')).csrPem };
    const parts = { ec: csrParts(csrs.ec), rsa: csrParts(csrs.rsa) };
    const cas = {
      ec: await createSelfSignedRoot({ keyType: 'ec' }),
      rsa: await createSelfSignedRoot({ keyType: 'rsa' }),
    };
    const signers = { ec: new LeafSigner(loadCaMaterial(cas.ec)), rsa: new LeafSigner(loadCaMaterial(cas.rsa)) };
    // What a leaf's TBSCertificate weighs, so the raw signature signs a realistic input.
    const tbs = Buffer.alloc(420, 0x5a);

    const rawSign: Record<KeyType, number> = { ec: 0, rsa: 0 };
    for (const keyType of ['ec', 'rsa'] as const) {
      const key = createPrivateKey(cas[keyType].keyPem);
      rawSign[keyType] = rate(() => sign('sha256', tbs, key), seconds);
      row(`raw crypto.sign, ${LABELS[keyType]} (the crypto limit)`, rawSign[keyType]);
    }

    // The OpenSSL work every request needs and no encoding can remove: import the CSR's key,
    // verify its self-signature.
    const rawCheck: Record<KeyType, number> = { ec: 0, rsa: 0 };
    for (const keyType of ['ec', 'rsa'] as const) {
      const { info, signature, jwk } = parts[keyType];
      rawCheck[keyType] = rate(() => {
        if (!verify('sha256', info, createPublicKey({ key: jwk, format: 'jwk' }), signature)) throw new Error('bad CSR signature');
      }, seconds);
      row(`raw key import + crypto.verify, ${LABELS[keyType]} CSR key`, rawCheck[keyType]);
      const pem = csrs[keyType];
      const checked = rate(() => checkCsr(pem, URI), seconds);
      row(`checkCsr, ${LABELS[keyType]} CSR key`, checked, { label: 'raw import + verify', value: rawCheck[keyType] });
      // The library a reader would reach for, parsing alone (no key import, no signature
      // check): the figure behind docs/adr/0010-hand-written-der.md.
      row(`@peculiar/x509 parse alone, ${LABELS[keyType]} CSR (the library meshid does not use here)`, rate(() => new x509.Pkcs10CertificateRequest(pem), seconds), { label: 'checkCsr (parse, key import, verify)', value: checked });
    }

    const publicKeys: Record<KeyType, KeyObject> = { ec: checkCsr(csrs.ec, URI).publicKey, rsa: checkCsr(csrs.rsa, URI).publicKey };
    for (const ca of ['ec', 'rsa'] as const) {
      const signer = signers[ca];
      const publicKey = publicKeys.ec;
      row(`LeafSigner.sign, ${LABELS[ca]} CA`, rate(() => signer.sign({ publicKey, uri: URI, ttlSeconds: 86_400 }), seconds), { label: `raw ${LABELS[ca]} sign`, value: rawSign[ca] });
    }

    for (const ca of ['ec', 'rsa'] as const) {
      for (const csrKey of ['ec', 'rsa'] as const) {
        const signer = signers[ca];
        const pem = csrs[csrKey];
        const value = rate(() => signer.sign({ publicKey: checkCsr(pem, URI).publicKey, uri: URI, ttlSeconds: 86_400 }), seconds);
        // The same OpenSSL operations back to back with nothing of meshid's around them,
        // computed from the two measurements above.
        const floor = 1 / (1 / rawCheck[csrKey] + 1 / rawSign[ca]);
        row(`checkCsr + sign, ${LABELS[ca]} CA, ${LABELS[csrKey]} CSR key`, value, { label: 'raw import + verify + sign (computed)', value: floor }, { text: `>= ${GOALS[ca]}/s`, met: value >= GOALS[ca] });
      }
    }
    return rows;
  },
};
