/**
 * The checks after the load, against what the nodes say (not what the run believes):
 * - conservation: the sum of every treasury's channel balances is what it was before (fees move between
 *   treasuries, never out of the network);
 * - agreement: each channel's two ends show the same balances, mirrored;
 * - the payer's history has every payment the run counted as succeeded, by its id, succeeded, for its amount;
 * - the payee's history gained incoming payments adding up to what was acknowledged to it (at most that plus
 *   what is in doubt). Incoming entries carry no payer's payment id, and a multi-hop round reaches its
 *   destination as one credit, so this side is checked by sum, not by id.
 * A treasury restarted during the run (--chaos) is checked from what survives a restart instead
 * (verify-restarted.ts); the others exactly as above.
 * Balances may still move for a moment after the last answer (acknowledgements on their way), so the
 * balance checks are read again until they hold or `settleMs` passes.
 */
import type { Recorder } from './recorder.ts';
import { newestHistory, treasuryStates, type TreasuryState } from './snapshot.ts';
import type { Treasury } from './target.ts';
import { checkRestarted, type RestartedContext } from './verify-restarted.ts';

/** With `--chaos`: the treasuries whose primary was restarted, and whether the network came back. */
export interface ChaosContext extends RestartedContext {
  restarted: Set<number>;
  /** null: every process answered and every channel's peers were connected again; else what was not. */
  recovery: string | null;
}

export interface Verification {
  ok: boolean;
  conservation: { before_sat: string; after_sat: string; holds: boolean };
  channels_checked: number;
  channels_disagreeing: number;
  payer_history: { checked: number; missing: number };
  payee_history: { treasuries_checked: number; mismatched: number };
  /** With --chaos: whether the network came back after the load, and the treasuries checked as restarted. */
  chaos: {
    recovered: boolean;
    recovery_problem: string | null;
    restarted: string[];
    /** Succeeded payments of restarted payers not in their history since the restart, asked again by key. */
    asked_again_by_key: number;
    balance_checked: number;
    balance_mismatched: number;
  } | null;
  /** Checks that could not be made, and why (not failures: said so in the report). */
  unchecked: string[];
  mismatches: string[];
}

/** Entries a node's history keeps (src/node/payment-log.ts): beyond them the history check is not possible. */
const HISTORY_WINDOW = 100_000;

export function channelSum(states: TreasuryState[]): bigint {
  let sum = 0n;
  for (const s of states) for (const c of s.channels) sum += c.local;
  return sum;
}

function disagreements(treasuries: Treasury[], states: TreasuryState[]): { checked: number; lines: string[] } {
  const ends = new Map<string, Array<{ name: string; c: TreasuryState['channels'][number] }>>();
  states.forEach((s, i) => {
    for (const c of s.channels)
      ends.set(c.channel_id, [...(ends.get(c.channel_id) ?? []), { name: treasuries[i]!.name, c }]);
  });
  const lines: string[] = [];
  let checked = 0;
  for (const [id, both] of ends) {
    if (both.length !== 2) continue; // its other end is outside this network
    checked++;
    const [a, b] = both as [(typeof both)[0], (typeof both)[0]];
    if (a.c.local !== b.c.remote || a.c.remote !== b.c.local)
      lines.push(
        `channel ${id.slice(0, 16)}…: ${a.name} has ${a.c.local}/${a.c.remote} sat (local/remote), ${b.name} has ${b.c.local}/${b.c.remote}`,
      );
  }
  return { checked, lines };
}

export async function verify(
  treasuries: Treasury[],
  before: TreasuryState[],
  recorder: Recorder,
  settleMs = 15_000,
  chaos?: ChaosContext,
): Promise<Verification> {
  const expected = channelSum(before);
  const deadline = Date.now() + settleMs;
  let after: TreasuryState[];
  let agree: ReturnType<typeof disagreements>;
  for (;;) {
    after = await treasuryStates(treasuries);
    agree = disagreements(treasuries, after);
    if ((agree.lines.length === 0 && channelSum(after) === expected) || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const mismatches = [...agree.lines];
  if (chaos?.recovery) mismatches.push(`recovery: after the load and 60 s, ${chaos.recovery}`);
  const restarted = { asked: 0, checked: 0, mismatched: 0 };
  const actual = channelSum(after);
  if (actual !== expected)
    mismatches.push(`conservation: the channels held ${expected} sat in all before the load and ${actual} sat after`);

  const unchecked: string[] = [];
  let checkedIds = 0;
  let missing = 0;
  let payeesChecked = 0;
  let payeesMismatched = 0;
  await Promise.all(
    treasuries.map(async (t, i) => {
      if (chaos?.restarted.has(i)) {
        const r = await checkRestarted(i, before[i]!, after[i]!, chaos);
        checkedIds += r.checkedIds;
        missing += r.missing;
        restarted.asked += r.askedAgain;
        restarted.checked++;
        if (!r.balanced) restarted.mismatched++;
        mismatches.push(...r.mismatches);
        return;
      }
      const added = after[i]!.historyTotal - before[i]!.historyTotal;
      if (after[i]!.historyTotal >= HISTORY_WINDOW) {
        unchecked.push(
          `${t.name}: its history keeps only the newest ${HISTORY_WINDOW} entries, fewer than this run needs`,
        );
        return;
      }
      const entries = await newestHistory(t.api, added);
      const byId = new Map(entries.filter((e) => e.direction === 'outgoing').map((e) => [e.payment_id, e]));
      for (const [id, amount] of recorder.succeededByPayer[i]!) {
        checkedIds++;
        const e = byId.get(id);
        if (e?.status === 'succeeded' && e.amount_sat === amount) continue;
        missing++;
        if (missing <= 20)
          mismatches.push(
            `${t.name}: payment ${id} of ${amount} sat answered succeeded, but its history has ${e ? `${e.status}, ${e.amount_sat} sat` : 'no such payment'}`,
          );
      }
      let received = 0n;
      for (const e of entries)
        if (e.direction === 'incoming' && e.status === 'succeeded') received += BigInt(e.amount_sat);
      payeesChecked++;
      const low = recorder.paidTo[i]!;
      const high = low + recorder.doubtTo[i]!;
      if (received < low || received > high) {
        payeesMismatched++;
        mismatches.push(
          `${t.name}: received ${received} sat in its history during the run, but was paid ${low} sat${high > low ? ` (up to ${high} with the payments in doubt)` : ''}`,
        );
      }
    }),
  );
  if (missing > 20) mismatches.push(`… and ${missing - 20} more payments missing from their payers' histories`);
  return {
    ok: mismatches.length === 0,
    conservation: { before_sat: expected.toString(), after_sat: actual.toString(), holds: actual === expected },
    channels_checked: agree.checked,
    channels_disagreeing: agree.lines.length,
    payer_history: { checked: checkedIds, missing },
    payee_history: { treasuries_checked: payeesChecked, mismatched: payeesMismatched },
    chaos: chaos
      ? {
          recovered: chaos.recovery === null,
          recovery_problem: chaos.recovery,
          restarted: [...chaos.restarted].sort((a, b) => a - b).map((i) => treasuries[i]!.name),
          asked_again_by_key: restarted.asked,
          balance_checked: restarted.checked,
          balance_mismatched: restarted.mismatched,
        }
      : null,
    unchecked,
    mismatches,
  };
}
