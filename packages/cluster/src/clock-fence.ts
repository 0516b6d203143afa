import type { Clock } from '@hearsay/clock';
import type { ClockOffset, GossipRuntime } from '@hearsay/gossip';
import type { ClockStatus } from '@hearsay/storage';
import { isReachable, type MembershipView } from './membership.ts';

/**
 * Self-fencing on clock offsets: a node whose clock is beyond the maximum
 * offset against a majority of the members it can reach stops coordinating
 * writes, says so, and resumes by itself once back within it.
 *
 * Last-write-wins orders writes by their coordinators' clocks, so the
 * promise "an acknowledged write is never silently overwritten by a write
 * that happened before it in real time" holds only while the clocks are
 * within the maximum offset of each other (the same promise CockroachDB
 * makes for `--max-offset`, and its nodes' remote clock monitor is what this
 * is modelled on). Gossip measures each member's offset from its probes
 * (NTP-style, the round trip as the error bound); this class judges them:
 *
 * - an estimate is *within* when `|offset| + error <= max`, *beyond* when
 *   `|offset| - error > max`, else uncertain (as is a member not measured);
 * - with `n` members reachable (this node included), this node may stamp
 *   writes when itself plus the members within are more than half of `n`
 *   (`ok`); it is `skewed` when the members beyond are more than half of
 *   `n`; otherwise `unverified` (not enough measurements yet: just started,
 *   just joined, or right after its wall clock jumped). A node that reaches
 *   no other member has nothing to compare with, and is `ok`.
 * - its store's clock running more than the maximum offset ahead of its wall
 *   clock (a high-water mark accepted from a clock that was ahead, or a wall
 *   clock set back) is `ahead`: the store stamps nothing until it catches up.
 *
 * Only `ok` coordinates writes: `skewed` and `ahead` refuse them with 503
 * `CLOCK_SKEW`, `unverified` with 503 `UNAVAILABLE`. Reads, replication,
 * hints and repair go on in every state.
 *
 * A jump of the wall clock (against a monotonic clock) makes every estimate
 * taken before it worthless: until each member is measured again, it counts
 * as not measured. So a node whose clock is stepped is fenced from its next
 * write on, not from its next probe.
 */

export type { ClockOffset };

/**
 * Where offsets come from: the gossip runtime itself (`GossipRuntime.clockOffsets()`,
 * `ClockOffset` of `@hearsay/gossip`: offset, error bound, when measured), or
 * a test double with the same method. Members not measured are absent.
 */
export type ClockOffsetSource = Pick<GossipRuntime, 'clockOffsets'>;

export type ClockState = 'ok' | 'unverified' | 'skewed' | 'ahead';

/** What the fence concluded, and the figures behind it. */
export interface ClockVerdict {
  readonly state: ClockState;
  /** For people: why writes are refused (absent when `ok`). */
  readonly reason?: string;
  readonly maxOffsetMs: number;
  /** Other members reachable, and of those how many were measured within and beyond the maximum offset. */
  readonly reachable: number;
  readonly within: number;
  readonly beyond: number;
  /**
   * This node's clock against the members it is beyond (median, ms; positive:
   * this node is ahead), and the error of that estimate. Only when `skewed`.
   */
  readonly offsetMs?: number;
  readonly errorMs?: number;
  /** While `ahead`: when its store stamps again (epoch ms, its wall clock). */
  readonly stampsResumeAtMs?: number;
  /** False when no offset source is wired: the fence then only watches the store's clock. */
  readonly measuring: boolean;
}

/** A member's offset as the views show it (`/v1/cluster`, `/metrics`). */
export interface MemberClock extends ClockOffset {
  /** 'within', 'beyond' or 'uncertain' against the maximum offset. */
  readonly judged: 'within' | 'beyond' | 'uncertain';
}

