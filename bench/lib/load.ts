/**
 * HTTP load against a Hearsay node's key-value API for the bench scripts:
 * preload the keys, then PUT or GET keys drawn from them with wrk (when
 * installed) or autocannon, and report a Measurement.
 */
import { execFileSync, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import autocannon from 'autocannon';
import { median } from './stats.ts';

export type Op = 'GET' | 'PUT';
export type Tool = 'wrk' | 'autocannon';

export interface LoadOptions {
  readonly connections: number;
  /** Sent with every request, e.g. `{ authorization: 'Bearer ...' }`. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Keys `bench/0` … `bench/<keyCount - 1>`. */
  readonly keyCount: number;
  readonly valueBytes: number;
}

export interface RequestOptions extends LoadOptions {
  /** Appended to every request's path, e.g. `?consistency=quorum`; '' for none. */
  readonly query: string;
}

export interface Measurement {
  readonly requestsPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Connection errors, timeouts and non-2xx answers. */
  readonly errors: number;
}

export function hasWrk(): boolean {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (error) {
    // wrk --version exits 1 after printing its version.
    return (error as { status?: number }).status === 1;
  }
}

export const keyPath = (i: number): string => `/v1/kv/bench/${i}`;

/**
 * PUTs every key once, over keep-alive connections (node:http(s): cheaper per
 * request than fetch). An https:// server's certificate is not checked: the
 * benches make their own.
 */
export async function preload(url: string, load: LoadOptions): Promise<void> {
  const value = Buffer.alloc(load.valueBytes, 0x62);
  const secure = url.startsWith('https:');
  const agent = secure ? new HttpsAgent({ keepAlive: true, maxSockets: load.connections, rejectUnauthorized: false }) : new Agent({ keepAlive: true, maxSockets: load.connections });
  const send = secure ? httpsRequest : httpRequest;
  const put = (i: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const request = send(url + keyPath(i), {
        method: 'PUT',
        agent,
        headers: { ...load.headers, 'content-type': 'application/octet-stream', 'content-length': value.length },
      });
      request.on('response', (response) => {
        response.resume();
        response.on('end', () => (response.statusCode === 204 ? resolve() : reject(new Error(`preload PUT ${i}: ${response.statusCode}`))));
      });
      request.on('error', reject);
      request.end(value);
    });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < load.keyCount) await put(next++);
  };
  try {
    await Promise.all(Array.from({ length: load.connections }, worker));
  } finally {
    agent.destroy();
  }
}

/** A wrk Lua script that sends `op` on random keys and prints one JSON result line. */
export function wrkScript(op: Op, load: RequestOptions): string {
  const body = 'v'.repeat(load.valueBytes);
  const query = load.query === '' ? '' : ` .. "${load.query}"`;
  const path = `"/v1/kv/bench/" .. math.random(0, ${load.keyCount - 1})${query}`;
  const extra = Object.entries(load.headers ?? {}).map(([name, value]) => `["${name}"] = "${value}"`);
  const request =
    op === 'GET'
      ? extra.length === 0
        ? `return wrk.format("GET", ${path})`
        : `return wrk.format("GET", ${path}, { ${extra.join(', ')} })`
      : `return wrk.format("PUT", ${path}, { ${['["Content-Type"] = "application/octet-stream"', ...extra].join(', ')} }, "${body}")`;
  return `
math.randomseed(42)
request = function()
  ${request}
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"durationUs":%d,"p50Us":%d,"p99Us":%d,"errors":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status))
end
`;
}

/** Runs wrk for `seconds` with its script written to `scriptPath`. */
export async function runWrk(url: string, op: Op, seconds: number, scriptPath: string, load: RequestOptions): Promise<Measurement> {
  await writeFile(scriptPath, wrkScript(op, load));
  // One wrk thread: the servers under test need the other core.
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn('wrk', ['-t1', `-c${load.connections}`, `-d${seconds}s`, '-s', scriptPath, url], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`wrk exited with ${code}: ${stdout}`))));
  });
  const line = output.split('\n').find((text) => text.startsWith('{"requests"'));
  if (line === undefined) throw new Error(`no result line from wrk:\n${output}`);
  const result = JSON.parse(line) as { requests: number; durationUs: number; p50Us: number; p99Us: number; errors: number };
  return { requestsPerS: result.requests / (result.durationUs / 1e6), p50Ms: result.p50Us / 1000, p99Ms: result.p99Us / 1000, errors: result.errors };
}

/** Runs autocannon in this process for `seconds`. */
export async function runAutocannon(url: string, op: Op, seconds: number, load: RequestOptions): Promise<Measurement> {
  const body = Buffer.alloc(load.valueBytes, 0x76);
  let i = 0;
  const result = await autocannon({
    url,
    connections: load.connections,
    ...(load.headers === undefined ? {} : { headers: { ...load.headers } }),
    duration: seconds,
    requests: [
      {
        setupRequest: (request) => {
          // A cheap spread over the keys; autocannon calls this for every request.
          i = (i + 7919) % load.keyCount;
          const path = keyPath(i) + load.query;
          return op === 'GET'
            ? { ...request, method: 'GET', path }
            : { ...request, method: 'PUT', path, body, headers: { 'content-type': 'application/octet-stream' } };
        },
      },
    ],
  });
  return { requestsPerS: result.requests.average, p50Ms: result.latency.p50, p99Ms: result.latency.p99, errors: result.errors + result.timeouts + result.non2xx };
}

/** One run of `op` against `url` for `seconds` with `tool`; wrk's script goes to `scriptPath`. */
export function runLoad(tool: Tool, url: string, op: Op, seconds: number, scriptPath: string, load: RequestOptions): Promise<Measurement> {
  return tool === 'wrk' ? runWrk(url, op, seconds, scriptPath, load) : runAutocannon(url, op, seconds, load);
}

/** Each figure's median over the runs; errors summed. */
export function medianOf(runs: readonly Measurement[]): Measurement {
  return {
    requestsPerS: median(runs.map((run) => run.requestsPerS)),
    p50Ms: median(runs.map((run) => run.p50Ms)),
    p99Ms: median(runs.map((run) => run.p99Ms)),
    errors: runs.reduce((sum, run) => sum + run.errors, 0),
  };
}
