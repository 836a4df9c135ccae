/**
 * The comparisons the bench headlines: Teechain's channel against the Lightning-style model and against
 * LDK, as throughput ratios. Found by scenario id, never by name: a scenario that is not in the rows is a
 * mistake (a renamed id, a scenario dropped from the plan) and throws, rather than printing a null ratio.
 * A null ratio means only that the baseline made no payments (a failed LDK row, say).
 */
import type { Group, ScenarioRow } from './scenario.ts';

export type RatioRow = Pick<ScenarioRow, 'id' | 'group' | 'payments_per_s'>;

export interface Ratios {
  ratio_vs_lightning: {
    unbatched: number | null;
    batched: number | null;
    /** The batch size `batched` compares: 100 when it ran, else the largest configured. */
    batch_size: number;
    unbatched_vs_htlc: number | null;
    /** Null when no batch=100 channel scenario was configured (--batch without 100). */
    batched_vs_htlc: number | null;
    best_vs_best: number | null;
  };
  ratio_vs_ldk: {
    unbatched: number | null;
    pipelined: number | null;
  };
  /**
   * Each committee scenario's payments/s as a percentage of the same load between lone treasuries
   * (`committee1.*`) in the same run, by scenario id; empty when the run had no committee1 rows.
   */
  committee_vs_lone: Record<string, number | null>;
}

/** The lone-treasury row a committee row compares with: the same load, `committee1.*` (idle channels aside). */
function loneOf(id: string): string | null {
  const m = /^committee(\d+)\.(.+)$/.exec(id);
  if (!m || m[1] === '1') return null;
  return `committee1.${m[2]!.replace(/^idle100\./, '')}`;
}

export function committeeVsLone(rows: readonly RatioRow[]): Record<string, number | null> {
  const byId = new Map(rows.map((r) => [r.id, r]));
  const out: Record<string, number | null> = {};
  for (const r of rows) {
    const lone = byId.get(loneOf(r.id) ?? '');
    if (lone) out[r.id] = lone.payments_per_s > 0 ? Math.round((100 * r.payments_per_s) / lone.payments_per_s) : null;
  }
  return out;
}

/** x / y to one decimal; null when y made no payments. */
export function ratio(x: number, y: number): number | null {
  return y > 0 ? Math.round((x / y) * 10) / 10 : null;
}

/** The ids a plan with these batch sizes must have for `computeRatios`. */
export function ratioIds(batches: readonly number[]): string[] {
  const best = bestBatch(batches);
  return [
    'channel.unbatched',
    'channel.pipelined',
    `channel.batch${best}`,
    'lnmodel.unbatched',
    `lnmodel.batch${best}`,
    'lnmodel.htlc.unbatched',
    'lnmodel.htlc.batch100',
    'ldk.unbatched',
    'ldk.pipelined',
    ...(batches.includes(100) ? ['channel.batch100'] : []),
  ];
}

function bestBatch(batches: readonly number[]): number {
  if (batches.length === 0) throw new Error('ratios: no batch sizes configured');
  return batches.includes(100) ? 100 : batches[batches.length - 1]!;
}

export function computeRatios(rows: readonly RatioRow[], batches: readonly number[]): Ratios {
  const byId = new Map(rows.map((r) => [r.id, r]));
  const rate = (id: string) => {
    const row = byId.get(id);
    if (!row) throw new Error(`ratios: no scenario with id '${id}' among ${[...byId.keys()].join(', ')}`);
    return row.payments_per_s;
  };
  const best = (group: Group) => {
    const rates = rows.filter((r) => r.group === group).map((r) => r.payments_per_s);
    if (rates.length === 0) throw new Error(`ratios: no scenario in group '${group}'`);
    return Math.max(...rates);
  };
  const b = bestBatch(batches);
  return {
    ratio_vs_lightning: {
      unbatched: ratio(rate('channel.unbatched'), rate('lnmodel.unbatched')),
      batched: ratio(rate(`channel.batch${b}`), rate(`lnmodel.batch${b}`)),
      batch_size: b,
      unbatched_vs_htlc: ratio(rate('channel.unbatched'), rate('lnmodel.htlc.unbatched')),
      batched_vs_htlc: batches.includes(100) ? ratio(rate('channel.batch100'), rate('lnmodel.htlc.batch100')) : null,
      best_vs_best: ratio(best('teechain'), best('lightning-model')),
    },
    ratio_vs_ldk: {
      unbatched: ratio(rate('channel.unbatched'), rate('ldk.unbatched')),
      pipelined: ratio(rate('channel.pipelined'), rate('ldk.pipelined')),
    },
    committee_vs_lone: committeeVsLone(rows),
  };
}
