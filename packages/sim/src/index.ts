// @hearsay/sim: deterministic simulation kit — seeded PRNG, virtual clock and
// scheduler, simulated network (loss, delay, jitter, partitions, crashes, stalls).

export { Random, createRandom, seedFromEnv } from './random.ts';
export { Scheduler } from './scheduler.ts';
export type { EventCallback } from './scheduler.ts';
export { SimNetwork, DEFAULT_LINK } from './network.ts';
export type { LinkParams, NetworkStats, Receiver } from './network.ts';
export { percentile } from './stats.ts';
