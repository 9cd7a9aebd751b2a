/**
 * Runs `fn` on this one thread for about `seconds`, in batches of `batch`, and answers
 * operations per second. Bounded in time and in count.
 */
export function rate(fn: () => void, seconds: number, batch = 20): number {
  let n = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  while (performance.now() < deadline && n < 10_000_000) {
    for (let i = 0; i < batch; i++) fn();
    n += batch;
  }
  return n / ((performance.now() - start) / 1000);
}
