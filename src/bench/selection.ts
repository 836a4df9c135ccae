/**
 * `--only id-prefix,...`: a bench run of some scenarios only, to measure one change without the hour the
 * whole plan takes. A stage runs when one of its scenarios (or the figure it stands for, for the promotion
 * stage, which has no rows) matches a prefix, and then measures only its matching scenarios; the set-up
 * the stage shares still runs whole. What the selection lacks is skipped and said so, never faked: the
 * headline ratios need every scenario they compare, the promotion figure its stage, the LDK close its stage.
 */
import { committeeVsLone, ratioIds, type RatioRow, type Ratios } from './ratios.ts';
import { BenchUsageError } from './config.ts';
import type { BenchPlan } from './scenarios/index.ts';
import type { ScenarioSpec, Stage } from './scenario.ts';

/** The id the promotion figure goes by in the JSON, so that `--only committee3` selects it too. */
export const PROMOTION_FIGURE_ID = 'committee3.promotion_gap_ms';

/** What a run with `--only` measured and what it left out, in the JSON and the table. */
export interface Selected {
  only: string[];
  /** Parts of the report the selection lacks: 'ratios' (the headline ones), 'promotion', 'ldk_close'. */
  skipped: Array<'ratios' | 'promotion' | 'ldk_close'>;
}

export interface SelectedPlan {
  plan: BenchPlan;
  selected: Selected;
}

/** `--only a,b` as prefixes; refuses an empty list. */
export function parseOnly(flag: string): string[] {
  const prefixes = flag
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
  if (prefixes.length === 0) throw new SelectionError('--only needs at least one scenario id prefix');
  return prefixes;
}

/** A selection the plan cannot honour (a prefix that names nothing): the bench says so and exits 2. */
export class SelectionError extends BenchUsageError {}

const matches = (prefixes: readonly string[], id: string) => prefixes.some((p) => id.startsWith(p));

/** The stage limited to its scenarios that match: the others are neither measured nor listed. */
function narrowed(stage: Stage, keep: (spec: ScenarioSpec) => boolean): Stage {
  return {
    scenarios: stage.scenarios.filter(keep),
    run: (ctx) =>
      stage.run({
        ...ctx,
        measure: (spec, run) => (keep(spec) ? ctx.measure(spec, run) : Promise.resolve()),
        fail: (spec, err, during) => {
          if (keep(spec)) ctx.fail(spec, err, during);
        },
      }),
  };
}

/**
 * The plan with only the stages and scenarios `prefixes` select. Throws SelectionError for a prefix that
 * matches no scenario of the plan (a typo would otherwise measure nothing and say nothing).
 */
export function selectPlan(plan: BenchPlan, prefixes: readonly string[], batches: readonly number[]): SelectedPlan {
  const ids = [
    ...plan.stages.flatMap((s) => s.scenarios.map((x) => x.id)),
    ...(plan.promotion ? [PROMOTION_FIGURE_ID] : []),
  ];
  const unknown = prefixes.filter((p) => !ids.some((id) => id.startsWith(p)));
  if (unknown.length > 0)
    throw new SelectionError(`--only: no scenario id starts with ${unknown.map((p) => `'${p}'`).join(', ')}`);
  const keep = (spec: ScenarioSpec) => matches(prefixes, spec.id);
  const promotion = plan.promotion && matches(prefixes, PROMOTION_FIGURE_ID) ? plan.promotion : null;
  const stages = plan.stages
    .filter((s) => (s === plan.promotion ? promotion !== null : s.scenarios.some(keep)))
    .map((s) => (s === plan.promotion ? s : narrowed(s, keep)));
  const ldkRan = plan.ldk.scenarios.some(keep);
  const kept = new Set(stages.flatMap((s) => s.scenarios.map((x) => x.id)));
  const skipped: Selected['skipped'] = [];
  if (!ratioIds(batches).every((id) => kept.has(id))) skipped.push('ratios');
  if (plan.promotion && !promotion) skipped.push('promotion');
  if (!ldkRan) skipped.push('ldk_close');
  return {
    plan: { stages, ldk: plan.ldk, promotion },
    selected: { only: [...prefixes], skipped },
  };
}

/** The ratios of a selection without every scenario they compare: null, and the committees' own where both rows ran. */
export function withoutRatios(rows: readonly RatioRow[], batches: readonly number[]): Ratios {
  return {
    ratio_vs_lightning: {
      unbatched: null,
      batched: null,
      batch_size: batches.includes(100) ? 100 : (batches[batches.length - 1] ?? 0),
      unbatched_vs_htlc: null,
      batched_vs_htlc: null,
      best_vs_best: null,
    },
    ratio_vs_ldk: { unbatched: null, pipelined: null },
    committee_vs_lone: committeeVsLone(rows),
  };
}
