/**
 * The checks for a treasury whose primary was killed and restarted during the run (`--chaos kill:S`).
 * Its payment history is kept in memory (src/node/payment-log.ts), so after a restart it holds only what
 * came after; what survives a restart is the enclave's sealed state and the journal of keyed payments
 * (src/node/payment-journal.ts). So, exactly:
 * - payer: every payment answered `succeeded` is in its history since the restart under its payment_id,
 *   succeeded, for its amount; or else, asked again with the same idempotency key and request, the node
 *   answers from its journal `succeeded` under that same payment_id (a key the journal did not know
 *   would be paid again, and its new payment_id would show as a mismatch);
 * - payee, by its balances instead of its history: the change of the sum of its channels' local balances
 *   (the enclave's) is what it was paid, minus what it paid and the routing fees its payments reported,
 *   plus at most the fees of the succeeded routes it was an intermediary of (zero on a network without
 *   fees), widened only by the payments still in doubt.
 */
import { requestOf } from './load.ts';
import { sendPayment } from './pay.ts';
import type { Recorder } from './recorder.ts';
import { newestHistory, type TreasuryState } from './snapshot.ts';
import type { Treasury } from './target.ts';

export interface RestartedContext {
  treasuries: Treasury[];
  recorder: Recorder;
  keyPrefix: string;
  /** Treasury and node ids → treasury index, to read a payment's route. */
  idIndex: Map<string, number>;
}

export interface RestartedResult {
  checkedIds: number;
  missing: number;
  askedAgain: number;
  balanced: boolean;
  mismatches: string[];
}

const localSum = (s: TreasuryState) => s.channels.reduce((a, c) => a + c.local, 0n);
/** The routing fee a payment allows when it names none (src/enclave/treasury/routing.ts defaultMaxFee). */
const maxFee = (amount: number) => BigInt(Math.floor(amount / 100) + 10);

export async function checkRestarted(
  i: number,
  before: TreasuryState,
  after: TreasuryState,
  c: RestartedContext,
): Promise<RestartedResult> {
  const t = c.treasuries[i]!;
  const r = c.recorder;
  const mismatches: string[] = [];
  const entries = await newestHistory(t.api, after.historyTotal);
  const byId = new Map(entries.filter((e) => e.direction === 'outgoing').map((e) => [e.payment_id, e]));
  const ask: Array<[string, { planned: Parameters<typeof requestOf>[1]; attempt: number }]> = [];
  let checkedIds = 0;
  let missing = 0;
  for (const [id, amount] of r.succeededByPayer[i]!) {
    checkedIds++;
    const e = byId.get(id);
    if (e?.status === 'succeeded' && e.amount_sat === amount) continue;
    ask.push([id, r.succeededKeys[i]!.get(id)!]);
  }
  for (let k = 0; k < ask.length; k += 64)
    await Promise.all(
      ask.slice(k, k + 64).map(async ([id, { planned, attempt }]) => {
        const outcome = await sendPayment(t.api, requestOf(c, planned, attempt));
        if (outcome.kind === 'succeeded' && outcome.paymentId === id) return;
        missing++;
        if (missing <= 20)
          mismatches.push(
            `${t.name} (restarted): payment ${id} of ${planned.amount} sat answered succeeded, but asked again by its key it answers ${outcome.kind === 'succeeded' ? `succeeded as ${outcome.paymentId}` : `${outcome.kind} (${outcome.code})`}`,
          );
      }),
    );

  const expected = r.paidTo[i]! - r.paidBy[i]! - r.feesBy[i]!;
  let earned = 0n;
  for (const f of r.feeRoutes) {
    if (f.payer === i || f.payee === i) continue;
    const through = f.route.map((id) => c.idIndex.get(id));
    // A route it cannot read: any other treasury may have earned that fee.
    if (through.includes(i) || through.every((x) => x === undefined)) earned += BigInt(f.fee);
  }
  let slack = 0n;
  for (const d of r.doubts) {
    if (d.payer === i) slack += BigInt(d.amount) + maxFee(d.amount);
    else if (d.payee === i) slack += BigInt(d.amount);
    else slack += maxFee(d.amount);
  }
  const change = localSum(after) - localSum(before);
  const balanced = change >= expected - slack && change <= expected + earned + slack;
  if (!balanced)
    mismatches.push(
      `${t.name} (restarted): its channels changed by ${change} sat, but it was paid ${r.paidTo[i]} sat and paid ${r.paidBy[i]! + r.feesBy[i]!} sat (fees included)${earned > 0n ? `, earning at most ${earned} sat forwarding` : ''}${slack > 0n ? `, ± ${slack} sat in doubt` : ''}`,
    );
  return { checkedIds, missing, askedAgain: ask.length, balanced, mismatches };
}
