/**
 * `@hearsay/client` with a token against the real app with an auth file
 * (`app.request`, no sockets): what each token may do, and the refusals as
 * `HearsayError`s with the server's codes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HearsayClient, type FetchLike } from '@hearsay/client';
import { createApp, createToken, parseAuthFile } from '@hearsay/http';
import { createLocalService } from '@hearsay/service';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store } from '@hearsay/storage';
import { caught } from './support/caught.ts';

const admin = createToken({ scopes: ['admin'], id: 'ops' });
const reader = createToken({ scopes: ['read'], id: 'reader' });
const usersApp = createToken({ scopes: ['read', 'write'], prefixes: ['users/'], id: 'users-app' });

let dir: string;
let store: Store;
let fetch: FetchLike;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearsay-client-tokens-'));
  store = await openStore({ location: dir, nodeId: 'tokens-test' });
  const app = createApp({
    service: createLocalService(store, { httpUrl: 'http://node.test' }),
    auth: parseAuthFile([admin, reader, usersApp].map((t) => t.line).join('\n')),
  });
  fetch = async (input, init) => app.request(input, init);
});

afterAll(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

const clientWith = (token?: string): HearsayClient => new HearsayClient({ baseUrl: 'http://node.test', fetch, ...(token === undefined ? {} : { token }) });


describe('HearsayClient with a token', () => {
  it('without a token: health only; the rest is UNAUTHENTICATED (401)', async () => {
    const anonymous = clientWith();
    expect((await anonymous.health()).ok).toBe(true);
    for (const call of [anonymous.get('k'), anonymous.put('k', 'v'), anonymous.list(), anonymous.cluster(), anonymous.metrics()]) {
      expect(await caught(call)).toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
    }
    const repair = async (): Promise<void> => {
      for await (const _line of anonymous.repair());
    };
    expect(await caught(repair())).toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
  });

  it('admin does everything; read reads; a prefix token stays in its prefix', async () => {
    const ops = clientWith(admin.token);
    await ops.put('users/1', 'ada');
    await ops.put('orders/1', 'book');
    let summary = false;
    for await (const line of ops.repair()) summary ||= line.type === 'summary';
    expect(summary).toBe(true);
    expect(await ops.metrics()).toContain('hearsay_http_requests_total');

    const read = clientWith(reader.token);
    expect((await read.get('orders/1'))?.text()).toBe('book');
    expect((await read.cluster()).self).toBe('tokens-test');
    expect(await caught(read.put('orders/1', 'x'))).toMatchObject({ code: 'FORBIDDEN', status: 403 });
    expect(await caught(read.delete('orders/1'))).toMatchObject({ code: 'FORBIDDEN', status: 403 });
    expect(await caught(read.metrics())).toMatchObject({ code: 'FORBIDDEN', status: 403 });

    const users = clientWith(usersApp.token);
    await users.put('users/2', 'grace');
    expect((await users.get('users/2'))?.text()).toBe('grace');
    const keys: string[] = [];
    for await (const item of users.listAll({ prefix: 'users/' })) keys.push(item.key);
    expect(keys).toEqual(['users/1', 'users/2']);
    expect(await caught(users.get('orders/1'))).toMatchObject({ code: 'FORBIDDEN' });
    expect(await caught(users.get('orders/none'))).toMatchObject({ code: 'FORBIDDEN' });
    expect(await caught(users.list())).toMatchObject({ code: 'FORBIDDEN' });
    expect(await caught(users.head('orders/1'))).toMatchObject({ status: 403 });
  });
});
