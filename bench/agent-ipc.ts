// The agent benchmark runs the agent and its clients in two child processes, so that the
// agent's RSS is its own and each side has a core. This is the request/reply wiring: the
// parent asks a child (`request`), and a child may ask the parent (`onCall`, e.g. to sign).
import { fork, type ChildProcess } from 'node:child_process';

export interface Envelope {
  id: number;
  type: string;
  [key: string]: unknown;
}

/** A request a child makes of the parent: `call` names it, `cid` pairs the answer. */
export interface CallEnvelope {
  call: string;
  cid: number;
  [key: string]: unknown;
}

/** Milliseconds on a clock that two processes of one machine share, sub-millisecond. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

export interface Child {
  request<T>(type: string, body?: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  stop(): Promise<void>;
}

export interface ForkOptions {
  /** Node flags; default runs TypeScript through tsx. */
  execArgv?: string[];
  /** Answers the child's own requests. */
  onCall?: (message: CallEnvelope) => Promise<Record<string, unknown>>;
}

/** Forks a bench helper; every request is bounded in time. */
export function forkChild(file: string, options: ForkOptions = {}): Child {
  // MESHID_BENCH_PROFILE=<dir> writes a CPU profile of each child there, to see where time goes.
  const profile = process.env['MESHID_BENCH_PROFILE'];
  const execArgv = [...(options.execArgv ?? ['--import', 'tsx']), '--expose-gc', ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : [])];
  const child: ChildProcess = fork(file, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let next = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  child.on('message', (message: Envelope | CallEnvelope) => {
    if (typeof message['call'] === 'string') {
      const call = message as CallEnvelope;
      const onCall = options.onCall ?? (() => Promise.reject(new Error(`no handler for ${call.call}`)));
      onCall(call).then(
        (answer) => child.send({ ...answer, cid: call.cid }),
        (error: unknown) => child.send({ cid: call.cid, error: error instanceof Error ? error.message : String(error), code: (error as { code?: string }).code }),
      );
      return;
    }
    const reply = message as Envelope;
    const waiter = pending.get(reply.id);
    if (!waiter) return;
    pending.delete(reply.id);
    if (reply.type === 'error') waiter.reject(new Error(String(reply['message'])));
    else waiter.resolve(reply);
  });
  child.on('exit', (code) => {
    for (const w of pending.values()) w.reject(new Error(`${file} exited with ${code}`));
    pending.clear();
  });
  return {
    request<T>(type: string, body: Record<string, unknown> = {}, timeoutMs = 120_000): Promise<T> {
      const id = ++next;
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${file}: no answer to ${type} within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, {
          resolve: (v) => {
            clearTimeout(timer);
            resolve(v as T);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
        child.send({ id, type, ...body });
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.send({ id: 0, type: 'exit' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The child side: answers each request with the handler's result (or its error). */
export function serveRequests(handlers: Record<string, (message: Envelope) => Promise<Record<string, unknown>>>): void {
  process.on('message', (message: Envelope) => {
    if (message.type === 'exit') {
      process.exit(0);
    }
    const handler = handlers[message.type];
    if (!handler) {
      process.send?.({ id: message.id, type: 'error', message: `unknown request ${message.type}` });
      return;
    }
    handler(message).then(
      (reply) => process.send?.({ ...reply, id: message.id, type: 'reply' }),
      (error: unknown) => process.send?.({ id: message.id, type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
    );
  });
}
