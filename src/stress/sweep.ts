/**
 * `teechain stress --fresh --sweep nodes=2,4,8`: the same workload (topology, pattern, limits, loop,
 * amounts, seed) on a fresh network of each size in turn, each built, loaded, verified and stopped before
 * the next; then one table, a row per size, to see how throughput grows with the network and which process
 * saturates first (docs/stress.md). Any size that does not verify (or cannot be built) makes the exit code 1;
 * the other sizes still run.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { table } from '../cli/format.ts';
import { sweepChart } from './chart.ts';
import type { StressOptions } from './options.ts';
import { reportTable, workloadOf, type StressReport, type Workload } from './report.ts';
import { runStress } from './run.ts';
import { freshTarget, type Target } from './target.ts';

export interface SweepEntry {
  nodes: number;
  /** Null when the size could not be built or its run broke off (then `error` says why). */
  channels: number | null;
  payments_attempted: number | null;
  payments_ok: number | null;
  payments_failed: number | null;
  payments_in_doubt: number | null;
  payments_per_s: number | null;
  p50_ms: number | null;
  p99_ms: number | null;
  verified: boolean;
  /** The node process with the most CPU over the load (share of one core), from the report's `nodes[]`. */
  busiest: { name: string; cpu_pct: number } | null;
  /** The stress process itself (the load generator shares the machine). */
  generator_cpu_pct: number | null;
  error: string | null;
  /** The run's whole report (the same as `teechain stress --out` writes for one run). */
  report: StressReport | null;
}

export interface SweepReport {
  sweep: Workload & {
    nodes: number[];
    topology: string;
    committee: number;
    deposit_sat: number;
    /** `netns` with --hosts netns: each size's network on namespaces of its own. */
    hosts: 'local' | 'netns';
  };
  interrupted: boolean;
  verified: boolean;
  entries: SweepEntry[];
}

const sum = (m: Record<string, number>) => Object.values(m).reduce((a, b) => a + b, 0);

/** One row of the sweep from a run's report. */
export function sweepEntry(nodes: number, r: StressReport): SweepEntry {
  let busiest: SweepEntry['busiest'] = null;
  for (const n of r.nodes)
    if (!('unavailable' in n) && (!busiest || n.cpu_pct > busiest.cpu_pct))
      busiest = { name: n.name, cpu_pct: n.cpu_pct };
  return {
    nodes,
    channels: r.network.channels,
    payments_attempted: r.payments_attempted,
    payments_ok: r.payments_ok,
    payments_failed: sum(r.payments_failed),
    payments_in_doubt: sum(r.payments_in_doubt),
    payments_per_s: r.payments_per_s,
    p50_ms: r.p50_ms,
    p99_ms: r.p99_ms,
    verified: r.verification.ok,
    busiest,
    generator_cpu_pct: r.generator.cpu_pct,
    error: null,
    report: r,
  };
}

function failedEntry(nodes: number, error: string): SweepEntry {
  return {
    nodes,
    channels: null,
    payments_attempted: null,
    payments_ok: null,
    payments_failed: null,
    payments_in_doubt: null,
    payments_per_s: null,
    p50_ms: null,
    p99_ms: null,
    verified: false,
    busiest: null,
    generator_cpu_pct: null,
    error,
    report: null,
  };
}

