// Istio's istiod (pilot-discovery) started as a certificate authority only, beside meshid's CA
// in the `ca` benchmark. Every listener is on loopback and it talks only to the playground's
// kube-apiserver. How each setting was found is in docs/adr/0007-ca-against-istiod.md.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, spawnPeer, type PeerProcess } from '../../src/cluster/index.ts';

/** The namespace istiod believes it runs in; its serving certificate names this. */
export const ISTIOD_NAMESPACE = 'istio-system';
/** Where istiod publishes its root in each namespace, instead of meshid's ConfigMap. */
export const ISTIOD_ROOT_CONFIGMAP = 'istiod-bench-ca-root-cert';
/** The DNS name in istiod's serving certificate for the CA port; ghz sends it as the TLS server name. */
export const ISTIOD_SERVER_NAME = `istiod.${ISTIOD_NAMESPACE}.svc`;

export interface Istiod {
  process: PeerProcess;
  /** host:port of the CA (istiod's secure gRPC port). */
  address: string;
  logFile: string;
}

/**
 * Starts istiod in `dir` (its working directory: the mesh config, networks config and token
 * paths it looks for by default are relative and absent there, so it runs on defaults) with the
 * given root as a plugged-in CA. The root signs leaves directly, like meshid's self-signed root,
 * so both CAs sign with the same key type.
 */
export async function startIstiod(binary: string, kubeconfig: string, dir: string, root: { certPem: string; keyPem: string }): Promise<Istiod> {
  const cacerts = join(dir, 'cacerts');
  await mkdir(cacerts, { recursive: true });
  // istiod's file layout for a plugged-in CA; the root is also its own chain.
  await writeFile(join(cacerts, 'ca-cert.pem'), root.certPem);
  await writeFile(join(cacerts, 'ca-key.pem'), root.keyPem, { mode: 0o600 });
  await writeFile(join(cacerts, 'root-cert.pem'), root.certPem);
  await writeFile(join(cacerts, 'cert-chain.pem'), root.certPem);
  const port = async (): Promise<string> => `127.0.0.1:${await freePort()}`;
  const secure = await port();
  const args = [
    'discovery',
    '--kubeconfig', kubeconfig,
    '--httpAddr', await port(),
    '--httpsAddr', await port(),
    '--grpcAddr', await port(),
    '--secureGRPCAddr', secure,
    '--monitoringAddr', await port(),
    '--ctrlz_address', '127.0.0.1',
    '--ctrlz_port', String(await freePort()),
    // Its client to kube-apiserver is limited to 80 requests/s by default, and it sends one
    // TokenReview per certificate (no cache): at the default it would measure that limit,
    // not its CA (see the ADR for the figure at the default).
    '--kubernetesApiQPS', '100000',
    '--kubernetesApiBurst', '100000',
    '--log_output_level', 'default:warn',
  ];
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    POD_NAMESPACE: ISTIOD_NAMESPACE,
    ROOT_CA_DIR: cacerts,
    // The bench's token and meshid's CA use the same audience.
    TOKEN_AUDIENCES: 'istio-ca',
    // istiod copies its root into a ConfigMap in every namespace, by default the one meshid
    // publishes its own root in (istio-ca-root-cert): the playground is shared with the
    // benchmarks that run after this one, so istiod gets a name of its own.
    PILOT_CA_CERT_CONFIGMAP: ISTIOD_ROOT_CONFIGMAP,
  };
  const logFile = join(dir, 'istiod.log');
  const process_ = spawnPeer('istiod', binary, args, { logFile, detached: false, env, cwd: dir });
  return { process: process_, address: secure, logFile };
}
