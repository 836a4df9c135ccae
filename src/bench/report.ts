/** What the bench writes for people, from its JSON: the table and ratio lines on stdout. */
import { table } from '../cli/format.ts';
import type { Mode } from './config.ts';
import type { Ratios } from './ratios.ts';
import type { ScenarioRow } from './scenario.ts';

export interface Machine {
  cpu: string;
  cores: number;
  memory_gb: number;
  node: string;
  os: string;
}

export interface LdkClose {
  closing_txid: string;
  payee_output_sat: number;
  payer_output_sat: number;
  fee_sat: number;
  verified: boolean;
  error: string | null;
}

/** The bench's JSON. */
export interface BenchResult extends Ratios {
  when: string;
  mode: Mode;
  /** Runs per scenario (rows marked once ran once); each row's payments_per_s is their median. */
  runs?: number;
  machine: Machine;
  ldk_close: LdkClose | null;
  scenarios: ScenarioRow[];
}

/** The JSON text: NaN (a figure a failed row has not) becomes null. */
export function resultJson(result: BenchResult): string {
  return `${JSON.stringify(result, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`;
}

const HEADER = ['scenario', 'payments/s', 'p50 ms', 'p95 ms', 'p99 ms', 'CPU ms/1k | RSS MB', 'checked'];

const ms = (x: number) => (Number.isFinite(x) ? (x < 10 ? x.toFixed(2) : x.toFixed(0)) : '-');

/**
 * CPU of all the scenario's nodes per 1,000 payments of its last run (rows of different sizes compare), and
 * the largest node's RSS; the JSON has both per node.
 */
function usageCell(s: ScenarioRow): string {
  if (!s.cpu_ms_per_node?.length || !s.rss_mb_per_node?.length || !s.payments) return '-';
  const cpu = s.cpu_ms_per_node.reduce((a, b) => a + b, 0);
  return `${Math.round((cpu * 1000) / s.payments).toLocaleString('en-US')} | ${Math.max(...s.rss_mb_per_node)}`;
}

function cells(s: ScenarioRow): string[] {
  return [
    s.name,
    s.payments_per_s ? s.payments_per_s.toLocaleString('en-US') : (s.note ?? '-'),
    ms(s.p50_ms),
    ms(s.p95_ms),
    ms(s.p99_ms),
    usageCell(s),
    s.verified ? 'yes' : 'NO',
  ];
}

const x = (r: number | null) => (r === null ? '-' : `${r}x`);

/** The ratio lines under the table. */
export function ratioLines(r: BenchResult): string[] {
  const l = r.ratio_vs_lightning;
  const close = r.ldk_close
    ? r.ldk_close.verified
      ? `checked on chain (${r.ldk_close.closing_txid})`
      : `NOT checked: ${r.ldk_close.error}`
    : 'not reached';
  return [
    `ratio vs Lightning-style model: unbatched ${x(l.unbatched)}, batch=${l.batch_size} ${x(l.batched)}, best vs best ${x(l.best_vs_best)}; against the HTLC model: unbatched ${x(l.unbatched_vs_htlc)}, batch=100 ${x(l.batched_vs_htlc)}`,
    `ratio vs LDK: unbatched ${x(r.ratio_vs_ldk.unbatched)}, pipelined ${x(r.ratio_vs_ldk.pipelined)}; LDK cooperative close ${close}`,
  ];
}

/** The table and ratio lines printed at the end of a run. */
export function textReport(r: BenchResult): string {
  return `${table(HEADER, r.scenarios.map(cells))}\n\n${ratioLines(r).join('\n')}\n`;
}