/** The table for people: one row per size. */
export function sweepTable(s: SweepReport): string {
  const v = (x: number | null) => (x === null ? '-' : String(x));
  const rows = s.entries.map((e) => [
    String(e.nodes),
    v(e.channels),
    v(e.payments_per_s),
    v(e.p50_ms),
    v(e.p99_ms),
    v(e.payments_failed),
    e.error ? `NO (${e.error})` : e.verified ? 'yes' : 'NO',
    e.busiest ? e.busiest.name : '-',
    e.busiest ? String(e.busiest.cpu_pct) : '-',
    v(e.generator_cpu_pct),
  ]);
  const w = s.sweep;
  const head = `sweep: ${w.topology}, ${w.pattern}, ${w.mode === 'closed' ? `closed loop, ${w.concurrency_per_payer} in flight per payer` : `open loop, ${w.rate_per_s}/s offered`}, ${[w.payments_limit !== null ? `${w.payments_limit} payments` : '', w.duration_limit_s !== null ? `${w.duration_limit_s} s` : ''].filter(Boolean).join(' or ')}, seed ${w.seed}${w.committee > 1 ? `, committees of ${w.committee}` : ''}${w.hosts === 'netns' ? ', each node in a network namespace' : ''}${s.interrupted ? ' (interrupted)' : ''}`;
  return `${head}\n\n${table(
    [
      'nodes',
      'channels',
      'payments/s',
      'p50 ms',
      'p99 ms',
      'failed',
      'verified',
      'busiest process',
      'its CPU %',
      'stress CPU %',
    ],
    rows,
  )}`;
}

/**
 * Runs the sweep: for each size, a fresh network (in a temporary data dir, or `--datadir DIR`/nodes-N),
 * the run, its report on stderr, the network stopped; then the table on stdout and `--out` as JSON.
 * Resolves with the exit code: 0 all verified, 1 any size did not, 130 interrupted (the sizes after the
 * interrupted one are not run) with every size run verified.
 */
export async function runSweep(o: StressOptions, sizes: number[], log: (line: string) => void): Promise<number> {
  const entries: SweepEntry[] = [];
  let interrupted = false;
  // A Ctrl-C between runs (a network being built or stopped) ends the sweep with the sizes already run;
  // during a run, runStress handles it (stops the load, verifies) and the sweep ends after that size.
  let building: AbortController | null = null;
  const interrupt = () => {
    if (interrupted && building === null) return;
    interrupted = true;
    if (building) {
      log('\ninterrupted: no more sizes; stopping the network being built…');
      building.abort();
    }
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  try {
    return await sweepSizes();
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
  }

  async function sweepSizes(): Promise<number> {
    for (const nodes of sizes) {
      if (interrupted) break;
      log(`sweep: ${nodes} treasuries (${entries.length + 1} of ${sizes.length})…`);
      const one: StressOptions = {
        ...o,
        nodes,
        sweep: null,
        out: undefined,
        chart: undefined,
        datadir: o.datadir !== undefined ? join(o.datadir, `nodes-${nodes}`) : undefined,
      };
      let target: Target;
      building = new AbortController();
      try {
        target = await freshTarget({ ...one, log, signal: building.signal });
      } catch (err) {
        log(`sweep: ${nodes} treasuries: ${(err as Error).message}`);
        // Interrupted while it was built: not a size that failed, one that was not run.
        if (!building.signal.aborted) entries.push(failedEntry(nodes, `not built: ${(err as Error).message}`));
        continue;
      } finally {
        building = null;
      }
      try {
        const r = await runStress(one, target, log);
        log(`── ${nodes} treasuries ──\n${reportTable(r.report)}`);
        entries.push(sweepEntry(nodes, r.report));
        if (r.interrupted) interrupted = true;
      } catch (err) {
        log(`sweep: ${nodes} treasuries: ${(err as Error).message}`);
        entries.push(failedEntry(nodes, (err as Error).message));
      } finally {
        log('stopping the network built for this size…');
        await target.stop();
      }
    }
    const report: SweepReport = {
      sweep: {
        nodes: sizes,
        topology: o.topology,
        committee: o.committee,
        deposit_sat: o.depositSat,
        hosts: o.hosts,
        ...workloadOf(o),
      },
      interrupted,
      verified: entries.length > 0 && entries.every((e) => e.verified),
      entries,
    };
    if (o.out) await writeFile(o.out, `${JSON.stringify(report, null, 2)}\n`);
    if (o.chart) await writeFile(o.chart, sweepChart(sweepTable(report).split('\n')[0]!, report.entries));
    process.stdout.write(`${sweepTable(report)}\n`);
    if (!report.verified && !(interrupted && entries.every((e) => e.verified))) return 1;
    return interrupted ? 130 : 0;
  }
}
