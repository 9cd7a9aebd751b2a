/** One line of the benchmark table: a measurement beside what it is compared with. */
export interface Row {
  benchmark: string;
  measurement: string;
  value: number;
  unit: string;
  /** The side-by-side comparison measured in the same run, when there is one. */
  baseline?: { label: string; value: number };
  /** e.g. "< 10 s"; `met` says whether this run met it. */
  goal?: { text: string; met: boolean };
}

export interface BenchOptions {
  /** Skip the slowest measurements (e.g. a build with an empty Go cache). */
  quick: boolean;
  /** How long the soak runs (`--soak-duration`; 5 min, or 30 s with --quick). */
  soakDurationMs: number;
}

export interface Benchmark {
  name: string;
  run(options: BenchOptions): Promise<Row[]>;
}
