/**
 * Validation of incoming messages from `unknown` at the wire boundary: the
 * only place a decoded msgpack value becomes a typed `Message`.
 *
 * Each parser rebuilds the message from the fields it knows, so extra fields
 * (sent by a newer member) are ignored and nothing else from the wire reaches
 * the core: no prototypes, no Maps or typed arrays, no NaN or fractional
 * counters. Bounds here are wire sanity limits; the core applies its own,
 * tighter configured bounds.
 */
import type { MessageParser, ParseResult } from './codec.ts';
import {
  MEMBER_STATUSES,
  MessageType,
  type Digest,
  type MemberRecord,
  type MemberStatus,
  type Message,
  type StateEntry,
  type UserEvent,
} from './messages.ts';

/** Longest id, address, state key or state value accepted from the wire (UTF-16 units). */
export const WIRE_STRING_MAX = 4096;
/** Most state entries in one StateUpdate or MemberRecord. */
export const WIRE_ENTRIES_MAX = 4096;
/** Most digests or records in one stream message (a frame is bounded in bytes too). */
export const WIRE_RECORDS_MAX = 100_000;

// Thrown through the field readers and caught in parseMessage. Not an Error:
// hostile input is common, and capturing a stack trace per bad message is slow.
const MALFORMED = Symbol('malformed');

type Obj = Record<string, unknown>;

function obj(value: unknown): Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw MALFORMED;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) throw MALFORMED;
  return value as Obj;
}

function str(o: Obj, key: string): string {
  const v = o[key];
  if (typeof v !== 'string' || v.length > WIRE_STRING_MAX) throw MALFORMED;
  return v;
}

/** A non-negative safe integer: sequence numbers, generations, incarnations, versions, counters. */
function count(o: Obj, key: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw MALFORMED;
  return v;
}

/** An optional finite non-negative number (a wall-clock reading); absent stays absent. */
function optionalTime(o: Obj, key: string): number | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw MALFORMED;
  return v;
}

/** Longest user event payload accepted from the wire (a datagram bounds it anyway; frames carry several). */
export const WIRE_PAYLOAD_MAX = 64 * 1024;

function bytes(o: Obj, key: string): Uint8Array {
  const v = o[key];
  if (!(v instanceof Uint8Array) || v.byteLength > WIRE_PAYLOAD_MAX) throw MALFORMED;
  // A copy: msgpackr may hand out a view into the whole datagram.
  return new Uint8Array(v);
}

function optionalCount(o: Obj, key: string): number | undefined {
  return o[key] === undefined ? undefined : count(o, key);
}

function bool(o: Obj, key: string): boolean {
  const v = o[key];
  if (typeof v !== 'boolean') throw MALFORMED;
  return v;
}

function list<T>(o: Obj, key: string, max: number, item: (value: unknown) => T): T[] {
  const v = o[key];
  if (!Array.isArray(v) || v.length > max) throw MALFORMED;
  return v.map(item);
}

function status(o: Obj, key: string): MemberStatus {
  const v = o[key];
  const found = MEMBER_STATUSES.find((s) => s === v);
  if (found === undefined) throw MALFORMED;
  return found;
}

function entry(value: unknown): StateEntry {
  const o = obj(value);
  return { key: str(o, 'key'), value: str(o, 'value'), version: count(o, 'version') };
}

function digest(value: unknown): Digest {
  const o = obj(value);
  const d: Digest = {
    id: str(o, 'id'),
    generation: count(o, 'generation'),
    incarnation: count(o, 'incarnation'),
    status: status(o, 'status'),
    version: count(o, 'version'),
    heartbeat: count(o, 'heartbeat'),
  };
  const events = optionalCount(o, 'events');
  if (events !== undefined) d.events = events;
  return d;
}

function userEvent(value: unknown): UserEvent {
  const o = obj(value);
  if (o['type'] !== MessageType.UserEvent) throw MALFORMED;
  return {
    type: MessageType.UserEvent,
    origin: str(o, 'origin'),
    generation: count(o, 'generation'),
    seq: count(o, 'seq'),
    name: str(o, 'name'),
    payload: bytes(o, 'payload'),
  };
}

/** An optional list of user events riding on a stream message (absent from older members). */
function withEvents<T extends object>(message: T, o: Obj): T & { events?: UserEvent[] } {
  if (o['events'] === undefined) return message;
  return { ...message, events: list(o, 'events', WIRE_RECORDS_MAX, userEvent) };
}

