import ora, { type Ora } from 'ora';

/**
 * Long work (peer builds, cluster boot, install, recover) reports through this interface
 * so that people see a spinner on a terminal, CI logs get one line per step, and tests
 * can stay silent.
 */
export interface Progress {
  start(text: string): void;
  update(text: string): void;
  succeed(text: string): void;
  fail(text: string): void;
}

export const silentProgress: Progress = {
  start: () => undefined,
  update: () => undefined,
  succeed: () => undefined,
  fail: () => undefined,
};

export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  // A terminal that reports no width (a pty nobody sized) makes a spinner redraw endlessly.
  if (!stream.isTTY || !stream.columns) return lineProgress(stream);
  let spinner: Ora | undefined;
  return {
    start(text) {
      spinner = ora({ text, stream }).start();
    },
    update(text) {
      if (spinner) spinner.text = text;
    },
    succeed(text) {
      spinner?.succeed(text);
      spinner = undefined;
    },
    fail(text) {
      spinner?.fail(text);
      spinner = undefined;
    },
  };
}

/** Without a terminal a spinner is noise: print the start and end of each step only. */
function lineProgress(stream: NodeJS.WritableStream): Progress {
  return {
    start: (text) => stream.write(`… ${text}\n`),
    update: () => undefined,
    succeed: (text) => stream.write(`✔ ${text}\n`),
    fail: (text) => stream.write(`✖ ${text}\n`),
  };
}

/** A text bar for counted work, e.g. `[#######·······] 412/1030`. */
export function bar(done: number, total: number, width = 24): string {
  const ratio = total > 0 ? Math.min(1, done / total) : 0;
  const filled = Math.round(ratio * width);
  return `[${'#'.repeat(filled)}${'·'.repeat(width - filled)}] ${done}/${total}`;
}
