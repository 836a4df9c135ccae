/**
 * Channel keys and BOLT 3 per-commitment key derivation for the Lightning-style baseline.
 *
 * Every elliptic-curve operation goes through tiny-secp256k1 (libsecp256k1 compiled to WASM), the fastest
 * secp256k1 implementation available here, so the baseline is not slowed by a pure-JS library.
 */
import * as ecc from 'tiny-secp256k1';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, randomBytes } from '@noble/hashes/utils.js';

export type Bytes = Uint8Array;

/** A party's public basepoints, exchanged once when the channel opens (BOLT 2 open_channel/accept_channel). */
export interface Basepoints {
  funding: Bytes;
  revocation: Bytes;
  payment: Bytes;
  delayedPayment: Bytes;
  htlc: Bytes;
}

/** The private halves of a party's basepoints and its per-commitment seed. Never leave the party's process. */
export interface ChannelSecrets {
  funding: Bytes;
  revocation: Bytes;
  payment: Bytes;
  delayedPayment: Bytes;
  htlc: Bytes;
  /** Seed of the BOLT 3 per-commitment secret chain (see revocation.ts). */
  commitmentSeed: Bytes;
}

/** The keys one commitment transaction uses, from its holder's point of view. */
export interface CommitmentKeys {
  revocation: Bytes;
  localDelayed: Bytes;
  /** option_static_remotekey: the counterparty's payment basepoint itself, not tweaked per commitment. */
  remotePayment: Bytes;
  /** Only derived when the commitment has untrimmed HTLC outputs. */
  localHtlc?: Bytes;
  remoteHtlc?: Bytes;
}

/** A uniformly random valid secp256k1 private key. */
export function randomPrivateKey(): Bytes {
  for (;;) {
    const k = randomBytes(32);
    if (ecc.isPrivate(k)) return k;
  }
}

/** The 33-byte compressed public key of `priv`. @throws Error if `priv` is not a valid private key. */
export function publicKeyOf(priv: Bytes): Bytes {
  const p = ecc.isPrivate(priv) ? ecc.pointFromScalar(priv, true) : null;
  if (!p) throw new Error('invalid private key');
  return p;
}

/** Fresh random channel secrets for one party. */
export function generateChannelSecrets(): ChannelSecrets {
  return {
    funding: randomPrivateKey(),
    revocation: randomPrivateKey(),
    payment: randomPrivateKey(),
    delayedPayment: randomPrivateKey(),
    htlc: randomPrivateKey(),
    commitmentSeed: randomBytes(32),
  };
}

export function basepointsOf(s: ChannelSecrets): Basepoints {
  return {
    funding: publicKeyOf(s.funding),
    revocation: publicKeyOf(s.revocation),
    payment: publicKeyOf(s.payment),
    delayedPayment: publicKeyOf(s.delayedPayment),
    htlc: publicKeyOf(s.htlc),
  };
}

function required(p: Bytes | null, what: string): Bytes {
  if (!p) throw new Error(`${what}: result is the point at infinity`);
  return p;
}

/** BOLT 3: pubkey = basepoint + SHA256(per_commitment_point || basepoint)·G. */
export function derivePubkey(basepoint: Bytes, perCommitmentPoint: Bytes): Bytes {
  return required(
    ecc.pointAddScalar(basepoint, sha256(concatBytes(perCommitmentPoint, basepoint)), true),
    'derivePubkey',
  );
}

/** BOLT 3: privkey = basepoint_secret + SHA256(per_commitment_point || basepoint). */
export function derivePrivkey(basepointSecret: Bytes, basepoint: Bytes, perCommitmentPoint: Bytes): Bytes {
  return required(ecc.privateAdd(basepointSecret, sha256(concatBytes(perCommitmentPoint, basepoint))), 'derivePrivkey');
}

/**
 * BOLT 3: revocationpubkey = R·SHA256(R || P) + P·SHA256(P || R), where R is the revocation basepoint of the
 * party that will be able to punish and P the holder's per-commitment point. Neither party knows the private
 * key until the holder reveals the per-commitment secret. Two generic point multiplications: the most
 * expensive step of building a commitment here.
 */
export function deriveRevocationPubkey(revocationBasepoint: Bytes, perCommitmentPoint: Bytes): Bytes {
  const a = required(
    ecc.pointMultiply(revocationBasepoint, sha256(concatBytes(revocationBasepoint, perCommitmentPoint)), true),
    'revocation R',
  );
  const b = required(
    ecc.pointMultiply(perCommitmentPoint, sha256(concatBytes(perCommitmentPoint, revocationBasepoint)), true),
    'revocation P',
  );
  return required(ecc.pointAdd(a, b, true), 'revocation sum');
}

/**
 * The keys of the commitment held by `holder` for the per-commitment point `holderPoint`. The revocation
 * key is built on the counterparty's revocation basepoint (the counterparty is who may punish this commitment).
 */
export function deriveCommitmentKeys(
  holderPoint: Bytes,
  holder: Basepoints,
  counterparty: Basepoints,
  withHtlcKeys: boolean,
): CommitmentKeys {
  const keys: CommitmentKeys = {
    revocation: deriveRevocationPubkey(counterparty.revocation, holderPoint),
    localDelayed: derivePubkey(holder.delayedPayment, holderPoint),
    remotePayment: counterparty.payment,
  };
  if (withHtlcKeys) {
    keys.localHtlc = derivePubkey(holder.htlc, holderPoint);
    keys.remoteHtlc = derivePubkey(counterparty.htlc, holderPoint);
  }
  return keys;
}

/** ECDSA over a 32-byte sighash; 64-byte compact (r || s), low-S, RFC 6979 nonces (libsecp256k1). */
export function signHash(hash: Bytes, priv: Bytes): Bytes {
  return ecc.sign(hash, priv);
}

/** Verifies a compact low-S signature; false (never a throw) for malformed signatures or keys. */
export function verifyHash(hash: Bytes, pub: Bytes, sig: Bytes): boolean {
  try {
    return ecc.verify(hash, pub, sig, true);
  } catch {
    return false;
  }
}

export function bytesEqual(a: Bytes, b: Bytes): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}
