/**
 * Replication updates: what the primary sends down its committee chain after every sealed change.
 *
 * An update is the primary's public state (deposits, channels, cumulative totals, the committee roster;
 * never a private key) with a sequence number, signed by the primary's identity key: either a full
 * snapshot, or a delta that names the update it follows (`base`) and carries only the records changed
 * since (deltas.ts). Members accept an update only with the primary's signature and a sequence number
 * above the last they applied, whoever relays it, and a delta only onto exactly its base: a compromised
 * backup can delay or replay updates, not forge or reorder them. A member that missed updates is sent
 * one full snapshot.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '../../../enclave-sim/encoding.ts';
import { signDigestFast } from '../../crypto/secp256k1-wasm.ts';
import { verifyMessageSha256 } from '../../crypto/secp256k1-openssl.ts';
import type { CommitteeMember, CommitteeState, TreasuryState } from '../treasury/state.ts';
import type { UpdateRefs } from './update-refs.ts';
import type { UpdateMhRefs } from './update-mh-refs.ts';
import { forMembers, recordsOf, REPLICATED, type Collection, type RecordOf, type Records } from './replicated.ts';

export interface SignedUpdate {
  seq: number;
  /** The view it was issued in (view.ts): signed with it, so that no member takes it into another epoch. */
  epoch?: number;
  /** JSON of `ReplicaBody`, signed as these exact bytes. */
  body: string;
  sig: string;
}

/** The replicated collections (replicated.ts) are its fields `deposits`, `channels`, …: every record, or a delta's changed ones. */
export interface ReplicaBody extends Records {
  seq: number;
  /** A delta: the sequence number of the update it follows. Absent: a full snapshot. */
  base?: number;
  /** A delta: the ids of records removed since `base`, by collection. */
  gone?: Partial<Record<Collection, string[]>>;
  /**
   * A delta: the records given as patches, by collection and id, each with the fields it removes. Such a
   * record's entry holds only the fields that changed since `base`; the others are the member's own copy's.
   */
  patched?: Partial<Record<Collection, Record<string, string[]>>>;
  /** The view the update was issued in, and the committee's stable identity (CommitteeState). */
  epoch?: number;
  treasuryId?: string;
  size: number;
  threshold: number;
  members: CommitteeMember[];
  payoutAddress: string;
  nextDeposit: number;
  /** Members' quotes over their node ids (the roster proof); in a delta, absent when unchanged. */
  quotes?: CommitteeState['quotes'];
  /**
   * Full snapshots only, once a view change fixed it: the formation order peers split handed-over keys in
   * (CommitteeState.shareOrder), which a member that joined later cannot know otherwise.
   */
  shareOrder?: string[];
  /**
   * Refs of the primary's keyed payments (update-refs.ts), by key hash: in a delta those new since `base`,
   * in a full snapshot all it holds. Absent: none.
   */
  refs?: UpdateRefs;
  /**
   * The primary's rounds of keyed routed payments (update-mh-refs.ts), by round id: in a delta those whose
   * refs are new or changed since `base`, in a full snapshot all it holds. Absent: none.
   */
  mhRefs?: UpdateMhRefs;
}

function preimage(epoch: number, seq: number, body: string): Uint8Array {
  return new TextEncoder().encode(`teechain-committee-update\0${epoch}\0${seq}\0${body}`);
}

export const bigintAware = (_k: string, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v);
const BIGINT_RE = /^-?\d+n$/;

/** What every update carries whole, full or delta: the roster, m-of-n, the payout address, deposit numbering. */
export type Scalars = Omit<ReplicaBody, Collection | 'seq' | 'base' | 'gone' | 'patched' | 'refs' | 'mhRefs'>;

export function scalarsOf(state: TreasuryState): Scalars {
  const c = state.committee!;
  return {
    epoch: c.epoch ?? 0,
    treasuryId: c.treasuryId ?? c.members[0]!.node_id,
    size: c.size,
    threshold: c.threshold,
    members: c.members,
    payoutAddress: state.config.payoutAddress,
    nextDeposit: state.nextDeposit,
    quotes: c.quotes ?? {},
  };
}

