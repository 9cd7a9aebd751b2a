import { createHash } from 'node:crypto';
import { encodeSecret, SECRET_TYPE_URL } from './sds-protos.ts';
import { deltaResourceField, encodeAny, sotwResourceField } from './wire.ts';

/** Istio's names: Envoy asks for the workload's key and chain, and for the roots to trust. */
export const WORKLOAD_RESOURCE = 'default';
export const ROOT_RESOURCE = 'ROOTCA';
export type ResourceName = typeof WORKLOAD_RESOURCE | typeof ROOT_RESOURCE;
export const RESOURCE_NAMES: readonly ResourceName[] = [WORKLOAD_RESOURCE, ROOT_RESOURCE];

export function isResourceName(name: string): name is ResourceName {
  return name === WORKLOAD_RESOURCE || name === ROOT_RESOURCE;
}

/**
 * One resource at one version, encoded once. Every stream that needs it shares this object
 * and its bytes, so a push to ten thousand streams encodes the Secret once, not each time.
 */
export interface PackedSecret {
  readonly name: ResourceName;
  /** Derived from the content, so an agent restart never reuses a version for other bytes. */
  readonly version: string;
  /** The resource as a DiscoveryResponse.resources field (an Any holding the Secret). */
  readonly sotwField: Buffer;
  /** The resource as a DeltaDiscoveryResponse.resources field (a Resource holding the Any). */
  readonly deltaField: Buffer;
}

/**
 * A copy in memory of its own. Buffers under 4 KB (a P-256 key and chain) are slices of Node's
 * shared 8 KB allocation pool, and one that lives as long as its certificate keeps its whole
 * slab alive: about 8 KB held per field instead of 2, for each of a node's identities.
 */
function exact(bytes: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(bytes.length);
  bytes.copy(copy);
  return copy;
}

function packed(name: ResourceName, version: string, secret: Buffer): PackedSecret {
  const any = encodeAny(SECRET_TYPE_URL, secret);
  return { name, version, sotwField: exact(sotwResourceField(any)), deltaField: exact(deltaResourceField(name, version, any)) };
}

function contentVersion(parts: readonly string[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part).update('\0');
  return hash.digest('hex').slice(0, 16);
}

function pemLines(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}

/**
 * `default`: the key and the chain exactly as the CA answered it, leaf first and root last.
 * This is what Istio's agent serves (its secret cache concatenates the whole CSRSign answer
 * into `CertificateChain`), so a peer that checks the chain it is handed, or a tool that
 * writes `cert-chain.pem` from it, sees what it would see under Istio. The root is also in
 * ROOTCA; a chain ending in a root the peer does not trust still fails, so serving it grants
 * nothing.
 */
export function workloadSecret(chainPem: readonly string[], keyPem: string): PackedSecret {
  const chainText = chainPem.map(pemLines).join('');
  const bytes = encodeSecret({
    name: WORKLOAD_RESOURCE,
    tls_certificate: { certificate_chain: { inline_bytes: Buffer.from(chainText) }, private_key: { inline_bytes: Buffer.from(keyPem) } },
  });
  // The version hashes the public chain only: key material never feeds anything printable.
  return packed(WORKLOAD_RESOURCE, contentVersion(chainPem), bytes);
}

/** `ROOTCA`: every root of the bundle; during a rotation, old and new together. */
export function rootSecret(rootsPem: readonly string[]): PackedSecret {
  const roots = [...new Set(rootsPem.map(pemLines))];
  const bytes = encodeSecret({ name: ROOT_RESOURCE, validation_context: { trusted_ca: { inline_bytes: Buffer.from(roots.join('')) } } });
  return packed(ROOT_RESOURCE, contentVersion(roots), bytes);
}
