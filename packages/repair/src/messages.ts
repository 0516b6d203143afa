import { Packr } from 'msgpackr';
import { RepairError } from './errors.ts';

/**
 * The repair wire protocol. In code every message is an object with a numeric
 * type `t`; on the wire it is a MessagePack array `[t, ...fields]` in the
 * order FIELD_ORDER gives (no field names on the wire: sessions send many
 * small messages). Requests go initiator -> responder, one reply per request.
 *
 * Type numbers and field orders are part of the protocol: APPEND-ONLY. Never
 * renumber or reuse a type or reorder fields; add new types, or new optional
 * fields at the end, and bump PROTOCOL_VERSION only for a change old peers
 * cannot ignore.
 */
export const PROTOCOL_VERSION = 1;

export const MessageType = {
  // Requests.
  Open: 1,
  Level: 2,
  Summaries: 3,
  Push: 4,
  Fetch: 5,
  // Replies.
  Opened: 65,
  LevelHashes: 66,
  SummaryDiff: 67,
  Pushed: 68,
  Fetched: 69,
  Failed: 127,
} as const;

/** Sanity bounds on what one message may carry (a receiver rejects more). */
export const MESSAGE_BYTES_MAX = 32 * 1024 * 1024;
export const LEVEL_PARENTS_MAX = 1 << 15;
export const SUMMARY_BUCKETS_MAX = 1 << 14;
export const SUMMARY_ENTRIES_MAX = 1 << 20;
export const PUSH_RECORDS_MAX = 1 << 16;
export const FETCH_HASHES_MAX = 1 << 16;
export const SPAN_MAX = 4;
export const HASH_BYTES_MIN = 4;
export const HASH_BYTES_MAX = 32;
export const SALT_BYTES = 8;
export const KEY_HASH_BYTES = 8;

/**
 * A record on the wire: `[key, value, base - ms, counter, node index,
 * tombstone, contentType?, expiresAtMs?]`, where `base` and the node ids come
 * once per message (RecordBlock); absent optional fields are null or left
 * off the end.
 */
export type WireRecord = readonly unknown[];

/** Records of one message: node ids and the largest ms once, then the tuples. */
export interface RecordBlock {
  readonly nodes: readonly string[];
  readonly base: number;
  readonly records: readonly WireRecord[];
}

/** Start a session: the responder answers with its root for the range. */
export interface OpenRequest {
  readonly t: typeof MessageType.Open;
  /** PROTOCOL_VERSION of the initiator. */
  readonly v: number;
  readonly from: number;
  readonly to: number;
  /** The initiator store's bucketBits; must equal the responder's. */
  readonly bits: number;
  /** SALT_BYTES random bytes, unique to the session. */
  readonly salt: Uint8Array;
}

/** Ask for all 2^span descendants (at `level`) of each parent (at `level - span`). */
export interface LevelRequest {
  readonly t: typeof MessageType.Level;
  readonly from: number;
  readonly to: number;
  readonly bits: number;
  readonly salt: Uint8Array;
  /** Bytes of each child hash in the reply (a prefix of the SHA-256). */
  readonly hb: number;
  readonly level: number;
  /** Levels descended in this round trip: 1, or 2 (never more bytes than two single steps, half the round trips). */
  readonly span: number;
  /** Parent indices within their level, ascending, gap-encoded (see toGaps). */
  readonly parents: readonly number[];
}

/** Fingerprints of the initiator's entries in each differing bucket. */
export interface SummariesRequest {
  readonly t: typeof MessageType.Summaries;
  readonly bits: number;
  readonly salt: Uint8Array;
  /** Absolute bucket numbers, ascending, gap-encoded. */
  readonly buckets: readonly number[];
  /** Per bucket: FINGERPRINT_BYTES per entry, in (keyHash, key) order. */
  readonly fps: readonly Uint8Array[];
}

