import type { Store } from '@hearsay/storage';
import type { ScanRequest, ScanResponse } from './peer.ts';

/** A page of this node's records (tombstones included) strictly after `request.after`. */
export async function scanLocal(store: Store, request: ScanRequest): Promise<ScanResponse> {
  const page = await store.scan({
    prefix: request.prefix,
    limit: request.limit + 1,
    includeTombstones: true,
    ...(request.after === undefined ? {} : { gte: request.after }),
  });
  const records = page.records.filter((r) => r.key !== request.after);
  const more = records.length > request.limit || page.next !== null;
  return { records: records.slice(0, request.limit), more };
}