/** The state as members see it, whole (a full snapshot): private keys stripped, everything else as the primary has it. */
export function replicaOf(state: TreasuryState, seq: number): ReplicaBody {
  const records = {} as Record<Collection, Record<string, unknown>>;
  for (const k of REPLICATED) {
    const out: Record<string, RecordOf<typeof k>> = {};
    for (const [id, r] of Object.entries(recordsOf(state, k))) out[id] = forMembers(k, r);
    records[k] = out;
  }
  const order = state.committee!.shareOrder;
  return { seq, ...scalarsOf(state), ...(order ? { shareOrder: order } : {}), ...(records as Records) };
}

/** An update's exact bytes, before its signature. */
export type EncodedUpdate = Omit<SignedUpdate, 'sig'>;

/**
 * `body` as the bytes it is signed and sent as. Encoded at once: the records in a body share nested
 * objects with the live state, which later changes would otherwise reach before the update is signed.
 */
export function encodeUpdate(body: ReplicaBody): EncodedUpdate {
  return { seq: body.seq, epoch: body.epoch ?? 0, body: JSON.stringify(body, bigintAware) };
}

export function signEncoded(u: EncodedUpdate, identityKey: string): SignedUpdate {
  const epoch = u.epoch ?? 0;
  return {
    ...u,
    epoch,
    sig: bytesToHex(signDigestFast(sha256(preimage(epoch, u.seq, u.body)), hexToBytes(identityKey))),
  };
}

export function signUpdate(body: ReplicaBody, identityKey: string): SignedUpdate {
  return signEncoded(encodeUpdate(body), identityKey);
}

/**
 * The body of an update signed by `primaryId`, or null if the signature or the shape is wrong. `fromPrimary`:
 * it came over `primaryId`'s own authenticated session, which says who sent it, so its signature is not
 * checked here; it is wherever the update is passed on (a relay, a catch-up, a signing request).
 */
export function openUpdate(u: SignedUpdate, primaryId: string, fromPrimary = false): ReplicaBody | null {
  const epoch = u.epoch ?? 0;
  if (!fromPrimary && !verifyMessageSha256(hexToBytes(u.sig), preimage(epoch, u.seq, u.body), hexToBytes(primaryId)))
    return null;
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
  if (body.base !== undefined && (!Number.isSafeInteger(body.base) || body.base < 0 || body.base >= body.seq))
    return null;
  for (const k of REPLICATED) {
    // A collection an update leaves out has no records in it (a full one) or none changed (a delta).
    if (body[k] === undefined) (body as unknown as Record<Collection, unknown>)[k] = {};
    const records: unknown = body[k];
    if (typeof records !== 'object' || records === null || Array.isArray(records)) return null;
    const gone: unknown = body.gone?.[k];
    if (gone !== undefined && (!Array.isArray(gone) || !gone.every((id) => typeof id === 'string'))) return null;
  }
  if (body.gone !== undefined && (body.base === undefined || typeof body.gone !== 'object')) return null;
  if (body.patched !== undefined) {
    if (body.base === undefined || typeof body.patched !== 'object' || body.patched === null) return null;
    for (const [k, ids] of Object.entries(body.patched)) {
      if (!(REPLICATED as readonly string[]).includes(k) || typeof ids !== 'object' || ids === null) return null;
      for (const [id, unset] of Object.entries(ids as Record<string, unknown>))
        if (!body[k as Collection][id] || !Array.isArray(unset) || !unset.every((f) => typeof f === 'string'))
          return null;
    }
  }
  return body;
}

/**
 * The delta `body` with each patched record made whole from `held` (the member's own copy, left
 * untouched): a new body in which every record carried is complete, or null if a patch names a record
 * the member does not hold. Unpatched records are the body's own.
 */
export function wholeRecords(
  body: ReplicaBody,
  held: <K extends Collection>(k: K, id: string) => RecordOf<K> | undefined,
): ReplicaBody | null {
  if (!body.patched) return body;
  const out: ReplicaBody = { ...body, patched: undefined };
  for (const k of REPLICATED) {
    const patches = body.patched[k];
    if (!patches) continue;
    const records: Record<string, unknown> = { ...body[k] };
    for (const [id, unset] of Object.entries(patches)) {
      const own = held(k, id);
      if (!own) return null;
      const whole: Record<string, unknown> = { ...own, ...(body[k][id] as object) };
      for (const f of unset) delete whole[f];
      records[id] = whole;
    }
    (out as unknown as Record<Collection, unknown>)[k] = records;
  }
  delete out.patched;
  return out;
}

/** m for a committee of n when none is given: a majority, so that no single member suffices once n ≥ 2. */
export function defaultThreshold(n: number): number {
  return Math.floor(n / 2) + 1;
}
