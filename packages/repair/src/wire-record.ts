import { validateRecord } from '@hearsay/storage';
import type { StoredRecord } from '@hearsay/storage';
import { RepairError } from './errors.ts';
import type { WireRecord } from './messages.ts';

/** A record as a positional tuple: no field names on the wire. */
export function toWireRecord(r: StoredRecord): WireRecord {
  const out: unknown[] = [r.key, r.value, r.version.ms, r.version.counter, r.version.node, r.tombstone];
  if (r.contentType !== undefined || r.expiresAtMs !== undefined) out.push(r.contentType ?? null);
  if (r.expiresAtMs !== undefined) out.push(r.expiresAtMs);
  return out;
}

/** Checks a record tuple from the peer (through storage's validateRecord). Throws INVALID_RECORD. */
export function fromWireRecord(w: WireRecord): StoredRecord {
  const [key, value, ms, counter, node, tombstone, contentType, expiresAtMs] = w;
  const candidate: Record<string, unknown> = { key, value, version: { ms, counter, node }, tombstone };
  if (contentType !== undefined && contentType !== null) candidate['contentType'] = contentType;
  if (expiresAtMs !== undefined && expiresAtMs !== null) candidate['expiresAtMs'] = expiresAtMs;
  try {
    return validateRecord(candidate);
  } catch (e) {
    throw new RepairError('INVALID_RECORD', `invalid record from peer: ${(e as Error).message}`, { cause: e });
  }
}

/** Upper estimate of a record's encoded size, for chunking without encoding twice. */
export function recordWireBytes(r: StoredRecord): number {
  return r.key.length * 3 + r.value.length + r.version.node.length + (r.contentType?.length ?? 0) + 40;
}
