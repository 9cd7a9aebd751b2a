import { Agent as HttpsAgent } from 'node:https';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { Duplex, PassThrough, Writable, type Readable } from 'node:stream';
import { AuthorizationV1Api, CoreV1Api, PortForward, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { MeshidError } from '../core/index.ts';
import { HTTPS_PORT } from '../install/index.ts';
import { pathOnOrigin, type DashboardUpstream } from './dashboard-proxy.ts';

/** The label every meshid server pod carries (install's Deployment selector). */
export const MESHID_POD_SELECTOR = 'app.kubernetes.io/name=meshid';

/** client-node's PortForward, narrowed to what the tunnel uses (tests pass a fake). */
export interface PortForwarder {
  portForward(namespace: string, pod: string, ports: number[], output: Writable, err: Writable | null, input: Readable): Promise<unknown>;
}

/** `prefer` when it still runs, is Ready and is not going away, else the first (by name) such meshid pod. */
export function pickMeshidPod(pods: V1Pod[], namespace: string, prefer?: string): string {
  const ready = pods
    .filter((p) => !p.metadata?.deletionTimestamp && p.status?.phase === 'Running' && (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'))
    .map((p) => p.metadata?.name)
    .filter((name): name is string => !!name)
    .sort();
  const pod = prefer && ready.includes(prefer) ? prefer : ready[0];
  if (!pod) throw new MeshidError('ERR_NOT_FOUND', `no running meshid pod in ${namespace}: use the default service proxy or --url`);
  return pod;
}

export async function findMeshidPod(kc: KubeConfig, namespace: string, prefer?: string): Promise<string> {
  const list = await kc
    .makeApiClient(CoreV1Api)
    .listNamespacedPod({ namespace, labelSelector: MESHID_POD_SELECTOR })
    .catch((error: unknown) => {
      const code = (error as { code?: unknown }).code;
      if (typeof code !== 'number') throw new MeshidError('ERR_KUBE_UNAVAILABLE', `cannot list meshid pods in ${namespace}: ${error instanceof Error ? error.message.split('\n')[0] ?? '' : String(error)}`);
      throw new MeshidError(code === 403 ? 'ERR_FORBIDDEN' : 'ERR_KUBE_REJECTED', `cannot list meshid pods in ${namespace}: HTTP ${code}`, {
        hint: 'port-forward needs get/list on pods and create on pods/portforward there; the default service proxy needs neither.',
      });
    });
  const pod = pickMeshidPod(list.items, namespace, prefer);
  await requirePortForward(kc, namespace, pod);
  return pod;
}

/**
 * Asks Kubernetes, as the user, whether they may open the tunnel at all. The tunnel itself
 * opens only when the first request comes, so without this a user who may list the pods
 * but not port-forward to them (`view`) would get a proxy and a link that can never work.
 * `create` is what the apiserver checks for a port-forward upgrade; a cluster that says no to
 * the review itself (an authorizer that does not answer) leaves the tunnel to find out.
 */
export async function requirePortForward(kc: KubeConfig, namespace: string, pod: string): Promise<void> {
  const review = await kc
    .makeApiClient(AuthorizationV1Api)
    .createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { verb: 'create', group: '', resource: 'pods', subresource: 'portforward', namespace, name: pod } } } })
    .catch(() => undefined);
  if (review?.status?.allowed === false) {
    throw new MeshidError('ERR_FORBIDDEN', `you may not port-forward to meshid pod ${namespace}/${pod}`, {
      hint: `port-forward needs create on pods/portforward in ${namespace}; the default service proxy does not.`,
    });
  }
}

/**
 * One TCP connection to the pod's port through the apiserver's pods/portforward, as a
 * Duplex: what is written goes to the pod, what the pod sends comes out.
 */
export function openTunnel(forwarder: PortForwarder, namespace: string, pod: string, port: number): Duplex {
  const toPod = new PassThrough();
  let socket: { close(): void; on(event: 'close', listener: () => void): unknown } | undefined;
  const local = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      toPod.write(chunk, callback);
    },
    final(callback) {
      toPod.end();
      callback();
    },
    destroy(error, callback) {
      socket?.close();
      toPod.destroy();
      callback(error);
    },
  });
  const fromPod = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      local.push(chunk);
      callback();
    },
  });
  const errors = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      const text = chunk.toString('utf8').trim();
      if (text) local.destroy(new Error(`port-forward to ${pod}:${port}: ${text}`));
      callback();
    },
  });
  forwarder.portForward(namespace, pod, [port], fromPod, errors, toPod).then(
    (ws) => {
      socket = (typeof ws === 'function' ? (ws as () => unknown)() : ws) as typeof socket;
      if (local.destroyed) socket?.close();
      socket?.on('close', () => local.push(null));
    },
    (error: unknown) => local.destroy(error instanceof Error ? error : new Error(String(error))),
  );
  return local;
}

export interface PortForwardOptions {
  /** The meshid CA (PEM) the pod's serving certificate must chain to. */
  ca?: string;
  forwarder?: PortForwarder;
  /**
   * Finds a Ready pod again after a tunnel failed. Pods come and go (a rollout, `meshid
   * recover`, a node drain) while the dashboard runs for hours; without it the proxy would
   * keep dialling a pod that no longer exists.
   */
  repick?: (current: string) => Promise<string>;
  /** Told when the tunnels move to another pod. */
  onSwitch?: (from: string, to: string) => void;
}

/**
 * Upstream through a port-forward to one meshid pod's HTTPS port. The local side stays plain
 * HTTP on the proxy's own name, like every mode, so the browser sees no certificate warning.
 * The pod's serving certificate is checked against the context's meshid CA when it has one;
 * the tunnel itself is the apiserver's, authenticated with the user's credentials. A failed
 * tunnel fails its own request only: the next request first looks for a Ready pod again
 * (sessions are meshid's signed cookies, so any replica takes them over).
 */
export function portForwardUpstream(kc: KubeConfig, namespace: string, pod: string, options: PortForwardOptions = {}): DashboardUpstream {
  const forwarder = options.forwarder ?? new PortForward(kc);
  const origin = `https://localhost:${HTTPS_PORT}`;
  const agent = new HttpsAgent({ keepAlive: true });
  const tls: ConnectionOptions = options.ca ? { ca: options.ca, checkServerIdentity: () => undefined } : { rejectUnauthorized: false };
  let current = pod;
  let failed = false;
  let repicking: Promise<void> | undefined;
  (agent as unknown as { createConnection: (o: ConnectionOptions) => Duplex }).createConnection = (o) => {
    const tunnel = openTunnel(forwarder, namespace, current, HTTPS_PORT);
    tunnel.on('error', () => (failed = true));
    return tlsConnect({ ...o, ...tls, servername: 'localhost', socket: tunnel });
  };
  const repick = (find: (current: string) => Promise<string>): Promise<void> =>
    (repicking ??= find(current)
      .then((next) => {
        failed = false;
        if (next === current) return;
        options.onSwitch?.(current, next);
        current = next;
        // Idle keep-alive tunnels lead to the old pod; requests under way finish or fail there.
        for (const sockets of Object.values(agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
      })
      .finally(() => (repicking = undefined)));
  return {
    moveAuthorization: false,
    prepare: async (localPath) => {
      if (failed && options.repick) await repick(options.repick);
      return { url: new URL(`${origin}${localPath}`), agent, headers: {} };
    },
    toLocal: (location) => pathOnOrigin(location, origin),
    close: () => agent.destroy(),
  };
}