/** Records the responder lacks or holds in an older version: apply them. */
export interface PushRequest extends RecordBlock {
  readonly t: typeof MessageType.Push;
}

/** Send the records with these key hashes (per bucket), up to `maxBytes`. */
export interface FetchRequest {
  readonly t: typeof MessageType.Fetch;
  readonly bits: number;
  readonly maxBytes: number;
  /** Absolute bucket numbers, ascending, gap-encoded. */
  readonly buckets: readonly number[];
  /** Per bucket: KEY_HASH_BYTES big-endian key hashes. */
  readonly hashes: readonly Uint8Array[];
  /** The session's salt: lets a caching responder find the keys its last SummaryDiff named. */
  readonly salt?: Uint8Array;
}

export interface OpenedReply {
  readonly t: typeof MessageType.Opened;
  /** The responder's range hash: SHA-256(salt ‖ all digests of the range), see RangeTree.flatRoot. */
  readonly root: Uint8Array;
  /** The responder's clock (HLC ms) taken before it read its digests. */
  readonly nowMs: number;
}

export interface LevelHashesReply {
  readonly t: typeof MessageType.LevelHashes;
  /** 2 * parents * hb bytes: left then right child of each parent, in order. */
  readonly hashes: Uint8Array;
}

/**
 * Per requested bucket, in request order:
 * `[missing, hashes, meta]` where `missing` lists (gap-encoded, ascending)
 * the indices of the initiator's fingerprints the responder does not hold,
 * and `hashes`/`meta` describe the responder's entries whose fingerprints the
 * initiator did not send: KEY_HASH_BYTES key hash each, and 4 numbers each in
 * `meta`: `base - ms`, counter, index into `nodes`, tombstone 0/1.
 */
export type BucketDiff = readonly [missing: readonly number[], hashes: Uint8Array, meta: readonly number[]];

export interface SummaryDiffReply {
  readonly t: typeof MessageType.SummaryDiff;
  /** Node ids referenced by `meta`. */
  readonly nodes: readonly string[];
  /** The largest ms in the reply; entries carry `base - ms` (small numbers pack small). */
  readonly base: number;
  readonly diffs: readonly BucketDiff[];
}

export interface PushedReply {
  readonly t: typeof MessageType.Pushed;
  /** How many pushed records changed the responder's store. */
  readonly applied: number;
  /**
   * How many pushed records the responder's store refused: versions more
   * than its maximum clock offset ahead of its clock (storage's
   * VERSION_AHEAD). Absent from older responders (read as 0).
   */
  readonly refused?: number;
}

export interface FetchedReply extends RecordBlock {
  readonly t: typeof MessageType.Fetched;
  /** How many of the requested key hashes (in request order) this reply covers; the rest must be asked again. */
  readonly served: number;
}

export interface FailedReply {
  readonly t: typeof MessageType.Failed;
  readonly code: string;
  readonly message: string;
}

export type RepairRequest = OpenRequest | LevelRequest | SummariesRequest | PushRequest | FetchRequest;
export type RepairReply = OpenedReply | LevelHashesReply | SummaryDiffReply | PushedReply | FetchedReply | FailedReply;
export type RepairMessage = RepairRequest | RepairReply;

// Plain MessagePack (no msgpackr record extension), so any MessagePack
// implementation can read the bytes.
const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

/** Wire order of each type's fields after `t`. APPEND-ONLY per type. */
export const FIELD_ORDER: Readonly<Record<number, readonly string[]>> = {
  [MessageType.Open]: ['v', 'from', 'to', 'bits', 'salt'],
  [MessageType.Level]: ['from', 'to', 'bits', 'salt', 'hb', 'level', 'span', 'parents'],
  [MessageType.Summaries]: ['bits', 'salt', 'buckets', 'fps'],
  [MessageType.Push]: ['nodes', 'base', 'records'],
  [MessageType.Fetch]: ['bits', 'maxBytes', 'buckets', 'hashes', 'salt'],
  [MessageType.Opened]: ['root', 'nowMs'],
  [MessageType.LevelHashes]: ['hashes'],
  [MessageType.SummaryDiff]: ['nodes', 'base', 'diffs'],
  [MessageType.Pushed]: ['applied', 'refused'],
  [MessageType.Fetched]: ['served', 'nodes', 'base', 'records'],
  [MessageType.Failed]: ['code', 'message'],
};

