import type { Clock } from '@hearsay/clock';
import { createRepairResponder as createResponder, runRepairSession } from '@hearsay/repair';
import type { Store } from '@hearsay/storage';
import type { RepairRange } from './anti-entropy.ts';
import { ClusterError } from './errors.ts';
import type { RepairResponder } from './internode-handler.ts';

export interface RepairAdapterOptions {
  /** Average bytes per second of one session on the wire; unlimited when left out. */
  readonly rateLimitBytesPerSec?: number;
  /** 8 bytes unique per session; random by default (`runRepairSession`), seeded in the simulation. */
  readonly salt?: () => Uint8Array;
}

/**
 * Repair sessions of `@hearsay/repair` carried over the internode API: each
 * request body of the session travels as the `message` of an internode
 * `repair` request and the peer's responder answers it.
 */
export function createRepairRange(store: Store, clock: Clock, options: RepairAdapterOptions = {}): RepairRange {
  return ({ fromBucket, toBucket, peer, signal }) =>
    runRepairSession({
      local: store,
      remote: {
        async request(body) {
          const answer = await peer.repair(body, signal);
          if (!(answer instanceof Uint8Array)) throw new ClusterError('PEER_BAD_RESPONSE', 'repair answer is not bytes');
          return answer;
        },
      },
      fromBucket,
      toBucket,
      clock,
      ...(options.salt === undefined ? {} : { salt: options.salt() }),
      ...(signal === undefined ? {} : { signal }),
      ...(options.rateLimitBytesPerSec === undefined ? {} : { rateLimitBytesPerSec: options.rateLimitBytesPerSec }),
    });
}

/** The `@hearsay/repair` responder over this node's store, for the internode `repair` route. */
export function createRepairResponder(store: Store, clock: Clock): RepairResponder {
  const responder = createResponder(store);
  return async (message) => {
    if (!(message instanceof Uint8Array)) throw new ClusterError('BAD_REQUEST', 'a repair message is bytes');
    return responder.handle(message, clock.now());
  };
}
