import { Worker } from 'node:worker_threads';
import { MeshidError, type ErrorCode } from '../core/index.ts';
import type { CaMaterial } from './authority.ts';
import type { CaView } from './kube-ca.ts';
import type { IssuedLeaf } from './signer.ts';
import type { CertificateSigning } from './signing.ts';

/** What the pool sends a signing thread. */
export type SigningRequest = { kind: 'material'; material: CaMaterial } | { kind: 'issue'; id: number; csr: string; uri: string; ttlSeconds: number };
/** What a signing thread answers: the leaf, or the refusal (no code: a fault). */
export type SigningReply = { id: number; leaf: IssuedLeaf } | { id: number; error: { code?: ErrorCode; message: string; hint?: string } };

interface Pending {
  resolve(leaf: IssuedLeaf): void;
  reject(error: Error): void;
}

interface Thread {
  worker: Worker;
  /** The material this thread signs with; a request with another sends it first. */
  material: CaMaterial | undefined;
  pending: Map<number, Pending>;
}

/**
 * CSR checks and signing on worker threads, so a CA with cores to spare signs on all of them
 * while its event loop keeps gRPC, TLS and the token reviews. Each request goes to the thread
 * with the fewest in flight. The current CA material is read for every request and sent to a
 * thread ahead of the first request that needs it, so a rotation reaches the threads in order
 * with the requests and no request is signed with a key it was not meant for.
 */
export class SigningPool implements CertificateSigning {
  readonly #threads: Thread[];
  #nextId = 0;
  #closed = false;

  constructor(
    private readonly ca: Pick<CaView, 'material'>,
    threads: number,
  ) {
    if (!Number.isInteger(threads) || threads < 1) throw new MeshidError('ERR_INVALID_ARGUMENT', `a signing pool needs at least one thread, not ${threads}`);
    this.#threads = Array.from({ length: threads }, () => this.#spawn());
  }

  async issue(csrPem: string, uri: string, ttlSeconds: number): Promise<IssuedLeaf> {
    if (this.#closed) throw new MeshidError('ERR_CA_UNAVAILABLE', 'the CA is stopping');
    const material = this.ca.material();
    const thread = this.#threads.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    if (thread.material !== material) {
      thread.worker.postMessage({ kind: 'material', material } satisfies SigningRequest);
      thread.material = material;
    }
    const id = ++this.#nextId;
    return new Promise<IssuedLeaf>((resolve, reject) => {
      // A thread with work keeps the process up, as the event loop's own work would; idle, it does not.
      if (thread.pending.size === 0) thread.worker.ref();
      thread.pending.set(id, { resolve, reject });
      thread.worker.postMessage({ kind: 'issue', id, csr: csrPem, uri, ttlSeconds } satisfies SigningRequest);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#threads.map((t) => t.worker.terminate()));
  }

  #spawn(): Thread {
    // Built, the thread runs the .js beside this file. From source (tests run through tsx) it
    // registers tsx first: Node 20 does not apply `--import` hooks to a worker's entry module.
    const worker = import.meta.url.endsWith('.ts')
      ? new Worker(`import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(new URL('./signing-worker.ts', import.meta.url).href)}); });`, { eval: true })
      : new Worker(new URL('./signing-worker.js', import.meta.url));
    const thread: Thread = { worker, material: undefined, pending: new Map() };
    worker.on('message', (reply: SigningReply) => {
      const pending = thread.pending.get(reply.id);
      if (!pending) return;
      thread.pending.delete(reply.id);
      if (thread.pending.size === 0) worker.unref();
      if ('leaf' in reply) pending.resolve(reply.leaf);
      else if (reply.error.code) pending.reject(new MeshidError(reply.error.code, reply.error.message, reply.error.hint ? { hint: reply.error.hint } : {}));
      else pending.reject(new Error(`signing thread: ${reply.error.message}`));
    });
    // A thread that dies fails what it held, and a fresh one takes its place.
    worker.on('error', (error) => this.#replace(thread, error));
    worker.on('exit', (code) => this.#replace(thread, new Error(`signing thread exited with code ${code}`)));
    worker.unref();
    return thread;
  }

  #replace(thread: Thread, cause: Error): void {
    const index = this.#threads.indexOf(thread);
    if (index === -1) return;
    for (const pending of thread.pending.values()) pending.reject(new MeshidError('ERR_CA_UNAVAILABLE', 'a signing thread stopped; try again', { cause }));
    thread.pending.clear();
    if (this.#closed) return;
    this.#threads[index] = this.#spawn();
  }
}
