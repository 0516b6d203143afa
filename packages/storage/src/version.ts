import { StorageError } from './errors.ts';
import type { Version } from './types.ts';

/** Largest logical counter within one millisecond. */
export const COUNTER_MAX = 2 ** 31 - 1;
/** Node ids: 1 to 128 characters from this set, so a version string is URL- and ETag-safe as is. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

const VERSION_STRING_PATTERN = /^(0|[1-9][0-9]{0,15})\.(0|[1-9][0-9]{0,9})\.([A-Za-z0-9._:-]{1,128})$/;

export function isValidNodeId(node: unknown): node is string {
  return typeof node === 'string' && NODE_ID_PATTERN.test(node);
}

export function isValidVersion(v: unknown): v is Version {
  if (typeof v !== 'object' || v === null) return false;
  const { ms, counter, node } = v as Record<string, unknown>;
  return (
    Number.isSafeInteger(ms) && (ms as number) >= 0 &&
    Number.isInteger(counter) && (counter as number) >= 0 && (counter as number) <= COUNTER_MAX &&
    isValidNodeId(node)
  );
}

/**
 * Total order of versions: by `ms`, then `counter`, then node id. Node ids are
 * ASCII (see NODE_ID_PATTERN), so JS string order is their byte order.
 */
export function compareVersions(a: Version, b: Version): -1 | 0 | 1 {
  if (a.ms !== b.ms) return a.ms < b.ms ? -1 : 1;
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1;
  if (a.node === b.node) return 0;
  return a.node < b.node ? -1 : 1;
}

/**
 * Opaque, URL- and ETag-safe form of a version: `<ms>.<counter>.<node>` in
 * canonical decimal. `parseVersion(versionToString(v))` equals `v`, and every
 * string `parseVersion` accepts is canonical, so the mapping is a bijection.
 */
export function versionToString(v: Version): string {
  return `${v.ms}.${v.counter}.${v.node}`;
}

export function parseVersion(s: string): Version {
  const m = typeof s === 'string' ? VERSION_STRING_PATTERN.exec(s) : null;
  if (m === null) throw new StorageError('INVALID_VERSION', 'malformed version string');
  const ms = Number(m[1]);
  const counter = Number(m[2]);
  if (!Number.isSafeInteger(ms) || counter > COUNTER_MAX) {
    throw new StorageError('INVALID_VERSION', 'version out of range');
  }
  return { ms, counter, node: m[3] as string };
}

/** Length of `encodeVersionBytes` without the node id. */
export const VERSION_FIXED_BYTES = 12;

/**
 * Binary form used in index values and digests: ms as u64 BE, counter as
 * u32 BE, then the node id's ASCII bytes. Byte order equals version order.
 */
export function writeVersionBytes(target: Buffer, offset: number, v: Version): number {
  target.writeUInt32BE(Math.floor(v.ms / 0x1_0000_0000), offset);
  target.writeUInt32BE(v.ms >>> 0, offset + 4);
  target.writeUInt32BE(v.counter, offset + 8);
  return offset + VERSION_FIXED_BYTES + target.write(v.node, offset + VERSION_FIXED_BYTES, 'latin1');
}

export function readVersionBytes(source: Buffer, offset: number, end: number): Version {
  const ms = source.readUInt32BE(offset) * 0x1_0000_0000 + source.readUInt32BE(offset + 4);
  const counter = source.readUInt32BE(offset + 8);
  const node = source.toString('latin1', offset + VERSION_FIXED_BYTES, end);
  return { ms, counter, node };
}

/**
 * The smallest version of `node` strictly above `v`. Use it to stamp a write
 * that must win over a stored version that is ahead of the local clock (for
 * example when `apply` of a freshly stamped record returned false):
 * `max(store.now(), versionAfter(current.version, store.nodeId))`.
 */
export function versionAfter(v: Version, node: string): Version {
  if (v.counter < COUNTER_MAX) return { ms: v.ms, counter: v.counter + 1, node };
  return { ms: v.ms + 1, counter: 0, node };
}
