import { describe, expect, it } from 'vitest';
import { deriveKey, generateKey, keyIdOf, Keyring, KeyringError } from './keyring.ts';

const aad = Buffer.from('header');
const plaintext = Buffer.from('hello gossip');

function roundTrip(sender: Keyring, receiver: Keyring): Uint8Array | undefined {
  const { keyId, nonce, sealed } = sender.encrypt(plaintext, aad);
  return receiver.decrypt(keyId, nonce, sealed, aad);
}

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof KeyringError ? error.code : 'NOT_A_KEYRING_ERROR';
  }
  return undefined;
}

describe('Keyring', () => {
  it('round-trips with the primary key and authenticates the associated data', () => {
    const ring = new Keyring([generateKey()]);
    expect(Buffer.from(roundTrip(ring, ring)!).toString()).toBe('hello gossip');
    const { keyId, nonce, sealed } = ring.encrypt(plaintext, aad);
    expect(ring.decrypt(keyId, nonce, sealed, Buffer.from('other header'))).toBeUndefined();
    const flipped = Buffer.from(sealed);
    flipped[0]! ^= 1;
    expect(ring.decrypt(keyId, nonce, flipped, aad)).toBeUndefined();
  });

  it('selects the key by id and refuses unknown ids', () => {
    const a = generateKey();
    const b = generateKey();
    const sender = new Keyring([b]);
    const { keyId, nonce, sealed } = sender.encrypt(plaintext, aad);
    expect(keyId).toBe(keyIdOf(b));
    expect(new Keyring([a]).decrypt(keyId, nonce, sealed, aad)).toBeUndefined();
    expect(new Keyring([a, b]).decrypt(keyId, nonce, sealed, aad)).toBeDefined();
  });

  it('rotates without downtime: add, use, remove; the old key decrypts until removed', () => {
    const oldKey = generateKey();
    const newKey = generateKey();
    const m1 = new Keyring([oldKey]);
    const m2 = new Keyring([oldKey]);
    // Step 1: both add the new key; they still send with the old one.
    m1.addKey(newKey);
    m2.addKey(newKey);
    expect(m1.primaryKeyId()).toBe(keyIdOf(oldKey));
    expect(roundTrip(m1, m2)).toBeDefined();
    // Step 2: m1 promotes first; m2 (not yet promoted) still reads it, and m1 reads m2.
    m1.useKey(newKey);
    expect(m1.primaryKeyId()).toBe(keyIdOf(newKey));
    expect(roundTrip(m1, m2)).toBeDefined();
    expect(roundTrip(m2, m1)).toBeDefined();
    m2.useKey(newKey);
    // Step 3: remove the old key; traffic flows, and old-key messages no longer decrypt.
    const stale = new Keyring([oldKey]);
    expect(roundTrip(stale, m1)).toBeDefined();
    m1.removeKey(oldKey);
    m2.removeKey(oldKey);
    expect(roundTrip(m1, m2)).toBeDefined();
    expect(roundTrip(stale, m1)).toBeUndefined();
    expect(m1.keys()).toEqual([newKey]);
  });

  it('refuses to remove the primary key and reports typed errors', () => {
    const k = generateKey();
    const ring = new Keyring([k, generateKey()]);
    expect(code(() => ring.removeKey(k))).toBe('KEYRING_REMOVE_PRIMARY');
    expect(code(() => ring.useKey(generateKey()))).toBe('KEYRING_KEY_NOT_FOUND');
    expect(code(() => ring.removeKey(generateKey()))).toBe('KEYRING_KEY_NOT_FOUND');
    expect(code(() => new Keyring([]))).toBe('KEYRING_EMPTY');
    expect(code(() => new Keyring([Buffer.alloc(16)]))).toBe('KEYRING_BAD_KEY');
    expect(code(() => new Keyring(['not base64 of 32 bytes']))).toBe('KEYRING_BAD_KEY');
    expect(ring.keys()[0]).toBe(k);
  });

  it('derives the same key from the same secret on every member, and keeps a base64 key as is', () => {
    const a = deriveKey('correct horse battery staple');
    expect(deriveKey('correct horse battery staple')).toBe(a);
    expect(deriveKey('another secret')).not.toBe(a);
    expect(Buffer.from(a, 'base64').byteLength).toBe(32);
    const k = generateKey();
    expect(deriveKey(k)).toBe(k);
    expect(code(() => deriveKey(''))).toBe('KEYRING_BAD_KEY');
    expect(roundTrip(new Keyring([deriveKey('s3cret')]), new Keyring([deriveKey('s3cret')]))).toBeDefined();
  });
});
