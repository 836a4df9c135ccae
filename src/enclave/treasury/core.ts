/**
 * The parts of one treasury that its concern modules share (deposits.ts, channel-requests.ts,
 * channel-messages.ts, settlement.ts, committee-adapter.ts, multihop-adapter.ts): the state, the ports,
 * the group commit and its outbox, the peer sessions, and the committee and multi-hop engines.
 *
 * Treasury (treasury.ts) builds the one `TreasuryCore` and hands it to every module. Its members read
 * the treasury's own fields when used, and `planFor` / `sendNow` call the treasury's methods, so there
 * is exactly one of each and whatever replaces one of them (a test's instrumented double) is what every
 * module sees. This file imports only modules that do not import it back, which keeps the treasury's
 * files free of import cycles.
 */
import type { Quote } from '../../../enclave-sim/quote.ts';
import type { CommitteeCoordinator, Planned, SignKind } from '../committee/coordinator.ts';
import type { SessionMessage } from '../protocol/messages.ts';
import type { Committer } from './committer.ts';
import type { MultiHop } from './multihop.ts';
import type { Outbox } from './outbox.ts';
import type { PeerRosters } from './peer-rosters.ts';
import type { Outgoing, TreasuryEvent, TreasuryPorts } from './ports.ts';
import type { PeerReplies } from './replies.ts';
import type { PeerSessions } from './sessions.ts';
import type { Channel, TreasuryState } from './state.ts';
import { channelView } from './views.ts';

export interface TreasuryCore {
  readonly state: TreasuryState;
  readonly nodeId: string;
  readonly ports: TreasuryPorts;
  readonly committer: Committer<Outgoing | TreasuryEvent>;
  readonly outbox: Outbox;
  readonly replies: PeerReplies;
  readonly sessions: PeerSessions;
  /** Present when this treasury is a committee member (primary or backup). */
  readonly committee: CommitteeCoordinator | undefined;
  readonly multihop: MultiHop;
  readonly peerRosters: PeerRosters;
  /** The unsigned transaction this member would sign for a settlement or a release (Treasury.planFor). */
  planFor(kind: SignKind, id: string, feeRate: number): Planned;
  /** Sends one message now, outside the group commit (committee messages, gossip). */
  sendNow(peerId: string, msg: SessionMessage): void;
  /** A quote over this treasury's identity for `nonce`. */
  attest(nonce: Uint8Array): Promise<Quote>;
  /** Refuses everything once a seal has failed: the memory is then ahead of the durable state. */
  assertLive(): void;
  /** Channel and deposit changes start at the primary, and only once its committee is complete. */
  assertPrimary(): void;
}

/** A channel as the host sees it (views.ts), with whether its peer is connected now. */
export function viewChannel(t: TreasuryCore, ch: Channel) {
  return channelView(t.state, ch, t.sessions.connected(ch.peerId));
}
