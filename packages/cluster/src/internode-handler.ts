import type { Store } from '@hearsay/storage';
import type { HintStore } from './hint-store.ts';
import type { InternodeRequest } from './internode-messages.ts';
import { scanLocal } from './scan.ts';
import type { Timers } from './timers.ts';

/** Answers one repair-session request from another node (the repair package's responder). */
export type RepairResponder = (message: unknown) => Promise<unknown>;

export interface InternodeHandlerDeps {
  readonly store: Store;
  readonly hints: HintStore;
  readonly timers: Timers;
  readonly repair?: RepairResponder;
  /** A purge request never purges tombstones younger than this, whatever the sender says. */
  readonly tombstoneGraceMs: number;
}

/**
 * Serves internode requests against this node's store and hint store. The
 * same handler sits behind the HTTP routes (internode-app.ts) and behind the
 * simulated network, so both carry exactly the same behaviour.
 */
export function createInternodeHandler(deps: InternodeHandlerDeps): (request: InternodeRequest) => Promise<unknown> {
  return async (request) => {
    switch (request.type) {
      case 'write': {
        const applied = await deps.store.applyMany(request.records);
        return { applied: applied.filter(Boolean).length };
      }
      case 'read': {
        const records = await deps.store.getRecords(request.keys);
        return { records: records.map((r) => r ?? null) };
      }
      case 'hint': {
        const kept = await deps.hints.add(request.target, request.records, deps.timers.nowMs());
        return { kept };
      }
      case 'scan':
        return scanLocal(deps.store, request);
      case 'repair': {
        if (deps.repair === undefined) throw new Error('repair is not served by this node');
        return { message: await deps.repair(request.message) };
      }
      case 'purge': {
        const beforeMs = Math.floor(Math.min(request.beforeMs, deps.timers.nowMs() - deps.tombstoneGraceMs));
        if (beforeMs <= 0) return { purged: 0 };
        const purged = await deps.store.purgeTombstones({ beforeMs, fromBucket: request.fromBucket, toBucket: request.toBucket });
        return { purged };
      }
      default: {
        const never: never = request;
        throw new Error(`unhandled ${String(never)}`);
      }
    }
  };
}
