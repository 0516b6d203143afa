import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ClusterError } from './errors.ts';
import { decodeRing, encodeRing, type Ring } from './ring.ts';

/**
 * What a node keeps of the topology across restarts (docs/topology.md): the
 * ring it last acknowledged, its data dir's instance id, and the progress of
 * what it is filling. Saved before the node acknowledges a ring, so a
 * restarted node is never behind what it told the others.
 */
export interface TopologyState {
  /** Random id of this data dir, made when the node first starts on it. */
  readonly instance: string;
  readonly ring: Ring;
  /** Set while a replacement (`--replace`) fills its partitions; `done` lists the filled ones. */
  readonly replace?: { readonly done: readonly number[] };
  /** Partitions filled for the active change this node gains from (by change key and epoch). */
  readonly transfer?: { readonly change: string; readonly epoch: string; readonly done: readonly number[] };
}

export interface TopologyPersistence {
  /** The state last saved; undefined on a data dir that never had one. */
  load(): Promise<TopologyState | undefined>;
  /** Durably replaces the state. */
  save(state: TopologyState): Promise<void>;
}

const FORMAT = 1;

function partitions(x: unknown, what: string): number[] {
  if (!Array.isArray(x) || !x.every((p) => Number.isSafeInteger(p) && (p as number) >= 0)) throw new Error(`${what} is not a list of partitions`);
  return x as number[];
}

/** Encodes a state as JSON text. */
export function encodeTopologyState(state: TopologyState): string {
  return `${JSON.stringify({
    format: FORMAT,
    instance: state.instance,
    ring: encodeRing(state.ring),
    ...(state.replace === undefined ? {} : { replace: { done: [...state.replace.done] } }),
    ...(state.transfer === undefined ? {} : { transfer: { ...state.transfer, done: [...state.transfer.done] } }),
  })}\n`;
}

/** Decodes `encodeTopologyState`'s text; throws on anything else. */
export function decodeTopologyState(text: string): TopologyState {
  const raw = JSON.parse(text) as Record<string, unknown>;
  if (raw['format'] !== FORMAT) throw new Error(`unknown format ${String(raw['format'])}`);
  const instance = raw['instance'];
  if (typeof instance !== 'string' || instance.length === 0) throw new Error('no instance id');
  const replace = raw['replace'] as { done?: unknown } | undefined;
  const transfer = raw['transfer'] as { change?: unknown; epoch?: unknown; done?: unknown } | undefined;
  if (transfer !== undefined && (typeof transfer.change !== 'string' || typeof transfer.epoch !== 'string')) throw new Error('malformed transfer');
  return {
    instance,
    ring: decodeRing(raw['ring']),
    ...(replace === undefined ? {} : { replace: { done: partitions(replace.done, 'replace.done') } }),
    ...(transfer === undefined ? {} : { transfer: { change: transfer.change as string, epoch: transfer.epoch as string, done: partitions(transfer.done, 'transfer.done') } }),
  };
}

/** A JSON file (`<data dir>/ring.json` for `hearsay start`), replaced atomically: written to a temporary file, flushed, renamed. */
export function fileTopologyPersistence(path: string): TopologyPersistence {
  return {
    async load() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
      try {
        return decodeTopologyState(text);
      } catch (error) {
        throw new ClusterError('BAD_CONFIG', `${path} does not hold a topology state: ${(error as Error).message}`, { cause: error });
      }
    },
    async save(state) {
      await mkdir(dirname(path), { recursive: true });
      const temporary = `${path}.${process.pid}.tmp`;
      await writeFile(temporary, encodeTopologyState(state), { flush: true });
      await rename(temporary, path);
    },
  };
}

/** Kept in memory (the simulation keeps one per node across its crashes, like a disk; tests). */
export function memoryTopologyPersistence(): TopologyPersistence & { state: TopologyState | undefined } {
  const p = {
    state: undefined as TopologyState | undefined,
    load: async () => (p.state === undefined ? undefined : decodeTopologyState(encodeTopologyState(p.state))),
    save: async (state: TopologyState) => {
      p.state = decodeTopologyState(encodeTopologyState(state));
    },
  };
  return p;
}
