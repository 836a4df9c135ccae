/**
 * The treasury's boundary types: what it needs from its host (`TreasuryPorts`), what it tells the host
 * (`TreasuryEvent`), and the shapes that cross the ecall boundary for payments. Every treasury module
 * and the enclave program import these from here, never from treasury.ts, so the modules that make up
 * the treasury depend on this file and not on each other in a circle.
 */
import type { Quote } from '../../../enclave-sim/quote.ts';
import type { ChannelMessage, MultiHopMessage } from '../protocol/messages.ts';
import type { TreasuryErrorCode } from './errors.ts';
import type { PayRefInput } from './payment-refs.ts';
import type { CommitteeMember } from './state.ts';
import type { MhRoundEvent } from './multihop/host.ts';

/** What the host tells the enclave about an output, fetched from its chain node (not proven; see docs/threat-model.md). */
export interface TxOutInfo {
  txHex: string;
  confirmations: number;
  unspent: boolean;
}

export type TreasuryEvent =
  | { type: 'peer_connected'; conn: string; peer_id: string }
  | { type: 'peer_disconnected'; conn: string; peer_id: string | null; reason: string }
  | { type: 'pay_acked'; channel_id: string; total: string }
  | { type: 'pay_received'; channel_id: string; amounts: number[]; total: string }
  | { type: 'channel_updated'; channel_id: string; status: string }
  | { type: 'channel_settled'; channel_id: string; txid: string; by: 'local' | 'remote'; paid_total?: string }
  | { type: 'settlement_paid'; channel_id: string; txid: string; paid_total: string }
  | { type: 'committee_roster'; members: CommitteeMember[]; index: number }
  /** This member adopted a new committee view (src/enclave/committee/promotion.ts). */
  | { type: 'committee_view'; epoch: number; primary: string; members: CommitteeMember[]; index: number }
  | { type: 'committee_join_refused'; code: string }
  /** Backup: refs of the primary's keyed payments adopted with an update and sealed (committee/update-refs.ts). */
  | { type: 'pay_refs_held' }
  | { type: 'committee_update_refused'; member: string; seq: number; code: string }
  | { type: 'roster_refused'; peer_id: string; channel_id: string; reason: string }
  /** A committee peer's paid total without its backups' proof of replication: not credited (paid-proof.ts). */
  | { type: 'payment_unproven'; channel_id: string; total: string; reason: string }
  /** A path round's first record here, its payments left out, its end (multihop/payments.ts). */
  | MhRoundEvent
  /** A committee's multi-hop COMMIT without its backups' proof that they hold it: not taken (committed-proof.ts). */
  | { type: 'multihop_commit_unproven'; payment_id: string; channel_id: string; reason: string }
  /** A channel peer's verified committee roster, with its members' addresses (hints for the host's dialling). */
  | { type: 'peer_roster'; peer_id: string; members: Array<{ node_id: string; address: string }> };

/** How a new treasury is replicated: alone (absent), as a committee's primary, or as a backup. */
export type CommitteeConfig =
  { role: 'primary'; size: number; threshold?: number; address: string } | { role: 'backup' };

export interface TreasuryPorts {
  /** Durably seal `state`; `protect: false` lets the seal skip the rollback counter (credit-only.ts). */
  seal(state: Uint8Array, protect: boolean): Promise<void>;
  /** Frames for one connection, in order. */
  send(conn: string, frames: Uint8Array[]): void;
  /** Ask the host to drop a connection (after a session failure). */
  close(conn: string, reason: string): void;
  emit(event: TreasuryEvent): void;
  getTxOut(txid: string, vout: number): Promise<TxOutInfo | null>;
  quote(reportData: Uint8Array, nonce: Uint8Array): Promise<Quote>;
  random(n: number): Uint8Array;
  /** Milliseconds the enclave waits for a peer's answer to open / add / remove. */
  replyTimeoutMs?: number;
  /** Milliseconds a multi-hop payer waits for its path to lock and sign before aborting (default 5 s). */
  multihopTimeoutMs?: number;
  /** A committee backup suspects a primary it has not heard from for this long (absent or 0: never). */
  promotionTimeoutMs?: number;
}

export interface PayRequest {
  channel_id: string;
  amount_sat: number;
  /** A keyed payment's ref (payment-refs.ts): sealed with its debit. */
  ref?: PayRefInput;
}
export type PayResult =
  { ok: true; channel_id: string; position: string } | { ok: false; code: TreasuryErrorCode; message: string };

/** A message for a peer, queued until the seal that makes what it reports durable. */
export interface Outgoing {
  peerId: string;
  msg: ChannelMessage | MultiHopMessage;
}