export interface ClockFenceOptions {
  readonly membership: MembershipView;
  readonly store: { clockStatus(): ClockStatus };
  /** Offsets measured by gossip. None: nothing to compare with (the fence watches only the store's clock). */
  readonly offsets?: ClockOffsetSource;
  /** The node's clock: `now()` is the wall clock the offsets are about (epoch ms); its timers run the periodic check. */
  readonly clock: Clock;
  /** A clock that never jumps (performance.now(), or the simulation's time), to notice `clock.now()` jumping. */
  readonly monotonicMs: () => number;
  /** How often the verdict is taken without a write asking (for the logs and health). Default 1000 ms; 0: never. */
  readonly checkIntervalMs?: number;
  /** A write reuses a verdict at most this old (monotonic ms). Default 100 ms. */
  readonly cacheMs?: number;
  /** A wall clock that moves this much more or less than the monotonic one has jumped. Default: a tenth of the maximum offset, at least 5 ms. */
  readonly jumpToleranceMs?: number;
  /** Told when the state changes (the node logs it), and when the wall clock jumped. */
  readonly onChange?: (verdict: ClockVerdict, previous: ClockVerdict) => void;
  readonly onJump?: (jumpMs: number) => void;
}

export class ClockFence {
  readonly #o: ClockFenceOptions;
  readonly #maxOffsetMs: number;
  readonly #cacheMs: number;
  readonly #jumpToleranceMs: number;
  #verdict: ClockVerdict;
  #verdictAtMs = -Infinity;
  #lastSkewMs: number;
  /** Estimates taken before the last jump of the wall clock: member → its measuredAtMs then. */
  readonly #stale = new Map<string, number>();
  #cancelTimer: (() => void) | undefined;
  #stopped = true;
  /** Writes refused because of the clock, by state. */
  readonly refusals = { unverified: 0, skewed: 0, ahead: 0 };
  /** Wall-clock jumps seen. */
  jumps = 0;

  constructor(options: ClockFenceOptions) {
    this.#o = options;
    this.#maxOffsetMs = options.store.clockStatus().maxOffsetMs;
    this.#cacheMs = options.cacheMs ?? 100;
    this.#jumpToleranceMs = options.jumpToleranceMs ?? Math.max(5, this.#maxOffsetMs / 10);
    this.#lastSkewMs = options.clock.now() - options.monotonicMs();
    this.#verdict = this.#judge();
  }

  get maxOffsetMs(): number {
    return this.#maxOffsetMs;
  }

