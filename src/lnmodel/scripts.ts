/**
 * The BOLT 3 scripts of a channel: the 2-of-2 funding output, the to_local (revocable, delayed) output,
 * the to_remote P2WPKH (option_static_remotekey) and the offered/received HTLC outputs.
 */
import { crypto as bcrypto, networks, opcodes as OPS, payments, script as bscript } from 'bitcoinjs-lib';
import type { Bytes } from './keys.ts';

export const NETWORK = networks.regtest;

function compareBytes(a: Bytes, b: Bytes): number {
  return Buffer.compare(
    Buffer.from(a.buffer, a.byteOffset, a.byteLength),
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

/** `2 <pubkey1> <pubkey2> 2 OP_CHECKMULTISIG` with the keys in ascending byte order, and its P2WSH output. */
export function fundingOutput(
  fundingPubkeyA: Bytes,
  fundingPubkeyB: Bytes,
): { witnessScript: Bytes; output: Bytes; address: string } {
  const pubkeys = [fundingPubkeyA, fundingPubkeyB].sort(compareBytes);
  const redeem = payments.p2ms({ m: 2, pubkeys, network: NETWORK });
  const p2wsh = payments.p2wsh({ redeem, network: NETWORK });
  return { witnessScript: redeem.output!, output: p2wsh.output!, address: p2wsh.address! };
}

/**
 * `OP_0 <SHA256(witnessScript)>`: the same bytes as `payments.p2wsh({ redeem: { output } }).output`, built
 * directly because a commitment update builds several of these and the payments API validates lazily.
 */
export function p2wshOutput(witnessScript: Bytes): Bytes {
  return bscript.compile([OPS.OP_0, bcrypto.sha256(witnessScript)]);
}

/** `OP_0 <HASH160(pubkey)>`. */
export function p2wpkhOutput(pubkey: Bytes): Bytes {
  return bscript.compile([OPS.OP_0, bcrypto.hash160(pubkey)]);
}

/** to_local: revocable at once with the revocation key, else spendable by the holder after `toSelfDelay` blocks. */
export function toLocalScript(revocationPubkey: Bytes, toSelfDelay: number, localDelayedPubkey: Bytes): Bytes {
  return bscript.compile([
    OPS.OP_IF,
    revocationPubkey,
    OPS.OP_ELSE,
    bscript.number.encode(toSelfDelay),
    OPS.OP_CHECKSEQUENCEVERIFY,
    OPS.OP_DROP,
    localDelayedPubkey,
    OPS.OP_ENDIF,
    OPS.OP_CHECKSIG,
  ]);
}

/** An HTLC the holder offered: the remote takes it with the preimage, the holder after timeout via HTLC-timeout. */
export function offeredHtlcScript(
  revocationPubkey: Bytes,
  localHtlcPubkey: Bytes,
  remoteHtlcPubkey: Bytes,
  paymentHash: Bytes,
): Bytes {
  return bscript.compile([
    OPS.OP_DUP,
    OPS.OP_HASH160,
    bcrypto.hash160(revocationPubkey),
    OPS.OP_EQUAL,
    OPS.OP_IF,
    OPS.OP_CHECKSIG,
    OPS.OP_ELSE,
    remoteHtlcPubkey,
    OPS.OP_SWAP,
    OPS.OP_SIZE,
    bscript.number.encode(32),
    OPS.OP_EQUAL,
    OPS.OP_NOTIF,
    OPS.OP_DROP,
    OPS.OP_2,
    OPS.OP_SWAP,
    localHtlcPubkey,
    OPS.OP_2,
    OPS.OP_CHECKMULTISIG,
    OPS.OP_ELSE,
    OPS.OP_HASH160,
    bcrypto.ripemd160(paymentHash),
    OPS.OP_EQUALVERIFY,
    OPS.OP_CHECKSIG,
    OPS.OP_ENDIF,
    OPS.OP_ENDIF,
  ]);
}

/** An HTLC the holder received: the holder takes it with the preimage via HTLC-success, the remote after `cltvExpiry`. */
export function receivedHtlcScript(
  revocationPubkey: Bytes,
  localHtlcPubkey: Bytes,
  remoteHtlcPubkey: Bytes,
  paymentHash: Bytes,
  cltvExpiry: number,
): Bytes {
  return bscript.compile([
    OPS.OP_DUP,
    OPS.OP_HASH160,
    bcrypto.hash160(revocationPubkey),
    OPS.OP_EQUAL,
    OPS.OP_IF,
    OPS.OP_CHECKSIG,
    OPS.OP_ELSE,
    remoteHtlcPubkey,
    OPS.OP_SWAP,
    OPS.OP_SIZE,
    bscript.number.encode(32),
    OPS.OP_EQUAL,
    OPS.OP_IF,
    OPS.OP_HASH160,
    bcrypto.ripemd160(paymentHash),
    OPS.OP_EQUALVERIFY,
    OPS.OP_2,
    OPS.OP_SWAP,
    localHtlcPubkey,
    OPS.OP_2,
    OPS.OP_CHECKMULTISIG,
    OPS.OP_ELSE,
    OPS.OP_DROP,
    bscript.number.encode(cltvExpiry),
    OPS.OP_CHECKLOCKTIMEVERIFY,
    OPS.OP_DROP,
    OPS.OP_CHECKSIG,
    OPS.OP_ENDIF,
    OPS.OP_ENDIF,
  ]);
}

export { compareBytes };
