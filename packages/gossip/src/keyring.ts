/**
 * Keyring for AES-256-GCM encryption of gossip packets and stream frames
 * (memberlist `keyring.go` + `security.go`).
 *
 * One key is primary: every outgoing message is encrypted with it. Every
 * installed key may decrypt. Each encrypted message names its key by a 4-byte
 * key id (the first 4 bytes of SHA-256 of the key), so the receiver picks the
 * key directly instead of trying them all; ids are derived, so operators only
 * distribute keys.
 *
 * Rotation without downtime (the procedure in README.md):
 * 1. `addKey(new)` on every member (it now decrypts both, still sends old);
 * 2. `useKey(new)` on every member (it now sends new, still decrypts old);
 * 3. `removeKey(old)` on every member.
 * A member never loses traffic because at every step every message in flight
 * is encrypted with a key every member holds.
 *
 * Nonces are 12 random bytes per message (`crypto.randomBytes`), safe for
 * about 2^32 messages per key; rotate keys well before that.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, scryptSync } from 'node:crypto';

export const KEY_BYTES = 32;
export const KEY_ID_BYTES = 4;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
/** Bytes an encrypted message carries on top of its plaintext: key id, nonce, tag. */
export const ENCRYPTION_OVERHEAD_BYTES = KEY_ID_BYTES + NONCE_BYTES + TAG_BYTES;

export type KeyringErrorCode =
  /** A key that is not exactly 32 bytes (or not valid base64 of 32 bytes). */
  | 'KEYRING_BAD_KEY'
  /** A keyring needs at least one key. */
  | 'KEYRING_EMPTY'
  /** `useKey`/`removeKey` named a key that is not installed. */
  | 'KEYRING_KEY_NOT_FOUND'
  /** Removing the primary key is refused: promote another key first. */
  | 'KEYRING_REMOVE_PRIMARY';

export class KeyringError extends Error {
  override readonly name = 'KeyringError';
  readonly code: KeyringErrorCode;
  constructor(code: KeyringErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** A key as bytes, or as base64 text of 32 bytes (the `--cluster-key` form). */
export type KeyInput = Uint8Array | string;

interface InstalledKey {
  readonly id: number;
  readonly key: Buffer;
}

function toKey(input: KeyInput): Buffer {
  const key = typeof input === 'string' ? Buffer.from(input, 'base64') : Buffer.from(input);
  if (key.byteLength !== KEY_BYTES) {
    throw new KeyringError('KEYRING_BAD_KEY', `a key must be ${KEY_BYTES} bytes (base64: 44 characters), got ${key.byteLength} bytes`);
  }
  return key;
}

/** The 4-byte id of a key, as an unsigned 32-bit number. */
export function keyIdOf(input: KeyInput): number {
  return createHash('sha256').update(toKey(input)).digest().readUInt32BE(0);
}

/** A fresh random key as base64 (for `hearsay start --cluster-key`). */
export function generateKey(): string {
  return randomBytes(KEY_BYTES).toString('base64');
}

/** Fixed salt: every member must derive the same key from the same secret. Changing it is a wire change. */
const SECRET_SALT = 'hearsay-gossip-key-v1';

/**
 * A key from an operator's secret (`--cluster-key`): base64 of 32 bytes is
 * used as is; any other non-empty text is stretched with scrypt (N = 2^14, so
 * a weak passphrase costs an attacker ~50 ms a guess). Returns base64.
 * Throws `KEYRING_BAD_KEY` for an empty secret.
 */
export function deriveKey(secret: string): string {
  if (secret.length === 0) throw new KeyringError('KEYRING_BAD_KEY', 'the cluster secret is empty');
  if (/^[A-Za-z0-9+/]{43}=$/.test(secret)) return secret;
  return scryptSync(secret, SECRET_SALT, KEY_BYTES, { N: 1 << 14, r: 8, p: 1 }).toString('base64');
}

export interface EncryptedParts {
  keyId: number;
  nonce: Uint8Array;
  /** Ciphertext followed by the 16-byte GCM tag. */
  sealed: Uint8Array;
}

export class Keyring {
  #keys: InstalledKey[] = [];
  #primary: InstalledKey;

  /** The first key is primary; the others may decrypt. Throws `KEYRING_EMPTY` or `KEYRING_BAD_KEY`. */
  constructor(keys: readonly KeyInput[]) {
    if (keys.length === 0) throw new KeyringError('KEYRING_EMPTY', 'a keyring needs at least one key');
    for (const k of keys) this.addKey(k);
    this.#primary = this.#keys[0]!;
  }

  /** Install a key for decryption. Adding a key twice is a no-op. */
  addKey(input: KeyInput): void {
    const key = toKey(input);
    if (this.#keys.some((k) => k.key.equals(key))) return;
    this.#keys.push({ id: keyIdOf(key), key });
  }

  /** Make an installed key the primary (used to encrypt from now on). */
  useKey(input: KeyInput): void {
    this.#primary = this.#find(toKey(input));
  }

  /** Uninstall a key. Refuses the primary (`KEYRING_REMOVE_PRIMARY`). */
  removeKey(input: KeyInput): void {
    const found = this.#find(toKey(input));
    if (found === this.#primary) {
      throw new KeyringError('KEYRING_REMOVE_PRIMARY', 'cannot remove the primary key; useKey() another key first');
    }
    this.#keys = this.#keys.filter((k) => k !== found);
  }

  /** Installed keys as base64, primary first. */
  keys(): string[] {
    return [this.#primary, ...this.#keys.filter((k) => k !== this.#primary)].map((k) => k.key.toString('base64'));
  }

  primaryKeyId(): number {
    return this.#primary.id;
  }

  /** Encrypt with the primary key; `aad` is authenticated, not encrypted. */
  encrypt(plaintext: Uint8Array, aad: Uint8Array): EncryptedParts {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#primary.key, nonce);
    cipher.setAAD(aad);
    const body = cipher.update(plaintext);
    const final = cipher.final();
    const sealed = Buffer.concat([body, final, cipher.getAuthTag()]);
    return { keyId: this.#primary.id, nonce, sealed };
  }

  /**
   * Decrypt with the installed key(s) whose id is `keyId`. Returns `undefined`
   * when no installed key has that id or authentication fails; never throws.
   */
  decrypt(keyId: number, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | undefined {
    if (nonce.byteLength !== NONCE_BYTES || sealed.byteLength < TAG_BYTES) return undefined;
    const ciphertext = sealed.subarray(0, sealed.byteLength - TAG_BYTES);
    const tag = sealed.subarray(sealed.byteLength - TAG_BYTES);
    for (const k of this.#keys) {
      if (k.id !== keyId) continue;
      try {
        const decipher = createDecipheriv('aes-256-gcm', k.key, nonce);
        decipher.setAAD(aad);
        decipher.setAuthTag(tag);
        return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
      } catch {
        // Authentication failed with this key; a colliding id may still match another.
      }
    }
    return undefined;
  }

  #find(key: Buffer): InstalledKey {
    const found = this.#keys.find((k) => k.key.equals(key));
    if (found === undefined) throw new KeyringError('KEYRING_KEY_NOT_FOUND', 'key is not installed');
    return found;
  }
}
