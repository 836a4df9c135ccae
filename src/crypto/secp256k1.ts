/**
 * The one place @noble/secp256k1 is configured and wrapped.
 *
 * noble v3 needs its sync hash functions wired in before sign/verify work synchronously, and it
 * prehashes messages by default; Bitcoin sighashes and our own digests are already 32-byte hashes,
 * so every call here passes `prehash: false`. Signatures are low-S (BIP 62/146), as Bitcoin requires.
 */
import * as secp from '@noble/secp256k1';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';

secp.hashes.sha256 = sha256;
secp.hashes.hmacSha256 = (key: Uint8Array, msg: Uint8Array) => hmac(sha256, key, msg);

export type Bytes = Uint8Array;

/** A fresh random private key (32 bytes, in range). */
export function randomPrivateKey(): Bytes {
  return secp.utils.randomSecretKey();
}

/** The 33-byte compressed public key of `priv`. */
export function publicKeyOf(priv: Bytes): Bytes {
  return secp.getPublicKey(priv, true);
}

/** Checks that `pub` is a valid compressed or uncompressed point. */
export function isPublicKey(pub: Bytes): boolean {
  try {
    secp.Point.fromBytes(pub);
    return true;
  } catch {
    return false;
  }
}

/**
 * ECDSA over a 32-byte digest, 64-byte compact encoding (r || s). For a script signature, DER-encode it
 * with bitcoinjs-lib's `script.signature.encode(sig, hashType)`.
 */
export function signDigest(digest: Bytes, priv: Bytes): Bytes {
  return secp.sign(digest, priv, { prehash: false, lowS: true });
}

/** Verifies a compact (64-byte) signature over a 32-byte digest. Never throws. */
export function verifyDigest(sig: Bytes, digest: Bytes, pub: Bytes): boolean {
  try {
    return secp.verify(sig, digest, pub, { prehash: false, lowS: true });
  } catch {
    return false;
  }
}

/** ECDH: the 32-byte x coordinate of priv·pub (hash it before using it as a key). */
export function sharedSecret(priv: Bytes, pub: Bytes): Bytes {
  return secp.getSharedSecret(priv, pub, true).subarray(1);
}
