/**
 * What a node says about itself: `/v1/cluster` (the members, the
 * partitions each replicates, their ring status and the membership change
 * in progress), `/v1/health`, `/metrics` (the coordinator's
 * counters, hints and members), and `POST /v1/repair`, which the cluster
 * node wires to anti-entropy.
 */
import type { ClusterView, HealthReport, RepairLine, RepairOptions } from '@hearsay/service';
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
    return {
      self: membership.selfId,
      members: membership
        .members()
        .map((m) => {
          const ring = ownership.statusOf(m.id);
          // A live member taking over or handing off partitions shows as joining / leaving.
          const moving = ring === 'joining' || ring === 'leaving';
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
    const members = membership.members();
    return {
      ok: true,
      members: members.length,
      reachable: members.filter((m) => m.id === membership.selfId || isReachable(m)).length,
      replicationFactor: this.#ctx.placement.current.replicationFactor,
      hints: this.#ctx.hints.count(),
    };
  }

  repair(options: RepairOptions): AsyncIterable<RepairLine> {
    const repair = this.#deps.repair;
    if (repair === undefined) {
      return (async function* () {
        yield {
          type: 'summary',
          inSync: true,
          rangesCompared: 0,
          keysSent: 0,
          keysReceived: 0,
          bytesSent: 0,
          bytesReceived: 0,
          durationMs: 0,
          message: 'repair is not configured on this node',
        } satisfies RepairLine;
      })();
    }
    return repair(options);
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
      ...metricFamily('hearsay_cluster_hints', 'gauge', 'Hints kept on this node for other members.', [['', h.hints]]),
      ...metricFamily('hearsay_cluster_hints_total', 'counter', 'Hints by what happened to them.', [
        ['event="stored"', h.stored],
        ['event="refused"', h.refused],
        ['event="delivered"', h.delivered],
        ['event="expired"', h.expired],
        ['event="handed_to_stand_in"', c.hintsHandedToStandIns],
      ]),
      ...metricFamily('hearsay_cluster_members', 'gauge', 'Members known, by state.',
        ['alive', 'suspect', 'dead', 'left'].map((state) => [`state="${state}"`, byState.get(state) ?? 0] as const)),
    ].join('\n') + '\n' + this.#ctx.ownership.metrics() + (this.#deps.extraMetrics?.() ?? '');
  }
}
