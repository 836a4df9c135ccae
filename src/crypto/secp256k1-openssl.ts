/**
 * secp256k1 verification through OpenSSL (node:crypto), kept apart from ./secp256k1.ts so that the
 * portable modules (src/bitcoin bundles for non-Node platforms) never pull in a Node built-in.
 */
import { createPublicKey, verify as osslVerify, type KeyObject } from 'node:crypto';
import * as secp from '@noble/secp256k1';
import type { Bytes } from './secp256k1.ts';

const verifierKeys = new Map<string, KeyObject>();

/**
 * Verifies a compact signature over sha256(message) with OpenSSL's secp256k1, about 7x faster here than
 * the pure-JS verify (0.35 vs 2.4 ms): for the committee's replication updates, one verify per update
 * per member on the payment path. The key object is cached per public key. Never throws.
 */
export function verifyMessageSha256(sig: Bytes, message: Bytes, pub: Bytes): boolean {
  try {
    const id = Buffer.from(pub).toString('hex');
    let key = verifierKeys.get(id);
    if (!key) {
      const full = secp.Point.fromBytes(pub).toBytes(false);
      const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
      key = createPublicKey({
        key: { kty: 'EC', crv: 'secp256k1', x: b64(full.subarray(1, 33)), y: b64(full.subarray(33)) },
        format: 'jwk',
      });
      if (verifierKeys.size > 64) verifierKeys.clear();
      verifierKeys.set(id, key);
    }
    return osslVerify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, sig);
  } catch {
    return false;
  }
}
