/**
 * The treasury's whole state: what the enclave seals after every change, and nothing else.
 *
 * Kept small on purpose (keys, deposits, channels and their cumulative totals; no payment history,
 * which the host keeps), so that sealing all of it once per group commit stays cheap.
 */
import type { Quote } from '../../../enclave-sim/quote.ts';
import type { PeerRoster } from '../committee/roster.ts';
import type { ViewCert, ViewSpec } from '../committee/view.ts';
import { recordFromSealed, type FlatMhRecord, type MhPayment, type MhRefRound } from './multihop/records.ts';

export type { MhHop, MhPayment, MhPhase } from './multihop/records.ts';

/**
 * Deposit life cycle: pending (address given, not yet confirmed) → free → in_channel ⇄ free → spent. A deposit
 * in_channel when its channel closes mid-addition or mid-removal stays in_channel until the chain shows
 * whether the settlement spent it (→ spent) or not (→ free).
 */
export type DepositStatus = 'pending' | 'free' | 'in_channel' | 'spent';

export interface Deposit {
  id: string;
  /** m-of-n P2WSH multisig (1-of-1 for a treasury without a committee). */
  m: number;
  pubkeys: string[];
  /** Private keys this enclave holds for the deposit (all of them for a 1-of-1). Never leave the enclave but to an attested channel peer. */
  privkeys: string[];
  witnessScript: string;
  address: string;
  status: DepositStatus;
  outpoint?: string;
  value?: bigint;
  channelId?: string;
  /** Txid of the transaction that spent it (release or settlement), once known. */
  spentBy?: string;
  /** The release transaction this enclave signed, kept so the host can broadcast it again. */
  releaseHex?: string;
  /** A committee's deposit in a channel: each member's key sealed to the channel peer (resent on resync). */
  sealedKeys?: string[];
  /** In a channel with a committee peer: each key split for the peer's roster (resent on resync); no whole key leaves. */
  peerShares?: Array<{ pubkey: string; boxes: string[] }>;
}

/** A counterparty's deposit in one of our channels, with the keys its enclave handed over. */
export interface PeerDeposit {
  outpoint: string;
  value: bigint;
  m: number;
  pubkeys: string[];
  privkeys: string[];
  witnessScript: string;
  /**
   * With a committee, the handed-over keys are not kept whole anywhere: each is split m-of-n (Shamir) and
   * share i is sealed to member i (boxes[i]); `privkeys` is then empty.
   */
  shares?: Array<{ pubkey: string; boxes: string[] }>;
  /**
   * Whom `shares` are sealed to, boxes[i] to holders[i]: absent, the committee's formation order
   * (CommitteeState.shareOrder), which is how a peer splits; after a re-split, the roster it was made for.
   */
  holders?: string[];
  /** Which split `shares` come from: 0 (absent) the granter's, else the epoch of the re-split that made them. */
  gen?: number;
  /**
   * A re-split for a new roster (committee/resharing.ts), made in view `epoch` and kept beside the shares it
   * replaces until every replicating member has sealed it; then it becomes `shares` and the old ones go.
   */
  reshare?: { epoch: number; holders: string[]; shares: Array<{ pubkey: string; boxes: string[] }> };
}

/** Channel life cycle: opening → open → closed (settled by us or by the peer). */
export type ChannelStatus = 'opening' | 'open' | 'closed';

