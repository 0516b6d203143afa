import { StorageError } from './errors.ts';

/** Argument checks shared by the store's facade and its open options. */

export function argError(message: string): StorageError {
  return new StorageError('INVALID_ARGUMENT', message);
}

/** `v` as an integer in [min, max], else INVALID_ARGUMENT naming it. */
export function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw argError(`${name} must be an integer in [${min}, ${max}]`);
  return v;
}

/** `v` when it is a string or absent, else INVALID_ARGUMENT naming it. */
export function checkOptionalString(name: string, v: unknown): string | undefined {
  if (v !== undefined && typeof v !== 'string') throw argError(`${name} must be a string`);
  return v;
}
