/**
 * Replication updates: what the primary sends down its committee chain after every sealed change.
 *
 * An update is the primary's whole public state (deposits, channels, cumulative totals, the committee
 * roster; never a private key) with a sequence number, signed by the primary's identity key. Members
 * accept an update only with the primary's signature and a sequence number above the last they applied,
 * whoever relays it: a compromised backup can delay or replay updates, not forge or reorder them.
 * Whole snapshots (not deltas) make catch-up trivial: a member that missed updates needs only the latest.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '../../../enclave-sim/encoding.ts';
import { signDigest } from '../../crypto/secp256k1.ts';
import { verifyMessageSha256 } from '../../crypto/secp256k1-openssl.ts';
import type { Channel, CommitteeMember, CommitteeState, Deposit, MhPayment, TreasuryState } from '../treasury/state.ts';

export interface SignedUpdate {
  seq: number;
  /** The view it was issued in (view.ts): signed with it, so that no member takes it into another epoch. */
  epoch?: number;
  /** JSON of `ReplicaBody`, signed as these exact bytes. */
  body: string;
  sig: string;
}

export interface ReplicaBody {
  seq: number;
  /** The view the update was issued in, and the committee's stable identity (CommitteeState). */
  epoch?: number;
  treasuryId?: string;
  size: number;
  threshold: number;
  members: CommitteeMember[];
  payoutAddress: string;
  nextDeposit: number;
  deposits: Record<string, Deposit>;
  channels: Record<string, Channel>;
  /**
   * The multi-hop payments this treasury takes part in (their records hold no key; τ, once signed, is in
   * them, so any m members can settle with it). Absent in updates from before committees routed.
   */
  multihop?: Record<string, MhPayment>;
  /** Members' quotes over their node ids (the roster proof). */
  quotes?: CommitteeState['quotes'];
}

function preimage(epoch: number, seq: number, body: string): Uint8Array {
  return new TextEncoder().encode(`teechain-committee-update\0${epoch}\0${seq}\0${body}`);
}

const bigintAware = (_k: string, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v);
const BIGINT_RE = /^-?\d+n$/;

/** The state as members see it: private keys stripped, everything else as the primary has it. */
export function replicaOf(state: TreasuryState, seq: number): ReplicaBody {
  const c = state.committee!;
  const deposits: Record<string, Deposit> = {};
  for (const [id, d] of Object.entries(state.deposits)) deposits[id] = { ...d, privkeys: [] };
  const channels: Record<string, Channel> = {};
  for (const [id, ch] of Object.entries(state.channels))
    channels[id] = { ...ch, peerDeposits: ch.peerDeposits.map((p) => ({ ...p, privkeys: [] })) };
  return {
    seq,
    epoch: c.epoch ?? 0,
    treasuryId: c.treasuryId ?? c.members[0]!.node_id,
    size: c.size,
    threshold: c.threshold,
    members: c.members,
    payoutAddress: state.config.payoutAddress,
    nextDeposit: state.nextDeposit,
    deposits,
    channels,
    multihop: state.multihop ?? {},
    quotes: c.quotes ?? {},
  };
}

export function signUpdate(body: ReplicaBody, identityKey: string): SignedUpdate {
  const json = JSON.stringify(body, bigintAware);
  const epoch = body.epoch ?? 0;
  return {
    seq: body.seq,
    epoch,
    body: json,
    sig: bytesToHex(signDigest(sha256(preimage(epoch, body.seq, json)), hexToBytes(identityKey))),
  };
}

/** The body of an update signed by `primaryId`, or null if the signature or the shape is wrong. */
export function openUpdate(u: SignedUpdate, primaryId: string): ReplicaBody | null {
  const epoch = u.epoch ?? 0;
  if (!verifyMessageSha256(hexToBytes(u.sig), preimage(epoch, u.seq, u.body), hexToBytes(primaryId))) return null;
  let body: ReplicaBody;
  try {
    body = JSON.parse(u.body, (_k, v) =>
      typeof v === 'string' && BIGINT_RE.test(v) ? BigInt(v.slice(0, -1)) : v,
    ) as ReplicaBody;
  } catch {
    return null;
  }
  if (body.seq !== u.seq || (body.epoch ?? 0) !== epoch) return null;
  if (!Array.isArray(body.members) || body.members[0]?.node_id !== primaryId) return null;
  return body;
}

/** m for a committee of n when none is given: a majority, so that no single member suffices once n ≥ 2. */
export function defaultThreshold(n: number): number {
  return Math.floor(n / 2) + 1;
}
