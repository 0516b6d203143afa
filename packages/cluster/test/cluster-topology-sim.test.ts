/**
 * The deterministic simulation of membership changes (scenario in
 * sim/topology-scenario.ts): joins, decommissions, removals and
 * replacements under writes and quorum reads, with crashes, partitions and
 * stalls. HEARSAY_TOPOLOGY_SIM_SEEDS=N runs N seeds (default in the file);
 * HEARSAY_TOPOLOGY_SIM_SEED=S runs one; HEARSAY_SIM_TRACE=<key> prints its
 * history. A failure names its seed.
 */
import { describe, expect, it } from 'vitest';
import { runTopologySeed } from './sim/topology-scenario.ts';

function seeds(): number[] {
  const one = process.env['HEARSAY_TOPOLOGY_SIM_SEED'];
  if (one !== undefined && one !== '') return [Number(one)];
  const n = Number(process.env['HEARSAY_TOPOLOGY_SIM_SEEDS'] ?? '40');
  return Array.from({ length: n }, (_, i) => i + 1);
}

describe('membership changes in the cluster simulation', () => {
  it('gives the same run for the same seed', async () => {
    const a = await runTopologySeed(5);
    const b = await runTopologySeed(5);
    expect(b.fingerprint).toBe(a.fingerprint);
    expect(b.operations).toEqual(a.operations);
  });

  it('loses no acknowledged write and serves no stale quorum read while nodes join, leave, are removed and replaced', async () => {
    let acked = 0;
    let reads = 0;
    const committed = { join: 0, decommission: 0, remove: 0, replace: 0 };
    for (const seed of seeds()) {
      const r = await runTopologySeed(seed);
      acked += r.acked;
      reads += r.quorumReads;
      for (const k of Object.keys(committed) as (keyof typeof committed)[]) committed[k] += r.committed[k];
      if (r.problems.length > 0) {
        expect.fail(`seed ${seed} (rerun with HEARSAY_TOPOLOGY_SIM_SEED=${seed}):\n${r.problems.slice(0, 10).join('\n')}\noperations:\n${r.operations.join('\n')}`);
      }
    }
    console.log(`topology simulation: ${seeds().length} seeds, ${acked} acknowledged writes, ${reads} quorum reads checked, changes ${JSON.stringify(committed)}`);
    expect(acked).toBeGreaterThan(0);
    expect(reads).toBeGreaterThan(0);
    if (seeds().length >= 20) {
      // Every kind of change actually ran.
      for (const k of Object.keys(committed) as (keyof typeof committed)[]) expect(committed[k], k).toBeGreaterThan(0);
    }
  }, 600_000);
});