export interface Channel {
  id: string;
  peerId: string;
  status: ChannelStatus;
  initiator: boolean;
  /** Output scripts (hex) each side is paid to at settlement. */
  myPayout: string;
  peerPayout?: string;
  /** Ids of our deposits in the channel; those in `removing` await the peer's acknowledgement to leave. */
  myDeposits: string[];
  removing: string[];
  /** Deposits we asked the peer to credit, not yet acknowledged (not counted in our balance). */
  adding: string[];
  peerDeposits: PeerDeposit[];
  /** Cumulative satoshis we have paid on this channel, and the peer has paid us (as we know it). */
  sent: bigint;
  received: bigint;
  /** The highest `sent` total the peer has acknowledged. */
  acked: bigint;
  /**
   * `paid`: how much of our `sent` the settlement pays the peer, once known (the peer's authenticated
   * `settled` totals, or the chain confirming our own); `peer`: a peer settlement that raced ours.
   */
  settlement?: {
    txid: string;
    by: 'local' | 'remote';
    hex?: string;
    feeRate?: number;
    paid?: bigint;
    peer?: { txid: string; received?: bigint };
  };
  /** A multi-hop payment (its id) holds this channel: no other payment or deposit change until it resolves. */
  lockedBy?: string;
  /**
   * Closed with their addition or removal unacknowledged: our deposits that the winning settlement may or
   * may not spend. They stay in_channel until a confirmed spend of the channel decides (deposit-fate.ts).
   */
  undecided?: string[];
  /** The peer is a committee: sign every paid total we send it (src/enclave/protocol/peer-sigs.ts). */
  signPays?: boolean;
  /** We are a committee: the peer's signature of `peerPayout`, and of the highest total it has paid us. */
  peerPayoutSig?: string;
  peerPaid?: { total: bigint; sig: string };
  /** The peer is a committee: its verified roster proof (src/enclave/committee/roster.ts). Keys go to it only as shares. */
  peerRoster?: PeerRoster;
}

export interface TreasuryConfig {
  /** Attestation trust anchor and the enclave measurements this treasury accepts as peers. */
  trustAnchor: string;
  allowedMeasurements: string[];
  /** Confirmations a deposit needs before it is free to use. */
  minConfirmations: number;
  /** Default address our side of a channel is paid to at settlement (the host's user chooses it). */
  payoutAddress: string;
  /** What this treasury charges to forward a multi-hop payment: base + amount × ppm / 1e6 (sat). */
  fees?: { base: number; ppm: number };
}

export interface CommitteeMember {
  node_id: string;
  /** host:port where its host listens (members dial the members before them in the chain). */
  address: string;
  /** Where clients reach its host's REST API: a hint, signed by the member itself (committee/rest-url.ts). */
  rest_url?: string;
  rest_url_sig?: string;
}

/** A treasury replicated over a committee chain (docs/protocol/committees.md); absent for a lone treasury. */
export interface CommitteeState {
  role: 'primary' | 'backup';
  /** n members in all (primary included) and the threshold m of signatures / shares. */
  size: number;
  threshold: number;
  /** Chain order: members[0] is the primary, the last one the tail. A backup has it from the primary's updates. */
  members: CommitteeMember[];
  /** Backup: the primary it joined, whose signature every update must carry. */
  primaryId?: string;
  /**
   * The committee's one identity for channel peers and routing: the founding primary's node id, which never
   * changes when another member becomes primary. Absent in states sealed before it existed (then members[0]).
   */
  treasuryId?: string;
  /** The view number: 0 at formation, one more at every view change (promotion, members changed). Absent means 0. */
  epoch?: number;
  /** The certificate of the current view (absent in epoch 0): shown to members and channel peers that are behind. */
  view?: ViewCert;
  /**
   * Every roster change's certificate since formation, oldest first (roster-change.ts): the chain a
   * channel peer that verified an older roster follows to the current one. One per member added or removed.
   */
  rosterViews?: ViewCert[];
  /** The last view this member voted for (sealed before the vote left): it never votes twice in one epoch. */
  vote?: ViewSpec;
  /**
   * The roster order of formation, fixed across view changes: peers split handed-over keys for the roster
   * proof in this order, so share i stays member i's whoever is primary. Absent means `members`.
   */
  shareOrder?: string[];
  /** A former primary that adopted a newer view: its next update may undo what it never had acknowledged. */
  rejoin?: boolean;
  /** Primary: sequence number of the last update issued. Backup: of the last update applied. */
  seq: number;
  /** Backup: its own key of each committee deposit, by deposit id (the primary keeps its own in `privkeys`). */
  memberKeys: Record<string, string>;
  /** Settlements and releases this member has signed (channel or deposit id → txid): it never signs another. */
  signed: Record<string, string>;
  /** Backup: the latest update applied, forwarded down the chain and attached to signing requests. */
  /** Backup: channels it signed a settlement of that an adopted update showed closed by that txid (so a delta may leave them out). */
  shownClosed?: Record<string, string>;
  lastUpdate?: { seq: number; epoch?: number; body: string; sig: string };
  /** Backup: settlements that members after it reported signing (relayed refusals): an update may close a channel at those totals. */
  reported?: Record<string, { txid: string; sent: bigint; received: bigint }>;
  /** Primary: SHA-256 of each one-time join token → the member it admitted, null while unused (join-tokens.ts). */
  joinTokens?: Record<string, string | null>;
  /**
   * Primary: the one node the operator asked to add to the formed committee (admission.ts), with the
   * address it was dialled at; sealed before the node is asked to join, gone once the roster change is
   * adopted or the attempt fails. It admits that node once, without a join token.
   */
  admission?: { node_id: string; address: string };
  /** Primary: each member's quote over its node id (its own included), for the roster proof sent to channel peers. */
  quotes?: Record<string, Quote>;
}

