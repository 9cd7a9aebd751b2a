import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { MeshidError } from '../core/index.ts';

/** What `meshid down` needs to stop a node (node-namespace.ts writes it to node/cleanup.json too). */
export const NodeCleanupSchema = z.object({
  /** Holds the node's mount and network namespaces open. */
  holderPid: z.number().int().positive(),
  /** As /proc/<pid>/ns names them (`mnt:[4026532…]`): how `down` finds the shims even after the holder died. */
  namespaces: z.array(z.string()),
  /** The kubelet's cgroup parent, in every cgroup v1 hierarchy (or under the v2 root). */
  cgroupRoot: z.string().startsWith('/meshid-'),
  /** The host's kernel settings before any kubelet changed them. */
  sysctls: z.record(z.string(), z.string()),
});

/**
 * DIR/env.json: how tools and tests find a running playground. Later parts (server, CA,
 * agent) add their addresses here.
 */
export const PlaygroundEnvSchema = z.object({
  apiServer: z.url(),
  kubeconfigs: z.object({ admin: z.string(), alice: z.string(), bob: z.string(), carol: z.string() }),
  kubectl: z.string(),
  server: z.object({ http: z.url(), https: z.url() }),
  /**
   * rootCert is the trust bundle as published at boot; after `meshid ca rotate` or `ca set`
   * the current one is `meshid ca bundle` (ConfigMap istio-ca-root-cert in any namespace).
   */
  ca: z.object({
    address: z.string(),
    rootCert: z.string(),
    /** The name the CA's certificate carries, for clients that dial `address` (a ClusterIP) from outside the cluster's DNS. */
    serverName: z.string().optional(),
  }),
  agent: z.object({ socket: z.string() }),
  /** Istio's SDS demo: per namespace, sleep's control URL and httpbin's mTLS address. */
  demo: z.record(z.string(), z.object({ sleep: z.string(), httpbin: z.string() })),
  pids: z.array(z.number().int().positive()),
  /** Present when meshid runs as pods on a real node (see node-namespace.ts). */
  node: z
    .object({
      name: z.string(),
      ip: z.string(),
      /** Milliseconds from the kubelet's start to Ready. */
      readyAfterMs: z.number(),
      cleanup: NodeCleanupSchema,
    })
    .optional(),
});
export type PlaygroundEnv = z.infer<typeof PlaygroundEnvSchema>;

export function envFile(dir: string): string {
  return join(dir, 'env.json');
}

export async function writeEnv(dir: string, env: PlaygroundEnv): Promise<void> {
  await writeFile(envFile(dir), JSON.stringify(env, null, 2) + '\n');
}

/** Reads env.json; undefined when there is none, an error naming the field when it is bad. */
export async function readEnv(dir: string): Promise<PlaygroundEnv | undefined> {
  let text: string;
  try {
    text = await readFile(envFile(dir), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', `${envFile(dir)} is not JSON`, { cause: error });
  }
  const parsed = PlaygroundEnvSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new MeshidError('ERR_INVALID_ARGUMENT', `${envFile(dir)}: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`, {
      hint: `Stop the processes by hand and delete ${envFile(dir)}.`,
    });
  }
  return parsed.data;
}
