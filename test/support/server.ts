import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '../../src/core/index.ts';
import { install, uninstall, SERVICE_ACCOUNT } from '../../src/install/index.ts';
import { loadKubeConfig, serviceAccountKubeconfig } from '../../src/kube/index.ts';
import { startServer, type RunningServer, type ServerConfigInput } from '../../src/server/index.ts';
import { testEnv } from './env.ts';
import { keepAgentOffNode } from './placement.ts';

export interface TestServer {
  server: RunningServer;
  namespace: string;
  /** Stops the server and deletes what install made, namespace included. */
  close(): Promise<void>;
}

export interface TestInstall {
  namespace: string;
  admin: KubeConfig;
  /** A kubeconfig file (in a fresh temp dir) that authenticates as one of the installation's ServiceAccounts. */
  kubeconfigFor(serviceAccount?: string): Promise<string>;
  /** Deletes what install made, namespace included. */
  remove(): Promise<void>;
}

/** meshid installed into a namespace of its own (on the playground unless told), with nothing started yet. */
export async function installNamespace(namespace: string, adminKubeconfig: string = testEnv().kubeconfigs.admin, rootConfigMap?: string): Promise<TestInstall> {
  const admin = loadKubeConfig({ kubeconfig: adminKubeconfig });
  // The server may touch only the root ConfigMap its RBAC names, so a test CA publishing under its own name needs it granted.
  await install(admin, { namespace, anonymousAuth: false, image: 'meshid:test', replicas: 0, ...(rootConfigMap ? { rootConfigMap } : {}) });
  await keepAgentOffNode(admin, namespace);
  const files: string[] = [];
  return {
    namespace,
    admin,
    async kubeconfigFor(serviceAccount = SERVICE_ACCOUNT) {
      const file = await serviceAccountKubeconfigFile(admin, namespace, serviceAccount);
      files.push(file);
      return file;
    },
    async remove() {
      await uninstall(admin, { namespace, purge: false });
      await admin.makeApiClient(CoreV1Api).deleteNamespace({ name: namespace }).catch(() => undefined);
      // The kubeconfigs hold service-account tokens: they go with the installation.
      for (const file of files) await rm(dirname(file), { recursive: true, force: true });
    },
  };
}

async function serviceAccountKubeconfigFile(admin: KubeConfig, namespace: string, serviceAccount: string): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), `meshid-${namespace}-`)), `${serviceAccount}.kubeconfig`);
  await writeFile(file, await serviceAccountKubeconfig(admin, namespace, serviceAccount, 3600), { mode: 0o600 });
  return file;
}

/**
 * A meshid server of its own, in its own freshly installed namespace, authenticating as
 * that installation's ServiceAccount: exactly what an in-cluster replica would be.
 */
export async function startTestServer(namespace: string, config: Partial<ServerConfigInput> = {}): Promise<TestServer> {
  const installed = await installNamespace(namespace, undefined, config.ca?.rootConfigMap);
  const server = await startServer(
    { kubeconfig: await installed.kubeconfigFor(), namespace, host: '127.0.0.1', httpPort: 0, httpsPort: 0, ...config },
    { log: createLogger(namespace, 'silent') },
  );
  return {
    server,
    namespace,
    async close() {
      await server.close();
      await installed.remove();
    },
  };
}

/** A second replica of an existing installation. */
export async function startReplica(namespace: string, config: Partial<ServerConfigInput> = {}): Promise<RunningServer> {
  const admin = loadKubeConfig({ kubeconfig: testEnv().kubeconfigs.admin });
  const file = await serviceAccountKubeconfigFile(admin, namespace, SERVICE_ACCOUNT);
  return startServer({ kubeconfig: file, namespace, host: '127.0.0.1', httpPort: 0, httpsPort: 0, ...config }, { log: createLogger(`${namespace}-b`, 'silent') });
}

/** Polls `check` every 100 ms until it is true or `ms` pass; answers how long it took, or undefined. */
export async function within(ms: number, check: () => Promise<boolean>): Promise<number | undefined> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (await check()) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}