export interface TreasuryState {
  version: 1;
  identityKey: string;
  config: TreasuryConfig;
  committee?: CommitteeState;
  nextDeposit: number;
  deposits: Record<string, Deposit>;
  channels: Record<string, Channel>;
  /** Multi-hop payments this treasury takes part in (docs/protocol/multihop.md), by payment id. */
  multihop?: Record<string, MhPayment>;
  /**
   * Keyed payments whose ref the host has not journaled yet (payment-refs.ts), by key hash: this treasury's
   * own, and on a committee backup those its primary's updates carried (committee/update-refs.ts).
   */
  payRefs?: Record<string, PayRefRecord>;
  /** Keyed routed payments this treasury pays whose outcome the host has not journaled yet (multihop/payer-refs.ts), by round id. */
  mhRefs?: Record<string, MhRefRound>;
}

/** A keyed payment's debit: channel, position (sent total after it), amount, request hash, the host's payment id. */
export interface PayRefRecord {
  ch: string;
  pos: bigint;
  amt: number;
  fp: string;
  id?: string;
}

// bigint values are written as "<digits>n" strings: no other string in the state is all digits + 'n'.
const BIGINT_RE = /^-?\d+n$/;

export function encodeState(state: TreasuryState): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(state, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)));
}

export function decodeState(bytes: Uint8Array): TreasuryState {
  const state = JSON.parse(new TextDecoder().decode(bytes), (_k, v) =>
    typeof v === 'string' && BIGINT_RE.test(v) ? BigInt(v.slice(0, -1)) : v,
  ) as TreasuryState;
  if (state.version !== 1) throw new Error(`sealed state: unknown version ${String(state.version)}`);
  // Multi-hop records sealed before each phase had its own type are read into the type of their phase.
  if (state.multihop)
    for (const [pid, rec] of Object.entries(state.multihop as Record<string, FlatMhRecord | MhPayment>))
      state.multihop[pid] = recordFromSealed(rec);
  return state;
}

/** Sum of the values of our deposits in `ch` (including those being removed, which still back it). */
export function myDepositTotal(state: TreasuryState, ch: Channel): bigint {
  let sum = 0n;
  for (const id of ch.myDeposits) sum += state.deposits[id]?.value ?? 0n;
  return sum;
}

export function peerDepositTotal(ch: Channel): bigint {
  let sum = 0n;
  for (const d of ch.peerDeposits) sum += d.value;
  return sum;
}

/** Our side of the channel: our deposits − what we paid + what we were paid. */
export function localBalance(state: TreasuryState, ch: Channel): bigint {
  return myDepositTotal(state, ch) - ch.sent + ch.received;
}

export function remoteBalance(ch: Channel): bigint {
  return peerDepositTotal(ch) - ch.received + ch.sent;
}

/** What we may still pay: our balance less the deposits on their way out of the channel. */
export function spendable(state: TreasuryState, ch: Channel): bigint {
  let leaving = 0n;
  for (const id of ch.removing) leaving += state.deposits[id]?.value ?? 0n;
  return localBalance(state, ch) - leaving;
}
