/** Pay-to-witness-public-key-hash (segwit v0) outputs. */
import { payments } from 'bitcoinjs-lib';
import { REGTEST } from './network.ts';

/** A P2WPKH output template. */
export interface P2wpkhOutput {
  /** Regtest bech32 address (`bcrt1q…`). */
  address: string;
  /** scriptPubKey: `OP_0 <20-byte hash160(pubkey)>`. */
  outputScript: Uint8Array;
  /** hash160 of the public key. */
  pubkeyHash: Uint8Array;
  /** The compressed public key. */
  pubkey: Uint8Array;
}

/** The P2WPKH output of a 33-byte compressed public key (segwit requires compressed keys). */
export function p2wpkh(pubkey: Uint8Array): P2wpkhOutput {
  assertCompressedPubkey(pubkey, 'pubkey');
  const p = payments.p2wpkh({ pubkey, network: REGTEST });
  if (!p.address || !p.output || !p.hash) throw new Error('p2wpkh: bitcoinjs-lib returned an incomplete payment');
  return { address: p.address, outputScript: p.output, pubkeyHash: p.hash, pubkey };
}

/**
 * The BIP143 scriptCode of a P2WPKH input: the P2PKH script of the same key hash
 * (`OP_DUP OP_HASH160 <hash> OP_EQUALVERIFY OP_CHECKSIG`).
 */
export function p2wpkhScriptCode(pubkey: Uint8Array): Uint8Array {
  assertCompressedPubkey(pubkey, 'pubkey');
  const p = payments.p2pkh({ pubkey, network: REGTEST });
  if (!p.output) throw new Error('p2wpkhScriptCode: bitcoinjs-lib returned no output script');
  return p.output;
}

/** The witness stack that spends a P2WPKH output: `[signature, pubkey]`. */
export function p2wpkhWitness(signature: Uint8Array, pubkey: Uint8Array): Uint8Array[] {
  assertCompressedPubkey(pubkey, 'pubkey');
  return [signature, pubkey];
}

/** Throws a RangeError naming `field` unless `pubkey` is a 33-byte compressed SEC1 key. */
export function assertCompressedPubkey(pubkey: Uint8Array, field: string): void {
  if (!(pubkey instanceof Uint8Array) || pubkey.length !== 33 || (pubkey[0] !== 2 && pubkey[0] !== 3)) {
    throw new RangeError(`${field} must be a 33-byte compressed public key`);
  }
}
