/**
 * The committees our channel peers announce: each peer's latest verified roster, or why its roster was
 * refused. A peer that is a committee gets our deposit keys only as shares, one per attested member;
 * a peer whose roster does not verify gets no keys at all (it said it is a committee, so whole keys are
 * never the fallback).
 */
import { shareKeys } from '../committee/coordinator.ts';
import { verifyRoster, type PeerRoster } from '../committee/roster.ts';
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
      roster = verifyRoster(
        { threshold: ch.peerRoster!.threshold, members: ch.peerRoster!.proof },
        ch.peerId,
        this.deps.state.config,
        ch.peerRoster!.members[0],
      );
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

  /** A peer announced its committee roster: verified, it decides where our keys go; refused, none go. */
  async apply(peerId: string, msg: Extract<ChannelMessage, { t: 'roster' }>): Promise<void> {
    let roster: PeerRoster;
    // A channel already rebound to this peer by a view change (peer-views.ts) keeps its founding primary first.
    const bound = this.deps.state.channels[msg.ch];
    const first = bound?.peerId === peerId && bound.peerRoster?.view ? bound.peerRoster.members[0] : peerId;
    try {
      roster = verifyRoster({ threshold: msg.threshold, members: msg.members }, peerId, this.deps.state.config, first);
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
}
