/**
 * The committees our channel peers announce: each peer's latest verified roster, or why its roster was
 * refused. A peer that is a committee gets our deposit keys only as shares, one per attested member;
 * a peer whose roster does not verify gets no keys at all (it said it is a committee, so whole keys are
 * never the fallback).
 */
import { shareKeys } from '../committee/coordinator.ts';
import type { PeerRoster } from '../committee/roster.ts';
import { recheckPeerRoster, verifyAnnouncedRoster } from '../committee/roster-change.ts';
import { splitSecret } from '../committee/shares.ts';
import type { ChannelMessage } from '../protocol/messages.ts';
import { TreasuryError } from './errors.ts';
import type { TreasuryEvent } from './ports.ts';
import type { Channel, TreasuryState } from './state.ts';

export interface PeerRostersDeps {
  readonly state: TreasuryState;
  /** Straight to the host: a refusal reports no state change. */
  emit(event: TreasuryEvent): void;
  commit(): Promise<void>;
}

export class PeerRosters {
  /** Each peer's latest verified roster (it may come before the channel it is for exists here). */
  private readonly rosters = new Map<string, PeerRoster>();
  /** Peers whose announced roster did not verify, and why: they get no keys, whole or shared. */
  private readonly refused = new Map<string, string>();

  constructor(private readonly deps: PeerRostersDeps) {}

  /** The peer's latest verified roster, if it announced one. */
  verified(peerId: string): PeerRoster | undefined {
    return this.rosters.get(peerId);
  }

  /** Why the peer's announced roster was refused, if it was. */
  refusal(peerId: string): string | undefined {
    return this.refused.get(peerId);
  }

  /** Splits `privkeys` for the channel peer's roster, re-verified from the sealed proof before any share leaves. */
  async sharesFor(ch: Channel, privkeys: string[]) {
    let roster: PeerRoster;
    try {
      roster = recheckPeerRoster(ch.peerRoster!, ch.peerId, this.deps.state.config);
    } catch (err) {
      throw new TreasuryError('roster_unknown', `the peer's roster does not verify: ${(err as Error).message}`);
    }
    return shareKeys(
      privkeys,
      roster.members.map((node_id) => ({ node_id, address: '' })),
      roster.threshold,
      splitSecret,
    );
  }

  /** A channel was rebound to `peerId`, a committee's new primary (peer-views.ts): its roster is that committee's. */
  rebound(peerId: string, roster: PeerRoster | undefined): void {
    if (!roster) return;
    this.rosters.set(peerId, roster);
    this.refused.delete(peerId);
  }

  /**
   * A peer announced its committee roster: verified, it decides where our keys go; refused, none go. A
   * committee past its founding view proves the sender its primary with the view's certificate
   * (roster-change.ts verifyAnnouncedRoster); one older than a view this side adopted is refused.
   */
  async apply(peerId: string, msg: Extract<ChannelMessage, { t: 'roster' }>): Promise<void> {
    let roster: PeerRoster;
    try {
      roster = verifyAnnouncedRoster(msg, peerId, this.deps.state.config);
      this.assertCurrent(roster, peerId);
    } catch (err) {
      const reason = (err as Error).message;
      this.refused.set(peerId, reason);
      this.deps.emit({ type: 'roster_refused', peer_id: peerId, channel_id: msg.ch, reason });
      return;
    }
    this.refused.delete(peerId);
    this.rosters.set(peerId, roster);
    // Where the other members listen, for the host to dial if this peer goes away (a view change may follow).
    this.deps.emit({
      type: 'peer_roster',
      peer_id: peerId,
      members: msg.members.map((m) => ({ node_id: m.node_id, address: m.address ?? '' })),
    });
    const ch = this.deps.state.channels[msg.ch];
    if (ch && ch.peerId === peerId && ch.status !== 'closed' && !ch.peerRoster) {
      ch.peerRoster = roster;
      await this.deps.commit();
    }
  }

  /**
   * Throws if this side already adopted a later view of the same committee (by its founding primary), or
   * another primary for the same view: a former primary cannot take new channels with an old certificate.
   */
  private assertCurrent(roster: PeerRoster, peerId: string): void {
    const epoch = roster.view?.epoch ?? 0;
    const known = [...Object.values(this.deps.state.channels).map((c) => c.peerRoster), ...this.rosters.values()];
    for (const r of known) {
      if (!r || r.members[0] !== roster.members[0]) continue;
      const theirs = r.view?.epoch ?? 0;
      const primary = r.view?.members[0] ?? r.members[0];
      if (theirs > epoch)
        throw new Error(`the committee's view ${epoch} is older than view ${theirs} this side adopted`);
      if (theirs === epoch && primary !== peerId)
        throw new Error(`view ${epoch} of the committee has another primary than the session peer`);
    }
  }
}
