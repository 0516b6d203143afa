/**
 * Client tokens through the app: every scope against every route class
 * (401 without a valid token, 403 without the scope or key prefix, 2xx with
 * it), refusals that read no body and call no service, answers that do not
 * say whether a key exists, and what /v1/health and /metrics report.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.ts';
import { createToken, parseAuthFile, type Scope } from '../src/tokens.ts';
import { openLocalNode, type LocalNode } from './local-node.ts';

type Who = 'none' | 'bogus' | Scope;

const tokens = {
  read: createToken({ scopes: ['read'], id: 'reader' }),
  write: createToken({ scopes: ['write'], id: 'writer' }),
  metrics: createToken({ scopes: ['metrics'], id: 'prom' }),
  admin: createToken({ scopes: ['admin'], id: 'ops' }),
};
const usersReader = createToken({ scopes: ['read'], prefixes: ['users/'], id: 'users-reader' });
const usersWriter = createToken({ scopes: ['read', 'write'], prefixes: ['users/', 'teams/'], id: 'users-writer' });
const authFile = [...Object.values(tokens), usersReader, usersWriter].map((t) => t.line).join('\n');

let node: LocalNode;
beforeAll(async () => {
  node = await openLocalNode({ auth: parseAuthFile(authFile), security: { tls: false, internode: 'cluster-key' } });
  const admin = { authorization: `Bearer ${tokens.admin.token}` };
  for (const key of ['users/1', 'orders/1']) {
    expect((await node.app.request(`/v1/kv/${key}`, { method: 'PUT', body: 'v', headers: admin })).status).toBe(204);
  }
});
afterAll(async () => {
  await node.close();
});

function headersOf(who: Who): Record<string, string> {
  if (who === 'none') return {};
  if (who === 'bogus') return { authorization: `Bearer hs1.reader.${'x'.repeat(43)}` };
  return { authorization: `Bearer ${tokens[who].token}` };
}

function send(path: string, init: RequestInit & { headers?: Record<string, string> }, token?: string): Promise<Response> {
  const headers = { ...init.headers, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) };
  return node.app.request(path, { ...init, headers }) as Promise<Response>;
}

type RouteClass = 'open' | 'read' | 'write' | 'metrics' | 'admin';
const ROUTES: ReadonlyArray<readonly [RouteClass, string, RequestInit, number]> = [
  ['open', '/v1/health', {}, 200],
  ['open', '/v1/openapi.json', {}, 200],
  ['open', '/v1/kv/users/1', { method: 'OPTIONS' }, 204],
  ['read', '/v1/kv/users/1', {}, 200],
  ['read', '/v1/kv/users/1', { method: 'HEAD' }, 200],
  ['read', '/v1/kv/missing', {}, 404],
  ['read', '/v1/kv?prefix=users/', {}, 200],
  ['read', '/v1/cluster', {}, 200],
  ['write', '/v1/kv/scratch', { method: 'PUT', body: 'x' }, 204],
  ['write', '/v1/kv/scratch', { method: 'DELETE' }, 204],
  ['metrics', '/metrics', {}, 200],
  ['admin', '/v1/repair', { method: 'POST' }, 200],
  // A single node has no membership operations: 404 once the token is good enough.
  ['admin', '/v1/admin/decommission', { method: 'POST' }, 404],
  ['admin', '/v1/admin/remove/n1', { method: 'POST' }, 404],
];

/** What `who` gets on a route of `route` class that answers `ok` when allowed. */
function expected(who: Who, route: RouteClass, ok: number): number {
  if (route === 'open') return ok;
  if (who === 'none' || who === 'bogus') return 401;
  return who === 'admin' || who === route ? ok : 403;
}

