import { randomBytes } from 'node:crypto';
import { realClock } from '@hearsay/clock';
import { SALT_BYTES } from './messages.ts';
import { repairRange } from './session.ts';
import type { RepairResult, RepairSessionInput } from './session.ts';

export type RunRepairSessionOptions = Omit<RepairSessionInput, 'salt' | 'clock'> & {
  /** Default: SALT_BYTES random bytes. */
  readonly salt?: Uint8Array;
  /** Default: `realClock` of `@hearsay/clock`. */
  readonly clock?: RepairSessionInput['clock'];
};

/**
 * The runtime entry point: `repairRange` with a random salt and, unless
 * given, the real clock. The cluster's repair sessions (background
 * anti-entropy and `hearsay repair`) run through it, once per partition range
 * and peer, passing the node's clock; the repair benchmark too.
 */
export function runRepairSession(options: RunRepairSessionOptions): Promise<RepairResult> {
  return repairRange({ ...options, salt: options.salt ?? randomBytes(SALT_BYTES), clock: options.clock ?? realClock });
}
