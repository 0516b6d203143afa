/**
 * Thousands of malformed requests through `app.fetch` (no server): every
 * answer is below 500 with a JSON error of a documented code, and the node
 * still reads and writes correctly afterwards. Run twice: without tokens,
 * and with an auth file (most cases carry a valid token of some scope, the
 * rest none or a malformed one). Seeded; set HEARSAY_FUZZ_SEED to replay a
 * failure.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HTTP_ERROR_STATUS } from '../src/errors.ts';
import { createToken, parseAuthFile } from '../src/tokens.ts';
import { openLocalNode, type LocalNode } from './local-node.ts';
import { createRng, describeFetchCase, fetchRequest, SENTINEL_PREFIX } from './malformed.ts';

const SEED = Number(process.env['HEARSAY_FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const CASES = 2000;
/** With tokens about a third of the cases are refused (401/403), so more cases keep the routes as well covered. */
const CASES_WITH_TOKENS = 3000;

const admin = createToken({ scopes: ['admin'] });
const others = [createToken({ scopes: ['read', 'write'] }), createToken({ scopes: ['read'], prefixes: ['a', '%'] }), createToken({ scopes: ['metrics'] })];

describe.each([
  ['without tokens', undefined, CASES],
  // The admin token three times: most cases should reach the routes.
  ['with an auth file', [admin, admin, admin, ...others], CASES_WITH_TOKENS],
] as const)('%s', (_mode, tokens, cases) => {
  const auth = tokens === undefined ? {} : { auth: parseAuthFile([admin, ...others].map((t) => t.line).join('\n')) };
  const adminHeaders: Record<string, string> = tokens === undefined ? {} : { authorization: `Bearer ${admin.token}` };
  const sendable = tokens?.map((t) => t.token);
  let node: LocalNode;
  beforeAll(async () => {
    node = await openLocalNode({ limits: { maxValueBytes: 4096 }, ...auth });
  });
  afterAll(async () => {
    await node.close();
  });

  it(`answers ${cases} malformed requests with 4xx JSON and keeps serving (seed ${SEED})`, async () => {
    const rng = createRng(SEED);
    const sentinel = `${SENTINEL_PREFIX}${SEED}`;
    expect((await node.app.request(`/v1/kv/${sentinel}`, { method: 'PUT', body: 'kept', headers: adminHeaders })).status).toBe(204);
    const statuses = new Map<number, number>();
    let unsendable = 0;
    for (let i = 0; i < cases; i++) {
      const c = fetchRequest(rng, sendable);
      const where = `seed=${SEED} case=${i} ${describeFetchCase(c)}`;
      let request: Request;
      try {
        request = new Request(`http://localhost${c.path}`, { method: c.method, headers: c.headers.map(([name, value]): [string, string] => [name, value]), body: c.body });
      } catch {
        unsendable += 1; // fetch itself refuses to send it
        continue;
      }
      const response = await node.app.fetch(request);
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      expect(response.status, where).toBeLessThan(500);
      if (response.status >= 400 && request.method !== 'HEAD') {
        const text = await response.text();
        let code: unknown;
        try {
          code = (JSON.parse(text) as { error: { code: unknown } }).error.code;
        } catch {
          expect.fail(`${where}: error body is not JSON: ${text.slice(0, 200)}`);
        }
        expect(HTTP_ERROR_STATUS[code as keyof typeof HTTP_ERROR_STATUS], `${where}: ${String(code)}`).toBe(response.status);
      } else {
        await response.arrayBuffer();
      }
    }
    if (process.env["HEARSAY_FUZZ_VERBOSE"]) console.log(SEED, unsendable, [...statuses].sort());
    // The run exercised the API, not only the error paths.
    expect(statuses.get(200) ?? 0, `seed=${SEED}`).toBeGreaterThan(50);
    expect(statuses.get(204) ?? 0, `seed=${SEED}`).toBeGreaterThan(50);
    expect(statuses.get(400) ?? 0, `seed=${SEED}`).toBeGreaterThan(50);
    expect(unsendable, `seed=${SEED}`).toBeLessThan(cases / 10);

    if (tokens !== undefined) {
      expect(statuses.get(401) ?? 0, `seed=${SEED}`).toBeGreaterThan(50);
      expect(statuses.get(403) ?? 0, `seed=${SEED}`).toBeGreaterThan(5);
    }

    const kept = await node.app.request(`/v1/kv/${sentinel}`, { headers: adminHeaders });
    expect(kept.status, `seed=${SEED}`).toBe(200);
    expect(await kept.text()).toBe('kept');
    expect((await node.app.request('/v1/kv/after/fuzz', { method: 'PUT', body: 'fresh', headers: adminHeaders })).status).toBe(204);
    expect(await (await node.app.request('/v1/kv/after/fuzz', { headers: adminHeaders })).text()).toBe('fresh');
  });
});
