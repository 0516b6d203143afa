import { Packr } from 'msgpackr';
import { StorageError } from './errors.ts';
import { isValidVersion } from './version.ts';
import type { StoredRecord, Version } from './types.ts';

export const KEY_MAX_BYTES = 1024;
export const CONTENT_TYPE_MAX_BYTES = 256;
/**
 * Format version byte in front of every encoded record (on disk and on the
 * wire). Append-only: a new layout gets a new number, old ones stay readable.
 */
export const RECORD_FORMAT_V1 = 1;

// Plain MessagePack (no msgpackr record extension), so any MessagePack
// implementation can read our bytes.
const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

/** Validates a key and returns its UTF-8 bytes. Throws INVALID_KEY / KEY_EMPTY / KEY_TOO_LONG. */
export function encodeKey(key: unknown): Buffer {
  if (typeof key !== 'string') throw new StorageError('INVALID_KEY', 'key must be a string');
  if (key.length === 0) throw new StorageError('KEY_EMPTY', 'key must not be empty');
  if (key.length > KEY_MAX_BYTES) throw new StorageError('KEY_TOO_LONG', `key is longer than ${KEY_MAX_BYTES} bytes`);
  if (!(key as unknown as { isWellFormed(): boolean }).isWellFormed()) throw new StorageError('INVALID_KEY', 'key is not well-formed UTF-16 (lone surrogate)');
  const bytes = Buffer.from(key, 'utf8');
  if (bytes.length > KEY_MAX_BYTES) throw new StorageError('KEY_TOO_LONG', `key is longer than ${KEY_MAX_BYTES} bytes`);
  return bytes;
}

export function validateContentType(contentType: unknown): string {
  if (typeof contentType !== 'string' || contentType.length === 0 || contentType.length > CONTENT_TYPE_MAX_BYTES ||
      !/^[\x20-\x7e]+$/.test(contentType)) {
    throw new StorageError('INVALID_ARGUMENT', `contentType must be 1 to ${CONTENT_TYPE_MAX_BYTES} printable ASCII characters`);
  }
  return contentType;
}

function invalid(message: string, cause?: unknown): StorageError {
  return new StorageError('INVALID_RECORD', `invalid record: ${message}`, cause === undefined ? undefined : { cause });
}

/**
 * Checks a record received from outside (network, another process) and
 * returns a fresh record holding only the known fields, with its own copy of
 * the value as a plain Uint8Array. Throws INVALID_RECORD.
 *
 * Rules: key valid as for `put`; value a Uint8Array (empty for a tombstone);
 * version valid (ms safe integer >= 0, counter 0..2^31-1, node id matching
 * NODE_ID_PATTERN); tombstone a boolean; contentType/expiresAtMs only on
 * live records (null counts as absent).
 */
export function validateRecord(x: unknown): StoredRecord {
  return validateRecordAndKey(x).record;
}

/** `validateRecord`, also returning the key's UTF-8 bytes it checked (the store needs them, and encoding twice costs). */
export function validateRecordAndKey(x: unknown): { record: StoredRecord; keyBytes: Buffer } {
  if (typeof x !== 'object' || x === null) throw invalid('not an object');
  const r = x as Record<string, unknown>;
  let keyBytes: Buffer;
  try {
    keyBytes = encodeKey(r['key']);
  } catch (e) {
    throw invalid((e as Error).message, e);
  }
  const value = r['value'];
  if (!(value instanceof Uint8Array)) throw invalid('value must be a Uint8Array');
  if (!isValidVersion(r['version'])) throw invalid('malformed version');
  const tombstone = r['tombstone'];
  if (typeof tombstone !== 'boolean') throw invalid('tombstone must be a boolean');
  // null reads as absent: JSON and some MessagePack encoders turn a missing field into null.
  const contentType = r['contentType'] ?? undefined;
  const expiresAtMs = r['expiresAtMs'] ?? undefined;
  if (tombstone) {
    if (value.length !== 0) throw invalid('a tombstone carries no value');
    if (contentType !== undefined || expiresAtMs !== undefined) throw invalid('a tombstone carries no contentType or expiresAtMs');
  }
  if (contentType !== undefined) {
    try {
      validateContentType(contentType);
    } catch (e) {
      throw invalid((e as Error).message, e);
    }
  }
  if (expiresAtMs !== undefined && !(Number.isSafeInteger(expiresAtMs) && (expiresAtMs as number) >= 0)) {
    throw invalid('expiresAtMs must be a safe integer >= 0');
  }
  const v = r['version'] as Version;
  const record = makeRecord(
    r['key'] as string,
    new Uint8Array(value),
    { ms: v.ms, counter: v.counter, node: v.node },
    tombstone,
    contentType as string | undefined,
    expiresAtMs as number | undefined,
  );
  return { record, keyBytes };
}

