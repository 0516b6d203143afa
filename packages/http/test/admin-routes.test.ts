/**
 * `POST /v1/admin/decommission` and `POST /v1/admin/remove/{node}`: the
 * membership operations a cluster node runs (docs/topology.md), through
 * `app.request()` over a local service given an `admin` that records what it
 * was asked and answers or fails as the test says.
 */
import { MemoryLevel } from 'memory-level';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type LevelLike, type Store } from '@hearsay/storage';
import { createApp, type HearsayApp } from '../src/app.ts';
import { createLocalService, ServiceError, type AdminRequest, type KvService } from '@hearsay/service';

let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

async function appWith(admin: ((request: AdminRequest) => Promise<Record<string, unknown>>) | undefined): Promise<HearsayApp> {
  store = await openStore({ db: new MemoryLevel() as unknown as LevelLike, nodeId: 'node-1', bucketBits: 4 });
  const local = createLocalService(store, { httpUrl: 'http://127.0.0.1:7000' });
  const service: KvService = admin === undefined ? local : Object.assign(Object.create(local) as KvService, { admin });
  return createApp({ service });
}

/** What a cluster node answers: its topology report with the change just recorded. */
const reportOf = (kind: 'decommission' | 'remove', member: string): Record<string, unknown> => ({
  epoch: 'e1',
  ring: [{ id: member, status: kind === 'remove' ? 'removing' : 'leaving', version: 2 }],
  queued: [],
  change: { kind, member, key: `${kind}:${member}:2`, waitingFor: [], done: 0, total: 3 },
  transfers: [],
});

const post = (app: HearsayApp, path: string, method = 'POST'): Promise<Response> => app.request(path, { method }) as Promise<Response>;

describe('membership operations', () => {
  it('decommission and remove reach the service and answer 202 with its answer', async () => {
    const asked: AdminRequest[] = [];
    const app = await appWith(async (request) => {
      asked.push(request);
      return reportOf(request.type, request.type === 'remove' ? request.node : 'node-1');
    });
    const decommission = await post(app, '/v1/admin/decommission');
    expect(decommission.status).toBe(202);
    expect(await decommission.json()).toEqual(reportOf('decommission', 'node-1'));
    expect((await post(app, '/v1/admin/decommission?abort=true')).status).toBe(202);
    const remove = await post(app, '/v1/admin/remove/n%3A4');
    expect(remove.status).toBe(202);
    expect(asked).toEqual([
      { type: 'decommission', abort: false },
      { type: 'decommission', abort: true },
      { type: 'remove', node: 'n:4' },
    ]);
  });

  it.each([
    { path: '/v1/admin/decommission?abort=maybe', status: 400, code: 'INVALID_PARAMETER', why: 'abort that is not true or false' },
    { path: '/v1/admin/decommission?force=1', status: 400, code: 'UNKNOWN_PARAMETER', why: 'an unknown parameter' },
    { path: '/v1/admin/remove/n4?abort=true', status: 400, code: 'UNKNOWN_PARAMETER', why: 'abort on a removal' },
    { path: `/v1/admin/remove/${'x'.repeat(129)}`, status: 400, code: 'INVALID_PARAMETER', why: 'a node id over 128 characters' },
    { path: '/v1/admin/remove/%E0%A4%A', status: 400, code: 'INVALID_PERCENT_ENCODING', why: 'a node id that is not percent-encoded UTF-8' },
  ])('refuses $why', async ({ path, status, code }) => {
    const app = await appWith(async () => ({}));
    const response = await post(app, path);
    expect(response.status).toBe(status);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe(code);
  });

  it.each([
    { error: new ServiceError('UNKNOWN_MEMBER', 'no member n9'), status: 404, path: '/v1/admin/remove/n9' },
    { error: new ServiceError('MEMBER_ALIVE', 'n4 is alive'), status: 409, path: '/v1/admin/remove/n9' },
    { error: new ServiceError('BELOW_REPLICATION_FACTOR', '2 owners would remain'), status: 409, path: '/v1/admin/decommission' },
    { error: new ServiceError('CONFLICT', 'not leaving'), status: 409, path: '/v1/admin/decommission?abort=true' },
    { error: new ServiceError('UNAVAILABLE', 'joining'), status: 503, path: '/v1/admin/remove/n9' },
  ])('answers the service refusal $error.code with $status', async ({ error, status, path }) => {
    const app = await appWith(async () => {
      throw error;
    });
    const response = await post(app, path);
    expect(response.status).toBe(status);
    expect(((await response.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: error.code, message: error.message });
  });

  it('is 404 on a node without membership operations, and POST only', async () => {
    const app = await appWith(undefined);
    expect((await post(app, '/v1/admin/decommission')).status).toBe(404);
    const withAdmin = await appWith(async () => ({}));
    const get = await post(withAdmin, '/v1/admin/decommission', 'GET');
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST, OPTIONS');
  });
});
