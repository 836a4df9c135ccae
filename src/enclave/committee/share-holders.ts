/**
 * Whom the shares of a handed-over key are sealed to, and when they must be split afresh
 * (docs/protocol/committees.md, "Re-splitting handed-over keys"). A peer splits its keys for the roster
 * proof, in the committee's formation order; after a roster change the committee re-splits them for the
 * members it has now (resharing.ts), and each peer deposit then names its holders itself. Pure functions,
 * shared by the primary that re-splits, the members that give their old shares, the rules every backup
 * checks an update with, and the signer that gathers shares.
 */
import type { CommitteeState, PeerDeposit } from '../treasury/state.ts';

/** The formation order peers split in (CommitteeState.shareOrder; absent until the first view change). */
export function formationOrder(c: CommitteeState): string[] {
  return c.shareOrder ?? c.members.map((m) => m.node_id);
}

/** The members `dep.shares` are sealed to, in box order. */
export function holdersOf(dep: PeerDeposit, c: CommitteeState): string[] {
  return dep.holders ?? formationOrder(c);
}

/** The same members, whatever the order (a promotion reorders the roster but changes no one's share). */
export function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id) => b.includes(id));
}

/** The current roster, in view order: what a re-split seals to. */
export function rosterIds(c: CommitteeState): string[] {
  return c.members.map((m) => m.node_id);
}

/**
 * Whether `dep`'s shares must be split afresh: they are held by another set of members than the current
 * roster (a member was removed, so its share must become worthless, or added, so it needs one).
 */
export function reshareDue(dep: PeerDeposit, c: CommitteeState): boolean {
  return !!dep.shares?.length && !sameMembers(holdersOf(dep, c), rosterIds(c));
}
