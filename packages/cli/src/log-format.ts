import type { LevelWithSilent } from 'pino';

/** The node's log levels, most severe first (pino's names). */
export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface FormatOptions {
  /** ANSI colours for the level. */
  readonly color: boolean;
  /** Lead with the local time of the entry (HH:MM:SS.mmm). */
  readonly time: boolean;
  /** Follow the message with the entry's other fields as key=value. */
  readonly fields: boolean;
}

const LEVEL_NAMES: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const LEVEL_COLORS: Readonly<Record<number, string>> = { 10: '90', 20: '36', 30: '32', 40: '33', 50: '31', 60: '41;97' };
/** Fields every line has, or that the readable form shows in its own place. */
const OMITTED_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'msg']);

/**
 * A pino JSON line as `HH:MM:SS.mmm LEVEL message key=value ...` (the
 * fields on one line, values as JSON, an error as its message and stack);
 * a line that is not a JSON object comes back as it was.
 */
export function formatLogLine(line: string, options: FormatOptions): string {
  if (!line.startsWith('{')) return line;
  let entry: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return line;
    entry = parsed as Record<string, unknown>;
  } catch {
    return line;
  }
  const parts: string[] = [];
  if (options.time && typeof entry.time === 'number') parts.push(clockTime(entry.time));
  const levelNumber = typeof entry.level === 'number' ? entry.level : undefined;
  const levelName = (levelNumber === undefined ? undefined : LEVEL_NAMES[levelNumber]) ?? String(entry.level ?? '');
  const color = levelNumber === undefined ? undefined : LEVEL_COLORS[levelNumber];
  parts.push(options.color && color !== undefined ? `\u001b[${color}m${levelName.padEnd(5)}\u001b[0m` : levelName.padEnd(5));
  if (typeof entry.msg === 'string') parts.push(entry.msg);
  for (const [key, value] of Object.entries(entry)) {
    if (!options.fields || OMITTED_FIELDS.has(key)) continue;
    parts.push(`${key}=${formatValue(value)}`);
  }
  return parts.join(' ');
}

function formatValue(value: unknown): string {
  if (typeof value === 'object' && value !== null && 'message' in value && 'stack' in value && typeof value.stack === 'string') {
    return `${JSON.stringify(value.message)}\n${value.stack}`;
  }
  return JSON.stringify(value) ?? String(value);
}

function clockTime(ms: number): string {
  const date = new Date(ms);
  const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}
