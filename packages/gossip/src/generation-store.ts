/**
 * Persistence of a member's generation, so a restarted member rejoins as
 * itself with a higher generation and every peer prefers its fresh facts over
 * the ones it held before the restart (Cassandra's generation number).
 *
 * Only the generation is stored: the incarnation restarts at 0 in each new
 * generation, because liveness facts compare (generation, incarnation).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface GenerationStore {
  /** The generation last saved, or undefined on a first start. */
  load(): Promise<number | undefined>;
  /** Durably record `generation` before the member announces it. */
  save(generation: number): Promise<void>;
}

export type GenerationStoreErrorCode = 'GENERATION_STORE_CORRUPT';

export class GenerationStoreError extends Error {
  override readonly name = 'GenerationStoreError';
  readonly code: GenerationStoreErrorCode;
  constructor(code: GenerationStoreErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * The next generation: above the stored one and at least the boot time in
 * ms, so a member whose file was lost still (very likely) outranks its past.
 */
export function nextGeneration(stored: number | undefined, nowMs: number): number {
  return Math.max((stored ?? 0) + 1, Math.floor(nowMs));
}

/** A small JSON file `{ "generation": n }`, replaced atomically (write then rename). */
export function fileGenerationStore(path: string): GenerationStore {
  return {
    async load() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
      let generation: unknown;
      try {
        generation = (JSON.parse(text) as { generation?: unknown }).generation;
      } catch {
        generation = undefined;
      }
      if (typeof generation !== 'number' || !Number.isSafeInteger(generation) || generation < 0) {
        throw new GenerationStoreError('GENERATION_STORE_CORRUPT', `${path} does not hold a generation number`);
      }
      return generation;
    },
    async save(generation) {
      await mkdir(dirname(path), { recursive: true });
      const temporary = `${path}.${process.pid}.tmp`;
      await writeFile(temporary, `${JSON.stringify({ generation })}\n`, { flush: true });
      await rename(temporary, path);
    },
  };
}

/** In-memory store (tests, and embedders that persist elsewhere). */
export function memoryGenerationStore(initial?: number): GenerationStore & { value: number | undefined } {
  const store = {
    value: initial,
    load: async () => store.value,
    save: async (generation: number) => {
      store.value = generation;
    },
  };
  return store;
}
