import type { Store } from '@hearsay/storage';
import type { RepairRange } from './anti-entropy.ts';
import type { RepairResponder } from './internode-handler.ts';
import type { Timers } from './timers.ts';

// PLACEHOLDER until @hearsay/repair exports its session and responder.
export function createRepairRange(_store: Store, _timers: Timers): RepairRange {
  return async () => {
    throw new Error('@hearsay/repair is not wired yet');
  };
}

export function createRepairResponder(_store: Store): RepairResponder {
  return async () => {
    throw new Error('@hearsay/repair is not wired yet');
  };
}
