/**
 * Names and numbers both ends of a wire must agree on: the CA publishes under them and the
 * agent, the installer and the CLI look there. One definition each, so they cannot drift.
 */

/** Istio's CA port (istiod's XDS/CA port), where Istio's pilot-agent looks by default. */
export const DEFAULT_CA_PORT = 15012;

/** The ConfigMap the CA publishes its trust bundle in, in every namespace: Istio's name. */
export const ROOT_CONFIGMAP = 'istio-ca-root-cert';
/** The bundle's key in that ConfigMap, as Istio names it. */
export const ROOT_CONFIGMAP_KEY = 'root-cert.pem';
/** On the ConfigMap: which root now signs, so agents know when their leaves are from an old one. */
export const SIGNING_ROOT_ANNOTATION = 'meshid.io/signing-root-sha256';

/** The group of the bootstrapped admin token, which install's RBAC makes mesh admin. */
export const ADMIN_GROUP = 'mesh-system:admin';
