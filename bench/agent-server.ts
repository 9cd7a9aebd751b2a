// The agent side of bench/agent.bench.ts. The agent runs in a child process of plain `node`
// on the code `meshid agent` runs: the CLI bundle in dist/bin (scripts/build-cli.ts), with the
// chunks that command loads (the CLI entry, the agent, the Kubernetes client and the logger).
// Under tsx its compiler and source maps alone would add about 100 MB to the RSS being
// measured, and the unbundled dist/ tree keeps about 45 MB more resident than the bundle. So
// the child's program is the short JavaScript below; the CA it signs with lives in the parent
// and is meshid's real signing core (LeafSigner), reached over the IPC channel.
import { readdirSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkCsr, createSelfSignedRoot, loadCaMaterial, LeafSigner } from '../src/ca/index.ts';
import { forkChild, type CallEnvelope, type Child } from './agent-ipc.ts';

const REPO = join(import.meta.dirname, '..');

/** The compiled tree the agent child runs; MESHID_BENCH_DIST points elsewhere (e.g. a private build). */
export function distDir(): string {
  return process.env['MESHID_BENCH_DIST'] ?? join(REPO, 'dist');
}

/** Refuses to measure stale code: every src/agent module must have a newer compiled twin. */
export function checkDistFresh(dist: string): void {
  const src = join(REPO, 'src', 'agent');
  for (const file of readdirSync(src).filter((f) => f.endsWith('.ts'))) {
    const compiled = join(dist, 'agent', file.replace(/\.ts$/, '.js'));
    let fresh = false;
    try {
      fresh = statSync(compiled).mtimeMs >= statSync(join(src, file)).mtimeMs;
    } catch {
      fresh = false;
    }
    if (!fresh) throw new Error(`${compiled} is missing or older than src/agent/${file}: run \`npm run build\` first (\`npm run bench\` does)`);
  }
}

/** The chunk of dist/bin named `<name>-<hash>.js`: what the CLI's `await import()` of that area loads. */
function chunk(bin: string, name: string): string {
  const found = readdirSync(bin).filter((f) => new RegExp(`^${name}-[A-Z0-9]+\\.js$`).test(f));
  if (found.length !== 1) throw new Error(`expected one ${name}-<hash>.js in ${bin}, found ${found.length}: run \`npm run build\` first (\`npm run bench\` does)`);
  return join(bin, found[0] ?? '');
}

/** The bundle `meshid agent` runs, refused when any src/agent module is newer than its agent chunk. */
export function agentBundle(dist: string): { entry: string; agent: string; kube: string; logging: string } {
  const bin = join(dist, 'bin');
  const bundle = { entry: join(bin, 'meshid.js'), agent: chunk(bin, 'agent'), kube: chunk(bin, 'kube'), logging: chunk(bin, 'logging') };
  const built = statSync(bundle.agent).mtimeMs;
  const src = join(REPO, 'src', 'agent');
  const stale = readdirSync(src).filter((f) => f.endsWith('.ts') && statSync(join(src, f)).mtimeMs > built);
  if (stale.length > 0) throw new Error(`${bundle.agent} is older than src/agent/${stale[0] ?? ''}: run \`npm run build\` first (\`npm run bench\` does)`);
  return bundle;
}

/**
 * The child's program. Bench tokens are `bench.<namespace>.<serviceAccount>.<pod>`; the
 * reviewer reads the identity from them, and the signer asks the parent over IPC.
 */
