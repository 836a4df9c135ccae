/**
 * Per-commitment secrets, as BOLT 3 specifies them: the holder derives the secret of every commitment
 * from one seed by a 48-step hash chain, and reveals the secret of a commitment to revoke it (revoke_and_ack).
 * The receiver stores every secret it was given in at most 49 slots (each new secret lets older ones be
 * re-derived) and checks, on every insertion, that the new secret derives the older ones it replaces.
 *
 * Index convention (BOLT 3): commitment number n uses chain index I = 2^48 - 1 - n, so indices descend.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { publicKeyOf, bytesEqual, type Bytes } from './keys.ts';

export const FIRST_CHAIN_INDEX = 2 ** 48 - 1;

/** The chain index of commitment number `n`. */
export function chainIndexOf(commitmentNumber: number): number {
  if (!Number.isSafeInteger(commitmentNumber) || commitmentNumber < 0 || commitmentNumber > FIRST_CHAIN_INDEX) {
    throw new RangeError(`commitment number out of range: ${commitmentNumber}`);
  }
  return FIRST_CHAIN_INDEX - commitmentNumber;
}

// Indices are 48-bit: beyond JavaScript's 32-bit bitwise operators, so bits are read arithmetically.
function bitSet(i: number, b: number): boolean {
  return Math.floor(i / 2 ** b) % 2 === 1;
}

function trailingZeros(i: number): number {
  for (let b = 0; b < 48; b++) if (bitSet(i, b)) return b;
  return 48;
}

/** BOLT 3 derive_secret: the secret at index `i` from a secret whose index shares bits `bits`..47 with `i`. */
function deriveSecret(base: Bytes, bits: number, i: number): Bytes {
  let p = Uint8Array.from(base);
  for (let b = bits - 1; b >= 0; b--) {
    if (bitSet(i, b)) {
      p[b >> 3]! ^= 1 << (b & 7);
      p = sha256(p);
    }
  }
  return p;
}

/** BOLT 3 generate_from_seed: the secret at chain index `i`. */
export function secretFromSeed(seed: Bytes, i: number): Bytes {
  return deriveSecret(seed, 48, i);
}

/** The per-commitment secret of commitment number `n`. */
export function perCommitmentSecret(seed: Bytes, commitmentNumber: number): Bytes {
  return secretFromSeed(seed, chainIndexOf(commitmentNumber));
}

/** per_commitment_point = per_commitment_secret·G (one fixed-base multiplication). */
export function perCommitmentPoint(secret: Bytes): Bytes {
  return publicKeyOf(secret);
}

/**
 * The holder's side of the chain: secrets and points of its own commitments, each computed once (a secret
 * costs up to 48 SHA-256 and its point one EC multiplication) and forgotten once revealed.
 */
export class CommitmentSecrets {
  private readonly secrets = new Map<number, Bytes>();
  private readonly points = new Map<number, Bytes>();

  constructor(private readonly seed: Bytes) {}

  secret(n: number): Bytes {
    let s = this.secrets.get(n);
    if (!s) {
      s = perCommitmentSecret(this.seed, n);
      this.secrets.set(n, s);
    }
    return s;
  }

  point(n: number): Bytes {
    let p = this.points.get(n);
    if (!p) {
      p = perCommitmentPoint(this.secret(n));
      this.points.set(n, p);
    }
    return p;
  }

  /** Drops what is no longer needed once commitment `n` has been revoked. */
  forget(n: number): void {
    this.secrets.delete(n);
    this.points.delete(n);
  }
}

export interface StoredSecret {
  index: number;
  secret: Bytes;
}

/** The receiver's compact store of the counterparty's revealed secrets (BOLT 3 "efficient storage"). */
export class RevocationStore {
  private readonly known: Array<StoredSecret | null>;

  constructor(known: Array<StoredSecret | null> = []) {
    this.known = known.slice();
  }

  /**
   * Stores the secret for chain index `i` after checking it derives every stored secret it supersedes.
   * Returns false (and stores nothing) if it does not: the secrets do not come from one seed.
   */
  insert(i: number, secret: Bytes): boolean {
    const pos = trailingZeros(i);
    for (let b = 0; b < pos; b++) {
      const k = this.known[b];
      if (k && !bytesEqual(deriveSecret(secret, pos, k.index), k.secret)) return false;
    }
    while (this.known.length <= pos) this.known.push(null);
    this.known[pos] = { index: i, secret: Uint8Array.from(secret) };
    return true;
  }

  /** The secret for chain index `i`, if it was revealed (directly or through a later secret); else null. */
  secretFor(i: number): Bytes | null {
    for (let b = 0; b < this.known.length; b++) {
      const k = this.known[b];
      if (!k) continue;
      // Index k.index has b trailing zeros; it derives every index sharing bits b..47 with it.
      if (Math.floor(i / 2 ** b) === Math.floor(k.index / 2 ** b)) return deriveSecret(k.secret, b, i);
    }
    return null;
  }

  /** The stored slots, for persistence. */
  slots(): Array<StoredSecret | null> {
    return this.known.slice();
  }
}
