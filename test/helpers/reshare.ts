/**
 * What the re-splitting tests read off a committee member's replica: the shares it holds of a channel
 * peer's handed-over key (by split), whether shares rebuild that key, and whether a re-split is done.
 */
import { combine } from 'shamir-secret-sharing';
import { bytesToHex, hexToBytes } from '../../enclave-sim/encoding.ts';
import { publicKeyOf } from '../../src/crypto/secp256k1.ts';
import { ownShares } from '../../src/enclave/committee/key-boxes.ts';
import type { Deposit, PeerDeposit, TreasuryState } from '../../src/enclave/treasury/state.ts';
import { verifyDepositSpend } from '../../src/enclave/treasury/transactions.ts';
import type { MeshNode } from './treasury-mesh.ts';

/** The peer deposit of channel `ch` in `state` (the first, or the `i`th). */
export const peerDep = (state: TreasuryState, ch: string, i = 0): PeerDeposit => state.channels[ch]!.peerDeposits[i]!;

/** The shares of every split `state`'s member holds of `ch`'s (first) peer key, by split (gen). */
export function sharesIn(state: TreasuryState, ch: string, i = 0): Map<number, Uint8Array> {
  const me = bytesToHex(publicKeyOf(hexToBytes(state.identityKey)));
  const held = ownShares(peerDep(state, ch, i), state.committee!, me, hexToBytes(state.identityKey));
  return new Map(held.map((s) => [s.gen, hexToBytes(s.share)]));
}

/** Whether `shares` rebuild the key `key` (or anything whose public key is `pub`). */
export async function rebuilds(shares: Uint8Array[], key: string, pub: string): Promise<boolean> {
  let secret: Uint8Array;
  try {
    secret = await combine(shares);
  } catch {
    return false; // shares of two splits may share an x coordinate: the package refuses them
  }
  if (bytesToHex(secret) === key) return true;
  try {
    return bytesToHex(publicKeyOf(secret)) === pub;
  } catch {
    return false;
  }
}

/** Every unordered pair of `xs`. */
export const pairs = <T>(xs: T[]): Array<[T, T]> => xs.flatMap((x, i) => xs.slice(i + 1).map((y) => [x, y] as [T, T]));

/** The re-split is done at every member of `members`: one split, of `gen`, held by them, none under way. */
export function resplitDone(members: MeshNode[], ch: string, gen: number): boolean {
  const ids = members.map((n) => n.treasury.nodeId).sort();
  return members.every((n) =>
    n.treasury.state.channels[ch]!.peerDeposits.every(
      (d) => d.gen === gen && !d.reshare && [...(d.holders ?? [])].sort().join() === ids.join(),
    ),
  );
}

/** Whether `txHex` validly spends the funded deposit `dep` (each input's witness against its output), as its txid. */
export function spendsDeposit(txHex: string, dep: Deposit): string | null {
  const { outpoint, value, m, pubkeys, witnessScript } = dep;
  return verifyDepositSpend(txHex, { outpoint: outpoint!, value: value!, m, pubkeys, privkeys: [], witnessScript });
}
