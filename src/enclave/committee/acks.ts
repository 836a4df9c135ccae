/**
 * Signed acknowledgements up the committee chain. An acknowledgement of sequence number s tells the
 * primary that every member holds the state of update s, and the primary then releases that update's
 * messages (a payment to the channel peer among them). Relayed as a bare number, any middle member could
 * acknowledge for the members after it, let the primary pay on a state the tail never got, and settle
 * the tail's older state with it (2 of 3). So each backup signs the number it has applied with its
 * identity key, the chain relays every downstream signature unchanged, and the primary counts as
 * acknowledged only what every backup signed. Each backup after the successor also sends its own signature
 * straight to the primary, one hop instead of one per member before it: the primary counts, for each
 * backup, the highest number that backup signed, by whichever path it came, and acknowledges the lowest.
 * A backup's own word that comes straight over its authenticated session, naming the primary's view, is
 * taken without a signature (the session says who sent it), so a backup signs only what the chain relays;
 * one member's word passed on by another always is signed and checked.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '../../../enclave-sim/encoding.ts';
import { signDigestFast } from '../../crypto/secp256k1-wasm.ts';
import { verifyMessageSha256 } from '../../crypto/secp256k1-openssl.ts';
import type { CommittedSig } from './committed-proof.ts';
import type { HeldSig } from './paid-proof.ts';

/**
 * One backup's word: it has applied every update up to `seq`; with `held`, its signed paid totals of the
 * channels those updates moved, for the channel peers (paid-proof.ts).
 */
export interface AckSig {
  seq: number;
  /** The member's signature over (primary, epoch, seq): left out where its own authenticated session carries it. */
  sig?: string;
  held?: HeldSig[];
  /** The multi-hop payments those updates showed newly committed, signed for the next hop (committed-proof.ts). */
  committed?: CommittedSig[];
}

/** The epoch is signed too: an acknowledgement given in one view never counts in another (view.ts). */
function preimage(primaryId: string, epoch: number, seq: number): Uint8Array {
  return new TextEncoder().encode(`teechain-committee-ack\0${primaryId}\0${epoch}\0${seq}`);
}

export function signAck(primaryId: string, seq: number, identityKey: Uint8Array, epoch = 0): AckSig {
  return { seq, sig: bytesToHex(signDigestFast(sha256(preimage(primaryId, epoch, seq)), identityKey)) };
}

/** Whether `s` is `memberId`'s signature that it holds every update up to `s.seq` of `primaryId`'s, in view `epoch`. */
export function verifyAck(primaryId: string, memberId: string, s: AckSig, epoch = 0): boolean {
  try {
    return (
      Number.isSafeInteger(s.seq) &&
      s.sig !== undefined &&
      verifyMessageSha256(hexToBytes(s.sig), preimage(primaryId, epoch, s.seq), hexToBytes(memberId))
    );
  } catch {
    return false;
  }
}
