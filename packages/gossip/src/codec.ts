/**
 * The wire codec: messages <-> datagrams and stream frames.
 *
 * Byte layout (documented with examples in docs/gossip.md, "Wire format"):
 *
 *   offset  size  field
 *   0       1     magic 0xA7
 *   1       1     wire version (1)
 *   2       1     flags: bit 0 = encrypted, bit 1 = stream frame (0 = datagram)
 *   3       1     label length L (0..255)
 *   4       L     cluster label, UTF-8
 *   -- plaintext body --
 *   4+L     ...   msgpack array of messages
 *   -- or, when encrypted --
 *   4+L     4     key id (uint32 BE, first 4 bytes of SHA-256 of the key)
 *   8+L     12    nonce
 *   20+L    ...   AES-256-GCM ciphertext of the msgpack array, then 16-byte tag;
 *                 bytes 0..4+L (the header) are the additional authenticated data
 *
 * The header carries the label in the clear so a member drops another
 * cluster's traffic before spending a decryption on it, and the label is
 * authenticated so it cannot be rewritten in flight (memberlist `label.go`).
 * The stream bit is authenticated too, so a datagram cannot be replayed as a
 * stream frame or the other way round.
 *
 * Decoding never throws: every failure is a `DropReason`, counted by the
 * caller. Messages inside one compound packet are validated one by one, so a
 * message of a type this build does not know (a newer member) is dropped on
 * its own and the rest of the packet still counts.
 */
import { Packr, Unpackr } from 'msgpackr';
import { ENCRYPTION_OVERHEAD_BYTES, KEY_ID_BYTES, NONCE_BYTES, type Keyring } from './keyring.ts';

export const WIRE_MAGIC = 0xa7;
/** Bumped only for incompatible envelope changes; message types evolve append-only instead. */
export const WIRE_VERSION = 1;
export const FLAG_ENCRYPTED = 0b01;
export const FLAG_STREAM = 0b10;
export const MAX_LABEL_BYTES = 255;
export const DEFAULT_MAX_PACKET_BYTES = 1400;
export const DEFAULT_MAX_FRAME_BYTES = 8 * 1024 * 1024;
/** Most messages one compound datagram or frame may carry (also bounds decode work). */
export const MAX_MESSAGES_PER_PACKET = 255;
/** Largest msgpack array header for up to 65535 elements. */
const ARRAY_HEADER_BYTES_MAX = 3;

