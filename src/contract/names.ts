/**
 * Names and numbers both ends of a wire must agree on: the CA publishes under them and the
 * agent, the installer and the CLI look there. One definition each, so they cannot drift.
 */

/** Istio's CA port (istiod's XDS/CA port), where Istio's pilot-agent looks by default. */
export const DEFAULT_CA_PORT = 15012;

/**
 * The cluster's DNS domain (kubelet's clusterDomain), which Services' long names end in. Istio's
 * default trust domain is the same name by convention.
 */
export const CLUSTER_DOMAIN = 'cluster.local';

/** The Service in front of the server replicas (HTTP, HTTPS and the CA). */
export const MESHID_SERVICE = 'meshid';

/**
 * The names the CA's serving certificate carries by default: the ones the installed agent dials
 * (`meshid.<namespace>.svc`), their long form, and istiod's, which Istio's agents expect.
 */
export function caServiceNames(namespace: string): string[] {
  return [`${MESHID_SERVICE}.${namespace}.svc`, `${MESHID_SERVICE}.${namespace}.svc.${CLUSTER_DOMAIN}`, 'istiod.istio-system.svc'];
}

/** The ConfigMap the CA publishes its trust bundle in, in every namespace: Istio's name. */
export const ROOT_CONFIGMAP = 'istio-ca-root-cert';
/** The bundle's key in that ConfigMap, as Istio names it. */
export const ROOT_CONFIGMAP_KEY = 'root-cert.pem';
/** On the ConfigMap: which root now signs, so agents know when their leaves are from an old one. */
export const SIGNING_ROOT_ANNOTATION = 'meshid.io/signing-root-sha256';

/** The group of the bootstrapped admin token, which install's RBAC makes mesh admin. */
export const ADMIN_GROUP = 'mesh-system:admin';
