/**
 * `GET /v1/kv`: a listing merged from every reachable member's scan
 * (tombstones included, per key the record that wins by last-write-wins).
 * Answered only when every partition had at least R of its replicas among
 * the members that answered (R of its old set and R of its new set while it
 * moves). The cursor is storage's codec.
 */
import { insufficientReplicas, ServiceError, type ListItem, type ListOptions, type ListPage } from '@hearsay/service';
import { decodeCursor, encodeCursor, newer, type StoredRecord } from '@hearsay/storage';
import type { CoordinatorContext } from './coordinator-context.ts';
import type { ScanRequest, ScanResponse } from './peer.ts';
import { requiredReplicas, settleWithin } from './quorum.ts';
import { scanLocal } from './scan.ts';

export async function listMerged(ctx: CoordinatorContext, options: ListOptions): Promise<ListPage> {
  const after = options.cursor === undefined ? undefined : cursorKey(options.cursor);
  const placement = ctx.placement;
  const targets = ctx.reachableMembers().map((m) => m.id);
  const request: ScanRequest = { prefix: options.prefix, limit: options.limit, ...(after === undefined ? {} : { after }) };
  const outcome = await settleWithin(
    targets.map((id) => scanOn(ctx, id, request)),
    ctx.clock,
    ctx.config.requestTimeoutMs,
  );
  const answered = new Set(outcome.answers.map((a) => targets[a.index]!));
  for (let p = 0; p < placement.partitionCount; p++) {
    const sets = placement.sets(p);
    for (const set of sets.moving ? [sets.old, sets.next] : [sets.old]) {
      const need = requiredReplicas(options.consistency, set.length);
      const have = set.filter((m) => answered.has(m)).length;
      if (have < need) throw insufficientReplicas(have, need, set.length);
    }
  }
  // Keys past the first truncated page may be missing from that member: stop there.
  let boundary: string | undefined;
  const best = new Map<string, StoredRecord>();
  for (const { value } of outcome.answers) {
    for (const r of value.records) {
      best.set(r.key, newer(best.get(r.key), r));
    }
    const last = value.records.at(-1);
    if (value.more && last !== undefined && (boundary === undefined || utf8Less(last.key, boundary))) boundary = last.key;
  }
  const keys = [...best.keys()].filter((k) => boundary === undefined || !utf8Less(boundary, k)).sort(utf8Compare);
  const items: ListItem[] = [];
  let stoppedAt = -1;
  for (let i = 0; i < keys.length; i++) {
    const r = best.get(keys[i]!)!;
    if (!ctx.isLive(r)) continue;
    items.push({ key: r.key, version: r.version, size: r.value.byteLength });
    if (items.length === options.limit) {
      stoppedAt = i;
      break;
    }
  }
  let next: string | null;
  if (stoppedAt >= 0) {
    next = stoppedAt < keys.length - 1 || boundary !== undefined ? encodeCursor(items.at(-1)!.key) : null;
  } else {
    next = boundary === undefined ? null : encodeCursor(boundary);
  }
  return { items, next };
}

async function scanOn(ctx: CoordinatorContext, id: string, request: ScanRequest): Promise<ScanResponse> {
  if (id === ctx.selfId) return scanLocal(ctx.store, request);
  return ctx.peer(id).scan(request);
}

const encoder = new TextEncoder();
/** Keys in UTF-8 byte order, the order stores scan in. */
export function utf8Compare(a: string, b: string): number {
  return Buffer.compare(encoder.encode(a), encoder.encode(b));
}
function utf8Less(a: string, b: string): boolean {
  return utf8Compare(a, b) < 0;
}

/** The key a listing cursor resumes after (storage's cursor codec), or INVALID_CURSOR. */
function cursorKey(cursor: string): string {
  try {
    return decodeCursor(cursor);
  } catch {
    throw new ServiceError('INVALID_CURSOR', 'the cursor is not one this node made');
  }
}
