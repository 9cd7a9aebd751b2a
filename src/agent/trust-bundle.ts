/** The trust bundle (PEM roots), which changes during a CA rotation. */
export interface TrustBundle {
  roots(): string[];
  /** Called after every change; answers the unsubscribe function. */
  onChange(listener: () => void): () => void;
}

/**
 * A bundle that changes only when told to. The composition root feeds it from whatever
 * holds the roots (ConfigMap istio-ca-root-cert, a file, the CA's answer); tests set it.
 */
export class StaticTrustBundle implements TrustBundle {
  #roots: string[];
  readonly #listeners = new Set<() => void>();

  constructor(roots: string[] = []) {
    this.#roots = [...roots];
  }

  roots(): string[] {
    return this.#roots;
  }

  set(roots: string[]): void {
    if (roots.length === this.#roots.length && roots.every((r, i) => r === this.#roots[i])) return;
    this.#roots = [...roots];
    for (const listener of [...this.#listeners]) listener();
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
