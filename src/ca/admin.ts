import { X509Certificate } from 'node:crypto';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { MeshidError, systemClock, type Clock } from '../core/index.ts';
import { SecretClient, audit, decodeSecret, isConflict, isNotFound, type Actor, type AuditTrail, type SecretStrings } from '../kube/index.ts';
import { ROOT_CONFIGMAP, ROOT_CONFIGMAP_KEY } from '../contract/index.ts';
import { splitPem } from '../pki/index.ts';
import { createSelfSignedRoot, describeRoot, loadCaMaterial, type CaMaterial } from './authority.ts';
import { describeCa, CA_SECRET_KEY_LABEL, type CaStatus } from './kube-ca.ts';
import { DEFAULT_GRACE_MS, DEFAULT_PROPAGATION_MS } from './rotation-defaults.ts';
import { CA_SECRET, PLUGGED_CA_SECRET, announceRoot, keepTrusting, parseCaSecret, serializeCaSecret, trustBundle, type StoredCa } from './state.ts';

/** What `meshid ca …` works on: the two Secrets, read with the operator's own RBAC. */
interface Stored {
  stored: StoredCa;
  version: string;
  plugged: SecretStrings | undefined;
}

async function readStored(secrets: SecretClient, namespace: string): Promise<Stored> {
  const secret = await secrets.read(namespace, CA_SECRET);
  if (!secret) {
    throw new MeshidError('ERR_NOT_FOUND', `Secret ${namespace}/${CA_SECRET} does not exist yet`, {
      hint: 'Start a meshid server with the CA enabled (it creates the root), or plug one in with `meshid ca set`.',
    });
  }
  const plugged = await secrets.read(namespace, PLUGGED_CA_SECRET);
  return { stored: parseCaSecret(decodeSecret(secret)), version: secret.metadata?.resourceVersion ?? '', plugged: plugged ? decodeSecret(plugged) : undefined };
}

function pluggedMaterial(plugged: SecretStrings, clock: Clock): CaMaterial {
  return loadCaMaterial({ certPem: plugged['ca-cert.pem'] ?? '', keyPem: plugged['ca-key.pem'] ?? '', certChainPem: plugged['cert-chain.pem'], rootCertPem: plugged['root-cert.pem'] }, clock);
}

/** The same view the server has, computed from the Secrets alone. */
export async function caStatus(kc: KubeConfig, namespace: string, clock: Clock = systemClock): Promise<CaStatus> {
  const { stored, plugged } = await readStored(new SecretClient(kc), namespace);
  let error: string | undefined;
  let signingRoot = stored.caCert;
  if (plugged) {
    try {
      signingRoot = pluggedMaterial(plugged, clock).rootPems[0] ?? signingRoot;
    } catch (e) {
      error = `Secret ${PLUGGED_CA_SECRET}: ${(e as Error).message}`;
    }
  }
  return describeCa(signingRoot, stored, plugged !== undefined, error);
}

/** Who changed the CA, for its audit event; absent where the act is audited as part of a larger one (a recovery run). */
export interface CaAudit {
  trail: AuditTrail;
  by: Actor;
}

export interface RotateOptions {
  /** Default DEFAULT_PROPAGATION_MS. */
  propagationMs?: number;
  /** Default DEFAULT_GRACE_MS. */
  graceMs?: number;
  /**
   * Drop a rotation already under way instead of refusing (recovery: its new root sat in the
   * same Secret as the compromised one). Its root's fingerprint is answered as `dropped`.
   */
  replacePending?: boolean;
  clock?: Clock;
  audit: CaAudit | undefined;
}

/**
 * The use case "rotate the CA": starts a root rotation without restarts. The new root joins
 * the trust bundle now, signs after `propagationMs`, and the old one leaves the bundle
 * `graceMs` after that. The servers carry out the timed steps; this only writes the plan into
 * the Secret, in one write.
 */