describe('each scope on every route class', () => {
  const cases = (['none', 'bogus', 'read', 'write', 'metrics', 'admin'] as const).flatMap((who) =>
    ROUTES.map(([route, path, init, ok]) => [who, `${init.method ?? 'GET'} ${path}`, route, path, init, ok] as const),
  );
  it.each(cases)('%s: %s (%s)', async (who, _name, route, path, init, ok) => {
    const response = (await node.app.request(path, { ...init, headers: headersOf(who) })) as Response;
    const status = expected(who, route, ok);
    expect(response.status).toBe(status);
    if ((status === 401 || status === 403) && init.method !== 'HEAD') {
      const body = (await response.json()) as { error: { code: string } };
      expect(body.error.code).toBe(status === 401 ? 'UNAUTHENTICATED' : 'FORBIDDEN');
    }
    if (status === 401 || status === 403) {
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer realm="hearsay"/);
    } else {
      await response.arrayBuffer();
    }
  });
});

describe('bearer tokens', () => {
  it.each([
    ['no scheme', (t: string) => t],
    ['Basic', (t: string) => `Basic ${t}`],
    ['two tokens', (t: string) => `Bearer ${t} ${t}`],
    ['an empty token', () => 'Bearer '],
  ])('refuses %s with 401', async (_what, header) => {
    const response = await node.app.request('/v1/kv/users/1', { headers: { authorization: header(tokens.read.token) } });
    expect(response.status).toBe(401);
  });

  it('takes the scheme in any case', async () => {
    expect((await node.app.request('/v1/kv/users/1', { headers: { authorization: `bearer ${tokens.read.token}` } })).status).toBe(200);
  });
});

describe('key prefixes', () => {
  it('a prefix token reads and lists only under its prefixes', async () => {
    expect((await send('/v1/kv/users/1', {}, usersReader.token)).status).toBe(200);
    expect((await send('/v1/kv/users/none', {}, usersReader.token)).status).toBe(404);
    expect((await send('/v1/kv/orders/1', {}, usersReader.token)).status).toBe(403);
    expect((await send('/v1/kv?prefix=users/', {}, usersReader.token)).status).toBe(200);
    expect((await send('/v1/kv?prefix=users/1', {}, usersReader.token)).status).toBe(200);
    for (const path of ['/v1/kv', '/v1/kv?prefix=user', '/v1/kv?prefix=orders/']) {
      const response = await send(path, {}, usersReader.token);
      expect(response.status, path).toBe(403);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
    }
    expect((await send('/v1/kv/users/2', { method: 'PUT', body: 'x' }, usersReader.token)).status).toBe(403);
  });

  it('a prefix token writes only under its prefixes', async () => {
    expect((await send('/v1/kv/teams/a', { method: 'PUT', body: 'x' }, usersWriter.token)).status).toBe(204);
    expect((await send('/v1/kv/teams/a', { method: 'DELETE' }, usersWriter.token)).status).toBe(204);
    expect((await send('/v1/kv/orders/1', { method: 'PUT', body: 'x' }, usersWriter.token)).status).toBe(403);
    expect((await send('/v1/kv/orders/1', { method: 'DELETE' }, usersWriter.token)).status).toBe(403);
    expect((await send('/v1/kv/orders/1', {}, tokens.admin.token)).status).toBe(200);
  });

  it('a refusal is the same for a key that exists and one that does not', async () => {
    const existing = await send('/v1/kv/orders/1', {}, usersReader.token);
    const missing = await send('/v1/kv/orders/never-written', {}, usersReader.token);
    expect(existing.status).toBe(403);
    expect(missing.status).toBe(403);
    expect([...existing.headers]).toEqual([...missing.headers]);
    expect(await existing.text()).toBe(await missing.text());
    for (const token of [undefined, tokens.write.token]) {
      const a = await send('/v1/kv/orders/1', { method: 'HEAD' }, token);
      const b = await send('/v1/kv/orders/never-written', { method: 'HEAD' }, token);
      expect(a.status).toBe(token === undefined ? 401 : 403);
      expect([a.status, [...a.headers]]).toEqual([b.status, [...b.headers]]);
    }
  });
});

