// Typed errors with stable codes. Bad input from outside never throws into
// the protocol loop (it is dropped and counted); these are for API misuse by
// the embedding program.

export type GossipErrorCode =
  | 'GOSSIP_CONFIG_INVALID'
  | 'GOSSIP_STATE_KEY_TOO_LONG'
  | 'GOSSIP_STATE_VALUE_TOO_LONG'
  | 'GOSSIP_STATE_TOO_MANY_KEYS'
  | 'GOSSIP_LEFT'
  | 'GOSSIP_EVENT_TOO_LARGE'
  | 'GOSSIP_EVENT_QUEUE_FULL';

export class GossipError extends Error {
  override readonly name = 'GossipError';
  constructor(
    readonly code: GossipErrorCode,
    message: string,
  ) {
    super(message);
  }
}
