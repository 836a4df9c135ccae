/**
 * ECDSA signing over a 32-byte digest with libsecp256k1 (tiny-secp256k1's WebAssembly build), about 3.5x
 * faster here than the pure-JS signer of ./secp256k1.ts (0.11 vs 0.39 ms a signature): for the signatures
 * on the payment path (committee updates, acknowledgements and statements, paid totals, announcements),
 * and the check of Bitcoin input signatures there.
 * Same RFC 6979 nonces and low-S as ./secp256k1.ts's signDigest, so the very same 64 bytes (checked by
 * test/crypto.secp256k1-wasm.test.ts). Inside an enclave the WASM bytes are part of the measured bundle
 * (enclave-sim/bundle.ts, wasmInBundle). Kept apart from ./secp256k1.ts so that the portable modules
 * (bundled for the browser) do not pull in WebAssembly loading.
 */
import * as ecc from 'tiny-secp256k1';
import type { Bytes } from './secp256k1.ts';

/**
 * Verifies a compact (64-byte) signature over a 32-byte digest, high s refused as ./secp256k1.ts's
 * verifyDigest refuses it (Bitcoin's standardness rule): the enclave's check of Bitcoin input signatures
 * (path settlements, deposit spends), about ten times faster than the pure-JS verifier. Never throws.
 */
export function verifyDigestFast(sig: Bytes, digest: Bytes, pub: Bytes): boolean {
  try {
    return ecc.verify(digest, pub, sig, true);
  } catch {
    return false;
  }
}

/** 64-byte compact signature (r || s, low s) over `digest` (32 bytes) with `priv`. Throws on a bad key. */
export function signDigestFast(digest: Bytes, priv: Bytes): Bytes {
  return ecc.sign(digest, priv);
}

/**
 * Public keys already derived, by their private key. Signing a Bitcoin input derives the signer's key twice
 * (to pick its place in the multisig witness, and to check it belongs to the input), each a point
 * multiplication that costs more than the signature. The private keys are those the caller holds anyway
 * (inside an enclave, in its own memory). Bounded.
 */
const PUBLIC_KEYS = new Map<string, Bytes>();
const MAX_PUBLIC_KEYS = 1_024;

/** The compressed (33-byte) public key of `priv`, as ./secp256k1.ts's publicKeyOf gives it. Throws on a bad key. */
export function publicKeyOfFast(priv: Bytes): Bytes {
  const id = Buffer.from(priv.buffer, priv.byteOffset, priv.byteLength).toString('hex');
  let pub = PUBLIC_KEYS.get(id);
  if (!pub) {
    const derived = ecc.pointFromScalar(priv, true);
    if (!derived) throw new RangeError('private key out of range');
    pub = Uint8Array.from(derived);
    if (PUBLIC_KEYS.size >= MAX_PUBLIC_KEYS) PUBLIC_KEYS.clear();
    PUBLIC_KEYS.set(id, pub);
  }
  return Uint8Array.from(pub);
}

/** Both, for src/bitcoin/sign.ts's signInput. */
export const FAST_SIGNER = { sign: signDigestFast, publicKey: publicKeyOfFast };
