import 'reflect-metadata';
import { X509Certificate, createPrivateKey, webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { MeshidError, systemClock, type Clock } from '../core/index.ts';
import { DerError, KEY_USAGE, OID, basicConstraintsCa, keyUsageBits, pemBlocks, readCertificate, toPem, type CertificateFields } from '../pki/index.ts';
import { DEFAULT_TRUST_DOMAIN } from '../contract/index.ts';

export type CaKeyType = 'rsa' | 'ec';

export interface SelfSignedRootOptions {
  /** RSA-2048 (what istiod makes by default) or ECDSA P-256. */
  keyType: CaKeyType;
  /** The subject's O, as istiod names its root after the trust domain. Default cluster.local. */
  organization?: string;
  /** Default 10 years, istiod's default root lifetime. */
  validDays?: number;
  clock?: Clock;
}

export interface CaMaterial {
  /** The certificate that signs leaves (ca-cert.pem). */
  certPem: string;
  keyPem: string;
  /** Certificates above the signing one, up to and including its root; empty when the signing certificate is the root. */
  chainPems: string[];
  /** The trust bundle; the root the chain ends in comes first. */
  rootPems: string[];
}

/** The files of Istio's plugged-in `cacerts` Secret (or of `istio-ca-secret`: certificate and key only). */
export interface CaFiles {
  /** ca-cert.pem: the signing certificate. */
  certPem: string;
  /** ca-key.pem: its private key. */
  keyPem: string;
  /** cert-chain.pem: ca-cert, then intermediates, then the root (a chain without ca-cert first is taken too). */
  certChainPem?: string | undefined;
  /** root-cert.pem: the root or roots to trust. */
  rootCertPem?: string | undefined;
}

export interface RootSummary {
  subject: string;
  /** SHA-256 over the DER, lowercase hex. */
  fingerprint: string;
  notBefore: string;
  notAfter: string;
}

const DAY = 24 * 60 * 60 * 1000;
const SKEW_MS = 60_000;
/** Deep enough for any real hierarchy; bounds the work a hostile Secret can cause. */
const MAX_CHAIN = 8;

const FILES = { cert: 'ca-cert.pem', key: 'ca-key.pem', chain: 'cert-chain.pem', root: 'root-cert.pem' } as const;
type CaFile = (typeof FILES)[keyof typeof FILES];

/**
 * A new self-signed root like the one istiod keeps in `istio-ca-secret`: subject O=<trust
 * domain>, basicConstraints CA (critical), keyUsage keyCertSign and cRLSign (critical), and a
 * subject key identifier, which every leaf's authority key identifier points at.
 */
export async function createSelfSignedRoot(options: SelfSignedRootOptions): Promise<{ certPem: string; keyPem: string }> {
  const now = (options.clock ?? systemClock).now();
  const days = options.validDays ?? 3650;
  if (!(days > 0)) throw new MeshidError('ERR_INVALID_ARGUMENT', `a root must be valid for a positive number of days, not ${days}`);
  const organization = options.organization ?? DEFAULT_TRUST_DOMAIN;
  const algorithm =
    options.keyType === 'rsa'
      ? { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }
      : { name: 'ECDSA', namedCurve: 'P-256' };
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const serial = webcrypto.getRandomValues(new Uint8Array(16));
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x01; // positive and without a leading zero byte
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(serial).toString('hex'),
    name: [{ O: [organization] }],
    // Backdated like leaves, so that a replica whose clock lags a little accepts a fresh root.
    notBefore: new Date(now - SKEW_MS),
    notAfter: new Date(now + days * DAY),
    signingAlgorithm: options.keyType === 'rsa' ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } : { name: 'ECDSA', hash: 'SHA-256' },
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { certPem: toPem('CERTIFICATE', new Uint8Array(cert.rawData)), keyPem: toPem('PRIVATE KEY', new Uint8Array(pkcs8)) };
}

interface Parsed {
  cert: X509Certificate;
  fields: CertificateFields;
  pem: string;
}

