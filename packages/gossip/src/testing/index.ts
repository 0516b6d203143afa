// @hearsay/gossip/testing: what simulations and tests of gossip need, apart
// from the runtime entry point (which never loads @hearsay/sim):
//   - the simulated transport (`Transport` over @hearsay/sim's network) and
//     its virtual clock, to run `startGossip` on virtual time;
//   - SimCluster, N pure cores on one simulated network with crash, restart,
//     stall, partition and clock-skew helpers.

export { createSimTransport, simClock, SimTransport } from './sim-transport.ts';
export type { SimTransportOptions, SimWire } from './sim-transport.ts';
export { packetBytes, SIM_EPOCH_MS, SimCluster, withSeed } from './sim-cluster.ts';
export type { ClockSkew, SimClusterOptions, SimPayload } from './sim-cluster.ts';