  /** The verdict now (re-taken when older than `cacheMs`, or when the wall clock jumped). */
  verdict(): ClockVerdict {
    const jumped = this.#checkJump();
    if (jumped || this.#o.monotonicMs() - this.#verdictAtMs >= this.#cacheMs) this.#update();
    return this.#verdict;
  }

  /** Re-takes the verdict now, whatever its age. */
  refresh(): ClockVerdict {
    this.#checkJump();
    this.#update();
    return this.#verdict;
  }

  /** Counts a write refused in `state` (the coordinator refuses it). */
  countRefusal(state: Exclude<ClockState, 'ok'>): void {
    this.refusals[state]++;
  }

  /** Every reachable member's offset as measured (not measured ones absent), judged against the maximum offset. */
  memberClocks(): Map<string, MemberClock> {
    const out = new Map<string, MemberClock>();
    const offsets = this.#o.offsets?.clockOffsets();
    if (offsets === undefined) return out;
    for (const [id, o] of offsets) out.set(id, { ...o, judged: this.#judgeOne(o) });
    return out;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
  }

  #schedule(): void {
    const every = this.#o.checkIntervalMs ?? 1000;
    if (this.#stopped || every <= 0) return;
    this.#cancelTimer = this.#o.clock.setTimer(() => {
      this.refresh();
      this.#schedule();
    }, every);
  }

  #update(): void {
    const previous = this.#verdict;
    this.#verdict = this.#judge();
    this.#verdictAtMs = this.#o.monotonicMs();
    if (this.#verdict.state !== previous.state) this.#o.onChange?.(this.#verdict, previous);
  }

  /** Compares the wall clock's progress with the monotonic clock's; on a jump, forgets the estimates taken before. */
  #checkJump(): boolean {
    const skew = this.#o.clock.now() - this.#o.monotonicMs();
    const jumpMs = skew - this.#lastSkewMs;
    this.#lastSkewMs = skew;
    if (Math.abs(jumpMs) <= this.#jumpToleranceMs) return false;
    this.jumps++;
    const offsets = this.#o.offsets?.clockOffsets();
    if (offsets !== undefined) for (const [id, o] of offsets) this.#stale.set(id, o.measuredAtMs);
    this.#o.onJump?.(jumpMs);
    return true;
  }

  #judgeOne(o: ClockOffset): MemberClock['judged'] {
    const abs = Math.abs(o.offsetMs);
    if (abs + o.errorMs <= this.#maxOffsetMs) return 'within';
    if (abs - o.errorMs > this.#maxOffsetMs) return 'beyond';
    return 'uncertain';
  }

  #judge(): ClockVerdict {
    const maxOffsetMs = this.#maxOffsetMs;
    const measuring = this.#o.offsets !== undefined;
    const status = this.#o.store.clockStatus();
    const { selfId } = this.#o.membership;
    const peers = this.#o.membership.members().filter((m) => m.id !== selfId && isReachable(m));
    const offsets = this.#o.offsets?.clockOffsets();
    let within = 0;
    const beyond: ClockOffset[] = [];
    if (offsets !== undefined) {
      for (const m of peers) {
        const o = offsets.get(m.id);
        if (o === undefined) continue;
        const staleAt = this.#stale.get(m.id);
        if (staleAt !== undefined) {
          if (staleAt === o.measuredAtMs) continue;
          this.#stale.delete(m.id);
        }
        const judged = this.#judgeOne(o);
        if (judged === 'within') within++;
        else if (judged === 'beyond') beyond.push(o);
      }
    }
    const base = { maxOffsetMs, reachable: peers.length, within, beyond: beyond.length, measuring };
    if (status.stampsResumeAtMs !== null) {
      return {
        ...base,
        state: 'ahead',
        stampsResumeAtMs: status.stampsResumeAtMs,
        reason: `clock ahead: this node's clock runs ${status.aheadMs} ms ahead of its wall clock (more than the maximum offset of ${maxOffsetMs} ms: ` +
          `its wall clock was set back, or it started from a high-water mark of a clock that was ahead); it stamps no version until ` +
          `${new Date(status.stampsResumeAtMs).toISOString()}`,
      };
    }
    const n = peers.length + 1;
    if (!measuring || peers.length === 0 || 1 + within > n / 2) return { ...base, state: 'ok' };
    if (beyond.length > n / 2) {
      // Ours against theirs: a member `offsetMs` ahead of us means we are that much behind it.
      const ours = beyond.map((o) => -o.offsetMs).sort((a, b) => a - b);
      const offsetMs = Math.round(ours[Math.floor(ours.length / 2)] as number);
      const errorMs = Math.ceil(Math.max(...beyond.map((o) => o.errorMs)));
      return {
        ...base,
        state: 'skewed',
        offsetMs,
        errorMs,
        reason: `clock skew: this node's clock is ${Math.abs(offsetMs)} ms (±${errorMs} ms) ${offsetMs > 0 ? 'ahead of' : 'behind'} ` +
          `${beyond.length} of the ${peers.length} other members it can reach, more than the maximum offset of ${maxOffsetMs} ms; ` +
          'it coordinates no writes until its clock is back within it (check NTP on this machine)',
      };
    }
    const unmeasured = peers.length - within - beyond.length;
    return {
      ...base,
      state: 'unverified',
      reason: `clock offset not verified: of the ${peers.length} other members this node can reach, ${within} measured within the ` +
        `maximum offset of ${maxOffsetMs} ms, ${beyond.length} beyond it, ${unmeasured} not (yet) measured or uncertain; ` +
        'it coordinates no writes until a majority is measured within it',
    };
  }
}