function record(value: unknown): MemberRecord {
  const o = obj(value);
  const r: MemberRecord = {
    id: str(o, 'id'),
    address: str(o, 'address'),
    generation: count(o, 'generation'),
    incarnation: count(o, 'incarnation'),
    status: status(o, 'status'),
    heartbeat: count(o, 'heartbeat'),
    version: count(o, 'version'),
    entries: list(o, 'entries', WIRE_ENTRIES_MAX, entry),
  };
  const events = optionalCount(o, 'events');
  if (events !== undefined) r.events = events;
  return r;
}

function build(o: Obj, type: number): Message | undefined {
  switch (type) {
    case MessageType.Ping:
      return { type, seqNo: count(o, 'seqNo'), target: str(o, 'target'), source: str(o, 'source'), sourceAddr: str(o, 'sourceAddr') };
    case MessageType.PingReq:
      return {
        type,
        seqNo: count(o, 'seqNo'),
        target: str(o, 'target'),
        targetAddr: str(o, 'targetAddr'),
        source: str(o, 'source'),
        sourceAddr: str(o, 'sourceAddr'),
        nack: bool(o, 'nack'),
      };
    case MessageType.Ack: {
      const wallMs = optionalTime(o, 'wallMs');
      const ack = { type, seqNo: count(o, 'seqNo'), source: str(o, 'source') };
      return wallMs === undefined ? ack : { ...ack, wallMs };
    }
    case MessageType.Nack:
      return { type, seqNo: count(o, 'seqNo'), source: str(o, 'source') };
    case MessageType.Suspect:
      return { type, id: str(o, 'id'), generation: count(o, 'generation'), incarnation: count(o, 'incarnation'), from: str(o, 'from') };
    case MessageType.Alive:
      return { type, id: str(o, 'id'), address: str(o, 'address'), generation: count(o, 'generation'), incarnation: count(o, 'incarnation') };
    case MessageType.Dead:
      return { type, id: str(o, 'id'), generation: count(o, 'generation'), incarnation: count(o, 'incarnation'), from: str(o, 'from') };
    case MessageType.Left:
      return { type, id: str(o, 'id'), generation: count(o, 'generation'), incarnation: count(o, 'incarnation') };
    case MessageType.StateUpdate:
      return { type, id: str(o, 'id'), generation: count(o, 'generation'), base: count(o, 'base'), entries: list(o, 'entries', WIRE_ENTRIES_MAX, entry) };
    case MessageType.Heartbeat:
      return { type, id: str(o, 'id'), generation: count(o, 'generation'), counter: count(o, 'counter') };
    case MessageType.PullReq:
      return { type, source: str(o, 'source'), sourceAddr: str(o, 'sourceAddr') };
    case MessageType.Syn:
      return {
        type,
        source: str(o, 'source'),
        sourceAddr: str(o, 'sourceAddr'),
        join: bool(o, 'join'),
        digests: list(o, 'digests', WIRE_RECORDS_MAX, digest),
      };
    case MessageType.SynAck:
      return withEvents(
        {
          type,
          source: str(o, 'source'),
          records: list(o, 'records', WIRE_RECORDS_MAX, record),
          requests: list(o, 'requests', WIRE_RECORDS_MAX, digest),
        },
        o,
      );
    case MessageType.SynAck2:
      return withEvents({ type, source: str(o, 'source'), records: list(o, 'records', WIRE_RECORDS_MAX, record) }, o);
    case MessageType.UserEvent:
      return userEvent(o);
    default:
      return undefined;
  }
}

/** Parse one decoded msgpack value into a `Message`; the codec's `MessageParser` for the gossip protocol. */
export const parseMessage: MessageParser<Message> = (value: unknown): ParseResult<Message> => {
  try {
    const o = obj(value);
    const type = o['type'];
    if (typeof type !== 'number' || !Number.isSafeInteger(type)) return { ok: false, reason: 'malformed' };
    const message = build(o, type);
    if (message === undefined) return { ok: false, reason: 'unknown-type' };
    return { ok: true, message };
  } catch (error) {
    if (error === MALFORMED) return { ok: false, reason: 'malformed' };
    throw error;
  }
};
