/**
 * m-of-n multisig in P2WSH (segwit v0).
 *
 * Key order: public keys are sorted lexicographically by their 33-byte compressed encoding before
 * the script is built (the BIP67 rule), so every party derives the same script and address from the
 * same set of keys, whatever order they were given in. Signatures in the witness must then follow
 * that sorted order (OP_CHECKMULTISIG walks keys and signatures in step); `multisigWitness` does it.
 */
import { payments } from 'bitcoinjs-lib';
import { REGTEST } from './network.ts';
import { assertCompressedPubkey } from './p2wpkh.ts';
import { compareBytes, equalBytes, toHex } from './bytes.ts';

/** The largest n: bitcoinjs-lib encodes m and n as small-integer opcodes (OP_1..OP_16). */
export const MAX_MULTISIG_KEYS = 16;

/** A P2WSH multisig output template. */
export interface MultisigP2wsh {
  /** Regtest bech32 address (`bcrt1q…`, 32-byte program). */
  address: string;
  /** scriptPubKey: `OP_0 <sha256(witnessScript)>`. */
  outputScript: Uint8Array;
  /** `OP_m <pubkey>… OP_n OP_CHECKMULTISIG`, keys in sorted order. */
  witnessScript: Uint8Array;
  /** Signatures required. */
  m: number;
  /** The public keys in script (sorted) order. */
  pubkeys: Uint8Array[];
}

/** Sorts compressed public keys lexicographically (BIP67). Returns a new array. */
export function sortPublicKeys(pubkeys: readonly Uint8Array[]): Uint8Array[] {
  return [...pubkeys].sort(compareBytes);
}

/** Builds an m-of-n P2WSH multisig output from compressed public keys (sorted first, see the module note). */
export function multisigP2wsh(m: number, pubkeys: readonly Uint8Array[]): MultisigP2wsh {
  const n = pubkeys.length;
  if (!Number.isInteger(n) || n < 1 || n > MAX_MULTISIG_KEYS) {
    throw new RangeError(`pubkeys must hold 1..${MAX_MULTISIG_KEYS} keys (got ${n})`);
  }
  if (!Number.isInteger(m) || m < 1 || m > n) throw new RangeError(`m must be an integer in 1..${n} (got ${m})`);
  pubkeys.forEach((k, i) => assertCompressedPubkey(k, `pubkeys[${i}]`));
  const sorted = sortPublicKeys(pubkeys);
  for (let i = 1; i < sorted.length; i++) {
    if (equalBytes(sorted[i - 1] as Uint8Array, sorted[i] as Uint8Array)) {
      throw new RangeError(`pubkeys contains a duplicate key ${toHex(sorted[i] as Uint8Array)}`);
    }
  }
  const redeem = payments.p2ms({ m, pubkeys: sorted, network: REGTEST });
  const p = payments.p2wsh({ redeem, network: REGTEST });
  if (!redeem.output || !p.address || !p.output)
    throw new Error('multisigP2wsh: bitcoinjs-lib returned an incomplete payment');
  return { address: p.address, outputScript: p.output, witnessScript: redeem.output, m, pubkeys: sorted };
}

/**
 * Scripts already parsed, by their hex: bitcoinjs-lib's p2ms validates every key of the script, which costs
 * about as much as an ECDSA signature, and a path settlement parses each of its deposits' scripts a dozen
 * times (building, sizing, signing and checking it). Bounded; a script that failed to parse is not kept.
 */
const PARSED = new Map<string, { m: number; pubkeys: Uint8Array[] }>();
const MAX_PARSED = 1_024;

/** Reads m and the public keys (script order) back out of a multisig witness script. */
export function parseMultisigScript(witnessScript: Uint8Array): { m: number; pubkeys: Uint8Array[] } {
  const id = toHex(witnessScript);
  let known = PARSED.get(id);
  if (!known) {
    let p;
    try {
      p = payments.p2ms({ output: witnessScript, network: REGTEST });
    } catch (err) {
      throw new RangeError(`witnessScript is not a multisig script: ${(err as Error).message}`);
    }
    if (p.m === undefined || !p.pubkeys) throw new RangeError('witnessScript is not a multisig script');
    known = { m: p.m, pubkeys: p.pubkeys.map((k) => Uint8Array.from(k)) };
    if (PARSED.size >= MAX_PARSED) PARSED.clear();
    PARSED.set(id, known);
  }
  // Copies: a caller may do what it likes with what it gets, the cache stays as parsed.
  return { m: known.m, pubkeys: known.pubkeys.map((k) => Uint8Array.from(k)) };
}

/** A script signature (DER + sighash byte) made by the holder of `pubkey`. */
export interface KeyedSignature {
  pubkey: Uint8Array;
  signature: Uint8Array;
}

/**
 * The witness stack that spends a P2WSH multisig output: `[<empty>, sig…, witnessScript]`.
 * The leading empty item is the dummy OP_CHECKMULTISIG pops (it must be empty: NULLDUMMY). Signatures
 * are put in the script's key order; exactly m are used. Throws if fewer than m distinct signers of
 * this script are given.
 */
export function multisigWitness(witnessScript: Uint8Array, signatures: readonly KeyedSignature[]): Uint8Array[] {
  const { m, pubkeys } = parseMultisigScript(witnessScript);
  const ordered: Uint8Array[] = [];
  for (const key of pubkeys) {
    const found = signatures.find((s) => equalBytes(s.pubkey, key));
    if (found && ordered.length < m) ordered.push(found.signature);
  }
  for (const s of signatures) {
    if (!pubkeys.some((k) => equalBytes(k, s.pubkey))) {
      throw new RangeError(`signatures: key ${toHex(s.pubkey)} is not in the multisig script`);
    }
  }
  if (ordered.length < m) {
    throw new RangeError(`signatures: ${m} signatures of distinct script keys needed, got ${ordered.length}`);
  }
  return [new Uint8Array(0), ...ordered, witnessScript];
}
