/**
 * How a deposit key travels to a channel peer: sealed whole to a lone peer's identity key, or split m-of-n
 * with each share sealed to one member of the peer's committee. The two AADs keep a whole key and a share
 * from ever being opened as one another.
 */
import { bytesToHex, hexToBytes } from '../../../enclave-sim/encoding.ts';
import { openBox, sealTo } from '../../crypto/ecies.ts';
import { publicKeyOf } from '../../crypto/secp256k1.ts';
import type { CommitteeMember, CommitteeState, PeerDeposit } from '../treasury/state.ts';
import { holdersOf } from './share-holders.ts';

export const AAD_KEY = 'deposit-key';
export const AAD_SHARE = 'key-share';

/** Splits each handed-over key m-of-n and seals share i to member i: no member holds a whole key. */
export async function shareKeys(
  privkeys: string[],
  members: CommitteeMember[],
  threshold: number,
  split: (s: Uint8Array, n: number, m: number) => Promise<Uint8Array[]>,
) {
  const out: Array<{ pubkey: string; boxes: string[] }> = [];
  for (const k of privkeys) {
    const parts = await split(hexToBytes(k), members.length, threshold);
    out.push({
      pubkey: bytesToHex(publicKeyOf(hexToBytes(k))),
      boxes: parts.map((p, i) => sealTo(hexToBytes(members[i]!.node_id), p, AAD_SHARE)),
    });
  }
  return out;
}

/** Seals a whole deposit key to a lone channel peer. */
export function sealKeyTo(peerId: string, priv: string): string {
  return sealTo(hexToBytes(peerId), hexToBytes(priv), AAD_KEY);
}

/** Opens a deposit key sealed to this enclave by a member of the peer's committee. */
export function openSealedKey(identityKey: Uint8Array, box: string): string | null {
  const k = openBox(identityKey, box, AAD_KEY);
  return k ? bytesToHex(k) : null;
}

/** Opens this member's share of a handed-over key (null when the box is not for it). */
export function openShare(identityKey: Uint8Array, box: string): Uint8Array | null {
  return openBox(identityKey, box, AAD_SHARE);
}

/**
 * This member's shares of a peer deposit's handed-over keys, from every split it holds a box of: the
 * current one (boxed to its holders, holdersOf) and a re-split under way (docs/protocol/committees.md).
 */
export function ownShares(
  dep: PeerDeposit,
  c: CommitteeState,
  me: string,
  identityKey: Uint8Array,
): Array<{ outpoint: string; pubkey: string; share: string; gen: number }> {
  const out: Array<{ outpoint: string; pubkey: string; share: string; gen: number }> = [];
  const splits = [{ gen: dep.gen ?? 0, holders: holdersOf(dep, c), shares: dep.shares ?? [] }];
  if (dep.reshare) splits.push({ gen: dep.reshare.epoch, holders: dep.reshare.holders, shares: dep.reshare.shares });
  for (const { gen, holders, shares } of splits) {
    const i = holders.indexOf(me);
    if (i < 0) continue;
    for (const s of shares) {
      const share = openShare(identityKey, s.boxes[i] ?? '');
      if (share) out.push({ outpoint: dep.outpoint, pubkey: s.pubkey, share: bytesToHex(share), gen });
    }
  }
  return out;
}
