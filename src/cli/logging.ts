// The logger and the progress display, for the commands that run long. Commands import this
// module dynamically, so pino and ora load only when such a command runs: importing
// '../core/index.ts' dynamically would make the bundler keep all of core (and them) in the
// chunk that every command loads, since the CLI's entry imports core's errors statically.
export { createLogger, terminalProgress } from '../core/index.ts';