function fail(file: CaFile, message: string, cause?: unknown): MeshidError {
  return new MeshidError('ERR_CA_KEY_INVALID', `${file}: ${message}`, {
    ...(cause === undefined ? {} : { cause }),
    hint: 'cacerts needs ca-cert.pem and ca-key.pem (a CA certificate and its key), root-cert.pem, and cert-chain.pem (ca-cert, intermediates, root)',
  });
}

function parseBundle(text: string, file: CaFile): Parsed[] {
  return pemBlocks(text, 'CERTIFICATE').map((der, i) => {
    try {
      return { cert: new X509Certificate(der), fields: readCertificate(der), pem: toPem('CERTIFICATE', der) };
    } catch (error) {
      throw fail(file, `certificate ${i + 1} cannot be parsed${error instanceof DerError ? ` (${error.message})` : ''}`, error);
    }
  });
}

function subjectText(cert: X509Certificate): string {
  // Node answers undefined, despite its typings, for an empty subject.
  return (cert.subject as string | undefined)?.replace(/\n/g, ', ') ?? '';
}

function describe(p: Parsed): string {
  return JSON.stringify(subjectText(p.cert) || '(empty subject)');
}

function isSelfSigned(p: Parsed): boolean {
  return p.cert.checkIssued(p.cert) && p.cert.verify(p.cert.publicKey);
}

function issued(issuer: Parsed, child: Parsed): boolean {
  return child.cert.checkIssued(issuer.cert) && child.cert.verify(issuer.cert.publicKey);
}

/** basicConstraints cA, read directly: OpenSSL's notion of "CA" also folds in keyUsage, and the message should say which is wrong. */
function isCa(p: Parsed, file: CaFile): boolean {
  const ext = p.fields.extensions.get(OID.basicConstraints);
  try {
    return ext !== undefined && basicConstraintsCa(ext.value);
  } catch (error) {
    throw fail(file, `${describe(p)} has malformed basicConstraints`, error);
  }
}

/** A certificate that may sign others, valid now; keyUsage must allow keyCertSign when present (always, for the signing one). */
function checkCa(p: Parsed, file: CaFile, now: number, requireKeyUsage: boolean): void {
  if (!isCa(p, file)) throw fail(file, `${describe(p)} is not a CA certificate (basicConstraints CA:true is missing)`);
  const keyUsage = p.fields.extensions.get(OID.keyUsage);
  let usage: number | undefined;
  try {
    usage = keyUsage ? keyUsageBits(keyUsage.value) : undefined;
  } catch (error) {
    throw fail(file, `${describe(p)} has a malformed keyUsage`, error);
  }
  if (usage === undefined ? requireKeyUsage : (usage & KEY_USAGE.keyCertSign) === 0) {
    throw fail(file, `${describe(p)} may not sign certificates (keyUsage lacks keyCertSign)`);
  }
  if (now >= p.fields.notAfter) throw fail(file, `${describe(p)} expired at ${new Date(p.fields.notAfter).toISOString()}`);
  if (now < p.fields.notBefore) {
    throw fail(file, `${describe(p)} is not valid before ${new Date(p.fields.notBefore).toISOString()} (is this machine's clock right?)`);
  }
}

/** A private key this CA can sign with: RSA of 2048 bits or more, or ECDSA on a NIST curve. */
function checkKey(key: KeyObject): void {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails;
  if (type === 'rsa' && (details?.modulusLength ?? 0) >= 2048) return;
  if (type === 'ec' && ['prime256v1', 'secp384r1', 'secp521r1'].includes(details?.namedCurve ?? '')) return;
  throw fail(FILES.key, `a ${type ?? 'unknown'}${details?.modulusLength ? `-${details.modulusLength}` : ''}${details?.namedCurve ? ` ${details.namedCurve}` : ''} key cannot sign workload certificates; use RSA (2048 bits or more) or ECDSA P-256/P-384/P-521`);
}

/**
 * Checks CA files the way istiod would need them and more strictly (it finds some problems
 * only when a workload's chain fails): the key matches, the certificate may sign and is valid
 * now, the chain links certificate by certificate, and ends at a self-signed root that the
 * trust bundle holds. Every error names the file at fault.
 */
