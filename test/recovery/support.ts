import { spawn, type ChildProcess } from 'node:child_process';
import { AppsV1Api, AuthenticationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { ROOT_CONFIGMAP_KEY, describeRoot, splitPem } from '../../src/ca/index.ts';
import { decodeSecret } from '../../src/kube/index.ts';
import { MESHID_BIN } from '../support/cli.ts';
import { within } from '../support/server.ts';
import { OFF_NODE } from '../support/placement.ts';

/** A CLI run that the test may kill midway, with its output so far. */
export interface RunningCli {
  child: ChildProcess;
  output(): { stdout: string; stderr: string };
  exited: Promise<number | null>;
}

export function spawnCli(args: string[]): RunningCli {
  const child = spawn(process.execPath, [MESHID_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, output: () => ({ stdout, stderr }), exited };
}

export async function waitForDefaultAccount(core: CoreV1Api, namespace: string): Promise<void> {
  const ok = await within(15_000, () => core.readNamespacedServiceAccount({ namespace, name: 'default' }).then(() => true, () => false));
  if (ok === undefined) throw new Error(`no default ServiceAccount in ${namespace} after 15 s`);
}

/**
 * A legacy service-account token Secret, as clusters older than 1.24 made for every account
 * and as people still make by hand: the token controller fills in the token.
 */
export async function legacyTokenSecret(core: CoreV1Api, namespace: string, name: string, serviceAccount = 'default'): Promise<string> {
  await core.createNamespacedSecret({
    namespace,
    body: { metadata: { name, annotations: { 'kubernetes.io/service-account.name': serviceAccount } }, type: 'kubernetes.io/service-account-token' },
  });
  let token: string | undefined;
  const filled = await within(15_000, async () => {
    token = decodeSecret(await core.readNamespacedSecret({ namespace, name }))['token'];
    return token !== undefined && token !== '';
  });
  if (filled === undefined || !token) throw new Error(`the token controller did not fill ${namespace}/${name} within 15 s`);
  return token;
}

/** What the apiserver says of a token right now. */
export async function tokenAccepted(kc: KubeConfig, token: string): Promise<boolean> {
  const review = await kc.makeApiClient(AuthenticationV1Api).createTokenReview({ body: { spec: { token } } });
  return review.status?.authenticated === true;
}

export async function publishedRoots(core: CoreV1Api, namespace: string, name: string): Promise<string[]> {
  const cm = await core.readNamespacedConfigMap({ namespace, name }).catch(() => undefined);
  return splitPem(cm?.data?.[ROOT_CONFIGMAP_KEY] ?? '');
}

export const fingerprint = (pem: string): string => describeRoot(pem).fingerprint;

/** Names and resource versions of what recovery could touch in some namespaces: "nothing changed" compares these. */
export async function snapshot(kc: KubeConfig, namespaces: string[], configMaps: string[]): Promise<Record<string, string>> {
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const out: Record<string, string> = {};
  for (const namespace of namespaces) {
    const lists = [
      ['Secret', (await core.listNamespacedSecret({ namespace })).items],
      ['ServiceAccount', (await core.listNamespacedServiceAccount({ namespace })).items],
      ['Pod', (await core.listNamespacedPod({ namespace })).items],
      ['Deployment', (await apps.listNamespacedDeployment({ namespace })).items],
      ['DaemonSet', (await apps.listNamespacedDaemonSet({ namespace })).items],
      ['StatefulSet', (await apps.listNamespacedStatefulSet({ namespace })).items],
      ['ConfigMap', (await core.listNamespacedConfigMap({ namespace })).items.filter((c) => configMaps.includes(c.metadata?.name ?? ''))],
    ] as const;
    for (const [kind, items] of lists) {
      for (const item of items) out[`${kind} ${namespace}/${item.metadata?.name ?? ''}`] = item.metadata?.resourceVersion ?? '';
    }
  }
  return out;
}

/** Workloads of every kind recovery restarts, and a bare pod, in one namespace. */
export async function createWorkloads(kc: KubeConfig, namespace: string): Promise<void> {
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const labels = (app: string) => ({ app });
  const template = (app: string) => ({ metadata: { labels: labels(app) }, spec: { ...OFF_NODE, containers: [{ name: 'app', image: 'registry.example.com/app:1' }] } });
  await apps.createNamespacedDeployment({ namespace, body: { metadata: { name: 'web' }, spec: { replicas: 0, selector: { matchLabels: labels('web') }, template: template('web') } } });
  // One replica, kept off the node: its pods never become ready.
  await apps.createNamespacedDeployment({ namespace, body: { metadata: { name: 'api' }, spec: { replicas: 1, selector: { matchLabels: labels('api') }, template: template('api') } } });
  await apps.createNamespacedStatefulSet({ namespace, body: { metadata: { name: 'db' }, spec: { replicas: 0, serviceName: 'db', selector: { matchLabels: labels('db') }, template: template('db') } } });
  await apps.createNamespacedDaemonSet({ namespace, body: { metadata: { name: 'node-agent' }, spec: { selector: { matchLabels: labels('node-agent') }, template: template('node-agent') } } });
  await core.createNamespacedPod({ namespace, body: { metadata: { name: 'debug' }, spec: { ...OFF_NODE, containers: [{ name: 'sh', image: 'registry.example.com/busybox:1' }] } } });
}

/**
 * Runs the CLI on a pseudo-terminal (util-linux `script`), typing `input`, so the y/N prompt
 * is exercised as a person meets it. Answers the exit code and everything the terminal showed.
 */
export function runInTerminal(args: string[], input: string, timeoutMs = 60_000): Promise<{ code: number | null; output: string }> {
  const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  // A pty from `script` has no size; give it a real terminal's, as spinners measure it.
  const command = `stty cols 120 rows 40; ${[process.execPath, MESHID_BIN, ...args].map(quote).join(' ')}`;
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`meshid ${args.join(' ')} on a terminal timed out\n${output}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
    child.stdin.end(input);
  });
}

/** Waits until the controllers have caught up with the workloads, so a later snapshot sees no late status write. */
export async function workloadsSettled(kc: KubeConfig, namespace: string): Promise<void> {
  const apps = kc.makeApiClient(AppsV1Api);
  const settled = await within(30_000, async () => {
    const [d, s, ds] = await Promise.all([apps.listNamespacedDeployment({ namespace }), apps.listNamespacedStatefulSet({ namespace }), apps.listNamespacedDaemonSet({ namespace })]);
    const seen = [...d.items, ...s.items, ...ds.items].every((o) => (o.status?.observedGeneration ?? 0) >= (o.metadata?.generation ?? 1));
    const scaled = d.items.every((o) => (o.status?.replicas ?? 0) === (o.spec?.replicas ?? 1));
    return seen && scaled;
  });
  if (settled === undefined) throw new Error(`the workloads in ${namespace} did not settle within 30 s`);
  // The last status writes of a round land together; let them.
  await new Promise((r) => setTimeout(r, 1000));
}