export function encodeMessage(message: RepairMessage): Uint8Array {
  const order = FIELD_ORDER[message.t] as readonly string[];
  const fields = message as unknown as Record<string, unknown>;
  return packr.pack([message.t, ...order.map((name) => fields[name])]);
}

/** Ascending distinct integers -> first value, then differences (>= 1). */
export function toGaps(sorted: readonly number[]): number[] {
  const out = new Array<number>(sorted.length);
  let previous = 0;
  for (let i = 0; i < sorted.length; i++) {
    const v = sorted[i] as number;
    out[i] = i === 0 ? v : v - previous;
    previous = v;
  }
  return out;
}

/** Inverse of toGaps; every value must be < `limit`. Throws MALFORMED_MESSAGE. */
export function fromGaps(gaps: readonly number[], limit: number, what: string): number[] {
  const out = new Array<number>(gaps.length);
  let value = 0;
  for (let i = 0; i < gaps.length; i++) {
    const g = gaps[i];
    if (!Number.isSafeInteger(g) || (g as number) < (i === 0 ? 0 : 1)) throw malformed(`${what}: bad gap`);
    value = i === 0 ? (g as number) : value + (g as number);
    if (value >= limit) throw malformed(`${what}: ${value} out of range`);
    out[i] = value;
  }
  return out;
}

function malformed(message: string): RepairError {
  return new RepairError('MALFORMED_MESSAGE', `malformed repair message: ${message}`);
}

type Fields = Record<string, unknown>;

function uint(m: Fields, name: string, max = Number.MAX_SAFE_INTEGER): number {
  const v = m[name];
  if (!Number.isSafeInteger(v) || (v as number) < 0 || (v as number) > max) throw malformed(`${name} must be an integer in 0..${max}`);
  return v as number;
}

function bytes(m: Fields, name: string, length?: number): Uint8Array {
  const v = m[name];
  if (!(v instanceof Uint8Array)) throw malformed(`${name} must be binary`);
  if (length !== undefined && v.length !== length) throw malformed(`${name} must be ${length} bytes`);
  return v;
}

function uintArray(m: Fields, name: string, maxLength: number): number[] {
  const v = m[name];
  if (!Array.isArray(v) || v.length > maxLength) throw malformed(`${name} must be an array of at most ${maxLength}`);
  for (const x of v) if (!Number.isSafeInteger(x) || (x as number) < 0) throw malformed(`${name} must hold integers >= 0`);
  return v as number[];
}

function bytesArray(m: Fields, name: string, length: number, unit: number): Uint8Array[] {
  const v = m[name];
  if (!Array.isArray(v) || v.length !== length) throw malformed(`${name} must be an array of ${length}`);
  for (const x of v) if (!(x instanceof Uint8Array) || x.length % unit !== 0) throw malformed(`${name} must hold binaries of ${unit}-byte units`);
  return v as Uint8Array[];
}

