/**
 * The one runner every scenario goes through: it runs each stage's scenarios the configured number of
 * times, meters the nodes around each load, keeps the median throughput and the last run's latency and
 * usage, checks every run, and turns a failure (where the stage allows) into a failed row.
 */
import { median } from './stats.ts';
import { metered } from './usage.ts';
import { Progress } from './progress.ts';
import type { BenchEnv, Meter, Run, ScenarioRow, ScenarioSpec, Stage, StageContext } from './scenario.ts';

/** Meters a load: wall time around it, and each node's CPU and RSS (src/bench/usage.ts). */
export const meter: Meter = async (nodes, load) => {
  const t0 = performance.now();
  const [result, spent] = await metered(nodes, load);
  return {
    result,
    seconds: (performance.now() - t0) / 1000,
    usage: { cpu_ms_per_node: spent.cpu_ms, rss_mb_per_node: spent.rss_mb },
  };
};

/** A scenario's row from its runs: median throughput; latency, usage and note of the last run. */
export function rowOf(spec: ScenarioSpec, runs: readonly Run[]): ScenarioRow {
  const last = runs[runs.length - 1];
  if (!last) throw new Error(`${spec.id}: no run`);
  const rates = runs.map((r) => r.payments_per_s);
  const note = last.note ?? spec.note;
  return {
    id: spec.id,
    name: spec.name,
    group: spec.group,
    payments_per_s: Math.round(median(rates)),
    ...last.latency,
    runs_payments_per_s: rates.map(Math.round),
    payments: last.payments ?? spec.payments,
    batch: spec.batch,
    verified: runs.every((r) => r.verified),
    ...last.usage,
    ...(note !== undefined ? { note } : {}),
    ...(last.update_bytes !== undefined ? { update_bytes: last.update_bytes } : {}),
  };
}

/** The row of a scenario that could not run: no figures, its first line of error in the note. */
export function failedRow(spec: ScenarioSpec, message: string): ScenarioRow {
  const first = message.split('\n')[0]!;
  return {
    id: spec.id,
    name: spec.name,
    group: spec.group,
    payments_per_s: 0,
    p50_ms: NaN,
    p95_ms: NaN,
    p99_ms: NaN,
    runs_payments_per_s: [],
    payments: 0,
    batch: null,
    verified: false,
    note: `FAILED: ${first.length > 160 ? `${first.slice(0, 157)}...` : first}`,
  };
}

export interface RunnerOptions {
  /** Runs per scenario (scenarios marked `once` run once). */
  runs: number;
  progress?: Progress;
}

/** Runs the stages in order and returns their rows in the same order. */
export async function runStages(stages: readonly Stage[], env: BenchEnv, opts: RunnerOptions): Promise<ScenarioRow[]> {
  const total = stages.reduce((n, s) => n + s.scenarios.length, 0);
  const progress = opts.progress ?? new Progress(total);
  const rows: ScenarioRow[] = [];
  const ctx: StageContext = {
    env,
    async measure(spec, run) {
      progress.show(spec.name);
      const runs: Run[] = [];
      for (let r = 0; r < (spec.once ? 1 : opts.runs); r++) runs.push(await run(meter));
      rows.push(rowOf(spec, runs));
      progress.step(spec.name);
    },
    fail(spec, err, during) {
      const message = `${during ? `${during}: ` : ''}${err instanceof Error ? err.message : String(err)}`;
      // The row gets the first line; the whole message (an LDK process's stderr, say) goes to stderr.
      progress.end();
      process.stderr.write(`${spec.name} failed: ${message}\n`);
      rows.push(failedRow(spec, message));
      progress.step(spec.name);
    },
    show: (label) => progress.show(label),
  };
  for (const s of stages) await s.run(ctx);
  return rows;
}
