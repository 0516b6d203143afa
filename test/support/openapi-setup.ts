/**
 * Vitest setup file (vitest.config.ts `setupFiles`): every response the test
 * suite gets from a Hearsay node is checked against the OpenAPI document
 * (openapi-conformance.ts) — from apps made in the test process (their
 * `fetch`, which `app.request()` and `@hono/node-server` go through) and
 * from nodes in other processes (the global `fetch`, for `/v1/*` and
 * `/metrics`). A response that does not conform fails the test that got it,
 * in its `afterEach`, naming the exchange and what is wrong.
 *
 * Raw-socket exchanges (the HTTP parser's own answers) are checked by
 * test/openapi.test.ts.
 */
import { afterAll, afterEach, expect, vi } from 'vitest';
import { conformanceProblems, type Exchange } from './openapi-conformance.ts';

type AppModule = Pick<typeof import('@hearsay/http'), 'createApp'>;

// Instrumentation, not a dependency: createApp is defined in this file of the
// http package, whether a test imports '@hearsay/http' or the file itself.
vi.mock('../../packages/http/src/app.ts', async (importOriginal) => {
  const original = await importOriginal<AppModule>();
  return {
    ...original,
    createApp(options: Parameters<AppModule['createApp']>[0]) {
      const app = original.createApp(options);
      const fetch = app.fetch;
      app.fetch = (request: Request, ...rest: unknown[]) => {
        const answer = (fetch as (request: Request, ...rest: unknown[]) => Response | Promise<Response>)(request, ...rest);
        // A synchronous answer stays synchronous (the app's getNow path is tested for it).
        return answer instanceof Promise ? answer.then((response) => observe(request.method, request.url, response)) : observe(request.method, request.url, answer);
      };
      return app;
    },
  };
});

const problems: string[] = [];
const pending = new Set<Promise<void>>();

function record(exchange: Exchange, testName: string | undefined): void {
  for (const problem of conformanceProblems(exchange)) problems.push(`${problem}${testName === undefined ? '' : ` (in "${testName}")`}`);
}

/**
 * Checks the response once its body is known. A finite body is read from a
 * clone; an NDJSON stream is checked line by line as the caller reads it (a
 * clone would keep the stream alive after the caller hangs up).
 */
function observe(method: string, url: string, response: Response): Response {
  const testName = expect.getState().currentTestName;
  const base = { method, url, status: response.status, headers: response.headers };
  if (response.body === null || method === 'HEAD') {
    record({ ...base, body: '' }, testName);
    return response;
  }
  if (response.headers.get('content-type')?.startsWith('application/x-ndjson') === true) {
    record({ ...base, body: undefined }, testName);
    const decoder = new TextDecoder();
    let partial = '';
    const check = (text: string): void => record({ ...base, body: text }, testName);
    const source = response.body.getReader();
    // Pulls from the original as the caller reads; a cancel goes straight to it (the app aborts the repair at once).
    const lines = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await source.read();
        if (done) {
          if (partial.length > 0) check(partial);
          controller.close();
          return;
        }
        partial += decoder.decode(value, { stream: true });
        const end = partial.lastIndexOf('\n');
        if (end >= 0) {
          check(partial.slice(0, end + 1));
          partial = partial.slice(end + 1);
        }
        controller.enqueue(value);
      },
      cancel(reason) {
        return source.cancel(reason);
      },
    });
    return new Response(lines, { status: response.status, statusText: response.statusText, headers: response.headers });
  }
  const read = response
    .clone()
    .text()
    .then(
      (body) => record({ ...base, body }, testName),
      () => record({ ...base, body: undefined }, testName), // the body broke off: status and headers still count
    )
    .finally(() => pending.delete(read));
  pending.add(read);
  return response;
}

const originalFetch = globalThis.fetch;
globalThis.fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
  const response = await originalFetch(input, init);
  const url = input instanceof Request ? input.url : String(input);
  const path = new URL(url).pathname;
  if (!path.startsWith('/v1/') && path !== '/metrics') return response;
  const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
  return observe(method, url, response);
};

/** Lets body reads that are under way finish, without waiting on timers. */
async function settle(): Promise<void> {
  for (let turn = 0; turn < 20 && pending.size > 0; turn++) {
    await Promise.race([Promise.allSettled([...pending]), new Promise((resolve) => setImmediate(resolve))]);
  }
}

function failIfAny(): void {
  if (problems.length === 0) return;
  const found = problems.splice(0);
  throw new Error(`responses that do not conform to /v1/openapi.json:\n  ${found.slice(0, 20).join('\n  ')}${found.length > 20 ? `\n  … and ${found.length - 20} more` : ''}`);
}

afterEach(async () => {
  await settle();
  failIfAny();
});

afterAll(async () => {
  await settle();
  failIfAny();
});
