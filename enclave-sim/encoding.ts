/**
 * Small byte helpers shared by the host and the enclave (no crypto here; hashing and AEAD come from
 * @noble/hashes and node:crypto).
 */
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';

export { bytesToHex, hexToBytes, utf8ToBytes };

/**
 * Unambiguous concatenation: each part as a 4-byte big-endian length followed by its bytes. Used for
 * every hashed or signed message, always with a domain tag as the first part.
 */
export function lengthPrefixed(...parts: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += 4 + p.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const p of parts) {
    view.setUint32(at, p.length);
    out.set(p, at + 4);
    at += 4 + p.length;
  }
  return out;
}

/** Byte equality (not constant-time: use only on public values). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Lower-case hex of exactly `bytes` bytes. */
export function isHex(value: unknown, bytes: number): value is string {
  return typeof value === 'string' && value.length === bytes * 2 && /^[0-9a-f]*$/.test(value);
}

/** Accepts bytes or lower/upper-case hex; returns bytes. @throws TypeError if neither. */
export function toBytes(value: Uint8Array | string, what: string): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string' && value.length % 2 === 0 && /^[0-9a-fA-F]*$/.test(value))
    return hexToBytes(value.toLowerCase());
  throw new TypeError(`${what} must be bytes or hex`);
}