/** Why an incoming datagram, frame or message was dropped. Append-only: these name metrics. */
export const DROP_REASONS = [
  /** Shorter than its header says, or than any header at all. */
  'truncated',
  /** Wrong magic byte, unknown wire version or unknown flag bits. */
  'bad-header',
  /** Larger than `maxPacketBytes` / `maxFrameBytes`, or more than MAX_MESSAGES_PER_PACKET messages. */
  'oversize',
  /** A cluster label other than ours: another cluster on the same network. */
  'wrong-label',
  /** Plaintext while we require encryption, or encrypted while we have no keyring. */
  'encryption-mismatch',
  /** No installed key has its key id, or authentication failed. */
  'undecryptable',
  /** Not valid msgpack, not an array of messages, or a message with a bad shape. */
  'malformed',
  /** A message type number this build does not know. */
  'unknown-type',
  /** A datagram arrived on the stream path or the other way round. */
  'wrong-kind',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export type DropCounters = Record<DropReason, number>;

export function emptyDropCounters(): DropCounters {
  const counters = {} as DropCounters;
  for (const reason of DROP_REASONS) counters[reason] = 0;
  return counters;
}

/**
 * How to turn one decoded msgpack value into a typed message. Must not throw;
 * returns a drop reason for anything that is not a valid message.
 */
export type MessageParser<M> = (value: unknown) => ParseResult<M>;
export type ParseResult<M> = { ok: true; message: M } | { ok: false; reason: 'unknown-type' | 'malformed' };

export interface CodecOptions<M> {
  parse: MessageParser<M>;
  /** Cluster label; members with different labels drop each other's traffic. Default '' (no label). */
  label?: string;
  /** When set, everything sent is encrypted with the primary key and plaintext input is dropped (see `EncryptionPolicy`). */
  keyring?: Keyring;
  /** How a codec with a keyring treats plaintext; the default is strict. Ignored without a keyring. */
  encryption?: Partial<EncryptionPolicy>;
  /** Largest datagram, header and encryption included. Default 1400. */
  maxPacketBytes?: number;
  /** Largest stream frame. Default 8 MiB. */
  maxFrameBytes?: number;
}

/**
 * For turning encryption on in a running cluster (memberlist's
 * GossipVerifyIncoming/Outgoing): members first accept both and send
 * plaintext, then send encrypted, then stop accepting plaintext.
 */
export interface EncryptionPolicy {
  /** Seal outgoing datagrams and frames with the primary key. Default true. */
  encryptOutgoing: boolean;
  /** Also accept plaintext input. Default false. */
  acceptPlaintext: boolean;
}

export type CodecErrorCode = 'CODEC_BAD_LABEL' | 'CODEC_BAD_LIMIT';

export class CodecError extends Error {
  override readonly name = 'CodecError';
  readonly code: CodecErrorCode;
  constructor(code: CodecErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export type DecodeResult<M> =
  /** `dropped` counts messages inside the packet that were dropped (reason per message). */
  | { ok: true; messages: M[]; dropped: DropReason[] }
  | { ok: false; reason: DropReason };

export interface PackResult<M> {
  /** Datagrams, each at most `maxPacketBytes`. */
  packets: Uint8Array[];
  /** Messages too large to fit in any datagram on their own; not sent. */
  tooLarge: M[];
}

// Plain msgpack: maps as objects, no records or structures (they would make a
// datagram depend on state from earlier datagrams, which may be lost).
const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });
// structuredClone off: no cyclic references from the wire. msgpackr's other
// extensions (Set, Error, RegExp, typed arrays, BigInt) may still decode, but
// the message parser accepts none of them, so they end as `malformed`.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number', structuredClone: false });

export class Codec<M> {
  /** Encoded bytes per message object (see #encode); entries go with their messages. */
  readonly #encoded = new WeakMap<object, Buffer>();
  readonly label: string;
  readonly maxPacketBytes: number;
  readonly maxFrameBytes: number;
  readonly #parse: MessageParser<M>;
  readonly #keyring: Keyring | undefined;
  readonly #labelBytes: Buffer;
  #packetHeader: Buffer;
  #frameHeader: Buffer;
  #policy: EncryptionPolicy = { encryptOutgoing: true, acceptPlaintext: false };

  constructor(options: CodecOptions<M>) {
    this.label = options.label ?? '';
    this.#labelBytes = Buffer.from(this.label, 'utf8');
    if (this.#labelBytes.byteLength > MAX_LABEL_BYTES) {
      throw new CodecError('CODEC_BAD_LABEL', `label is ${this.#labelBytes.byteLength} bytes; at most ${MAX_LABEL_BYTES}`);
    }
    this.maxPacketBytes = options.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES;
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.#parse = options.parse;
    this.#keyring = options.keyring;
    this.#packetHeader = this.#header(0);
    this.#frameHeader = this.#header(FLAG_STREAM);
    if (options.encryption !== undefined) this.setEncryptionPolicy(options.encryption);
    const minimum = this.#packetHeader.byteLength + this.#encryptionOverhead() + ARRAY_HEADER_BYTES_MAX + 64;
    if (!Number.isInteger(this.maxPacketBytes) || this.maxPacketBytes < minimum || this.maxPacketBytes > 65507) {
      throw new CodecError('CODEC_BAD_LIMIT', `maxPacketBytes must be an integer in ${minimum}..65507`);
    }
    if (!Number.isInteger(this.maxFrameBytes) || this.maxFrameBytes < this.maxPacketBytes) {
      throw new CodecError('CODEC_BAD_LIMIT', 'maxFrameBytes must be an integer >= maxPacketBytes');
    }
  }

  /** Bytes left for encoded messages in one datagram once the envelope (header, label, encryption) is paid for. */
  get messageBudgetBytes(): number {
    return this.maxPacketBytes - this.#packetHeader.byteLength - this.#encryptionOverhead() - ARRAY_HEADER_BYTES_MAX;
  }

  /** True when outgoing traffic is sealed. */
  get encrypted(): boolean {
    return this.#sealing();
  }

  get encryptionPolicy(): EncryptionPolicy {
    return { ...this.#policy };
  }

  /** Change how plaintext is treated, at any time (no effect without a keyring). */
  setEncryptionPolicy(policy: Partial<EncryptionPolicy>): void {
    this.#policy = { ...this.#policy, ...policy };
    this.#packetHeader = this.#header(0);
    this.#frameHeader = this.#header(FLAG_STREAM);
  }

  #sealing(): boolean {
    return this.#keyring !== undefined && this.#policy.encryptOutgoing;
  }

  /** Encoded size of one message on its own (no envelope). */
  static messageBytes(message: unknown): number {
    return packr.pack(message).byteLength;
  }

  /**
   * Pack messages into as few datagrams as fit under `maxPacketBytes`, in
   * order (greedy). A message too large for a datagram on its own is returned
   * in `tooLarge` (the core bounds message sizes, so this signals a bug or a
   * state too big for gossip; push-pull over streams carries it instead).
   */
  packPackets(messages: readonly M[]): PackResult<M> {
    const budget = this.messageBudgetBytes;
    const packets: Uint8Array[] = [];
    const tooLarge: M[] = [];
    let batch: Buffer[] = [];
    let batchBytes = 0;
    const flush = (): void => {
      if (batch.length === 0) return;
      packets.push(this.#seal(this.#packetHeader, batch));
      batch = [];
      batchBytes = 0;
    };
    for (const message of messages) {
      const encoded = this.#encode(message);
      if (encoded.byteLength > budget) {
        tooLarge.push(message);
        continue;
      }
      if (batchBytes + encoded.byteLength > budget || batch.length >= MAX_MESSAGES_PER_PACKET) flush();
      batch.push(encoded);
      batchBytes += encoded.byteLength;
    }
    flush();
    return { packets, tooLarge };
  }

  /** One stream frame body carrying `messages` (the transport adds the length prefix). Throws nothing; check the size against `maxFrameBytes`. */
  encodeFrame(messages: readonly M[]): Uint8Array {
    return this.#seal(
      this.#frameHeader,
      messages.map((m) => packr.pack(m)),
    );
  }

  decodePacket(data: Uint8Array): DecodeResult<M> {
    if (data.byteLength > this.maxPacketBytes) return { ok: false, reason: 'oversize' };
    return this.#open(data, 0);
  }

  decodeFrame(data: Uint8Array): DecodeResult<M> {
    if (data.byteLength > this.maxFrameBytes) return { ok: false, reason: 'oversize' };
    return this.#open(data, FLAG_STREAM);
  }

  #encryptionOverhead(): number {
    return this.#keyring === undefined ? 0 : ENCRYPTION_OVERHEAD_BYTES;
  }

  #header(kindFlag: number): Buffer {
    const flags = kindFlag | (this.#sealing() ? FLAG_ENCRYPTED : 0);
    return Buffer.concat([Buffer.from([WIRE_MAGIC, WIRE_VERSION, flags, this.#labelBytes.byteLength]), this.#labelBytes]);
  }

  /**
   * One message's msgpack bytes. A rumor is the same message object sent up
   * to 2 · λ·log N times by a member (the broadcast queue hands it out again
   * and again), so its bytes are kept per object and encoded once: messages
   * are plain data and never changed after they are first handed to the
   * codec (the core's contract, see node.ts). A copy is kept: msgpackr's
   * result is a view into its working buffer. Packing a 20-rumor datagram
   * costs about a quarter of what it did.
   */
  #encode(message: M): Buffer {
    if (typeof message !== 'object' || message === null) return packr.pack(message);
    const cached = this.#encoded.get(message);
    if (cached !== undefined) return cached;
    const encoded = Buffer.from(packr.pack(message));
    this.#encoded.set(message, encoded);
    return encoded;
  }

  #seal(header: Buffer, encodedMessages: Buffer[]): Uint8Array {
    const body = Buffer.concat([arrayHeader(encodedMessages.length), ...encodedMessages]);
    if (this.#keyring === undefined || !this.#sealing()) return Buffer.concat([header, body]);
    const { keyId, nonce, sealed } = this.#keyring.encrypt(body, header);
    const keyIdBytes = Buffer.alloc(KEY_ID_BYTES);
    keyIdBytes.writeUInt32BE(keyId, 0);
    return Buffer.concat([header, keyIdBytes, nonce, sealed]);
  }

  #open(input: Uint8Array, kindFlag: number): DecodeResult<M> {
    const data = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    if (data.byteLength < 4) return { ok: false, reason: 'truncated' };
    const flags = data[2]!;
    if (data[0] !== WIRE_MAGIC || data[1] !== WIRE_VERSION || (flags & ~(FLAG_ENCRYPTED | FLAG_STREAM)) !== 0) {
      return { ok: false, reason: 'bad-header' };
    }
    if ((flags & FLAG_STREAM) !== kindFlag) return { ok: false, reason: 'wrong-kind' };
    const labelLength = data[3]!;
    const headerEnd = 4 + labelLength;
    if (data.byteLength < headerEnd) return { ok: false, reason: 'truncated' };
    if (!this.#labelBytes.equals(data.subarray(4, headerEnd))) return { ok: false, reason: 'wrong-label' };
    const encrypted = (flags & FLAG_ENCRYPTED) !== 0;
    if (encrypted ? this.#keyring === undefined : this.#keyring !== undefined && !this.#policy.acceptPlaintext) {
      return { ok: false, reason: 'encryption-mismatch' };
    }

    let body: Uint8Array = data.subarray(headerEnd);
    if (encrypted && this.#keyring !== undefined) {
      if (body.byteLength < ENCRYPTION_OVERHEAD_BYTES) return { ok: false, reason: 'truncated' };
      const keyId = data.readUInt32BE(headerEnd);
      const nonce = body.subarray(KEY_ID_BYTES, KEY_ID_BYTES + NONCE_BYTES);
      const sealed = body.subarray(KEY_ID_BYTES + NONCE_BYTES);
      const opened = this.#keyring.decrypt(keyId, nonce, sealed, data.subarray(0, headerEnd));
      if (opened === undefined) return { ok: false, reason: 'undecryptable' };
      body = opened;
    }
    if (body.byteLength === 0) return { ok: false, reason: 'truncated' };

    let decoded: unknown;
    try {
      decoded = unpackr.unpack(body);
    } catch (error) {
      return { ok: false, reason: isTruncation(error) ? 'truncated' : 'malformed' };
    }
    if (!Array.isArray(decoded) || decoded.length === 0) return { ok: false, reason: 'malformed' };
    if (decoded.length > MAX_MESSAGES_PER_PACKET) return { ok: false, reason: 'oversize' };
    const messages: M[] = [];
    const dropped: DropReason[] = [];
    for (const value of decoded as unknown[]) {
      let parsed: ParseResult<M>;
      try {
        parsed = this.#parse(value);
      } catch {
        parsed = { ok: false, reason: 'malformed' };
      }
      if (parsed.ok) messages.push(parsed.message);
      else dropped.push(parsed.reason);
    }
    return { ok: true, messages, dropped };
  }
}

function arrayHeader(count: number): Buffer {
  if (count <= 15) return Buffer.from([0x90 | count]);
  return Buffer.from([0xdc, count >> 8, count & 0xff]);
}

function isTruncation(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return (error as { incomplete?: boolean }).incomplete === true || /end of (MessagePack|buffer)/i.test(error.message);
}
