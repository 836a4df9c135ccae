/**
 * What a committee member's coordinator needs from the treasury that owns it, and the shapes that cross
 * between them. Kept apart from the coordinator's parts so that each part, and the treasury, can name
 * these types without importing one another.
 */
import type { Quote } from '../../../enclave-sim/quote.ts';
import type { CommitteeMessage } from '../protocol/messages.ts';
import type { TreasuryErrorCode } from '../treasury/errors.ts';
import type { CommitteeMember, PeerDeposit, TreasuryState } from '../treasury/state.ts';
import type { SpendPlan } from '../treasury/transactions.ts';
import type { UpdateRuleCode } from './update-rules.ts';
import type { ViewCert } from './view.ts';

/** A channel's settlement, a deposit's release, or a multi-hop payment's path settlement τ (id: the payment id). */
export type SignKind = 'settle' | 'release' | 'tau';

/** One input of a transaction the committee signs, and how its signatures are obtained. */
export type PlannedInput =
  | { kind: 'own'; depositId: string; m: number; pubkeys: string[] }
  | { kind: 'peer'; deposit: PeerDeposit }
  /** An input of τ that another hop of the path signs: left as it is. */
  | { kind: 'other' };

export interface Planned {
  plan: SpendPlan;
  inputs: PlannedInput[];
}

/** What the coordinator needs from the treasury that owns it. */
export interface CommitteeHost {
  readonly state: TreasuryState;
  readonly nodeId: string;
  identityKey(): Uint8Array;
  /** Sends at once over the member's session (no-op if it is not connected). */
  sendNow(peerId: string, msg: CommitteeMessage): void;
  connected(peerId: string): boolean;
  commitLocal(): Promise<void>;
  /** Primary: seals, and resolves once every replicating member has sealed the same update (acknowledged). */
  commitReplicated(): Promise<void>;
  /** The unsigned transaction this member would sign for (kind, id) from its own state. */
  planFor(kind: SignKind, id: string, feeRate: number): Planned;
  /** Marks what this member signed as done in its own state (channel closed, deposit spent). */
  markSigned(kind: SignKind, id: string, txid: string, feeRate: number): void;
  rosterChanged(members: CommitteeMember[], index: number): void;
  /** Primary: members signed this settlement of a channel; close it at the signed totals (if they check out). */
  settledByMembers(s: SignedSettlement): void;
  /** Backup: its primary refused its join (with the code the primary gave). */
  joinRefused(code: string): void;
  /** Primary: a member refused update `seq` with `code` (the host logs it: replication may be stuck). */
  updateRefused(member: string, seq: number, code: string): void;
  /** A quote over this member's identity for `nonce` (Treasury.attest). */
  attest(nonce: Uint8Array): Promise<Quote>;
  /** Primary: every member's quote is in; the roster proof can go to channel peers. */
  rosterComplete(): void;
  /**
   * Backup: an adopted update brought payment refs (update-refs.ts); the host hears of them once the seal
   * holding them is durable (optional: test doubles without a host journal leave it out).
   */
  refsHeld?(): void;
  /** This member adopted a new view (promotion.ts): tell the host; a new primary rebinds its channel peers. */
  viewChanged(cert: ViewCert): void;
  timeoutMs: number;
  /** Silence from the primary after which a backup suspects it (0: never, no heartbeats either). */
  promotionTimeoutMs: number;
}

/** A settlement a member signed: the channel, the txid, the totals and fee rate it was built from. */
export interface SignedSettlement {
  ch: string;
  txid: string;
  sent: bigint;
  received: bigint;
  feeRate: number;
}

/** Why an update was refused; for `channel_settled`, the settlement that the update contradicts. */
export interface UpdateRefusal {
  code: TreasuryErrorCode | UpdateRuleCode;
  settled?: SignedSettlement;
}

/** One member's key of a deposit as it goes to the channel peer: sealed whole, or as shares for the peer's roster. */
export type HandedKey = { pubkey: string; box: string } | { pubkey: string; boxes: string[] };
