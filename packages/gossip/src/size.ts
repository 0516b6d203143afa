// Upper-bound estimate of a message's MessagePack size, so the core can fill a
// packet without the codec. Counts every object as a map with string keys
// (msgpackr's record extension only makes the real encoding smaller).

function strBytes(s: string): number {
  // UTF-8 length without allocating: ASCII fast path, conservative otherwise.
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
  }
  return n + (n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5);
}

function numBytes(v: number): number {
  if (Number.isInteger(v)) {
    const a = Math.abs(v);
    if (a < 128) return 1;
    if (a < 256) return 2;
    if (a < 65536) return 3;
    if (a < 4294967296) return 5;
  }
  return 9;
}

function containerHeader(n: number): number {
  return n < 16 ? 1 : n < 65536 ? 3 : 5;
}

/** Estimated encoded size in bytes of a plain-data value. */
export function estimateSize(v: unknown): number {
  switch (typeof v) {
    case 'string':
      return strBytes(v);
    case 'number':
      return numBytes(v);
    case 'boolean':
      return 1;
    case 'object': {
      if (v === null) return 1;
      if (v instanceof Uint8Array) return v.length + 5;
      if (Array.isArray(v)) {
        let n = containerHeader(v.length);
        for (const x of v) n += estimateSize(x);
        return n;
      }
      let n = 0;
      let count = 0;
      for (const k in v) {
        const x = (v as Record<string, unknown>)[k];
        if (x === undefined) continue;
        count++;
        n += strBytes(k) + estimateSize(x);
      }
      // msgpackr writes object headers as map16 (3 bytes) whatever the count.
      return n + Math.max(3, containerHeader(count));
    }
    default:
      return 1;
  }
}

/** Per-message framing allowance inside a compound packet (length prefix). */
export const MESSAGE_OVERHEAD_BYTES = 4;
