import { MemoryLevel } from 'memory-level';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type LevelLike, type Store } from '@hearsay/storage';
import { createLocalService } from './local-service.ts';
import { insufficientReplicas, isServiceError, ServiceError, SERVICE_ERROR_STATUS, type KvService } from './service.ts';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const Q = { consistency: 'quorum' } as const;

let store: Store | undefined;

async function open(): Promise<{ store: Store; service: KvService }> {
  store = await openStore({ db: new MemoryLevel() as unknown as LevelLike, nodeId: 'n1', bucketBits: 4 });
  return { store, service: createLocalService(store, { httpUrl: 'http://127.0.0.1:7000' }) };
}

async function failure(promise: Promise<unknown>): Promise<ServiceError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof ServiceError)) throw new Error(`expected a ServiceError, got ${String(error)}`);
  return error;
}

afterEach(async () => {
  await store?.close();
  store = undefined;
});

describe('createLocalService', () => {
  it('writes only over the version If-Match names, and creates only with If-None-Match: *', async () => {
    const { service } = await open();
    const first = await service.put('k', bytes('a'), { ...Q, ifNoneMatch: '*' });
    expect((await failure(service.put('k', bytes('b'), { ...Q, ifNoneMatch: '*' }))).code).toBe('PRECONDITION_FAILED');
    const second = await service.put('k', bytes('b'), { ...Q, ifMatch: first.version });
    const stale = await failure(service.put('k', bytes('c'), { ...Q, ifMatch: first.version }));
    expect([stale.code, stale.status]).toEqual(['PRECONDITION_FAILED', 412]);
    expect((await failure(service.delete('k', { ...Q, ifMatch: first.version }))).code).toBe('PRECONDITION_FAILED');
    const tombstone = await service.delete('k', { ...Q, ifMatch: second.version });
    expect(tombstone.tombstone).toBe(true);
    expect(await service.get('k', Q)).toBeUndefined();
    // `*` needs a live record: the key is deleted now.
    expect((await failure(service.put('k', bytes('d'), { ...Q, ifMatch: '*' }))).code).toBe('PRECONDITION_FAILED');
  });

  it('deletes a missing key with a tombstone (idempotent)', async () => {
    const { service } = await open();
    const tombstone = await service.delete('never-written', Q);
    expect(tombstone.tombstone).toBe(true);
    expect((await service.delete('never-written', Q)).tombstone).toBe(true);
  });

  it('of concurrent creates of one key, exactly one succeeds', async () => {
    const { service } = await open();
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => service.put('k', bytes(String(i)), { ...Q, ifNoneMatch: '*' })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as ServiceError).code).toBe('PRECONDITION_FAILED');
  });

  it('passes the store input codes on and answers a closed store with UNAVAILABLE', async () => {
    const { store: s, service } = await open();
    const tooLong = await failure(service.put('x'.repeat(2000), bytes('v'), Q));
    expect([tooLong.code, tooLong.status]).toEqual(['KEY_TOO_LONG', 400]);
    const cursor = await failure(service.list({ prefix: '', limit: 10, cursor: 'not-a-cursor', consistency: 'quorum' }));
    expect([cursor.code, cursor.status]).toEqual(['INVALID_CURSOR', 400]);
    await s.close();
    const closed = await failure(service.get('k', Q));
    expect([closed.code, closed.status]).toEqual(['UNAVAILABLE', 503]);
  });

  it('reports the node alone, and a repair with nothing to do', async () => {
    const { service } = await open();
    expect(await service.cluster()).toEqual({
      self: 'n1',
      members: [{ id: 'n1', state: 'alive', http: 'http://127.0.0.1:7000', gossip: '', incarnation: 0 }],
    });
    const lines = [];
    for await (const line of service.repair({})) lines.push(line);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ type: 'summary', inSync: true, keysSent: 0, keysReceived: 0 });
  });
});

describe('service errors', () => {
  it('recognise a ServiceError from another copy of the package by name and known code', () => {
    const foreign = Object.assign(new Error('x'), { name: 'ServiceError', code: 'TIMEOUT' });
    expect(isServiceError(foreign)).toBe(true);
    expect(isServiceError(Object.assign(new Error('x'), { name: 'ServiceError', code: 'NO_SUCH_CODE' }))).toBe(false);
    expect(isServiceError(new Error('plain'))).toBe(false);
    expect(isServiceError({ name: 'ServiceError', code: 'TIMEOUT' })).toBe(false);
  });

  it('give each code its status', () => {
    for (const [code, status] of Object.entries(SERVICE_ERROR_STATUS)) {
      expect(new ServiceError(code as keyof typeof SERVICE_ERROR_STATUS, 'm').status).toBe(status);
    }
  });

  it('say how many replicas acknowledged', () => {
    const e = insufficientReplicas(1, 2, 3);
    expect([e.code, e.status, e.message, e.details]).toEqual(['INSUFFICIENT_REPLICAS', 503, '2 of 3 replicas required, 1 acknowledged', { acknowledged: 1, required: 2 }]);
  });
});
