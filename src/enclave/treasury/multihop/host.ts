/**
 * What the multi-hop code needs from the treasury it runs in: one interface, so that it never imports the
 * Treasury class (which imports it). The events and chain look-ups are the parts of the treasury's own
 * types that multi-hop uses; the treasury's fuller types fit them.
 */
import type { ChannelMessage, MultiHopMessage, SpeakerProof } from '../../protocol/messages.ts';
import type { Channel, TreasuryState } from '../state.ts';

/**
 * A path round as this treasury records it, for the host's list of rounds: at its first record here (with
 * `payments`), when SIGN brings the payments left out (`dropped`), and when it ends.
 */
export interface MhRoundEvent {
  type: 'mh_round';
  round_id: string;
  role: 'payer' | 'intermediary' | 'destination';
  phase: string;
  route: string[];
  amounts: string[];
  txid: string | null;
  code: string | null;
  /** Each payment as LOCK carries it: its amount delivered, the fee the path charges it, the host's id at the payer. */
  payments?: Array<{ payment_id?: string; amount: string; fee: string }>;
  /** Indices into `payments` of those left out. */
  dropped?: number[];
}

/** The host events a multi-hop payment raises (a subset of the treasury's TreasuryEvent). */
export type MultiHopEvent =
  | { type: 'pay_received'; channel_id: string; amounts: number[]; total: string }
  | { type: 'channel_updated'; channel_id: string; status: string }
  | MhRoundEvent;

/**
 * What a multi-hop message refused without changing anything tells the host, at once (no seal carries it):
 * a committee's COMMIT without its backups' proof that they hold it (hop.ts).
 */
export type MultiHopNotice = {
  type: 'multihop_commit_unproven';
  payment_id: string;
  channel_id: string;
  reason: string;
};

/** What multi-hop needs to know of a chain output: whether it is still unspent. */
export interface TxOutState {
  unspent: boolean;
}

export interface MultiHopHost {
  readonly state: TreasuryState;
  /**
   * This treasury on paths and in the graph: a lone treasury's node id, a committee's stable identity
   * (treasury_id), so that payers need not know which member is primary.
   */
  readonly nodeId: string;
  identityKey(): string;
  /** A committee member: its channel peers sign the totals they pay it (its backups credit nothing else). */
  isCommittee(): boolean;
  /** Whether this treasury takes part in paths now: a lone treasury, or a committee's primary. */
  takesPart(): boolean;
  /**
   * A committee: τ of payment `pid` (its record sealed and replicated at the signing step) with this
   * committee's own deposits signed by m members, merged into `tx`; rejects when too few sign.
   */
  signTau?(pid: string, tx: string): Promise<string>;
  /*
   * Peers below are treasuries (identities.ts): a committee by its treasury_id, whichever member is its
   * primary now; the treasury maps them to and from the sessions the messages travel on.
   */
  /** The treasury a session speaks for on our paths, or null (a committee's former primary). */
  identityOf(session: string): string | null;
  connected(peer: string): boolean;
  /** The treasuries we have a session with now. */
  peers(): string[];
  /** Queues a message for after the next seal (in order with the channel's payments). */
  queue(peer: string, msg: MultiHopMessage | ChannelMessage): void;
  /**
   * A LOCK, or an intermediary's UNLOCK: sent before the seal of the step it reports, as soon as it can
   * overtake nothing of ours (a lone treasury, with no message waiting for the next seal: at once, or as
   * soon as the seal in flight has delivered its own); otherwise queued as `queue` does. Why these two
   * need no seal before they leave: docs/protocol/multihop.md, "A LOCK leaves before its seal".
   */
  sendAhead(peer: string, msg: MultiHopMessage): void;
  /** Sends now, outside any seal (gossip only: it is not state). */
  sendNow(peer: string, msg: MultiHopMessage): void;
  /**
   * A committee primary that is not its founding member: the proof that it speaks for the committee
   * (roster proof and view certificate) its announcements carry (gossip.ts); undefined otherwise.
   */
  speakerProof(): SpeakerProof | undefined;
  commit(): Promise<void>;
  /** An event for the host, released with the next seal. */
  event(e: MultiHopEvent): void;
  /** A notice for the host, now: it reports a refusal that changed nothing, so no seal need come first. */
  notify(e: MultiHopNotice): void;
  closeChannel(ch: Channel, settlement: NonNullable<Channel['settlement']>): void;
  random(n: number): Uint8Array;
  getTxOut(txid: string, vout: number): Promise<TxOutState | null>;
  /** How long the payer waits for LOCK and SIGN before aborting (intermediaries wait twice that). */
  timeoutMs: number;
}

/** What the payer's call resolves to once its payment is released. */
export interface MultiHopResult {
  payment_id: string;
  route: string[];
  amounts: string[];
  fee_sat: string;
  channel_id: string;
}