describe('a refused request costs nothing beyond its headers', () => {
  it('reads no byte of the body, calls no service, and asks to close the connection', async () => {
    const calls: string[] = [];
    const counted = new Proxy(node.service, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          calls.push(String(property));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const app = createApp({ service: counted, auth: parseAuthFile(authFile) });
    let pulled = 0;
    const body = (): ReadableStream<Uint8Array> =>
      // highWaterMark 0: the stream is pulled only when someone reads it.
      new ReadableStream(
        {
          pull(controller) {
            pulled += 1;
            controller.enqueue(new Uint8Array(1024));
          },
        },
        { highWaterMark: 0 },
      );
    for (const [token, status] of [[undefined, 401], ['hs1.writer.nope', 401], [tokens.read.token, 403], [usersWriter.token, 403]] as const) {
      const response = await app.request('/v1/kv/orders/big', {
        method: 'PUT',
        body: body(),
        duplex: 'half',
        headers: { 'transfer-encoding': 'chunked', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
      } as RequestInit);
      expect(response.status).toBe(status);
      expect(response.headers.get('connection')).toBe('close');
    }
    for (const [path, method] of [['/v1/kv/orders/1', 'GET'], ['/v1/kv?prefix=orders/', 'GET'], ['/v1/repair', 'POST'], ['/v1/cluster', 'GET'], ['/metrics', 'GET']]) {
      expect((await app.request(path!, { method: method!, headers: { authorization: `Bearer ${usersReader.token}x` } })).status).toBe(401);
    }
    expect((await app.request('/v1/kv/orders/1', { headers: { authorization: `Bearer ${usersReader.token}` } })).status).toBe(403);
    expect(pulled).toBe(0);
    expect(calls).toEqual([]);
    // The same app serves a permitted request through the service.
    expect((await app.request('/v1/kv/users/1', { headers: { authorization: `Bearer ${usersReader.token}` } })).status).toBe(200);
    expect(calls.length).toBeGreaterThan(0);
  });

  it('a refusal without a body keeps the connection', async () => {
    const response = await send('/v1/kv/users/1', {});
    expect(response.status).toBe(401);
    expect(response.headers.get('connection')).toBeNull();
  });
});

describe('what the node reports', () => {
  it('/v1/health says tokens are required, with no warning', async () => {
    const health = (await (await node.app.request('/v1/health')).json()) as Record<string, unknown>;
    expect(health['security']).toEqual({ clientAuth: 'tokens', tls: false, internode: 'cluster-key' });
    expect(health['warnings']).toBeUndefined();
  });

  it('/v1/health warns when there are no tokens, and when the internode API is open', async () => {
    const open = await openLocalNode({ security: { tls: false, internode: 'insecure' } });
    const health = (await (await open.app.request('/v1/health')).json()) as Record<string, unknown>;
    expect(health['security']).toEqual({ clientAuth: 'none', tls: false, internode: 'insecure' });
    expect(health['warnings']).toEqual([expect.stringContaining('no auth file'), expect.stringContaining('--insecure')]);
    // And it serves every route without a token, as before.
    expect((await open.app.request('/v1/kv/k', { method: 'PUT', body: 'v' })).status).toBe(204);
    expect((await open.app.request('/v1/repair', { method: 'POST' })).status).toBe(200);
    await open.close();
  });

  it('counts refusals by reason in /metrics', async () => {
    await send('/v1/kv/users/1', {});
    await send('/v1/repair', { method: 'POST' }, tokens.read.token);
    const text = await (await send('/metrics', {}, tokens.metrics.token)).text();
    expect(Number(/hearsay_http_auth_refusals_total\{reason="unauthenticated"\} (\d+)/.exec(text)?.[1])).toBeGreaterThan(0);
    expect(Number(/hearsay_http_auth_refusals_total\{reason="forbidden"\} (\d+)/.exec(text)?.[1])).toBeGreaterThan(0);
  });

  it('openMetrics serves /metrics without a token and nothing else', async () => {
    const open = await openLocalNode({ auth: parseAuthFile(authFile), openMetrics: true });
    expect((await open.app.request('/metrics')).status).toBe(200);
    expect((await open.app.request('/v1/cluster')).status).toBe(401);
    await open.close();
  });
});
