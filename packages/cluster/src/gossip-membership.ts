import type { MemberState } from '@hearsay/service';
import type { MemberInfo, MembershipView } from './membership.ts';
import type { Clock } from '@hearsay/clock';

/**
 * The slice of `@hearsay/gossip`'s `GossipRuntime` the cluster uses (the
 * runtime fits it as is; so does a test double).
 */
export interface GossipLike {
  readonly id: string;
  members(): readonly {
    readonly id: string;
    readonly address: string;
    readonly status: MemberState;
    readonly incarnation: number;
    readonly state: Readonly<Record<string, string>>;
  }[];
  on(type: 'event', listener: (event: unknown) => void): () => void;
  setLocalState(key: string, value: string): void;
}

/** Application-state keys this package publishes through gossip. Append only. */
export const GOSSIP_STATE_HTTP = 'http';
export const GOSSIP_STATE_STATUS = 'status';
export const GOSSIP_STATE_KEYS = 'keys';
/** `<ring hash> <acknowledged epoch>` (topology.ts). */
export const GOSSIP_STATE_RING = 'ring';
/** Progress of the partitions a member fills (topology.ts). */
export const GOSSIP_STATE_XFER = 'xfer';

export interface ConnectGossipOptions {
  /** This node's HTTP base URL, published as the `http` state. */
  readonly http: string;
  /** Live keys of this node; published every `keysIntervalMs` when it changed. */
  readonly keyCount?: () => number;
  readonly keysIntervalMs?: number;
  readonly clock?: Clock;
  /** True when the node was given seeds: it is not `ready()` until it sees another member alive. */
  readonly expectPeers?: boolean;
}

export interface GossipMembership extends MembershipView {
  /** Publishes the node status (`starting`, `serving`, `stopping`). */
  setStatus(status: string): void;
  /** Stops publishing and listening. */
  close(): void;
}

/**
 * A `MembershipView` over the gossip runtime: members and their state come
 * from gossip; this node publishes its HTTP address, status and key count as
 * gossip application state, so every member can reach every other's
 * internode API and `/v1/cluster` can show key counts.
 */
export function connectGossip(runtime: GossipLike, options: ConnectGossipOptions): GossipMembership {
  runtime.setLocalState(GOSSIP_STATE_HTTP, options.http);
  runtime.setLocalState(GOSSIP_STATE_STATUS, 'starting');
  const listeners = new Set<() => void>();
  // The view is read on every request; rebuild it only when gossip reports a change.
  let snapshot: MemberInfo[] | undefined;
  const unsubscribe = runtime.on('event', () => {
    snapshot = undefined;
    for (const l of [...listeners]) l();
  });
  let cancelTimer: (() => void) | undefined;
  let lastKeys = -1;
  const publishKeys = (): void => {
    if (options.keyCount === undefined) return;
    const n = options.keyCount();
    if (n !== lastKeys) {
      lastKeys = n;
      try {
        runtime.setLocalState(GOSSIP_STATE_KEYS, String(n));
      } catch {
        return; // the runtime stopped
      }
      // Our own state changes raise no gossip event here, so drop the cached view ourselves.
      snapshot = undefined;
    }
    if (options.clock !== undefined) cancelTimer = options.clock.setTimer(publishKeys, options.keysIntervalMs ?? 5000);
  };
  publishKeys();

  return {
    selfId: runtime.id,
    members(): MemberInfo[] {
      snapshot ??= runtime.members().map((m) => {
        const keys = Number(m.state[GOSSIP_STATE_KEYS]);
        return {
          id: m.id,
          state: m.status,
          http: m.state[GOSSIP_STATE_HTTP] ?? '',
          gossip: m.address,
          incarnation: m.incarnation,
          ...(Number.isSafeInteger(keys) && keys >= 0 ? { keys } : {}),
          ...(m.state[GOSSIP_STATE_STATUS] === undefined ? {} : { status: m.state[GOSSIP_STATE_STATUS] }),
          ...(m.state[GOSSIP_STATE_RING] === undefined ? {} : { ring: m.state[GOSSIP_STATE_RING] }),
          ...(m.state[GOSSIP_STATE_XFER] === undefined ? {} : { xfer: m.state[GOSSIP_STATE_XFER] }),
        };
      });
      return snapshot;
    },
    ready() {
      if (options.expectPeers !== true) return true;
      return this.members().some((m) => m.id !== runtime.id && m.state === 'alive');
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    setStatus(status) {
      runtime.setLocalState(GOSSIP_STATE_STATUS, status);
      snapshot = undefined;
    },
    publish(key, value) {
      try {
        runtime.setLocalState(key, value);
      } catch {
        return; // the runtime stopped (or left)
      }
      // Our own state changes raise no gossip event here, so drop the cached view ourselves.
      snapshot = undefined;
    },
    close() {
      unsubscribe();
      listeners.clear();
      cancelTimer?.();
    },
  };
}
