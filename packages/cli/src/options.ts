import { InvalidArgumentError, Option } from 'commander';

/** `--http-port` reads `HEARSAY_HTTP_PORT` when the flag is not given (docs/cli.md). */
export function envVarOf(longFlag: string): string {
  return `HEARSAY_${longFlag.replace(/^--/, '').replace(/-/g, '_').toUpperCase()}`;
}

/** An option that falls back to its `HEARSAY_<FLAG>` environment variable. */
export function envOption(flags: string, description: string): Option {
  const option = new Option(flags, description);
  if (option.long === undefined) throw new Error(`option ${flags} needs a long flag to name its environment variable`);
  return option.env(envVarOf(option.long));
}

/** Environment values that turn a boolean flag off rather than on. */
const FALSE_WORDS = new Set(['', '0', 'false', 'no', 'off']);

export function isFalseWord(value: string): boolean {
  return FALSE_WORDS.has(value.trim().toLowerCase());
}

export function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new InvalidArgumentError('must be a port number, 0 to 65535 (0 picks a free port)');
  }
  return port;
}

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError('must be a whole number of at least 1');
  }
  return n;
}

export function parseNonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError('must be a whole number of at least 0');
  }
  return n;
}

/** `host:port,host:port` into its entries; each must name a port. */
export function parseSeeds(value: string): string[] {
  const seeds = value
    .split(',')
    .map((seed) => seed.trim())
    .filter((seed) => seed !== '');
  for (const seed of seeds) {
    const match = /^(.+):(\d+)$/.exec(seed);
    const port = Number(match?.[2]);
    if (match === null || port < 1 || port > 65_535) {
      throw new InvalidArgumentError(`seed "${seed}" is not host:port`);
    }
  }
  return seeds;
}

export function parseNodeUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('must be a URL such as http://127.0.0.1:7000');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError('must be an http:// or https:// URL');
  }
  return value.replace(/\/+$/, '');
}

