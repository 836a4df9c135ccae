/**
 * The primary's side of members removed and added (docs/protocol/committees.md, "Roster change"): it
 * checks the operator's request against the committee as it stands, proposes the next roster as a view
 * change (promotion.ts, roster-change.ts) and answers once a quorum of the current members has voted
 * and the new view is adopted. Every refusal is raised before anything is sealed, so it changes nothing.
 */
import { TreasuryError } from '../treasury/errors.ts';
import type { CommitteeMember } from '../treasury/state.ts';
import { MAX_MEMBERS, type Admission } from './admission.ts';
import type { Membership } from './membership.ts';
import type { CommitteeHost } from './ports.ts';
import type { Promotion } from './promotion.ts';
import type { PrimaryReplication } from './replication-primary.ts';
import { quorum, ViewError } from './view.ts';

export interface RosterChangeResult {
  epoch: number;
  members: string[];
}

export class RosterOps {
  constructor(
    private readonly host: CommitteeHost,
    private readonly chain: Membership,
    private readonly promotion: Promotion,
    private readonly primary: PrimaryReplication,
    private readonly admission: Admission,
  ) {}

  private ids(): string[] {
    return this.chain.c.members.map((m) => m.node_id);
  }

  private assertPrimary(): void {
    if (!this.chain.isPrimary) throw new TreasuryError('not_primary', 'only the primary changes the roster');
    if (!this.chain.known) throw new TreasuryError('committee_incomplete');
  }

  /** Removes `nodeId` (dead or alive) under a new view; the m + 1 members left must all be reachable. */
  async remove(nodeId: string): Promise<RosterChangeResult> {
    this.assertPrimary();
    const ids = this.ids();
    const m = this.chain.c.threshold;
    if (!ids.includes(nodeId)) throw new TreasuryError('not_a_member', `${nodeId.slice(0, 16)}… is not a member`);
    if (nodeId === this.host.nodeId)
      throw new TreasuryError('invalid_argument', 'the primary does not remove itself (a promotion replaces it)');
    const next = ids.filter((id) => id !== nodeId);
    const live = next.filter((id) => id === this.host.nodeId || this.host.connected(id)).length;
    // m + 1 live members: the committee still signs with one of them down, and a quorum can vote now.
    if (next.length < m + 1 || live < m + 1)
      throw new TreasuryError(
        'roster_too_small',
        `${live} of ${next.length} members left would be live, ${m + 1} needed`,
      );
    const wasInChain = ids.indexOf(nodeId) < this.chain.chainLength;
    const chain = Math.min(
      next.length,
      Math.max(quorum(next.length, m), this.chain.chainLength - (wasInChain ? 1 : 0)),
    );
    return this.change(next, chain);
  }

  /**
   * Adds `nodeId` (its host dialled it at `address`: an attested session with this code's measurement)
   * at the tail under a new view. The node must have been started as a backup of this primary; it is
   * admitted once (sealed), attests its node id, is voted in by q current members, then caught up by the
   * new view's full snapshot. Answers once the view is adopted and, if it replicates, the newcomer holds it.
   */
  async add(nodeId: string, address: string): Promise<RosterChangeResult> {
    this.assertPrimary();
    const ids = this.ids();
    const m = this.chain.c.threshold;
    if (ids.includes(nodeId)) throw new TreasuryError('already_a_member', `${nodeId.slice(0, 16)}… is a member`);
    if (ids.length >= MAX_MEMBERS)
      throw new TreasuryError('committee_full', `a committee has at most ${MAX_MEMBERS} members`);
    if (!this.host.connected(nodeId))
      throw new TreasuryError('peer_not_connected', `no attested session with ${nodeId.slice(0, 16)}…`);
    if (this.promotion.busy || this.admission.busy)
      throw new TreasuryError('roster_change_busy', 'another roster change or view change is under way');
    const wait = Math.max(this.host.timeoutMs, 5_000);
    let joining;
    try {
      joining = await this.admission.start(nodeId, address, wait);
    } catch (err) {
      await this.admission.forget();
      throw err;
    }
    const next = [...ids, nodeId];
    // Every member up: the newcomer joins the replicating chain (standing-by members too); else it stands by.
    const allUp = ids.every((id) => id === this.host.nodeId || this.host.connected(id));
    const chain = allUp ? next.length : Math.min(next.length, Math.max(quorum(next.length, m), this.chain.chainLength));
    let result: RosterChangeResult;
    try {
      result = await this.change(next, chain, joining);
    } finally {
      await this.admission.forget();
    }
    // Caught up: the newcomer signed that it holds the new view's snapshot (a member standing by signs nothing).
    const deadline = Date.now() + wait;
    const inChain = this.chain.chainMembers.some((mb) => mb.node_id === nodeId);
    while (inChain && this.primary.heldBy(nodeId) === 0 && Date.now() < deadline && this.chain.isPrimary)
      await new Promise((r) => setTimeout(r, 20));
    return result;
  }

  private async change(next: string[], chain: number, joining?: CommitteeMember): Promise<RosterChangeResult> {
    let epoch: number;
    try {
      epoch = await this.promotion.proposeRosterChange(next, chain, joining);
    } catch (err) {
      if (err instanceof ViewError) throw new TreasuryError('roster_change_busy', err.message);
      throw err;
    }
    const deadline = Date.now() + Math.max(this.host.timeoutMs, 5_000);
    const pause = () => new Promise((r) => setTimeout(r, 20));
    while (this.chain.epoch < epoch && Date.now() < deadline) await pause();
    // Refused only once the proposal is withdrawn: else a late vote could still adopt the view, and the
    // open proposal would keep every later change busy. One being adopted right now is waited for.
    while (this.chain.epoch < epoch && !this.promotion.withdrawRosterChange(epoch)) await pause();
    if (this.chain.epoch < epoch)
      throw new TreasuryError('roster_change_refused', `no quorum of the current members voted for epoch ${epoch}`);
    return { epoch: this.chain.epoch, members: this.ids() };
  }
}