export async function rotateCa(kc: KubeConfig, namespace: string, options: RotateOptions): Promise<{ newRoot: string; signsAt: string; dropped?: string }> {
  const clock = options.clock ?? systemClock;
  const secrets = new SecretClient(kc);
  const read = await readStored(secrets, namespace);
  const { version, plugged } = read;
  let stored = read.stored;
  let dropped: string | undefined;
  if (options.replacePending && stored.next) {
    dropped = describeRoot(stored.next.cert).fingerprint;
    stored = { ...stored };
    delete stored.next;
  }
  if (plugged) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', `a plugged-in CA (Secret ${PLUGGED_CA_SECRET}) is in use; meshid does not hold its root's key`, {
      hint: 'Plug in the new material with `meshid ca set --cert-chain … --key … --root …`.',
    });
  }
  const keyType = new X509Certificate(stored.caCert).publicKey.asymmetricKeyType === 'ec' ? 'ec' : 'rsa';
  const root = await createSelfSignedRoot({ keyType, clock });
  const next = announceRoot(stored, { cert: root.certPem, key: root.keyPem }, clock.now(), options.propagationMs ?? DEFAULT_PROPAGATION_MS, options.graceMs ?? DEFAULT_GRACE_MS);
  await writeStored(secrets, namespace, version, next);
  const newRoot = describeRoot(root.certPem).fingerprint;
  const signsAt = new Date(next.next?.signAt ?? 0).toISOString();
  if (options.audit) await audit(options.audit.trail, options.audit.by, 'CARotationStarted', `new root ${newRoot} joins the trust bundle now and signs from ${signsAt}`);
  return { newRoot, signsAt, ...(dropped ? { dropped } : {}) };
}

export interface PlugInput {
  certChainPem: string;
  keyPem: string;
  rootCertPem: string;
  /** The signing certificate; the first of the chain when absent. */
  caCertPem?: string;
  /** Default DEFAULT_GRACE_MS. */
  graceMs?: number;
  clock?: Clock;
  audit: CaAudit | undefined;
}

/**
 * The use case "set the CA": plugs one in as Istio's `cacerts`. The roots trusted until now stay in the bundle for
 * `graceMs`, so workloads holding leaves from them keep talking while they renew.
 */
export async function plugCa(kc: KubeConfig, namespace: string, input: PlugInput): Promise<{ rootFingerprint: string }> {
  const clock = input.clock ?? systemClock;
  const caCertPem = input.caCertPem ?? new X509Certificate(input.certChainPem).toString();
  const material = loadCaMaterial({ certPem: caCertPem, keyPem: input.keyPem, certChainPem: input.certChainPem, rootCertPem: input.rootCertPem }, clock);
  const secrets = new SecretClient(kc);
  const current = await secrets.read(namespace, CA_SECRET);
  if (current) {
    const stored = parseCaSecret(decodeSecret(current));
    const previousPlugged = await secrets.read(namespace, PLUGGED_CA_SECRET);
    const oldRoots = previousPlugged ? trustBundle(decodeSecret(previousPlugged)['root-cert.pem'] ?? stored.caCert, stored) : trustBundle(stored.caCert, stored);
    await writeStored(secrets, namespace, current.metadata?.resourceVersion ?? '', keepTrusting(stored, oldRoots, clock.now() + (input.graceMs ?? DEFAULT_GRACE_MS)));
  }
  const data = { 'ca-cert.pem': caCertPem, 'ca-key.pem': input.keyPem, 'root-cert.pem': input.rootCertPem, 'cert-chain.pem': input.certChainPem };
  const spec = { namespace, name: PLUGGED_CA_SECRET, key: 'ca-plugged' };
  const { secret, created } = await secrets.createIfAbsent(spec, () => data);
  if (!created) await secrets.replace(spec, secret.metadata?.resourceVersion ?? '', data);
  const rootFingerprint = describeRoot(material.rootPems[0] ?? input.rootCertPem).fingerprint;
  if (input.audit) await audit(input.audit.trail, input.audit.by, 'CAPluggedIn', `plugged in a CA with root ${rootFingerprint}; the roots trusted until now stay trusted for the grace period`);
  return { rootFingerprint };
}

async function writeStored(secrets: SecretClient, namespace: string, version: string, stored: StoredCa): Promise<void> {
  try {
    await secrets.replace({ namespace, name: CA_SECRET, key: CA_SECRET_KEY_LABEL }, version, serializeCaSecret(stored));
  } catch (error) {
    if (isConflict(error)) throw new MeshidError('ERR_INVALID_ARGUMENT', `Secret ${CA_SECRET} changed while meshid was writing it; nothing was changed`, { hint: 'Run the command again.' });
    throw error;
  }
}

export interface PublishedBundle {
  namespace: string;
  configMap: string;
  /** The bundle as workloads read it: every root they trust now, PEM. */
  pem: string;
  roots: Array<{ fingerprint: string; notAfter: string }>;
}

/**
 * The trust bundle as the CA published it in one namespace: the current truth after a rotation
 * or `ca set`, where a copy saved earlier (a file, a pipeline variable) goes stale.
 */
export async function publishedBundle(kc: KubeConfig, namespace: string): Promise<PublishedBundle> {
  const configMap = await kc
    .makeApiClient(CoreV1Api)
    .readNamespacedConfigMap({ namespace, name: ROOT_CONFIGMAP })
    .catch((error: unknown) => {
      if (isNotFound(error)) {
        throw new MeshidError('ERR_NOT_FOUND', `ConfigMap ${namespace}/${ROOT_CONFIGMAP} does not exist: the CA has not published a trust bundle there`, {
          hint: 'The CA publishes it in every namespace once it runs; check `meshid ca status` and that the namespace exists.',
        });
      }
      throw error;
    });
  const pem = configMap.data?.[ROOT_CONFIGMAP_KEY] ?? '';
  const roots = splitPem(pem).map((cert) => {
    const { fingerprint, notAfter } = describeRoot(cert);
    return { fingerprint, notAfter };
  });
  return { namespace, configMap: ROOT_CONFIGMAP, pem, roots };
}
