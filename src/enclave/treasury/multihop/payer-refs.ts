/**
 * Keyed routed payments at the payer: the enclave's half of idempotency keys for multi-hop payments
 * (docs/api.md, "Idempotency"), as payment-refs.ts is for direct ones.
 *
 * The host journals a keyed routed payment's start before it asks the enclave, and its outcome after
 * (src/node/payment-journal.ts). A crash between the two used to leave the key answering `in_flight` for
 * ever, though the round resolves by itself after the restart (the payer's LOCK wait times out, or the
 * peers' resynchronisation finishes it). So each keyed payment of a round carries a ref (16-byte hashes
 * of its key and request) and the enclave keeps it with the round, sealed in the very seal of the round's
 * first record here (the payer's LOCK): no routed debit exists without its ref. When the round resolves
 * the ref takes the payment's outcome (succeeded with the channel, the route and its fee; failed with the
 * round's abort code, or `insufficient_capacity` for one a hop left out), sealed with the record that
 * resolves it. The host lists the refs at start-up and after a round ends, journals the outcomes its
 * journal lacks, and says which it has journaled; only resolved refs are dropped then.
 *
 * A hostile host gains nothing here: it can leave refs out or drop them, which only costs its own user
 * the protection against an unanswerable key; a ref never moves money or changes a balance. The table is
 * bounded: a round that would take it past MAX_MH_REFS is refused before anything moves.
 */
import { TreasuryError } from '../errors.ts';
import { isWellFormedRef } from '../payment-refs.ts';
import type { TreasuryState } from '../state.ts';
import type { MhPayment, MhRefEntry, MhRefRound } from './records.ts';

/** How many keyed routed payments the state may hold refs for (the host acknowledges them as it journals). */
export const MAX_MH_REFS = 100_000;

/** A payment's key and request hashes, as the host hands them over. */
export interface MhRefInput {
  key: string;
  fp: string;
}

export type MhRefOutcome =
  | { outcome: 'pending' }
  | { outcome: 'succeeded'; channel_id: string; route: string[]; fee_sat: string }
  | { outcome: 'failed'; code: string };

/**
 * Checked before a round is planned: the refs are well formed, none stands for a payment that may move or
 * has moved money (the host answers a retried key from its journal and never asks again; a second round
 * for a key whose payment is pending or succeeded would be the host paying twice) and they fit the table.
 * A key whose payment failed may go again: the host retries a payment whose round aborted for a busy
 * channel, and nothing moved for it. Throws, so the whole call is refused and nothing moves.
 */
export function checkRoundRefs(state: TreasuryState, refs: ReadonlyArray<MhRefInput | undefined>): void {
  const held = heldKeys(state);
  const asked = new Set<string>();
  for (const r of refs) {
    if (!r) continue;
    if (!isWellFormedRef(r.key, r.fp))
      throw new TreasuryError('invalid_argument', 'a payment ref is two 16-byte hex hashes');
    const known = held.get(r.key);
    if ((known && known !== 'failed') || asked.has(r.key))
      throw new TreasuryError('invalid_argument', `payment ref ${r.key} is already held for a payment (${known})`);
    asked.add(r.key);
  }
  if (asked.size > 0 && held.size + asked.size > MAX_MH_REFS)
    throw new TreasuryError(
      'invalid_argument',
      `${MAX_MH_REFS} routed payment refs are not journaled yet: acknowledge them first`,
    );
}

/** Records a round's keyed payments (called in the step that locks our channel, before its seal). */
export function recordRoundRefs(
  state: TreasuryState,
  pid: string,
  ch: string,
  route: string[],
  entries: Array<MhRefInput & { k: number; amt: bigint; fee: bigint; id?: string }>,
): void {
  if (entries.length === 0) return;
  // A failed payment going again (checkRoundRefs): its old ref gives way to this round's.
  forget(state, new Set(entries.map((e) => e.key)), () => true);
  const refs: Record<string, MhRefEntry> = {};
  for (const e of entries)
    refs[e.key] = { fp: e.fp, k: e.k, amt: e.amt, fee: e.fee, ...(e.id !== undefined ? { id: e.id } : {}) };
  (state.mhRefs ??= {})[pid] = { ch, route, refs };
}

/** SIGN came back to the payer: the keyed payments the path left out failed alone. */
export function noteRoundDropped(state: TreasuryState, pid: string, dropped: readonly number[]): void {
  const round = state.mhRefs?.[pid];
  if (!round || round.out || dropped.length === 0) return;
  const left = new Set(dropped);
  for (const e of Object.values(round.refs)) if (left.has(e.k)) e.code ??= 'insufficient_capacity';
}

/**
 * The payer's record of round `rec` changed: once it is released (the new state is applied) or aborted
 * (the old state stays), its refs take that outcome. Called for every record put, so it must be cheap.
 */
export function resolveRoundRefs(state: TreasuryState, rec: MhPayment): void {
  if (rec.index !== 0) return;
  const round = state.mhRefs?.[rec.pid];
  if (!round || round.out) return;
  if (rec.phase === 'released' || rec.phase === 'done') round.out = { ok: true };
  else if (rec.phase === 'aborted') round.out = { ok: false, code: rec.code };
}

function outcomeOf(round: MhRefRound, e: MhRefEntry): MhRefOutcome {
  if (e.code !== undefined) return { outcome: 'failed', code: e.code };
  if (!round.out) return { outcome: 'pending' };
  if (!round.out.ok) return { outcome: 'failed', code: round.out.code };
  return { outcome: 'succeeded', channel_id: round.ch, route: round.route, fee_sat: e.fee.toString() };
}

export function listMhRefs(
  state: TreasuryState,
): Array<
  { key: string; fp: string; round_id: string; amount_sat: string; payment_id?: string; dest: string } & MhRefOutcome
> {
  const out = [];
  for (const [pid, round] of Object.entries(state.mhRefs ?? {}))
    for (const [key, e] of Object.entries(round.refs))
      out.push({
        key,
        fp: e.fp,
        round_id: pid,
        amount_sat: e.amt.toString(),
        ...(e.id !== undefined ? { payment_id: e.id } : {}),
        dest: round.route[round.route.length - 1]!,
        ...outcomeOf(round, e),
      });
  return out;
}

/**
 * The host journaled these keys' outcomes: forget them (persisted by the next seal). A key still pending
 * is kept (its outcome cannot be journaled yet), and an unknown one changes nothing.
 */
export function dropMhRefs(state: TreasuryState, keys: readonly string[]): void {
  if (keys.length === 0) return;
  forget(state, new Set(keys), (round, e) => outcomeOf(round, e).outcome !== 'pending');
}

/** Deletes the refs of `keys` that `may` allows, and the rounds left without any. */
function forget(state: TreasuryState, keys: Set<string>, may: (round: MhRefRound, e: MhRefEntry) => boolean): void {
  const rounds = state.mhRefs;
  if (!rounds) return;
  for (const [pid, round] of Object.entries(rounds)) {
    for (const [key, e] of Object.entries(round.refs)) if (keys.has(key) && may(round, e)) delete round.refs[key];
    if (Object.keys(round.refs).length === 0) delete rounds[pid];
  }
  if (Object.keys(rounds).length === 0) delete state.mhRefs;
}

/** Every key held, with its payment's outcome so far. */
function heldKeys(state: TreasuryState): Map<string, MhRefOutcome['outcome']> {
  const keys = new Map<string, MhRefOutcome['outcome']>();
  for (const round of Object.values(state.mhRefs ?? {}))
    for (const [key, e] of Object.entries(round.refs)) keys.set(key, outcomeOf(round, e).outcome);
  return keys;
}
