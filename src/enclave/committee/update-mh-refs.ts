/**
 * Refs of keyed routed payments across a committee (docs/protocol/committees.md, "Replication"), as
 * update-refs.ts is for direct ones: the payer's refs of a round (treasury/multihop/payer-refs.ts) travel
 * with the updates, so that a member promoted after the primary died answers a retried key with the first
 * payment instead of routing it again.
 *
 * A round's refs change after they are made: a hop may leave a payment out, and the round resolves. So an
 * update carries every round whose refs are new or changed since the update before it (a full snapshot:
 * every round the primary holds), each whole; the update that carries the LOCK, the SIGN's left-out
 * payments or the release also carries the round's refs as they are then. Like direct refs, rounds are not
 * a replicated collection: the primary forgets a round once its own host has journaled it, and a backup
 * keeps the copy it adopted, sealed with the adoption, until its own host has journaled it.
 *
 * A round is the primary's word, like the rest of the update, and moves no money: a compromised primary
 * can list wrong refs or none, which only costs its own users the protection against paying twice. What a
 * backup keeps is still checked (well-formed hashes and ids, a channel it holds, bounded sizes) so that
 * nothing malformed reaches its host's journal; a malformed round is left out, and the update adopted.
 */
import type { TreasuryState } from '../treasury/state.ts';
import type { MhRefEntry, MhRefRound } from '../treasury/multihop/records.ts';
import { isWellFormedRef } from '../treasury/payment-refs.ts';
import { MAX_MH_REFS } from '../treasury/multihop/payer-refs.ts';

/** The rounds an update carries, by round id. */
export type UpdateMhRefs = Record<string, MhRefRound>;

/** As update.ts serialises bigints (not imported from there: update.ts names this module's type). */
const bigintAware = (_k: string, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v);
const ROUND_ID = /^[0-9a-f]{64}$/;
const NODE_ID = /^[0-9a-f]{66}$/;
const CODE = /^[a-z][a-z0-9_]{0,63}$/;
/** Longer than any route the payer plans (routing.ts caps paths far below this). */
const MAX_ROUTE = 32;

/** The primary's side: which rounds the next update carries (those whose refs changed since the last one). */
export class MhRefTracker {
  private issued = new Map<string, string>();

  /** The rounds new or changed since the last call (`full`: all of them); remembers what the state holds now. */
  take(state: TreasuryState, full: boolean): UpdateMhRefs | undefined {
    const now = new Map<string, string>();
    const out: UpdateMhRefs = {};
    for (const [pid, round] of Object.entries(state.mhRefs ?? {})) {
      const json = JSON.stringify(round, bigintAware);
      now.set(pid, json);
      if (full || this.issued.get(pid) !== json) out[pid] = round;
    }
    this.issued = now;
    return Object.keys(out).length > 0 ? out : undefined;
  }
}

/**
 * The backup's side: keeps the well-formed rounds of an adopted update (`state` is the state after the
 * adoption) in its own mhRefs, each replacing the copy it held, within MAX_MH_REFS refs in all; returns how
 * many rounds it kept. Called in the same synchronous step as the adoption, so that the seal making the
 * update durable holds them too.
 */
export function keepMhRefs(state: TreasuryState, rounds: unknown): number {
  if (typeof rounds !== 'object' || rounds === null || Array.isArray(rounds)) return 0;
  let kept = 0;
  for (const [pid, r] of Object.entries(rounds as Record<string, unknown>)) {
    const round = ROUND_ID.test(pid) ? wellFormed(state, r) : null;
    if (!round) continue;
    const held = (state.mhRefs ??= {});
    const before = Object.hasOwn(held, pid) ? Object.keys(held[pid]!.refs).length : 0;
    if (refCount(state) - before + Object.keys(round.refs).length > MAX_MH_REFS) continue; // its host stopped journaling
    held[pid] = round;
    kept += 1;
  }
  if (state.mhRefs && Object.keys(state.mhRefs).length === 0) delete state.mhRefs;
  return kept;
}

/** What a round's keys answer when the committee's history never held the round (nothing moved for it). */
export const NEVER_REPLICATED = 'payment_not_started';

/**
 * Rounds still pending here whose record the adopted state does not hold: this member's own, from a time it
 * was primary, whose LOCK no update ever replicated (a primary restarted and rejoined as a backup, say). A
 * committee's LOCK leaves only once every member holds it, and a round's refs come with the update that
 * carries its LOCK, so such a round never locked anything anywhere: its keys fail, and their hosts journal
 * that, instead of answering `in_flight` for ever. Returns how many rounds it resolved so.
 */
export function failOrphanRounds(state: TreasuryState): number {
  let n = 0;
  for (const [pid, round] of Object.entries(state.mhRefs ?? {})) {
    if (round.out || Object.hasOwn(state.multihop ?? {}, pid)) continue;
    round.out = { ok: false, code: NEVER_REPLICATED };
    n += 1;
  }
  return n;
}

function refCount(state: TreasuryState): number {
  let n = 0;
  for (const round of Object.values(state.mhRefs ?? {})) n += Object.keys(round.refs).length;
  return n;
}

/** `r` as a round this member may keep (a fresh copy of what it checked), or null. */
function wellFormed(state: TreasuryState, r: unknown): MhRefRound | null {
  if (typeof r !== 'object' || r === null) return null;
  const { ch, route, out, refs } = r as Record<string, unknown>;
  if (typeof ch !== 'string' || !Object.hasOwn(state.channels, ch)) return null;
  if (!Array.isArray(route) || route.length < 2 || route.length > MAX_ROUTE) return null;
  if (!route.every((id) => typeof id === 'string' && NODE_ID.test(id))) return null;
  const outcome = outcomeOf(out);
  if (outcome === null) return null;
  if (typeof refs !== 'object' || refs === null || Array.isArray(refs)) return null;
  const entries = Object.entries(refs as Record<string, unknown>);
  if (entries.length === 0 || entries.length > MAX_MH_REFS) return null;
  const kept: Record<string, MhRefEntry> = {};
  for (const [key, e] of entries) {
    const entry = entryOf(key, e);
    if (!entry) return null;
    kept[key] = entry;
  }
  return { ch, route: [...(route as string[])], ...(outcome ? { out: outcome } : {}), refs: kept };
}

/** The round's outcome: undefined while pending, null when malformed. */
function outcomeOf(out: unknown): MhRefRound['out'] | null {
  if (out === undefined) return undefined;
  if (typeof out !== 'object' || out === null) return null;
  const { ok, code } = out as Record<string, unknown>;
  if (ok === true && code === undefined) return { ok: true };
  if (ok === false && typeof code === 'string' && CODE.test(code)) return { ok: false, code };
  return null;
}

function entryOf(key: string, e: unknown): MhRefEntry | null {
  if (typeof e !== 'object' || e === null) return null;
  const { fp, k, amt, fee, code, id } = e as Record<string, unknown>;
  if (!isWellFormedRef(key, fp, id)) return null;
  if (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 0) return null;
  if (typeof amt !== 'bigint' || amt < 1n || typeof fee !== 'bigint' || fee < 0n) return null;
  if (code !== undefined && (typeof code !== 'string' || !CODE.test(code))) return null;
  return {
    fp: fp as string,
    k,
    amt,
    fee,
    ...(code !== undefined ? { code: code as string } : {}),
    ...(id !== undefined ? { id: id as string } : {}),
  };
}
