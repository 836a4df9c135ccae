/**
 * What the dashboard server sends the page (over server-sent events) and what the page may ask of it.
 * Types only, shared by src/dashboard (server) and dashboard/ (the page): no runtime code, no Node imports.
 * Satoshi amounts are decimal strings, as in the REST API: JSON numbers would round above 2^53.
 */

export interface AttestationStatus {
  /** True when the node's fresh quote verified against the network's attestation root, for the allow-listed measurement, bound to its node id. */
  verified: boolean;
  measurement: string | null;
  /** Why not verified (the verifier's code and message), or what was checked. */
  detail: string;
  checked_at: number | null;
}

export interface NodeSnapshot {
  name: string;
  node_id: string;
  rest_url: string;
  reachable: boolean;
  /** The last error reaching the node, as its API or the network gave it. */
  error: string | null;
  attestation: AttestationStatus;
  block_height: number | null;
  num_peers: number | null;
  num_channels: number | null;
  deposits: { free_sat: string; in_channels_sat: string; pending_sat: string };
  payments: { sent_succeeded: number; sent_failed: number; received: number };
}

export interface ChannelEnd {
  /** A node name from network.json, or the node id of a peer outside it. */
  node: string;
  balance_sat: string;
}

export interface ChannelSnapshot {
  channel_id: string;
  status: 'opening' | 'open' | 'closed';
  /** The opener. */
  a: ChannelEnd;
  b: ChannelEnd;
  peer_connected: boolean;
  settlement_txid: string | null;
  settled_by: string | null;
  settlement_confirmations: number | null;
}

export type DepositState = 'pending' | 'free' | 'in_channel' | 'settled';

export interface DepositSnapshot {
  node: string;
  deposit_id: string;
  /** `settled` is the enclave's `spent`: paid out by a settlement or a release. */
  status: DepositState;
  value_sat: string | null;
  outpoint: string | null;
  confirmations: number | null;
  channel_id: string | null;
  spent_by: string | null;
}

/** One member of a committee treasury: where the roster puts it, and what its own API says of it. */
export interface CommitteeMemberSnapshot {
  /** Its name in network.json (alice, alice-b1, …), or its node id when the network file does not list it. */
  name: string;
  node_id: string;
  /** In the view of the member that answered first (null: no member answered). */
  role: 'primary' | 'backup';
  /** Its session with the member whose view this is (itself: always). */
  connected: boolean;
  /** From its own GET /v1/committee; null when it did not answer. */
  reachable: boolean;
  seq: number | null;
  acked_seq: number | null;
  epoch: number | null;
  /** From the roster: a hint its host gave, not attested. */
  rest_url: string | null;
}

export interface CommitteeSnapshot {
  /** The treasury's name in network.json (its founding member's). */
  node: string;
  /** The committee's stable identity (GET /v1/getinfo treasury_id). */
  committee_id: string;
  epoch: number;
  /** Name of the current primary. */
  primary: string;
  members: CommitteeMemberSnapshot[];
  detail: string;
}

/** A committee adopting a new view (a promotion), as the dashboard saw it happen. */
export interface ViewChange {
  node: string;
  epoch: number;
  primary: string;
  /** Milliseconds since the epoch, when the dashboard first saw it. */
  at: number;
}

/** One point of the live chart: the whole network over the last poll interval. */
export interface RatePoint {
  /** Seconds since the epoch. */
  t: number;
  payments_per_s: number;
  failed_per_s: number;
  /** Mean latency of the payments that succeeded in the interval; null when there were none. */
  latency_ms: number | null;
  /** 95th percentile, estimated from the histogram's buckets. */
  latency_p95_ms: number | null;
}

export interface Snapshot {
  at: number;
  network: { topology: string | null; chain_rpc: string };
  chain: { height: number | null; error: string | null };
  nodes: NodeSnapshot[];
  channels: ChannelSnapshot[];
  deposits: DepositSnapshot[];
  committees: CommitteeSnapshot[];
  /** The latest view changes of any committee, newest first (bounded). */
  view_changes: ViewChange[];
  rate: RatePoint | null;
}

/** The first message of the event stream: the chart's history so far. */
export interface History {
  points: RatePoint[];
}

export interface PayAction {
  from: string;
  to: string;
  amount_sat: number;
}
export interface OpenChannelAction {
  from: string;
  to: string;
  amount_sat: number;
}
export interface SettleAction {
  node: string;
  channel_id: string;
}
export interface FundAction {
  node: string;
  amount_sat: number;
}
export interface MineAction {
  blocks: number;
}

/** Every action answers with the node's own HTTP status and JSON body (errors as `{error: {code, message}}`). */
export interface ActionError {
  error: { code: string; message: string };
}
