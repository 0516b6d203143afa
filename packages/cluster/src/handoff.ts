import type { Store } from '@hearsay/storage';
import type { HintStore } from './hint-store.ts';
import type { MembershipView } from './membership.ts';
import type { PeerFactory } from './peer.ts';
import type { Clock } from '@hearsay/clock';

export interface HandoffConfig {
  /** How often hints are offered to members that are alive. Default 10 s. */
  readonly intervalMs: number;
  /** Hints kept longer than this are dropped; repair covers them. Default 3 h (Cassandra's max_hint_window). */
  readonly windowMs: number;
  /** Hints per delivery request. Default 256. */
  readonly batchRecords: number;
}

export const DEFAULT_HANDOFF_CONFIG: HandoffConfig = { intervalMs: 10_000, windowMs: 3 * 60 * 60 * 1000, batchRecords: 256 };

export interface HandoffDeps {
  readonly hints: HintStore;
  readonly store: Store;
  readonly membership: MembershipView;
  readonly peers: PeerFactory;
  readonly clock: Clock;
  readonly config?: Partial<HandoffConfig>;
  readonly onError?: (what: string, error: unknown) => void;
}

/**
 * Hinted handoff: every `intervalMs` (and as soon as membership says a
 * member is alive again) hints are delivered to their targets that are
 * `alive`, a batch at a time, and removed once the target acknowledged them.
 * Hints older than `windowMs` are dropped first.
 */
export class HintedHandoff {
  readonly config: HandoffConfig;
  readonly #deps: HandoffDeps;
  #cancelTimer: (() => void) | undefined = undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = true;
  #unsubscribe: (() => void) | undefined;
  /** Hints a target refused as too far ahead of its clock (kept for a later round). */
  refusedForClock = 0;

  constructor(deps: HandoffDeps) {
    this.#deps = deps;
    this.config = { ...DEFAULT_HANDOFF_CONFIG, ...deps.config };
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#unsubscribe = this.#deps.membership.onChange(() => {
      const alive = new Set(this.#deps.membership.members().filter((m) => m.state === 'alive').map((m) => m.id));
      if (this.#deps.hints.targets().some((t) => alive.has(t))) void this.runOnce();
    });
    this.#schedule();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    await this.#running;
  }

  /** One delivery round now (coalesced with a round already running). */
  runOnce(): Promise<void> {
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        await this.#round();
      } while (this.#again && !this.#stopped);
    })().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#cancelTimer = this.#deps.clock.setTimer(() => {
      void this.runOnce().finally(() => this.#schedule());
    }, this.config.intervalMs);
  }

  async #round(): Promise<void> {
    const { hints, membership, clock } = this.#deps;
    try {
      await hints.expire(clock.now() - this.config.windowMs);
    } catch (e) {
      this.#deps.onError?.('expiring hints', e);
    }
    for (const target of hints.targets()) {
      if (this.#stopped) return;
      const member = membership.members().find((m) => m.id === target);
      if (target !== membership.selfId && member?.state !== 'alive') continue;
      try {
        for (;;) {
          const batch = await hints.peek(target, this.config.batchRecords);
          if (batch.length === 0) break;
          const records = batch.map((h) => h.record);
          const outcomes: readonly unknown[] =
            target === membership.selfId ? await this.#deps.store.applyEach(records) : await this.#deps.peers(member!).write(records);
          // A hint the target refused (a version too far ahead of its clock) stays: its clock may catch up within the hint window.
          const delivered = batch.filter((_, i) => !refusedForClock(outcomes[i]));
          await hints.markDelivered(delivered);
          if (delivered.length < batch.length) {
            this.refusedForClock += batch.length - delivered.length;
            this.#deps.onError?.(
              `delivering hints to ${target}`,
              new Error(`${batch.length - delivered.length} hints refused: versions more than its maximum clock offset ahead of its clock (clock skew); kept for the next round`),
            );
            break;
          }
          if (batch.length < this.config.batchRecords || this.#stopped) break;
        }
      } catch (e) {
        // The target went away again; the next round retries.
        this.#deps.onError?.(`delivering hints to ${target}`, e);
      }
    }
  }
}

/** An outcome of `applyEach` (`status: 'refused'`) or of a peer's write (`{ aheadMs }`) that refused a record for the clock. */
function refusedForClock(o: unknown): boolean {
  if (typeof o !== 'object' || o === null) return false;
  return (o as { status?: unknown }).status === 'refused' || 'aheadMs' in o;
}
