/**
 * The cluster keys of a node, for rotation without downtime, as the gossip
 * keyring does it: several keys are accepted, one (the primary, the first)
 * signs. Rotating on every node, one step at a time:
 *
 * 1. add the new key as a second key: every node still signs with the old
 *    one and now accepts both;
 * 2. make the new key the first: every node signs with it and still accepts
 *    the old one;
 * 3. remove the old key.
 *
 * At every step every request in flight is signed with a key every node
 * accepts. `replace` applies a step at once; listeners (the gossip keyring)
 * follow it.
 */
import { ClusterError } from './errors.ts';

export class ClusterKeys {
  #keys: readonly string[];
  readonly #listeners = new Set<(keys: readonly string[]) => void>();

  /** Throws `BAD_CONFIG` when `keys` is empty or holds an empty key. */
  constructor(keys: readonly string[]) {
    this.#keys = checked(keys);
  }

  /** The key that signs. */
  get primary(): string {
    return this.#keys[0]!;
  }

  /** Every accepted key, the primary first. */
  get all(): readonly string[] {
    return this.#keys;
  }

  /** A rotation step: `keys` (the primary first) replace the keys in force. Throws `BAD_CONFIG` and changes nothing for a bad list. */
  replace(keys: readonly string[]): void {
    this.#keys = checked(keys);
    for (const listener of this.#listeners) listener(this.#keys);
  }

  /** Calls `listener` after every `replace`; returns the function that stops it. */
  onChange(listener: (keys: readonly string[]) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** A key given as text, or the keys themselves; undefined or '' for none. */
export type ClusterKeyInput = string | ClusterKeys | undefined;

export function toClusterKeys(input: ClusterKeyInput): ClusterKeys | undefined {
  if (input === undefined || input === '') return undefined;
  return typeof input === 'string' ? new ClusterKeys([input]) : input;
}

function checked(keys: readonly string[]): readonly string[] {
  if (keys.length === 0) throw new ClusterError('BAD_CONFIG', 'a cluster needs at least one key');
  if (keys.some((key) => key === '')) throw new ClusterError('BAD_CONFIG', 'a cluster key is empty');
  if (new Set(keys).size !== keys.length) throw new ClusterError('BAD_CONFIG', 'a cluster key is listed twice');
  return [...keys];
}
