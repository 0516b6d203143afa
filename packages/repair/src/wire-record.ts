import { validateRecord } from '@hearsay/storage';
import type { StoredRecord } from '@hearsay/storage';
import { RepairError } from './errors.ts';
import type { RecordBlock, WireRecord } from './messages.ts';

/**
 * Records as positional tuples, with the node ids and the largest ms sent
 * once per message: a record costs its key and value plus ~8 bytes.
 */
export function encodeRecords(records: readonly StoredRecord[]): RecordBlock {
  let base = 0;
  for (const r of records) if (r.version.ms > base) base = r.version.ms;
  const nodes: string[] = [];
  const nodeIndex = new Map<string, number>();
  const out = records.map((r): WireRecord => {
    let node = nodeIndex.get(r.version.node);
    if (node === undefined) {
      node = nodes.length;
      nodeIndex.set(r.version.node, node);
      nodes.push(r.version.node);
    }
    const tuple: unknown[] = [r.key, r.value, base - r.version.ms, r.version.counter, node, r.tombstone];
    if (r.contentType !== undefined || r.expiresAtMs !== undefined) tuple.push(r.contentType ?? null);
    if (r.expiresAtMs !== undefined) tuple.push(r.expiresAtMs);
    return tuple;
  });
  return { nodes, base, records: out };
}

/** Checks every record of a block from the peer (through storage's validateRecord). Throws INVALID_RECORD. */
export function decodeRecords(block: RecordBlock): StoredRecord[] {
  return block.records.map((w) => {
    const [key, value, msDelta, counter, nodeIndex, tombstone, contentType, expiresAtMs] = w;
    const node = typeof nodeIndex === 'number' ? block.nodes[nodeIndex] : undefined;
    const ms = typeof msDelta === 'number' ? block.base - msDelta : undefined;
    const candidate: Record<string, unknown> = { key, value, version: { ms, counter, node }, tombstone };
    if (contentType !== undefined && contentType !== null) candidate['contentType'] = contentType;
    if (expiresAtMs !== undefined && expiresAtMs !== null) candidate['expiresAtMs'] = expiresAtMs;
    try {
      return validateRecord(candidate);
    } catch (e) {
      throw new RepairError('INVALID_RECORD', `invalid record from peer: ${(e as Error).message}`, { cause: e });
    }
  });
}

/** Upper estimate of a record's encoded size, for chunking without encoding twice. */
export function recordWireBytes(r: StoredRecord): number {
  return r.key.length * 3 + r.value.length + (r.contentType?.length ?? 0) + 24;
}
