/**
 * The path rounds this node takes part in, as `GET /v1/multihop` shows them (docs/protocol/multihop.md,
 * "Rounds"): each round with its id, this node's role, its phase, route and totals, and the payments in
 * it, each with its amount, the fee the path charges it, its outcome and, at the payer, its own payment id.
 *
 * The enclave keeps a record per round only while it may need it (every round it holds, and the latest
 * resolved ones); the payments in a round are in its record only on their way. So the host keeps this
 * list from the enclave's `mh_round` events (a round's first record here, the payments SIGN says were left
 * out, its end), in memory and bounded like the payment history, and takes each round's phase, totals and
 * txid from the enclave's own records whenever it still has them. A round this process never heard of
 * (one from before a restart) is shown from the enclave's record alone, with no payments, after the others.
 */
import type { TreasuryEventMsg } from '../enclave/treasury/interface.ts';
import type { EcallResult } from './enclave-client.ts';

export type RoundEvent = Extract<TreasuryEventMsg, { type: 'mh_round' }>;

/** One round as the enclave's `mh_view` lists it (its `payment_id` is the round's id). */
export type EnclaveRound = EcallResult<'mh_view'>['payments'][number];

export type PaymentOutcome = 'pending' | 'succeeded' | 'failed';

export interface RoundPaymentView {
  /** The payer's own id of the payment (its entry in GET /v1/payments); null at the other hops. */
  payment_id: string | null;
  amount_sat: string;
  fee_sat: string;
  outcome: PaymentOutcome;
  /** Why it failed: the round's abort code, or `insufficient_capacity` for one a hop left out. */
  code: string | null;
}

export interface RoundView {
  round_id: string;
  role: string;
  phase: string;
  route: string[];
  /** What the destination receives: the sum of the payments that went on. */
  amount_sat: string;
  /** What the path charges the round in all (what the payer sends less what the destination receives). */
  fee_sat: string;
  /** What moves on each channel of the path. */
  amounts: string[];
  txid: string | null;
  code: string | null;
  payments: RoundPaymentView[];
}

/** A round as this host knows it: the enclave's record, with the payments its events told. */
interface Known extends Omit<EnclaveRound, 'payment_id'> {
  round_id: string;
  payments: NonNullable<RoundEvent['payments']>;
  dropped: number[];
}

/** The most rounds kept, and shown. */
export const MAX_ROUNDS = 1_000;

export class RoundLog {
  /** Oldest first (insertion order). */
  private readonly rounds = new Map<string, Known>();

  constructor(private readonly limit = MAX_ROUNDS) {}

  note(e: RoundEvent): void {
    const known = this.rounds.get(e.round_id);
    if (!known) {
      this.rounds.set(e.round_id, {
        round_id: e.round_id,
        role: e.role,
        phase: e.phase,
        route: e.route,
        amounts: e.amounts,
        txid: e.txid,
        code: e.code,
        payments: e.payments ?? [],
        dropped: e.dropped ?? [],
      });
      if (this.rounds.size > this.limit) this.rounds.delete(this.rounds.keys().next().value!);
      return;
    }
    known.phase = e.phase;
    known.amounts = e.amounts;
    known.txid = e.txid ?? known.txid;
    known.code = e.code;
    if (e.payments && known.payments.length === 0) known.payments = e.payments;
    if (e.dropped) known.dropped = e.dropped;
  }

  /** The newest `limit` rounds, newest first; `records` is the enclave's view, which has the last word. */
  view(records: EnclaveRound[], limit: number): RoundView[] {
    const live = new Map(records.map((r) => [r.payment_id, r]));
    const out: RoundView[] = [];
    for (const k of [...this.rounds.values()].reverse()) {
      if (out.length >= limit) return out;
      const r = live.get(k.round_id);
      out.push(show(r ? { ...k, phase: r.phase, amounts: r.amounts, txid: r.txid, code: r.code } : k));
    }
    for (const r of [...records].reverse()) {
      if (out.length >= limit) break;
      if (!this.rounds.has(r.payment_id)) out.push(show({ ...r, round_id: r.payment_id, payments: [], dropped: [] }));
    }
    return out;
  }
}

function show(k: Known): RoundView {
  const first = BigInt(k.amounts[0] ?? '0');
  const last = BigInt(k.amounts[k.amounts.length - 1] ?? '0');
  const left = new Set(k.dropped);
  return {
    round_id: k.round_id,
    role: k.role,
    phase: k.phase,
    route: k.route,
    amount_sat: last.toString(),
    fee_sat: (first - last).toString(),
    amounts: k.amounts,
    txid: k.txid,
    code: k.code,
    payments: k.payments.map((p, i) => ({
      payment_id: p.payment_id ?? null,
      amount_sat: p.amount,
      fee_sat: p.fee,
      ...outcome(k, left.has(i)),
    })),
  };
}

function outcome(k: Known, leftOut: boolean): { outcome: PaymentOutcome; code: string | null } {
  if (leftOut) return { outcome: 'failed', code: 'insufficient_capacity' };
  if (k.phase === 'aborted') return { outcome: 'failed', code: k.code };
  if (k.phase === 'released' || k.phase === 'done') return { outcome: 'succeeded', code: null };
  return { outcome: 'pending', code: null };
}
