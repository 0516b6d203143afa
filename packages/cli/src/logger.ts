import { pino, type Logger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface LoggerOptions {
  readonly level: LevelWithSilent;
  /** Human-readable lines (for a terminal) instead of one JSON object per line. */
  readonly pretty: boolean;
}

/**
 * The node's structured log on stdout. Writes are synchronous so the last
 * lines before an exit (a fatal start error, the shutdown summary) are never
 * lost.
 */
export function createLogger(options: LoggerOptions): Logger {
  const base = { level: options.level, base: { pid: process.pid } };
  if (options.pretty) {
    return pino(base, pretty({ colorize: true, sync: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
  }
  return pino(base, pino.destination({ dest: 1, sync: true }));
}
