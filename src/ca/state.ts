import { MeshidError } from '../core/index.ts';
import type { SecretStrings } from '../kube/index.ts';
import { splitPem } from '../pki/index.ts';

/** Istio's names, so tools that know Istio find meshid's CA where they expect it. */
export const CA_SECRET = 'istio-ca-secret';
export const PLUGGED_CA_SECRET = 'cacerts';

/**
 * What Secret `istio-ca-secret` holds. `ca-cert.pem`/`ca-key.pem` are Istio's self-signed root;
 * the rest is meshid's rotation in progress, kept in the same Secret so that any replica can
 * carry a rotation on after another one dies.
 */
export interface StoredCa {
  caCert: string;
  caKey: string;
  /** Announced in the trust bundle, signing from `signAt`. */
  next?: { cert: string; key: string; signAt: number; graceMs: number };
  /** Roots still trusted until `dropAt`: what signed before the last switch. */
  previous?: { certs: string[]; dropAt: number };
}

const ROTATION_KEY = 'rotation.json';

export function parseCaSecret(data: SecretStrings): StoredCa {
  const caCert = data['ca-cert.pem'];
  const caKey = data['ca-key.pem'];
  if (!caCert || !caKey) throw new MeshidError('ERR_CA_KEY_INVALID', `Secret ${CA_SECRET} lacks ca-cert.pem or ca-key.pem`);
  const stored: StoredCa = { caCert, caKey };
  let rotation: { signAt?: unknown; graceMs?: unknown; dropAt?: unknown } = {};
  try {
    rotation = data[ROTATION_KEY] ? (JSON.parse(data[ROTATION_KEY]) as typeof rotation) : {};
  } catch (error) {
    throw new MeshidError('ERR_CA_KEY_INVALID', `Secret ${CA_SECRET} has an unreadable ${ROTATION_KEY}`, { cause: error });
  }
  const nextCert = data['next-ca-cert.pem'];
  const nextKey = data['next-ca-key.pem'];
  if (nextCert && nextKey && typeof rotation.signAt === 'number' && typeof rotation.graceMs === 'number') {
    stored.next = { cert: nextCert, key: nextKey, signAt: rotation.signAt, graceMs: rotation.graceMs };
  }
  const previous = splitPem(data['previous-roots.pem'] ?? '');
  if (previous.length > 0 && typeof rotation.dropAt === 'number') stored.previous = { certs: previous, dropAt: rotation.dropAt };
  return stored;
}

export function serializeCaSecret(stored: StoredCa): SecretStrings {
  const data: SecretStrings = { 'ca-cert.pem': stored.caCert, 'ca-key.pem': stored.caKey };
  const rotation: Record<string, number> = {};
  if (stored.next) {
    data['next-ca-cert.pem'] = stored.next.cert;
    data['next-ca-key.pem'] = stored.next.key;
    rotation['signAt'] = stored.next.signAt;
    rotation['graceMs'] = stored.next.graceMs;
  }
  if (stored.previous) {
    data['previous-roots.pem'] = stored.previous.certs.join('');
    rotation['dropAt'] = stored.previous.dropAt;
  }
  if (Object.keys(rotation).length > 0) data[ROTATION_KEY] = JSON.stringify(rotation);
  return data;
}

/** Step 1 of a rotation: the new root joins the bundle now and signs after `propagationMs`. */
export function announceRoot(stored: StoredCa, root: { cert: string; key: string }, now: number, propagationMs: number, graceMs: number): StoredCa {
  if (stored.next) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', `a CA rotation is already under way (the new root signs at ${new Date(stored.next.signAt).toISOString()})`, {
      hint: 'Wait for it to finish; `meshid ca status` shows where it is.',
    });
  }
  return { ...stored, next: { ...root, signAt: now + propagationMs, graceMs } };
}

/** Steps 2 and 3 when their time has come: the new root signs; later the old one is dropped. */
export function advanceRotation(stored: StoredCa, now: number): StoredCa | undefined {
  if (stored.next && stored.next.signAt <= now) {
    const { next, ...rest } = stored;
    return { ...rest, caCert: next.cert, caKey: next.key, previous: { certs: dedupe([stored.caCert, ...(stored.previous?.certs ?? [])]), dropAt: now + next.graceMs } };
  }
  if (stored.previous && stored.previous.dropAt <= now) {
    return { caCert: stored.caCert, caKey: stored.caKey, ...(stored.next ? { next: stored.next } : {}) };
  }
  return undefined;
}

/** Keeps `roots` trusted until `dropAt`, e.g. after a plugged-in CA replaced them. */
export function keepTrusting(stored: StoredCa, roots: string[], dropAt: number): StoredCa {
  return { ...stored, previous: { certs: dedupe([...roots, ...(stored.previous?.certs ?? [])]), dropAt: Math.max(dropAt, stored.previous?.dropAt ?? 0) } };
}

/** When advanceRotation next has something to do. */
export function nextTransition(stored: StoredCa): number | undefined {
  const times = [stored.next?.signAt, stored.previous?.dropAt].filter((t): t is number => t !== undefined);
  return times.length > 0 ? Math.min(...times) : undefined;
}

/** The roots every workload must trust: the signing one first, then announced and retiring ones. */
export function trustBundle(signingRoot: string, stored: StoredCa | undefined): string[] {
  return dedupe([signingRoot, ...(stored?.next ? [stored.next.cert] : []), ...(stored?.previous?.certs ?? [])]);
}

function dedupe(pems: string[]): string[] {
  const seen = new Set<string>();
  return pems.filter((pem) => {
    const key = pem.trim();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
