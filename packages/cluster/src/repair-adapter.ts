import { randomBytes } from 'node:crypto';
import { createRepairResponder as createResponder, repairRange } from '@hearsay/repair';
import type { Store } from '@hearsay/storage';
import type { RepairRange } from './anti-entropy.ts';
import { ClusterError } from './errors.ts';
import type { RepairResponder } from './internode-handler.ts';
import { sleep, type Timers } from './timers.ts';

export interface RepairAdapterOptions {
  /** Average bytes per second of one session on the wire; unlimited when left out. */
  readonly rateLimitBytesPerSec?: number;
  /** 8 bytes unique per session; random by default, seeded in the simulation. */
  readonly salt?: () => Uint8Array;
}

/**
 * Repair sessions of `@hearsay/repair` carried over the internode API: each
 * request body of the session travels as the `message` of an internode
 * `repair` request and the peer's responder answers it.
 */
export function createRepairRange(store: Store, timers: Timers, options: RepairAdapterOptions = {}): RepairRange {
  return async ({ fromBucket, toBucket, peer, signal }) => {
    const result = await repairRange({
      local: store,
      remote: {
        async request(body) {
          signal?.throwIfAborted();
          const answer = await peer.repair(body, signal);
          if (!(answer instanceof Uint8Array)) throw new ClusterError('PEER_BAD_RESPONSE', 'repair answer is not bytes');
          return answer;
        },
      },
      fromBucket,
      toBucket,
      salt: options.salt?.() ?? randomBytes(8),
      clock: { nowMs: () => timers.nowMs(), sleep: (ms) => sleep(timers, ms, signal) },
      ...(options.rateLimitBytesPerSec === undefined ? {} : { rateLimitBytesPerSec: options.rateLimitBytesPerSec }),
    });
    const s = result.stats;
    return {
      bucketsCompared: s.bucketsCompared,
      keysSent: s.keysSent,
      keysReceived: s.keysReceived,
      bytesSent: s.bytesSent,
      bytesReceived: s.bytesReceived,
      keysRefused: s.keysRefused,
      equalUpToMs: result.cutoffMs,
    };
  };
}

/** The `@hearsay/repair` responder over this node's store, for the internode `repair` route. */
export function createRepairResponder(store: Store, timers: Timers): RepairResponder {
  const responder = createResponder(store);
  return async (message) => {
    if (!(message instanceof Uint8Array)) throw new ClusterError('BAD_REQUEST', 'a repair message is bytes');
    return responder.handle(message, timers.nowMs());
  };
}
