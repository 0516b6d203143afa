import { writeSync } from 'node:fs';
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { formatLogLine } from './log-format.ts';

export type { Logger };
export { LOG_LEVELS } from './log-format.ts';

export interface LoggerOptions {
  readonly level: LevelWithSilent;
  /** Human-readable lines (for a terminal) instead of one JSON object per line. */
  readonly pretty: boolean;
}

/**
 * The node's structured log on stdout. Writes are synchronous so the last
 * lines before an exit (a fatal start error, the shutdown summary) are never
 * lost. On a terminal each JSON line is rewritten as a readable one by
 * `formatLogLine` (no pretty-printing dependency: a node that logs JSON
 * carries none).
 */
export function createLogger(options: LoggerOptions): Logger {
  const base = { level: options.level, base: { pid: process.pid } };
  if (options.pretty) {
    return pino(base, { write: (line: string) => writeSync(1, `${formatLogLine(line.trimEnd(), { color: true, time: true, fields: true })}\n`) });
  }
  return pino(base, pino.destination({ dest: 1, sync: true }));
}
