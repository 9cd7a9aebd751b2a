import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured logs go to stderr so that stdout stays clean for `-o json|yaml` output.
 * MESHID_LOG_LEVEL overrides the level, as the server's config will.
 */
export function createLogger(name: string, level = process.env['MESHID_LOG_LEVEL'] ?? 'info'): Logger {
  return pino({ name, level }, pino.destination({ fd: 2, sync: true }));
}
