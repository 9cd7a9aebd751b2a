/**
 * Where the agent's few timers come from (one per identity, never one per stream). The
 * default is Node's, unref'd so that a pending renewal never keeps a process alive; tests
 * use ManualScheduler to move time without sleeping.
 */
export interface Scheduler {
  /** Runs `callback` after `delayMs`; answers the cancel function. */
  setTimer(callback: () => void, delayMs: number): () => void;
}

// setTimeout's delay is a signed 32-bit number of milliseconds; a longer one fires at once.
const MAX_DELAY_MS = 2 ** 31 - 1;

export const timerScheduler: Scheduler = {
  setTimer(callback, delayMs) {
    let timer: NodeJS.Timeout;
    const arm = (remaining: number): void => {
      timer = setTimeout(() => (remaining > MAX_DELAY_MS ? arm(remaining - MAX_DELAY_MS) : callback()), Math.min(Math.max(0, remaining), MAX_DELAY_MS));
      timer.unref();
    };
    arm(delayMs);
    return () => clearTimeout(timer);
  },
};

interface ManualTimer {
  at: number;
  seq: number;
  callback: () => void;
}

/** Timers driven by a manual clock (e.g. core's ManualClock): `advance` fires what is due, in order. */
export class ManualScheduler implements Scheduler {
  readonly #timers = new Set<ManualTimer>();
  #seq = 0;

  constructor(private readonly clock: { now(): number; advance(ms: number): void }) {}

  setTimer(callback: () => void, delayMs: number): () => void {
    const timer: ManualTimer = { at: this.clock.now() + Math.max(0, delayMs), seq: this.#seq++, callback };
    this.#timers.add(timer);
    return () => this.#timers.delete(timer);
  }

  /** Moves the clock forward by `ms`, stopping at each due timer to run it. */
  advance(ms: number): void {
    const end = this.clock.now() + ms;
    for (;;) {
      const next = this.#next();
      if (!next || next.at > end) break;
      if (next.at > this.clock.now()) this.clock.advance(next.at - this.clock.now());
      this.#timers.delete(next);
      next.callback();
    }
    if (end > this.clock.now()) this.clock.advance(end - this.clock.now());
  }

  /** Milliseconds from now to the next timer, or undefined when none is set. */
  nextIn(): number | undefined {
    const next = this.#next();
    return next && next.at - this.clock.now();
  }

  get pending(): number {
    return this.#timers.size;
  }

  #next(): ManualTimer | undefined {
    let best: ManualTimer | undefined;
    for (const t of this.#timers) if (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    return best;
  }
}
