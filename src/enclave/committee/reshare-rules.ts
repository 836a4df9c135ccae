/**
 * What a backup checks of the handed-over keys' shares in an update (update-rules.ts calls it for every
 * channel it checks), so that a compromised primary cannot swap the shares of a peer's keys for shares it
 * made up, or hand them to other members, outside a re-split that is due (resharing.ts,
 * docs/protocol/committees.md "Re-splitting handed-over keys"):
 *   - a peer deposit keeps its outpoint's value, m, public keys and script;
 *   - its shares, their holders and their split change only by taking the re-split this member already
 *     adopted (`reshare`, exactly), which is step 2, or, for a member that missed step 1 (down, or
 *     standing by), to a split that passes the checks of step 1 below;
 *   - a re-split appears or changes only while this member's own replica shows one due (the shares are
 *     held by another set of members than its current roster), never replacing one made for this very
 *     roster, for the current roster exactly (every member once), of the same keys, one box per holder,
 *     labelled with a view after the split it replaces and no later than the update's, and with this
 *     member's own box opening to a share: step 1;
 *   - a re-split is dropped only by step 2 or when none is due any more.
 * What a backup cannot check without the other members' shares is that the new shares rebuild the key:
 * a primary that makes bad ones can lose the key (denial), not spend it (the public key and the deposit
 * script are unchanged, and the settler checks every rebuilt key against them).
 */
import { bytesToHex, hexToBytes } from '../../../enclave-sim/encoding.ts';
import { publicKeyOf } from '../../crypto/secp256k1.ts';
import type { Channel, PeerDeposit, TreasuryState } from '../treasury/state.ts';
import { openShare } from './key-boxes.ts';
import { reshareDue, rosterIds, sameMembers } from './share-holders.ts';
import type { ReplicaBody } from './update.ts';

export interface SharesRefusal {
  code: 'shares_changed' | 'deposit_changed';
  reason: string;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** Null when `ch`'s peer deposits may follow `old`'s (this member's copy), else the first rule broken. */
export function peerSharesFault(
  replica: TreasuryState,
  body: ReplicaBody,
  old: Channel,
  ch: Channel,
): SharesRefusal | null {
  // A record without its peer deposits: no rule can pass it (the caller answers malformed_record).
  if (!Array.isArray(ch.peerDeposits)) throw new TypeError(`channel ${ch.id} has no peer deposits`);
  // A delta that leaves the peer deposits out hands back this member's own array (wholeRecords): nothing to check.
  if (ch.peerDeposits === old.peerDeposits) return null;
  for (const d of ch.peerDeposits) {
    const o = old.peerDeposits.find((x) => x.outpoint === d?.outpoint);
    if (!o) continue; // a new grant: the primary checked it against the chain, as for a lone treasury
    const where = `channel ${ch.id}, peer deposit ${o.outpoint}`;
    if (d.value !== o.value || d.m !== o.m || !same(d.pubkeys, o.pubkeys) || d.witnessScript !== o.witnessScript)
      return { code: 'deposit_changed', reason: `${where}: its script or value changed` };
    const why = sharesFault(replica, body, o, d);
    if (why) return { code: 'shares_changed', reason: `${where}: ${why}` };
  }
  return null;
}

function sharesFault(replica: TreasuryState, body: ReplicaBody, o: PeerDeposit, d: PeerDeposit): string | null {
  const c = replica.committee!;
  const roster = rosterIds(c);
  const kept = same(d.shares, o.shares) && same(d.holders, o.holders) && (d.gen ?? 0) === (o.gen ?? 0);
  if (!kept) {
    const swapped =
      !!o.reshare &&
      same(d.shares, o.reshare.shares) &&
      same(d.holders, o.reshare.holders) &&
      d.gen === o.reshare.epoch;
    if (!swapped) {
      // A member that missed step 1 (it was down, or standing by) sees the split taken at once: checked as one.
      if (!reshareDue(o, c)) return 'the shares changed while the current roster holds them';
      const why = splitFault(
        replica,
        body,
        o,
        { epoch: d.gen ?? 0, holders: d.holders ?? [], shares: d.shares ?? [] },
        roster,
      );
      if (why) return why;
    }
    return d.reshare === undefined ? null : 'a re-split beside shares just re-split';
  }
  if (same(d.reshare, o.reshare)) return null;
  if (d.reshare === undefined)
    return reshareDue(o, c) ? 'a re-split that is due was dropped before it was taken' : null;
  if (!reshareDue(o, c)) return 'a re-split while the shares are held by the current roster';
  if (o.reshare && sameMembers(o.reshare.holders, roster)) return 'a re-split for this roster replaced by another';
  return splitFault(replica, body, o, d.reshare, roster);
}

/** A new split of `o`'s keys for `roster`, as this member can check it on its own. */
function splitFault(
  replica: TreasuryState,
  body: ReplicaBody,
  o: PeerDeposit,
  r: NonNullable<PeerDeposit['reshare']>,
  roster: string[],
): string | null {
  if (typeof r !== 'object' || r === null || !Array.isArray(r.holders) || !Array.isArray(r.shares))
    return 'a malformed re-split';
  // Labelled by the view it was made in: after the split it replaces, not after the update's view.
  if (!Number.isSafeInteger(r.epoch) || r.epoch <= (o.gen ?? 0) || r.epoch > (body.epoch ?? 0))
    return 'a re-split labelled with another view';
  if (new Set(r.holders).size !== r.holders.length || !sameMembers(r.holders, roster))
    return 'a re-split not for the current roster';
  if (
    !same(
      r.shares.map((s) => s?.pubkey),
      (o.shares ?? []).map((s) => s.pubkey),
    )
  )
    return 'a re-split of other keys';
  const identity = hexToBytes(replica.identityKey);
  const i = r.holders.indexOf(bytesToHex(publicKeyOf(identity)));
  for (const s of r.shares) {
    if (!Array.isArray(s.boxes) || s.boxes.length !== r.holders.length) return 'a re-split without one box per holder';
    const share = typeof s.boxes[i] === 'string' ? openShare(identity, s.boxes[i]!) : null;
    // A share of a 32-byte key is 33 bytes (the package appends its x coordinate).
    if (!share || share.length !== 33) return "this member's new share does not open";
  }
  return null;
}