export function loadCaMaterial(input: CaFiles, clock: Clock = systemClock): CaMaterial {
  const now = clock.now();
  const certs = parseBundle(input.certPem, FILES.cert);
  const signing = certs[0];
  if (!signing) throw fail(FILES.cert, 'holds no PEM certificate');
  if (certs.length > 1) throw fail(FILES.cert, `holds ${certs.length} certificates; put only the signing one here and the rest in ${FILES.chain}`);

  let key: KeyObject;
  try {
    key = createPrivateKey(input.keyPem);
  } catch (error) {
    throw fail(FILES.key, 'is not a PEM private key (or it is encrypted)', error);
  }
  checkKey(key);
  if (!signing.cert.checkPrivateKey(key)) throw fail(FILES.key, `does not belong to ${FILES.cert} (${describe(signing)})`);
  checkCa(signing, FILES.cert, now, true);

  // cert-chain.pem in Istio's layout starts with ca-cert itself; skip it when it does.
  const given = input.certChainPem?.trim() ? parseBundle(input.certChainPem, FILES.chain) : [];
  const above = given[0]?.cert.raw.equals(signing.cert.raw) ? given.slice(1) : given;
  if (above.length > MAX_CHAIN) throw fail(FILES.chain, `holds ${above.length} certificates; at most ${MAX_CHAIN} are accepted`);
  let below = signing;
  for (const [i, p] of above.entries()) {
    if (!issued(p, below)) throw fail(FILES.chain, `certificate ${i + 1} (${describe(p)}) did not issue ${describe(below)}, the one below it`);
    checkCa(p, FILES.chain, now, false);
    below = p;
  }
  const top = below;

  let roots = input.rootCertPem?.trim() ? parseBundle(input.rootCertPem, FILES.root) : [];
  for (const root of roots) {
    if (!isSelfSigned(root)) throw fail(FILES.root, `${describe(root)} is not a self-signed root`);
    if (!isCa(root, FILES.root)) throw fail(FILES.root, `${describe(root)} is not a CA certificate`);
  }

  let anchor: Parsed;
  if (isSelfSigned(top)) {
    if (roots.length === 0) roots = [top];
    const held = roots.find((r) => r.cert.raw.equals(top.cert.raw));
    if (!held) {
      throw fail(FILES.root, `does not hold ${describe(top)}, the root that ${top === signing ? FILES.cert + ' is' : FILES.chain + ' ends at'}`);
    }
    anchor = held;
  } else {
    const issuer = roots.find((r) => issued(r, top));
    if (!issuer) {
      if (roots.length === 0) throw fail(FILES.root, `is missing, and ${top === signing ? FILES.cert : FILES.chain} does not end at a self-signed root`);
      throw fail(above.length > 0 ? FILES.chain : FILES.root, `${describe(top)} was not issued by any root in ${FILES.root}${above.length === 0 ? ` (is ${FILES.chain} missing?)` : ''}`);
    }
    checkCa(issuer, FILES.root, now, false);
    above.push(issuer);
    anchor = issuer;
  }

  return {
    certPem: signing.pem,
    keyPem: input.keyPem.endsWith('\n') ? input.keyPem : `${input.keyPem}\n`,
    chainPems: above.map((p) => p.pem),
    rootPems: [anchor, ...roots.filter((r) => r !== anchor)].map((r) => r.pem),
  };
}

/** Subject, SHA-256 fingerprint and validity of one root, for `meshid ca status`. */
export function describeRoot(pem: string): RootSummary {
  const [der] = pemBlocks(pem, 'CERTIFICATE');
  if (!der) throw new MeshidError('ERR_INVALID_ARGUMENT', 'not a PEM certificate');
  const cert = new X509Certificate(der);
  const fields = readCertificate(der);
  return {
    subject: subjectText(cert),
    fingerprint: cert.fingerprint256.replace(/:/g, '').toLowerCase(),
    notBefore: new Date(fields.notBefore).toISOString(),
    notAfter: new Date(fields.notAfter).toISOString(),
  };
}