function fieldsOf(bytesIn: Uint8Array, maxBytes: number): Fields {
  if (!(bytesIn instanceof Uint8Array)) throw malformed('body must be binary');
  if (bytesIn.length > maxBytes) {
    throw new RepairError('MESSAGE_TOO_LARGE', `repair message of ${bytesIn.length} bytes exceeds ${maxBytes}`);
  }
  let decoded: unknown;
  try {
    decoded = packr.unpack(bytesIn);
  } catch (e) {
    throw new RepairError('MALFORMED_MESSAGE', 'repair message is not MessagePack', { cause: e });
  }
  if (!Array.isArray(decoded) || decoded.length < 1) throw malformed('not an array');
  const t: unknown = decoded[0];
  const order = typeof t === 'number' ? FIELD_ORDER[t] : undefined;
  if (order === undefined) throw new RepairError('UNKNOWN_MESSAGE_TYPE', `unknown repair message type ${String(t)}`);
  // Fields beyond the known ones come from a newer peer: ignored (append-only).
  const fields: Fields = { t };
  order.forEach((name, i) => { fields[name] = decoded[i + 1]; });
  return fields;
}

function rangeFields(m: Fields): { from: number; to: number; bits: number; salt: Uint8Array } {
  const bits = uint(m, 'bits', 30);
  const from = uint(m, 'from', 2 ** bits);
  const to = uint(m, 'to', 2 ** bits);
  return { from, to, bits, salt: bytes(m, 'salt', SALT_BYTES) };
}

function recordBlock(m: Fields): RecordBlock {
  const nodes = m['nodes'];
  if (!Array.isArray(nodes) || nodes.length > PUSH_RECORDS_MAX) throw malformed('nodes must be an array');
  for (const n of nodes) if (typeof n !== 'string') throw malformed('nodes must hold strings');
  const records = m['records'];
  if (!Array.isArray(records) || records.length > PUSH_RECORDS_MAX) throw malformed(`records must be an array of at most ${PUSH_RECORDS_MAX}`);
  for (const r of records) if (!Array.isArray(r) || r.length < 6 || r.length > 8) throw malformed('records must hold record tuples');
  return { nodes: nodes as string[], base: uint(m, 'base'), records: records as WireRecord[] };
}

/**
 * Decodes and checks a request from untrusted bytes. Throws RepairError
 * (MESSAGE_TOO_LARGE, MALFORMED_MESSAGE, UNKNOWN_MESSAGE_TYPE,
 * UNSUPPORTED_VERSION); never anything else.
 */
export function decodeRequest(body: Uint8Array, maxBytes = MESSAGE_BYTES_MAX): RepairRequest {
  const m = fieldsOf(body, maxBytes);
  const t = m['t'];
  switch (t) {
    case MessageType.Open: {
      const v = uint(m, 'v');
      if (v !== PROTOCOL_VERSION) throw new RepairError('UNSUPPORTED_VERSION', `repair protocol version ${v} is not ${PROTOCOL_VERSION}`);
      return { t, v, ...rangeFields(m) };
    }
    case MessageType.Level:
      return {
        t,
        ...rangeFields(m),
        hb: uint(m, 'hb', HASH_BYTES_MAX),
        level: uint(m, 'level', 30),
        span: uint(m, 'span', SPAN_MAX),
        parents: uintArray(m, 'parents', LEVEL_PARENTS_MAX),
      };
    case MessageType.Summaries: {
      const bits = uint(m, 'bits', 30);
      const buckets = uintArray(m, 'buckets', SUMMARY_BUCKETS_MAX);
      const fps = bytesArray(m, 'fps', buckets.length, 4);
      let entries = 0;
      for (const f of fps) entries += f.length / 4;
      if (entries > SUMMARY_ENTRIES_MAX) throw malformed(`more than ${SUMMARY_ENTRIES_MAX} fingerprints`);
      return { t, bits, salt: bytes(m, 'salt', SALT_BYTES), buckets, fps };
    }
    case MessageType.Push:
      return { t, ...recordBlock(m) };
    case MessageType.Fetch: {
      const bits = uint(m, 'bits', 30);
      const buckets = uintArray(m, 'buckets', FETCH_HASHES_MAX);
      const hashes = bytesArray(m, 'hashes', buckets.length, KEY_HASH_BYTES);
      let n = 0;
      for (const h of hashes) n += h.length / KEY_HASH_BYTES;
      if (n > FETCH_HASHES_MAX) throw malformed(`more than ${FETCH_HASHES_MAX} key hashes`);
      const salt = m['salt'] === undefined || m['salt'] === null ? undefined : bytes(m, 'salt', SALT_BYTES);
      return { t, bits, maxBytes: uint(m, 'maxBytes'), buckets, hashes, ...(salt === undefined ? {} : { salt }) };
    }
    default:
      if (typeof t === 'number' && (t === MessageType.Opened || t === MessageType.LevelHashes || t === MessageType.SummaryDiff ||
          t === MessageType.Pushed || t === MessageType.Fetched || t === MessageType.Failed)) {
        throw malformed(`type ${t} is a reply, not a request`);
      }
      throw new RepairError('UNKNOWN_MESSAGE_TYPE', `unknown repair request type ${String(t)}`);
  }
}

