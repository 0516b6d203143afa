/**
 * What a node says about itself: `/v1/cluster` (the members, the partitions
 * each replicates, their ring status, each one's clock offset as measured
 * from here, this node's clock verdict, and the membership change in
 * progress), `/v1/health` (not ok while the clock fence refuses writes),
 * `/metrics` (the coordinator's counters, hints, members and clocks), and
 * `POST /v1/repair`, which the cluster node wires to anti-entropy.
 */
import { nothingToRepair, type ClusterView, type HealthReport, type RepairLine, type RepairOptions } from '@hearsay/service';
import { clockView } from './clock-answers.ts';
import type { CoordinatorContext } from './coordinator-context.ts';
import { utf8Compare } from './listing.ts';
import { isReachable, type MembershipView } from './membership.ts';
import { metricFamily } from './prom-text.ts';

export interface NodeReportDeps {
  readonly membership: MembershipView;
  /** Runs `POST /v1/repair`; absent, a repair reports that it is not configured. */
  readonly repair?: (options: RepairOptions) => AsyncIterable<RepairLine>;
  /** More Prometheus text for `metrics()` (the internode routes' and peer queues' figures). */
  readonly extraMetrics?: () => string;
  /** Whether the coordinator has stopped. */
  readonly stopped: () => boolean;
}

export class NodeReport {
  readonly #ctx: CoordinatorContext;
  readonly #deps: NodeReportDeps;

  constructor(ctx: CoordinatorContext, deps: NodeReportDeps) {
    this.#ctx = ctx;
    this.#deps = deps;
  }

  cluster(): ClusterView {
    const placement = this.#ctx.placement;
    const ownership = this.#ctx.ownership;
    const topology = ownership.report();
    const membership = this.#deps.membership;
    const selfId = membership.selfId;
    const fence = this.#ctx.clockFence;
    const clocks = fence?.memberClocks();
    const verdict = fence?.verdict();
    return {
      self: selfId,
      members: membership
        .members()
        .map((m) => {
          const ring = ownership.statusOf(m.id);
          // A live member taking over or handing off partitions shows as joining / leaving.
          const moving = ring === 'joining' || ring === 'leaving';
          const offset = clocks?.get(m.id);
          return {
            id: m.id,
            state: moving && isReachable(m) ? ring : m.state,
            http: m.http,
            gossip: m.gossip,
            incarnation: m.incarnation,
            ...(m.keys === undefined ? {} : { keys: m.keys }),
            ...(m.status === undefined ? {} : { status: m.status }),
            ...(ring === undefined ? {} : { ring }),
            partitions: [...placement.current.partitionsOf(m.id)],
            // Its clock as measured from here (positive: ahead of ours); this node's own verdict on itself.
            ...(offset === undefined ? {} : { clockOffsetMs: Math.round(offset.offsetMs), clockErrorMs: Math.ceil(offset.errorMs) }),
            ...(m.id === selfId && verdict !== undefined ? { clock: clockView(verdict) } : {}),
          };
        })
        .sort((a, b) => utf8Compare(a.id, b.id)),
      ...(topology === undefined ? {} : { topology }),
    };
  }

