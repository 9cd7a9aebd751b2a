import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { MeshidError, bar, silentProgress, type Progress } from '../core/index.ts';
import { cacheRoot } from './cache.ts';
import { ETCD_VERSION, KUBERNETES_VERSION, kubeVersionLdflags } from './versions.ts';

export interface PeerBinaries {
  kubeApiserver: string;
  kubeControllerManager: string;
  etcd: string;
  /** For people trying the playground, and for tests that use meshid the way kubectl users do. */
  kubectl: string;
}

/** Go packages that become the binaries, keyed by output name. */
const KUBE_TARGETS = {
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
  const paths = await buildGoBinaries({
    ...options,
    moduleDir: KUBE_PEER_MODULE,
    name: `k8s-${KUBERNETES_VERSION}-etcd-${ETCD_VERSION}`,
    hashFiles: ['go.mod', 'go.sum', 'cmd/etcd/main.go'],
    targets: KUBE_TARGETS,
    buildFlags: [`-ldflags=-s -w ${kubeVersionLdflags()}`],
    label: `Building kube-apiserver, kube-controller-manager, kubectl ${KUBERNETES_VERSION} and etcd ${ETCD_VERSION} from Go modules`,
    built: 'peers',
    purpose: 'to build kube-apiserver and etcd for the local cluster',
  });
  return {
    kubeApiserver: paths['kube-apiserver'],
    kubeControllerManager: paths['kube-controller-manager'],
    etcd: paths.etcd,
    kubectl: paths.kubectl,
  };
}

export interface GoBuild<Name extends string> extends EnsureOptions {
  /** A wrapper Go module (go.mod + go.sum) that pins what is built. */
  moduleDir: string;
  /** Start of the cache folder's name; a hash of `hashFiles` is appended. */
  name: string;
  /** Files of moduleDir, relative to it, whose contents decide whether a build is current. */
  hashFiles: readonly string[];
  /** Go packages to build, keyed by the binary's file name. */
  targets: Readonly<Record<Name, string>>;
  /** Extra `go build` flags, e.g. `-trimpath`. */
  buildFlags?: readonly string[];
  /** Extra environment for go, e.g. `CGO_ENABLED: '0'`. */
  goEnv?: Readonly<Record<string, string>>;
  /** Progress text while building. */
  label: string;
  /** What the success message says was built. */
  built: string;
  /** Why Go is needed, for ERR_GO_MISSING ("to build …"). */
  purpose: string;
}

/**
 * Builds `targets` from a wrapper module into `<cache>/bin/<name>-<hash>/` once, and returns
 * the path of each binary. The hash covers `hashFiles`, so changing the pins builds afresh
 * and an unchanged module never rebuilds.
 */
export async function buildGoBinaries<Name extends string>(build: GoBuild<Name>): Promise<Record<Name, string>> {
  const progress = build.progress ?? silentProgress;
  const env: NodeJS.ProcessEnv = { ...(build.env ?? process.env), ...build.goEnv };
  const dir = join(build.cacheDir ?? cacheRoot(env), 'bin', `${build.name}-${await moduleHash(build.moduleDir, build.hashFiles)}`);
  const names = Object.keys(build.targets) as Name[];
  const paths = Object.fromEntries(names.map((name) => [name, join(dir, name)])) as Record<Name, string>;
  const files = Object.values<string>(paths);
  if (await allExist(files)) return paths;

  const go = (args: string[], onLine?: (line: string) => void) => runGo(build.moduleDir, args, env, onLine);
  await checkGo(go, build.purpose);
  const packages = Object.values<string>(build.targets);
  progress.start(`${build.label} (first run only, several minutes)`);
  const started = Date.now();
  try {
    await mkdir(join(dir, '..'), { recursive: true });
    // Build into a private folder and rename it into place, so that a crash or a
    // concurrent build never leaves a half-written binary where a reader looks.
    const staging = await mkdtemp(`${dir}.tmp-`);
    try {
      let total = 0;
      await go(['list', '-deps', ...packages], () => {
        total += 1;
      });
      let done = 0;
      await go(['build', '-v', ...(build.buildFlags ?? []), '-o', staging + '/', ...packages], () => {
        done += 1;
        progress.update(`${build.label} ${bar(done, total)}`);
      });
      await rename(staging, dir).catch(async (error: unknown) => {
        // Another process finished first: its result is as good as ours.
        if (!(await allExist(files))) throw error;
      });
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  } catch (error) {
    progress.fail(`${build.label}: failed`);
    throw error;
  }
  progress.succeed(`Built ${build.built} in ${((Date.now() - started) / 1000).toFixed(0)} s, cached in ${dir}`);
  return paths;
}

async function moduleHash(moduleDir: string, files: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const file of files) hash.update(await readFile(join(moduleDir, file)));
  return hash.digest('hex').slice(0, 12);
}

async function allExist(paths: string[]): Promise<boolean> {
  const results = await Promise.all(paths.map((p) => access(p).then(() => true, () => false)));
  return results.every(Boolean);
}

async function checkGo(go: (args: string[]) => Promise<void>, purpose: string): Promise<void> {
  try {
    await go(['version']);
  } catch (error) {
    throw new MeshidError('ERR_GO_MISSING', `Go is needed once, ${purpose}, but \`go version\` failed`, {
      cause: error,
      hint: 'Install Go 1.26 or newer and put it on PATH (e.g. /usr/local/go/bin), then run the command again.',
    });
  }
}

/** Runs go in a wrapper module; each stdout/stderr line goes to onLine. */
function runGo(cwd: string, args: string[], env: NodeJS.ProcessEnv, onLine?: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('go', args, {
      cwd,
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