/** Decodes and checks a reply from untrusted bytes. Throws RepairError only. */
export function decodeReply(body: Uint8Array, maxBytes = MESSAGE_BYTES_MAX): RepairReply {
  const m = fieldsOf(body, maxBytes);
  const t = m['t'];
  switch (t) {
    case MessageType.Opened:
      return { t, root: bytes(m, 'root'), nowMs: uint(m, 'nowMs') };
    case MessageType.LevelHashes:
      return { t, hashes: bytes(m, 'hashes') };
    case MessageType.SummaryDiff: {
      const nodes = m['nodes'];
      if (!Array.isArray(nodes) || nodes.length > SUMMARY_ENTRIES_MAX) throw malformed('nodes must be an array');
      for (const n of nodes) if (typeof n !== 'string' || n.length === 0 || n.length > 128) throw malformed('nodes must hold node ids');
      const diffs = m['diffs'];
      if (!Array.isArray(diffs) || diffs.length > SUMMARY_BUCKETS_MAX) throw malformed('diffs must be an array');
      for (const d of diffs) {
        if (!Array.isArray(d) || d.length !== 3) throw malformed('a bucket diff is [missing, hashes, meta]');
        const [missing, hashes, meta] = d as unknown[];
        if (!Array.isArray(missing) || !(hashes instanceof Uint8Array) || hashes.length % KEY_HASH_BYTES !== 0 ||
            !Array.isArray(meta) || meta.length !== (hashes.length / KEY_HASH_BYTES) * 4) {
          throw malformed('a bucket diff is [missing, hashes, meta] with 4 meta numbers per hash');
        }
        for (const x of missing) if (!Number.isSafeInteger(x) || (x as number) < 0) throw malformed('missing must hold integers');
        for (let i = 0; i < meta.length; i++) {
          const x = meta[i];
          if (!Number.isSafeInteger(x) || (x as number) < 0) throw malformed('meta must hold integers >= 0');
          if (i % 4 === 2 && (x as number) >= nodes.length) throw malformed('meta node index out of range');
          if (i % 4 === 3 && (x as number) > 1) throw malformed('meta tombstone must be 0 or 1');
        }
      }
      return { t, nodes: nodes as string[], base: uint(m, 'base'), diffs: diffs as BucketDiff[] };
    }
    case MessageType.Pushed:
      return { t, applied: uint(m, 'applied'), ...(m['refused'] === undefined || m['refused'] === null ? {} : { refused: uint(m, 'refused') }) };
    case MessageType.Fetched:
      return { t, served: uint(m, 'served'), ...recordBlock(m) };
    case MessageType.Failed: {
      const code = m['code'];
      const message = m['message'];
      if (typeof code !== 'string' || typeof message !== 'string') throw malformed('failed reply needs code and message');
      return { t, code: code.slice(0, 64), message: message.slice(0, 1024) };
    }
    default:
      throw new RepairError('UNKNOWN_MESSAGE_TYPE', `unknown repair reply type ${String(t)}`);
  }
}
