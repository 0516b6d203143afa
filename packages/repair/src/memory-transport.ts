import type { Clock } from '@hearsay/clock';
import type { Store } from '@hearsay/storage';
import { createRepairResponder } from './responder.ts';
import type { RepairResponderOptions } from './responder.ts';
import type { RepairPeer } from './session.ts';

export interface MemoryPeerOptions extends RepairResponderOptions {
  /** Time given to the responder's tree cache. Default: always 0 (no expiry). */
  readonly clock?: Pick<Clock, 'now'>;
  /** Called with each request body before the responder sees it (tests: interleave writes, count, fail). */
  readonly beforeRequest?: (body: Uint8Array) => void | Promise<void>;
  /** Called with each reply body before the initiator sees it; may replace it (tests: corrupt replies). */
  readonly afterReply?: (body: Uint8Array) => Uint8Array | Promise<Uint8Array>;
}

/**
 * A RepairPeer that answers from a store in the same process, through the
 * real encoder, decoder and responder (bytes are copied both ways, so nothing
 * is shared between the two sides). For tests and benchmarks.
 */
export function createMemoryPeer(store: Store, options: MemoryPeerOptions = {}): RepairPeer {
  const responder = createRepairResponder(store, options);
  return {
    async request(body: Uint8Array): Promise<Uint8Array> {
      const copy = Uint8Array.prototype.slice.call(body);
      await options.beforeRequest?.(copy);
      const reply = Uint8Array.prototype.slice.call(await responder.handle(copy, options.clock?.now() ?? 0));
      return options.afterReply === undefined ? reply : options.afterReply(reply);
    },
  };
}