/** Builds a record without the optional fields that are undefined (exactOptionalPropertyTypes). */
export function makeRecord(
  key: string,
  value: Uint8Array,
  version: Version,
  tombstone: boolean,
  contentType: string | undefined,
  expiresAtMs: number | undefined,
): StoredRecord {
  if (contentType === undefined && expiresAtMs === undefined) return { key, value, version, tombstone };
  const r: { -readonly [K in keyof StoredRecord]: StoredRecord[K] } = { key, value, version, tombstone };
  if (contentType !== undefined) r.contentType = contentType;
  if (expiresAtMs !== undefined) r.expiresAtMs = expiresAtMs;
  return r;
}

function toPlainBytes(b: Uint8Array): Uint8Array {
  return b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * On-disk value of a data entry: `0x01` then a MessagePack array
 * `[ms, counter, node, tombstone, value, contentType|nil, expiresAtMs|nil]`.
 * The key is not repeated; it is the LevelDB key.
 *
 * Written by hand into one exactly sized buffer (this is on every write's
 * path): the bytes are the ones msgpackr's `pack` gives for that array
 * (smallest uint form up to 2^32 - 1, float64 above, as msgpackr does; str8
 * and str16 headers; bin8/16/32), checked against msgpackr in record.test.ts.
 */
export function encodeRecordValue(r: StoredRecord): Buffer {
  const v = r.version;
  const node = v.node;
  const contentType = r.contentType;
  const expiresAtMs = r.expiresAtMs;
  const value = r.value;
  const size = 2 + uintSize(v.ms) + uintSize(v.counter) + strSize(node) + 1 + binSize(value.length) +
    (contentType === undefined ? 1 : strSize(contentType)) + (expiresAtMs === undefined ? 1 : uintSize(expiresAtMs));
  const out = Buffer.allocUnsafe(size);
  out[0] = RECORD_FORMAT_V1;
  out[1] = 0x97; // fixarray of 7
  let pos = writeUint(out, 2, v.ms);
  pos = writeUint(out, pos, v.counter);
  pos = writeAsciiStr(out, pos, node);
  out[pos++] = r.tombstone ? 0xc3 : 0xc2;
  pos = writeBinHeader(out, pos, value.length);
  out.set(value, pos);
  pos += value.length;
  if (contentType === undefined) out[pos++] = 0xc0;
  else pos = writeAsciiStr(out, pos, contentType);
  if (expiresAtMs === undefined) out[pos++] = 0xc0;
  else pos = writeUint(out, pos, expiresAtMs);
  if (pos !== size) throw new Error(`encodeRecordValue: wrote ${pos} of ${size} bytes`);
  return out;
}

// Record fields are non-negative safe integers (versions, expiry) and ASCII
// strings (node ids, content types), validated before they get here.
function uintSize(n: number): number {
  if (n >>> 0 !== n) return 9; // float64, as msgpackr writes integers above 2^32 - 1
  return n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
}

function writeUint(out: Buffer, pos: number, n: number): number {
  if (n >>> 0 !== n) {
    out[pos] = 0xcb;
    out.writeDoubleBE(n, pos + 1);
    return pos + 9;
  }
  if (n < 0x80) {
    out[pos] = n;
    return pos + 1;
  }
  return writeSized(out, pos, n, 0xcc);
}

/**
 * A MessagePack type byte for an 8-, 16- or 32-bit length or value (`tag8`,
 * `tag8 + 1`, `tag8 + 2`: uint 0xcc–0xce, bin 0xc4–0xc6), then `n` big-endian.
 */
function writeSized(out: Buffer, pos: number, n: number, tag8: number): number {
  if (n < 0x100) {
    out[pos] = tag8;
    out[pos + 1] = n;
    return pos + 2;
  }
  if (n < 0x10000) {
    out[pos] = tag8 + 1;
    out.writeUInt16BE(n, pos + 1);
    return pos + 3;
  }
  out[pos] = tag8 + 2;
  out.writeUInt32BE(n, pos + 1);
  return pos + 5;
}

function strSize(s: string): number {
  return s.length + (s.length < 0x20 ? 1 : s.length < 0x100 ? 2 : 3);
}

function writeAsciiStr(out: Buffer, pos: number, s: string): number {
  const n = s.length;
  if (n < 0x20) {
    out[pos++] = 0xa0 | n;
  } else if (n < 0x100) {
    out[pos++] = 0xd9;
    out[pos++] = n;
  } else {
    out[pos++] = 0xda;
    out.writeUInt16BE(n, pos);
    pos += 2;
  }
  return pos + out.write(s, pos, n, 'latin1');
}

function binSize(n: number): number {
  return n + (n < 0x100 ? 2 : n < 0x10000 ? 3 : 5);
}

function writeBinHeader(out: Buffer, pos: number, n: number): number {
  return writeSized(out, pos, n, 0xc4);
}

export function decodeRecordValue(key: string, bytes: Uint8Array): StoredRecord {
  let fields: unknown;
  try {
    if (bytes[0] !== RECORD_FORMAT_V1) throw new Error(`unknown record format ${bytes[0]}`);
    fields = packr.unpack(bytes.subarray(1));
  } catch (e) {
    throw new StorageError('CORRUPT_DATA', `undecodable record for key ${JSON.stringify(key.slice(0, 64))}`, { cause: e });
  }
  const f = fields as unknown[];
  if (!Array.isArray(f) || f.length !== 7 || !(f[4] instanceof Uint8Array)) {
    throw new StorageError('CORRUPT_DATA', `malformed record for key ${JSON.stringify(key.slice(0, 64))}`);
  }
  return makeRecord(
    key,
    toPlainBytes(f[4]),
    { ms: f[0] as number, counter: f[1] as number, node: f[2] as string },
    f[3] as boolean,
    f[5] === null ? undefined : (f[5] as string),
    f[6] === null ? undefined : (f[6] as number),
  );
}

/**
 * Wire form of a record for other nodes: `0x01` then a MessagePack array
 * `[key, ms, counter, node, tombstone, value, contentType|nil, expiresAtMs|nil]`.
 * (A StoredRecord object also survives plain msgpackr pack/unpack; run
 * `validateRecord` on what comes back.)
 */
export function encodeRecord(r: StoredRecord): Uint8Array {
  const body = packr.pack([r.key, r.version.ms, r.version.counter, r.version.node, r.tombstone, r.value, r.contentType ?? null, r.expiresAtMs ?? null]);
  const out = new Uint8Array(1 + body.length);
  out[0] = RECORD_FORMAT_V1;
  out.set(body, 1);
  return out;
}

/** Decodes and validates `encodeRecord` bytes. Throws INVALID_RECORD. */
export function decodeRecord(bytes: Uint8Array): StoredRecord {
  if (!(bytes instanceof Uint8Array) || bytes.length < 2 || bytes[0] !== RECORD_FORMAT_V1) {
    throw invalid('unknown format byte');
  }
  let f: unknown;
  try {
    f = packr.unpack(bytes.subarray(1));
  } catch (e) {
    throw invalid('undecodable MessagePack', e);
  }
  if (!Array.isArray(f) || f.length !== 8) throw invalid('expected an array of 8 fields');
  const x: Record<string, unknown> = {
    key: f[0],
    value: f[5],
    version: { ms: f[1], counter: f[2], node: f[3] },
    tombstone: f[4],
  };
  if (f[6] !== null) x['contentType'] = f[6];
  if (f[7] !== null) x['expiresAtMs'] = f[7];
  return validateRecord(x);
}
