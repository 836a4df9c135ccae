/**
 * The payer's side: plan the round (round.ts), lock our first channel, send LOCK, and wait for the round
 * to be released (its payments succeed) or aborted (they fail together, with the abort's code).
 * Everything after the LOCK is the hops' protocol (hop.ts), which sees only the round's totals.
 */
import { bytesToHex } from '../../../../enclave-sim/encoding.ts';
import { lock } from '../channel.ts';
import { TreasuryError } from '../errors.ts';
import type { findRoute } from '../routing.ts';
import type { MultiHopResult } from './host.ts';
import type { Payments } from './payments.ts';
import type { MhLocked } from './records.ts';
import { checkRoundRefs, recordRoundRefs } from './payer-refs.ts';
import { planRound, type PaymentOutcome, type RoundPayment } from './round.ts';

/** A round's answer: the round (null when none started) and each payment's outcome, in the order asked. */
export interface RoundResult {
  round: MultiHopResult | null;
  outcomes: PaymentOutcome[];
}

export async function payRound(
  p: Payments,
  graph: Parameters<typeof findRoute>[0]['graph'],
  dest: string,
  payments: RoundPayment[],
  feeRate: number,
): Promise<RoundResult> {
  const h = p.h;
  checkRoundRefs(
    h.state,
    payments.map((x) => x.key),
  );
  const { plan, outcomes } = planRound(h, graph, dest, payments);
  if (!plan) return { round: null, outcomes };
  const { route, amounts, channel: ch, taken, parts } = plan;
  const pid = bytesToHex(h.random(32));
  const rec: MhLocked = {
    pid,
    route,
    index: 0,
    amounts,
    hops: [p.describe(ch, amounts[0]!)],
    feeRate,
    phase: 'locked',
    // A round of many tells the hops each payment's part, so that a hop short of room leaves out only some.
    ...(taken.length > 1 ? { round: { parts, dropped: [] } } : {}),
  };
  lock(ch, pid);
  // The keyed payments' refs go into the seal that makes the lock durable: no routed debit without its ref.
  recordRoundRefs(
    h.state,
    pid,
    ch.id,
    route,
    taken.flatMap((k, i) => {
      const { key, amount: amt, ref: id } = payments[k]!;
      return key ? [{ ...key, k: i, amt, fee: parts[i]![0]! - amt, ...(id !== undefined ? { id } : {}) }] : [];
    }),
  );
  p.put(rec);
  p.announce(
    rec,
    parts.map((part, i) => ({ part, ref: payments[taken[i]!]!.ref })),
  );
  // Before its seal, when it can: the seal only spares the hops an abort after a crash (host.ts, sendAhead).
  h.sendAhead(route[1]!, p.lockMessage(rec));
  const done = p.wait(pid, ch.id);
  done.catch(() => undefined); // it may settle while the seal below is in flight; the caller gets it below
  p.arm(rec);
  await h.commit();
  try {
    const { result, dropped } = await done;
    // The payments a hop had no room for (or that left too little for τ's fee) failed alone.
    const left = new Set(dropped.map((i) => taken[i]!));
    const refused: PaymentOutcome = {
      ok: false,
      code: 'insufficient_capacity',
      message: `a hop on the path to ${dest.slice(0, 16)}… had no room for it in this round`,
    };
    return { round: result, outcomes: outcomes.map((o, k) => (left.has(k) ? refused : o)) };
  } catch (err) {
    // The round aborted: the old state everywhere, so every payment in it failed, for the round's reason.
    if (!(err instanceof TreasuryError)) throw err;
    const e = err;
    return {
      round: null,
      outcomes: outcomes.map((o) => (o.ok ? { ok: false, code: e.code, message: e.message } : o)),
    };
  }
}