  health(): HealthReport {
    const membership = this.#deps.membership;
    if (this.#deps.stopped()) return { ok: false, reason: 'stopping' };
    const notServing = this.#ctx.ownership.notServing();
    if (notServing !== undefined) return { ok: false, reason: notServing };
    const storeProblem = this.#ctx.storeHealth?.problem();
    if (storeProblem !== undefined) return { ok: false, reason: storeProblem };
    const verdict = this.#ctx.clockFence?.verdict();
    const clock = verdict === undefined ? {} : { clock: clockView(verdict) };
    // A node that refuses writes for its clock is not serving: clients and load balancers should use another.
    if (verdict !== undefined && verdict.state !== 'ok') {
      // Flat figures too: a 503 health answer carries only plain fields beside its message.
      return {
        ok: false,
        reason: verdict.reason ?? verdict.state,
        clockState: verdict.state,
        maxClockOffsetMs: verdict.maxOffsetMs,
        ...(verdict.offsetMs === undefined ? {} : { clockOffsetMs: verdict.offsetMs }),
        ...(verdict.stampsResumeAtMs === undefined ? {} : { stampsResumeAtMs: verdict.stampsResumeAtMs }),
        ...clock,
      };
    }
    const members = membership.members();
    return {
      ok: true,
      members: members.length,
      reachable: members.filter((m) => m.id === membership.selfId || isReachable(m)).length,
      replicationFactor: this.#ctx.placement.current.replicationFactor,
      hints: this.#ctx.hints.count(),
      ...clock,
    };
  }

  repair(options: RepairOptions): AsyncIterable<RepairLine> {
    const repair = this.#deps.repair;
    return repair === undefined ? nothingToRepair('repair is not configured on this node') : repair(options);
  }

  metrics(): string {
    const c = this.#ctx.counters;
    const h = this.#ctx.hints.stats();
    const byState = new Map<string, number>();
    for (const m of this.#deps.membership.members()) byState.set(m.state, (byState.get(m.state) ?? 0) + 1);
    return [
      ...metricFamily('hearsay_cluster_requests_total', 'counter', 'Coordinator requests by kind and outcome.', [
        ['kind="write",outcome="ok"', c.writes - c.writeFailures],
        ['kind="write",outcome="failed"', c.writeFailures],
        ['kind="read",outcome="ok"', c.reads - c.readFailures],
        ['kind="read",outcome="failed"', c.readFailures],
      ]),
      ...metricFamily('hearsay_cluster_read_repairs_total', 'counter', 'Stale replicas written back by reads.', [['', c.readRepairs]]),
      ...metricFamily(
        'hearsay_cluster_writes_shed_total',
        'counter',
        'Client writes refused with 503 BUSY because too few of their replicas had room in their queues.',
        [['', c.writesShed]],
      ),
      ...metricFamily('hearsay_cluster_store_write_failures_total', 'counter', 'Writes to this node\'s store or hints that failed (I/O errors, a full disk).', [
        ['', this.#ctx.storeHealth?.failures ?? 0],
      ]),
      ...this.#clockMetrics(),
      ...metricFamily('hearsay_cluster_hints', 'gauge', 'Hints kept on this node for other members.', [['', h.hints]]),
      ...metricFamily('hearsay_cluster_hints_total', 'counter', 'Hints by what happened to them.', [
        ['event="stored"', h.stored],
        ['event="refused"', h.refused],
        ['event="refused_clock"', h.refusedClock],
        ['event="delivered"', h.delivered],
        ['event="expired"', h.expired],
        ['event="handed_to_stand_in"', c.hintsHandedToStandIns],
      ]),
      ...metricFamily('hearsay_cluster_members', 'gauge', 'Members known, by state.',
        ['alive', 'suspect', 'dead', 'left'].map((state) => [`state="${state}"`, byState.get(state) ?? 0] as const)),
    ].join('\n') + '\n' + this.#ctx.ownership.metrics() + (this.#deps.extraMetrics?.() ?? '');
  }

  /** The clock's figures for /metrics: offsets measured, the verdict, refusals. */
  #clockMetrics(): string[] {
    const ctx = this.#ctx;
    const status = ctx.store.clockStatus();
    const lines = [
      ...metricFamily('hearsay_storage_versions_refused_total', 'counter',
        'Records and versions this node\'s store refused for being more than the maximum clock offset ahead of its clock.', [['', status.versionsRefused]]),
      ...metricFamily('hearsay_storage_stamps_refused_total', 'counter',
        'Local stamps this node\'s store refused while its clock ran more than the maximum offset ahead of its wall clock.', [['', status.stampsRefused]]),
      ...metricFamily('hearsay_cluster_replica_clock_refusals_total', 'counter',
        'Records replicas refused (from this coordinator, read repair and hints) as more than their maximum clock offset ahead of their clocks.',
        [['', ctx.counters.replicaClockRefusals]]),
      ...metricFamily('hearsay_cluster_writes_restamped_total', 'counter',
        'Writes stamped again because a replica held a higher version than the one they were stamped with (clocks within the offset differ).',
        [['', ctx.counters.writesRestamped]]),
    ];
    const fence = ctx.clockFence;
    if (fence === undefined) return lines;
    const verdict = fence.verdict();
    const clocks = [...fence.memberClocks()].sort(([a], [b]) => utf8Compare(a, b));
    lines.push(
      ...metricFamily('hearsay_cluster_clock_max_offset_seconds', 'gauge', 'The maximum clock offset this node allows (--max-clock-offset-ms).', [
        ['', fence.maxOffsetMs / 1000],
      ]),
      ...metricFamily('hearsay_cluster_clock_offset_seconds', 'gauge',
        'Each member\'s clock minus this node\'s, as measured by gossip probes (positive: the member is ahead).',
        clocks.map(([id, o]) => [`member=${JSON.stringify(id)}`, o.offsetMs / 1000] as const)),
      ...metricFamily('hearsay_cluster_clock_offset_error_seconds', 'gauge', 'The error bound of each offset (half the probe round trip, widened as it ages).',
        clocks.map(([id, o]) => [`member=${JSON.stringify(id)}`, o.errorMs / 1000] as const)),
      ...metricFamily('hearsay_cluster_clock_state', 'gauge',
        'This node\'s clock verdict: 1 for the current state (ok, unverified, skewed, ahead); writes are coordinated only when ok.',
        (['ok', 'unverified', 'skewed', 'ahead'] as const).map((state) => [`state="${state}"`, verdict.state === state ? 1 : 0] as const)),
      ...metricFamily('hearsay_cluster_clock_writes_refused_total', 'counter', 'Client writes this node refused because of its clock, by state.',
        (['unverified', 'skewed', 'ahead'] as const).map((state) => [`state="${state}"`, fence.refusals[state]] as const)),
      ...metricFamily('hearsay_cluster_clock_jumps_total', 'counter', 'Wall-clock jumps this node noticed (offsets are measured again after one).', [
        ['', fence.jumps],
      ]),
    );
    return lines;
  }
}
