/**
 * What a channel peer's enclave signs for a committee on the other side, so that the committee's backups
 * need not take their primary's word for it: the peer's payout script (once, in open / open_ack) and each
 * cumulative total the peer has paid (in pay and sync). A compromised primary can then neither credit
 * itself payments the peer never made nor swap the peer's payout, without the backups refusing the update.
 * Domain-separated from every other signature made with the identity key.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '../../../enclave-sim/encoding.ts';
import { signDigestFast } from '../../crypto/secp256k1-wasm.ts';
import { verifyMessageSha256 } from '../../crypto/secp256k1-openssl.ts';

const enc = new TextEncoder();
const paidPreimage = (ch: string, total: bigint) => enc.encode(`teechain-channel-paid\0${ch}\0${total}`);
const payoutPreimage = (ch: string, payout: string) => enc.encode(`teechain-channel-payout\0${ch}\0${payout}`);

/** The payer's signature of "I have paid `total` in all on channel `ch`". */
export function signPaid(identityKey: string, ch: string, total: bigint): string {
  return bytesToHex(signDigestFast(sha256(paidPreimage(ch, total)), hexToBytes(identityKey)));
}

export function verifyPaid(peerId: string, ch: string, total: bigint, sig: string | undefined): boolean {
  return sig !== undefined && verify(sig, paidPreimage(ch, total), peerId);
}

/** A side's signature of "settle my side of channel `ch` to `payout`". */
export function signPayout(identityKey: string, ch: string, payout: string): string {
  return bytesToHex(signDigestFast(sha256(payoutPreimage(ch, payout)), hexToBytes(identityKey)));
}

export function verifyPayout(peerId: string, ch: string, payout: string, sig: string | undefined): boolean {
  return sig !== undefined && verify(sig, payoutPreimage(ch, payout), peerId);
}

function verify(sig: string, preimage: Uint8Array, peerId: string): boolean {
  if (!/^[0-9a-f]{128}$/.test(sig) || !/^[0-9a-f]{66}$/.test(peerId)) return false;
  return verifyMessageSha256(hexToBytes(sig), preimage, hexToBytes(peerId));
}
