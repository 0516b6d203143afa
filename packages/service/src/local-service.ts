/**
 * The `KvService` of a single node: one `Store`, no replicas. Every
 * consistency level is met by the one replica, and there is nothing to
 * repair against.
 */
import { StorageError, compareVersions, type Store, type StoredRecord, type Version } from '@hearsay/storage';
import {
  handedOverPutOptions,
  nothingToRepair,
  ServiceError,
  type ClusterView,
  type DeleteOptions,
  type GetOptions,
  type HealthReport,
  type KvService,
  type ListOptions,
  type ListPage,
  type PutOptions,
  type RepairLine,
  type ServiceErrorCode,
} from './service.ts';

export interface LocalServiceOptions {
  /** Base URL of this node's HTTP API, reported by `cluster()`; `''` when unknown. */
  readonly httpUrl?: string;
}

/** Store error codes the service passes on under the same name; the rest become `UNAVAILABLE` or are rethrown. */
const PASSED_ON: ReadonlySet<string> = new Set<ServiceErrorCode>([
  'KEY_EMPTY',
  'KEY_TOO_LONG',
  'INVALID_KEY',
  'VALUE_TOO_LARGE',
  'INVALID_ARGUMENT',
  'INVALID_CURSOR',
  'BUSY',
]);

function translate(error: unknown): unknown {
  if (!(error instanceof StorageError)) return error;
  if (PASSED_ON.has(error.code)) return new ServiceError(error.code as ServiceErrorCode, error.message, {}, { cause: error });
  if (error.code === 'STORE_CLOSED') return new ServiceError('UNAVAILABLE', 'the store is closed', {}, { cause: error });
  if (error.code === 'CLOCK_AHEAD' || error.code === 'VERSION_AHEAD') {
    const d = error.details ?? {};
    return new ServiceError('CLOCK_SKEW', error.message, {
      ...(d.aheadMs === undefined ? {} : { offsetMs: d.aheadMs }),
      ...(d.maxOffsetMs === undefined ? {} : { maxOffsetMs: d.maxOffsetMs }),
      ...(d.untilMs === undefined ? {} : { stampsResumeAtMs: d.untilMs }),
    }, { cause: error });
  }
  return error;
}

function matches(current: StoredRecord | undefined, ifMatch: Version | '*'): boolean {
  if (current === undefined) return false;
  return ifMatch === '*' || compareVersions(current.version, ifMatch) === 0;
}

/**
 * Writes to one key run one after another, so a conditional write's check
 * and its write see no other write of that key in between. The map holds
 * only keys with a write in flight.
 */
function createKeyQueue() {
  const tails = new Map<string, Promise<unknown>>();
  return function serialize<T>(key: string, run: () => Promise<T>): Promise<T> {
    const previous = tails.get(key);
    const result = previous === undefined ? run() : previous.then(run, run);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    tails.set(key, tail);
    void tail.then(() => {
      if (tails.get(key) === tail) tails.delete(key);
    });
    return result;
  };
}

export function createLocalService(store: Store, options: LocalServiceOptions = {}): KvService {
  const serialize = createKeyQueue();
  const httpUrl = options.httpUrl ?? '';

  return {
    async get(key: string, _options: GetOptions) {
      try {
        return await store.get(key);
      } catch (error) {
        throw translate(error);
      }
    },

    put(key: string, value: Uint8Array, putOptions: PutOptions) {
      const write = () => store.put(key, value, handedOverPutOptions(putOptions.contentType));
      return serialize(key, async () => {
        try {
          const { ifMatch, ifNoneMatch } = putOptions;
          if (ifMatch !== undefined || ifNoneMatch !== undefined) {
            const current = await store.get(key);
            if (ifNoneMatch === '*' && current !== undefined) throw new ServiceError('PRECONDITION_FAILED', 'If-None-Match: * but the key has a value');
            if (ifMatch !== undefined && !matches(current, ifMatch)) throw new ServiceError('PRECONDITION_FAILED', 'If-Match does not match the current version');
          }
          return await write();
        } catch (error) {
          throw translate(error);
        }
      });
    },

    delete(key: string, deleteOptions: DeleteOptions) {
      return serialize(key, async () => {
        try {
          const { ifMatch } = deleteOptions;
          if (ifMatch !== undefined && !matches(await store.get(key), ifMatch)) {
            throw new ServiceError('PRECONDITION_FAILED', 'If-Match does not match the current version');
          }
          return await store.delete(key);
        } catch (error) {
          throw translate(error);
        }
      });
    },

    async list(listOptions: ListOptions): Promise<ListPage> {
      try {
        const page = await store.scan({
          prefix: listOptions.prefix,
          limit: listOptions.limit,
          ...(listOptions.cursor === undefined ? {} : { cursor: listOptions.cursor }),
        });
        return {
          items: page.records.map((record) => ({ key: record.key, version: record.version, size: record.value.byteLength })),
          next: page.next,
        };
      } catch (error) {
        throw translate(error);
      }
    },

    async cluster(): Promise<ClusterView> {
      return {
        self: store.nodeId,
        members: [{ id: store.nodeId, state: 'alive', http: httpUrl, gossip: '', incarnation: 0 }],
      };
    },

    async health(): Promise<HealthReport> {
      try {
        const stats = store.stats();
        return { ok: true, node: store.nodeId, mode: 'single-node', keys: stats.keys, tombstones: stats.tombstones };
      } catch (error) {
        return { ok: false, reason: `the store cannot serve: ${error instanceof Error ? error.message : String(error)}` };
      }
    },

    repair(): AsyncIterable<RepairLine> {
      return nothingToRepair('single node: there are no other replicas to repair against');
    },

    metrics(): string {
      let stats;
      try {
        stats = store.stats();
      } catch {
        return ''; // a closed store has no figures; the HTTP metrics still answer
      }
      return [
        '# HELP hearsay_storage_keys Live (non-tombstone) records in the local store.',
        '# TYPE hearsay_storage_keys gauge',
        `hearsay_storage_keys ${stats.keys}`,
        '# HELP hearsay_storage_tombstones Tombstones in the local store.',
        '# TYPE hearsay_storage_tombstones gauge',
        `hearsay_storage_tombstones ${stats.tombstones}`,
        '',
      ].join('\n');
    },
  };
}
