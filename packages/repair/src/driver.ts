import { randomBytes } from 'node:crypto';
import { SALT_BYTES } from './messages.ts';
import { repairRange } from './session.ts';
import type { RepairClock, RepairResult, RepairSessionInput } from './session.ts';

/** Real time: performance.now and setTimeout. The only clock this package reads. */
export const systemClock: RepairClock = {
  nowMs: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export type RunRepairSessionOptions = Omit<RepairSessionInput, 'salt' | 'clock'> & {
  /** Default: SALT_BYTES random bytes. */
  readonly salt?: Uint8Array;
  /** Default: systemClock. */
  readonly clock?: RepairClock;
};

/**
 * The runtime entry point: `repairRange` with a random salt and the real
 * clock. This is what the cluster's background repair and `hearsay repair`
 * call, once per partition range and peer.
 */
export function runRepairSession(options: RunRepairSessionOptions): Promise<RepairResult> {
  return repairRange({ ...options, salt: options.salt ?? randomBytes(SALT_BYTES), clock: options.clock ?? systemClock });
}
