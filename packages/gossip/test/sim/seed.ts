// Seeds for simulation tests: fixed per test so CI is reproducible; override
// with SIM_SEED=<n> to explore. Every failure message names its seed.

export function testSeed(fallback: number): number {
  const s = process.env['SIM_SEED'];
  if (s !== undefined && s !== '' && Number.isInteger(Number(s))) return Number(s) >>> 0;
  return fallback;
}
