/**
 * Signing segwit v0 inputs (BIP143 sighash) and finishing their witnesses. ECDSA comes from
 * src/crypto/secp256k1.ts (64-byte compact signatures, low-S); bitcoinjs-lib DER-encodes them.
 */
import { Transaction, script as bjsScript } from 'bitcoinjs-lib';
import { publicKeyOf, signDigest, verifyDigest } from '../crypto/secp256k1.ts';
import { p2wpkhScriptCode, p2wpkhWitness } from './p2wpkh.ts';
import { multisigWitness, parseMultisigScript, type KeyedSignature } from './multisig.ts';
import type { Spend, SpendableInput } from './tx.ts';
import { equalBytes } from './bytes.ts';

/** SIGHASH_ALL: the signature commits to every input and output. */
export const SIGHASH_ALL = Transaction.SIGHASH_ALL;

/** The BIP143 digest input `index` of `spend` signs. */
export function witnessV0Sighash(spend: Spend, index: number, hashType: number = SIGHASH_ALL): Uint8Array {
  const input = inputAt(spend, index);
  return spend.tx.hashForWitnessV0(index, scriptCode(input), input.valueSat, hashType);
}

/** ECDSA over a digest and the key's public point: ./secp256k1.ts's pure-JS pair, or a faster one giving the same bytes. */
export interface Signer {
  sign(digest: Uint8Array, priv: Uint8Array): Uint8Array;
  publicKey(priv: Uint8Array): Uint8Array;
}

const PURE_JS: Signer = { sign: signDigest, publicKey: publicKeyOf };

/**
 * Signs input `index` with `privateKey`; returns the script signature (DER + sighash byte). `signer`: the
 * pure-JS one by default (the enclave passes libsecp256k1's, byte for byte the same signatures).
 * Throws if the key does not belong to the input (not its P2WPKH key, not one of its multisig keys).
 */
export function signInput(
  spend: Spend,
  index: number,
  privateKey: Uint8Array,
  hashType: number = SIGHASH_ALL,
  signer: Signer = PURE_JS,
): Uint8Array {
  const input = inputAt(spend, index);
  const pubkey = signer.publicKey(privateKey);
  if (!inputKeys(input).some((k) => equalBytes(k, pubkey))) {
    throw new RangeError(`privateKey does not belong to input ${index} (${input.kind})`);
  }
  const digest = witnessV0Sighash(spend, index, hashType);
  return encodeScriptSignature(signer.sign(digest, privateKey), hashType);
}

/**
 * A 64-byte compact signature (r || s) as a script signature: strict DER (BIP66) and the hash type byte,
 * byte for byte what bitcoinjs-lib's `script.signature.encode` gives, without the schema it builds and
 * checks on every call (which cost more than the signature's DER itself; chain.bitcoin.test.ts compares
 * the two).
 */
export function encodeScriptSignature(compact: Uint8Array, hashType: number): Uint8Array {
  if (compact.length !== 64) throw new RangeError('a compact signature is 64 bytes');
  const base = hashType & ~0x80;
  if (!Number.isInteger(hashType) || hashType < 0 || hashType > 0xff || base < 1 || base > 3)
    throw new RangeError(`invalid hashType ${hashType}`);
  const r = derInteger(compact.subarray(0, 32));
  const s = derInteger(compact.subarray(32));
  const out = new Uint8Array(7 + r.length + s.length);
  // 0x30 [length] 0x02 [R length] [R] 0x02 [S length] [S] [hash type]
  out[0] = 0x30;
  out[1] = 4 + r.length + s.length;
  out[2] = 0x02;
  out[3] = r.length;
  out.set(r, 4);
  out[4 + r.length] = 0x02;
  out[5 + r.length] = s.length;
  out.set(s, 6 + r.length);
  out[out.length - 1] = hashType;
  return out;
}

/** A 32-byte unsigned big-endian integer as DER wants it: no leading zero bytes, but one before a high bit. */
function derInteger(x: Uint8Array): Uint8Array {
  let i = 0;
  while (i < x.length && x[i] === 0) i++;
  if (i === x.length) return new Uint8Array(1);
  const v = x.subarray(i);
  if ((v[0]! & 0x80) === 0) return Uint8Array.from(v);
  const out = new Uint8Array(v.length + 1);
  out.set(v, 1);
  return out;
}

/** Checks a compact signature over a digest (./secp256k1.ts's verifyDigest, or a faster one with its rules). */
export type DigestVerifier = (sig: Uint8Array, digest: Uint8Array, pub: Uint8Array) => boolean;

/**
 * Checks a script signature (DER + sighash byte) of input `index` against `pubkey`, with `verify` (the
 * pure-JS verifier by default; the enclave passes libsecp256k1's). Never throws.
 */
export function verifyInputSignature(
  spend: Spend,
  index: number,
  pubkey: Uint8Array,
  signature: Uint8Array,
  verify: DigestVerifier = verifyDigest,
): boolean {
  try {
    const { signature: compact, hashType } = bjsScript.signature.decode(signature);
    return verify(compact, witnessV0Sighash(spend, index, hashType), pubkey);
  } catch {
    return false;
  }
}

/** Signs a P2WPKH input and sets its witness. */
export function signP2wpkhInput(spend: Spend, index: number, privateKey: Uint8Array): void {
  const input = inputAt(spend, index);
  if (input.kind !== 'p2wpkh') throw new RangeError(`input ${index} is ${input.kind}, not p2wpkh`);
  spend.tx.setWitness(index, p2wpkhWitness(signInput(spend, index, privateKey), input.pubkey));
}

/** Sets the witness of a multisig input from at least m signatures (see `multisigWitness`). */
export function finalizeMultisigInput(spend: Spend, index: number, signatures: readonly KeyedSignature[]): void {
  const input = inputAt(spend, index);
  if (input.kind !== 'p2wsh-multisig') throw new RangeError(`input ${index} is ${input.kind}, not p2wsh-multisig`);
  spend.tx.setWitness(index, multisigWitness(input.witnessScript, signatures));
}

function inputAt(spend: Spend, index: number): SpendableInput {
  const input = spend.inputs[index];
  if (!input || index >= spend.tx.ins.length) throw new RangeError(`input index ${index} is out of range`);
  return input;
}

function scriptCode(input: SpendableInput): Uint8Array {
  return input.kind === 'p2wpkh' ? p2wpkhScriptCode(input.pubkey) : input.witnessScript;
}

function inputKeys(input: SpendableInput): Uint8Array[] {
  return input.kind === 'p2wpkh' ? [input.pubkey] : parseMultisigScript(input.witnessScript).pubkeys;
}
