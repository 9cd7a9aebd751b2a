import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { MeshidError, bar, silentProgress, type Progress } from '../core/index.ts';
import { cacheRoot } from './cache.ts';
import { ETCD_VERSION, KUBERNETES_VERSION } from './versions.ts';

export interface PeerBinaries {
  kubeApiserver: string;
  kubeControllerManager: string;
  etcd: string;
  /** For people trying the playground, and for tests that use meshid the way kubectl users do. */
  kubectl: string;
}

/** Go packages that become the binaries, keyed by output name. */
const TARGETS = {
  'kube-apiserver': 'k8s.io/kubernetes/cmd/kube-apiserver',
  'kube-controller-manager': 'k8s.io/kubernetes/cmd/kube-controller-manager',
  kubectl: 'k8s.io/kubernetes/cmd/kubectl',
  etcd: './cmd/etcd',
} as const;

/** The wrapper module that pins kube and etcd; shipped with the package (files: peers). */
export const KUBE_PEER_MODULE = fileURLToPath(new URL('../../peers/kube', import.meta.url));

export interface EnsureOptions {
  progress?: Progress;
  cacheDir?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Returns paths to kube-apiserver, kube-controller-manager, kubectl and etcd, building them once
 * from their Go modules. The output folder is named after a hash of the wrapper module, so
 * a version bump builds afresh and an unchanged one never rebuilds.
 */
export async function ensurePeerBinaries(options: EnsureOptions = {}): Promise<PeerBinaries> {
  const progress = options.progress ?? silentProgress;
  const env = options.env ?? process.env;
  const dir = join(options.cacheDir ?? cacheRoot(env), 'bin', `k8s-${KUBERNETES_VERSION}-etcd-${ETCD_VERSION}-${await moduleHash()}`);
  const binaries: PeerBinaries = {
    kubeApiserver: join(dir, 'kube-apiserver'),
    kubeControllerManager: join(dir, 'kube-controller-manager'),
    etcd: join(dir, 'etcd'),
    kubectl: join(dir, 'kubectl'),
  };
  const files = [binaries.kubeApiserver, binaries.kubeControllerManager, binaries.etcd, binaries.kubectl];
  if (await allExist(files)) return binaries;

  await checkGo(env);
  const label = `Building kube-apiserver, kube-controller-manager, kubectl ${KUBERNETES_VERSION} and etcd ${ETCD_VERSION} from Go modules`;
  progress.start(`${label} (first run only, several minutes)`);
  const started = Date.now();
  try {
    await mkdir(join(dir, '..'), { recursive: true });
    // Build into a private folder and rename it into place, so that a crash or a
    // concurrent build never leaves a half-written binary where a reader looks.
    const staging = await mkdtemp(`${dir}.tmp-`);
    try {
      const total = await countPackages(env);
      let built = 0;
      await runGo(['build', '-v', '-ldflags=-s -w', '-o', staging + '/', ...Object.values(TARGETS)], env, () => {
        built += 1;
        progress.update(`${label} ${bar(built, total)}`);
      });
      await rename(staging, dir).catch(async (error: unknown) => {
        // Another process finished first: its result is as good as ours.
        if (!(await allExist(files))) throw error;
      });
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  } catch (error) {
    progress.fail(`${label}: failed`);
    throw error;
  }
  progress.succeed(`Built peers in ${((Date.now() - started) / 1000).toFixed(0)} s, cached in ${dir}`);
  return binaries;
}

async function moduleHash(): Promise<string> {
  const hash = createHash('sha256');
  for (const file of ['go.mod', 'go.sum', 'cmd/etcd/main.go']) hash.update(await readFile(join(KUBE_PEER_MODULE, file)));
  return hash.digest('hex').slice(0, 12);
}

async function allExist(paths: string[]): Promise<boolean> {
  const results = await Promise.all(paths.map((p) => access(p).then(() => true, () => false)));
  return results.every(Boolean);
}

async function checkGo(env: NodeJS.ProcessEnv): Promise<void> {
  try {
    await runGo(['version'], env);
  } catch (error) {
    throw new MeshidError('ERR_GO_MISSING', 'Go is needed once, to build kube-apiserver and etcd for the local cluster, but `go version` failed', {
      cause: error,
      hint: 'Install Go 1.26 or newer and put it on PATH (e.g. /usr/local/go/bin), then run the command again.',
    });
  }
}

async function countPackages(env: NodeJS.ProcessEnv): Promise<number> {
  let count = 0;
  await runGo(['list', '-deps', ...Object.values(TARGETS)], env, () => {
    count += 1;
  });
  return count;
}

/** Runs go in the wrapper module; each stdout/stderr line goes to onLine. */
function runGo(args: string[], env: NodeJS.ProcessEnv, onLine?: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('go', args, {
      cwd: KUBE_PEER_MODULE,
      env: { ...env, GOFLAGS: '-buildvcs=false -mod=readonly' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // go reports errors on stderr; `go build -v` also lists packages there.
    const tail: string[] = [];
    createInterface({ input: child.stdout }).on('line', (line) => onLine?.(line));
    createInterface({ input: child.stderr }).on('line', (line) => {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      onLine?.(line);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new MeshidError('ERR_PEER_BUILD_FAILED', `go ${args[0] ?? ''} exited with ${String(code)}:\n${tail.join('\n')}`, {
        hint: 'Check that the Go module proxy is reachable (GOPROXY) and that there is disk space for the Go build cache.',
      }));
    });
  });
}
