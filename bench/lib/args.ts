/** The command-line flags every HTTP load bench takes. */
import { parseArgs } from 'node:util';
import { hasWrk, type LoadOptions, type Tool } from './load.ts';

export interface LoadArgs extends LoadOptions {
  readonly durationS: number;
  readonly warmupS: number;
  readonly rounds: number;
  readonly tool: Tool;
}

/**
 * Parses `[--duration-s 3] [--warmup-s 1] [--rounds N] [--connections 50]
 * [--keys 10000] [--value-bytes 100] [--tool wrk|autocannon]`; the tool
 * defaults to wrk when installed, else autocannon.
 */
export function parseLoadArgs(defaults: { readonly rounds: number }): LoadArgs {
  const { values: args } = parseArgs({
    options: {
      'duration-s': { type: 'string', default: '3' },
      'warmup-s': { type: 'string', default: '1' },
      rounds: { type: 'string', default: String(defaults.rounds) },
      connections: { type: 'string', default: '50' },
      keys: { type: 'string', default: '10000' },
      'value-bytes': { type: 'string', default: '100' },
      tool: { type: 'string' },
    },
  });
  const tool = args.tool ?? (hasWrk() ? 'wrk' : 'autocannon');
  if (tool !== 'wrk' && tool !== 'autocannon') throw new Error(`--tool must be wrk or autocannon, not ${tool}`);
  return {
    durationS: Number(args['duration-s']),
    warmupS: Number(args['warmup-s']),
    rounds: Number(args.rounds),
    connections: Number(args.connections),
    keyCount: Number(args.keys),
    valueBytes: Number(args['value-bytes']),
    tool,
  };
}
