/**
 * Who a neighbour is on a path (docs/protocol/multihop.md, "Committee hops"). Paths, records, channel
 * descriptions and the graph name every treasury by its stable identity: a lone treasury's node id, a
 * committee's treasury_id (its founding primary's node id, first in the roster proof it showed us), which
 * never changes when another member becomes primary. Messages, however, travel over a session with
 * whichever member is that committee's primary now: the member our channels to it are bound to, which a
 * promotion changes only with a certificate of the roster we verified (peer-views.ts).
 *
 * Both directions are read from the channels, the only place a binding is ever proven, so a session
 * peer's word never makes it speak for a treasury: the founding primary of a committee that moved on
 * speaks for nobody on our paths (its messages are dropped), and a session with no channel speaks only
 * for itself. Pure functions of the state: a backup checking an update reads the same identities.
 */
import type { Channel, TreasuryState } from '../state.ts';

/** The treasury at the other end of `ch`: a committee's founding primary, else the session peer. */
export function peerTreasury(ch: Channel): string {
  return ch.peerRoster?.members[0] ?? ch.peerId;
}

/**
 * Each neighbouring treasury's current session peer: the member its channels were last bound to (the
 * highest view adopted; an open channel over a closed one, which is never rebound).
 */
function bindings(state: TreasuryState): Map<string, string> {
  const best = new Map<string, { session: string; rank: number }>();
  for (const ch of Object.values(state.channels)) {
    const rank = 2 * (ch.peerRoster?.view?.epoch ?? 0) + (ch.status === 'closed' ? 0 : 1);
    const id = peerTreasury(ch);
    const known = best.get(id);
    if (!known || rank > known.rank) best.set(id, { session: ch.peerId, rank });
  }
  return new Map([...best].map(([id, b]) => [id, b.session]));
}

/** Both directions of the mapping, read once from the channels (for a caller that maps many). */
export function identities(state: TreasuryState) {
  const b = bindings(state);
  const sessions = new Set(b.values());
  return {
    /** The session that speaks for `treasury` now (itself when no channel says otherwise). */
    sessionOf: (treasury: string): string => b.get(treasury) ?? treasury,
    /**
     * The treasury `session` speaks for on our paths, or null: a committee's former primary (its treasury's
     * channels are bound to another member now) speaks for none.
     */
    treasuryOf: (session: string): string | null => {
      if (sessions.has(session)) for (const [id, s] of b) if (s === session) return id;
      return b.has(session) ? null : session;
    },
  };
}

/** The session that speaks for `treasury` now (itself when no channel says otherwise). */
export function sessionOf(state: TreasuryState, treasury: string): string {
  return identities(state).sessionOf(treasury);
}

/** The treasury `session` speaks for on our paths, or null (see identities). */
export function treasuryOf(state: TreasuryState, session: string): string | null {
  return identities(state).treasuryOf(session);
}