function program(bundle: ReturnType<typeof agentBundle>): string {
  const url = (path: string): string => JSON.stringify(pathToFileURL(path).href);
  // The bundle's MeshidError lives in a hashed chunk of its own; the bench's refusals need no
  // particular class (any refusal fails the benchmark), so they are plain errors with a code.
  return `
import ${url(bundle.entry)};
import ${url(bundle.kube)};
import { readFileSync } from 'node:fs';
import { SdsServer, StaticTrustBundle } from ${url(bundle.agent)};
import { createLogger } from ${url(bundle.logging)};

class MeshidError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const reviewer = {
  async review(token) {
    const [prefix, namespace, serviceAccount] = token.split('.');
    if (prefix !== 'bench' || !namespace || !serviceAccount) throw new MeshidError('ERR_UNAUTHENTICATED', 'not a bench token');
    return { namespace, serviceAccount };
  },
};
let calls = 0;
const signing = new Map();
const signer = {
  sign(csr, token, ttlSeconds) {
    const cid = ++calls;
    process.send({ call: 'sign', cid, csr, token, ttlSeconds });
    return new Promise((resolve, reject) => signing.set(cid, { resolve, reject }));
  },
};
const now = () => performance.timeOrigin + performance.now();
// RssFile is the mapped node binary and libraries, shared with every node process of the
// host; RssAnon is what this agent itself holds.
const kernel = (field) => Number(/\\s(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8').split('\\n').find((l) => l.startsWith(field + ':')) ?? '')?.[1] ?? NaN) * 1024;
const memory = () => {
  globalThis.gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rssAnon: kernel('RssAnon'), rssFile: kernel('RssFile') };
};
let server;
let bundle;
const handlers = {
  async start(m) {
    bundle = new StaticTrustBundle(m.roots);
    server = new SdsServer({ socketPath: m.socketPath, reviewer, signer, trustBundle: bundle, log: createLogger('bench-agent', 'warn') });
    await server.start();
    return { memory: memory() };
  },
  async measure() {
    return { memory: memory(), stats: server.stats() };
  },
  // A burst (here: thousands of streams opened) grows V8's young generation; once allocation
  // slows, V8's memory reducer gives it back (its first look is 8 s after a full GC). This
  // waits, unforced, until the RSS has made no new low for 12 s (at most m.maxMs): the
  // agent's steady state.
  async settle(m) {
    const started = now();
    let low = process.memoryUsage().rss;
    let lowAt = now();
    while (now() - lowAt < 12_000 && now() - started < m.maxMs) {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const rss = process.memoryUsage().rss;
      if (rss < low - 1024 * 1024) lowAt = now();
      low = Math.min(low, rss);
    }
    return { memory: memory(), seconds: (now() - started) / 1000 };
  },
  async rotate(m) {
    const cpu = process.cpuUsage();
    const t0 = now();
    bundle.set(m.roots);
    const rootsQueued = now();
    await server.rotateCertificates();
    const used = process.cpuUsage(cpu);
    return { t0, rootsQueued, renewed: now(), cpuSeconds: (used.user + used.system) / 1e6, stats: server.stats() };
  },
  async stop() {
    await server?.stop();
    return {};
  },
};
process.on('message', (m) => {
  if (m.cid !== undefined) {
    const waiter = signing.get(m.cid);
    signing.delete(m.cid);
    if (m.chain) waiter?.resolve(m.chain);
    else waiter?.reject(new MeshidError(m.code ?? 'ERR_CA_UNAVAILABLE', m.error));
    return;
  }
  if (m.type === 'exit') process.exit(0);
  const handler = handlers[m.type];
  if (!handler) return void process.send({ id: m.id, type: 'error', message: 'unknown request ' + m.type });
  handler(m).then(
    (reply) => process.send({ ...reply, id: m.id, type: 'reply' }),
    (error) => process.send({ id: m.id, type: 'error', message: String(error?.stack ?? error) }),
  );
});
`;
}

export interface BenchAgent {
  child: Child;
  /** The first root, served from the start, and the one a rotation adds. */
  roots: [string, string];
  /** CSRs the parent signed. */
  signed(): number;
}

/** Starts the CA in this process and the agent child on it; `dir` holds the child's program. */
export async function forkAgent(dir: string): Promise<BenchAgent> {
  const bundle = agentBundle(distDir());
  const root = await createSelfSignedRoot({ keyType: 'ec' });
  const next = await createSelfSignedRoot({ keyType: 'ec', organization: 'cluster.local rotated' });
  const ca = new LeafSigner(loadCaMaterial({ certPem: root.certPem, keyPem: root.keyPem }));
  let signed = 0;
  const sign = async (message: CallEnvelope): Promise<Record<string, unknown>> => {
    // The real CA takes the identity from a TokenReview; the bench token names it.
    const [, namespace, serviceAccount] = String(message['token']).split('.');
    const uri = `spiffe://cluster.local/ns/${namespace}/sa/${serviceAccount}`;
    const { publicKey } = checkCsr(String(message['csr']), uri);
    signed += 1;
    return { chain: ca.sign({ publicKey, uri, ttlSeconds: Number(message['ttlSeconds']) }) };
  };
  const file = join(dir, 'agent-child.mjs');
  await writeFile(file, program(bundle));
  const child = forkChild(file, { execArgv: [], onCall: sign });
  return { child, roots: [root.certPem, next.certPem], signed: () => signed };
}
