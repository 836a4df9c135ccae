/**
 * What the bench writes for people, from its JSON: the table and ratio lines on stdout, and
 * docs/benchmarks-latest.md. Both are generated from the same result, so a document can never show figures
 * the run did not produce (`npm run bench -- --report FILE` regenerates the document from a saved JSON).
 */
import { readFile } from 'node:fs/promises';
import { table } from '../cli/format.ts';
import type { Mode } from './config.ts';
import type { Ratios } from './ratios.ts';
import type { ScenarioRow } from './scenario.ts';
import type { PromotionGap } from './scenarios/promotion.ts';
import type { Selected } from './selection.ts';

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
  /** The promotion figure (kill -9 of a committee of 3's primary); absent from runs without committees of 3. */
  committee3?: PromotionGap | null;
  /** A run with `--only`: the prefixes, and what the report then lacks (its ratios are null). */
  selected?: Selected;
  scenarios: ScenarioRow[];
}

/** The JSON text: NaN (a figure a failed row has not) becomes null. */
export function resultJson(result: BenchResult): string {
  return `${JSON.stringify(result, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`;
}

/**
 * Reads a bench JSON back. A failed row's latencies come back null, not NaN: everything here formats them
 * with Number.isFinite, which says no to both.
 */
export async function readResult(file: string): Promise<BenchResult> {
  return JSON.parse(await readFile(file, 'utf8')) as BenchResult;
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

/** The ratio lines, the same on stdout and in the document. */
export function ratioLines(r: BenchResult): string[] {
  const l = r.ratio_vs_lightning;
  const close = r.ldk_close
    ? r.ldk_close.verified
      ? `checked on chain (${r.ldk_close.closing_txid})`
      : `NOT checked: ${r.ldk_close.error}`
    : 'not reached';
  const skipped = r.selected?.skipped ?? [];
  const ldkLine = skipped.includes('ldk_close') ? [] : [`LDK cooperative close ${close}`];
  if (skipped.includes('ratios'))
    return [
      `selected (--only ${r.selected!.only.join(',')}): ${selectionNote(r.selected!)}`,
      ...ldkLine,
      ...committeeLines(r),
    ];
  return [
    ...(r.selected ? [`selected (--only ${r.selected.only.join(',')}): ${selectionNote(r.selected)}`] : []),
    `ratio vs Lightning-style model: unbatched ${x(l.unbatched)}, batch=${l.batch_size} ${x(l.batched)}, best vs best ${x(l.best_vs_best)}; against the HTLC model: unbatched ${x(l.unbatched_vs_htlc)}, batch=100 ${x(l.batched_vs_htlc)}`,
    `ratio vs LDK: unbatched ${x(r.ratio_vs_ldk.unbatched)}, pipelined ${x(r.ratio_vs_ldk.pipelined)}; LDK cooperative close ${close}`,
    ...committeeLines(r),
  ];
}

function selectionNote(s: Selected): string {
  const what = { ratios: 'the headline ratios', promotion: 'the promotion figure', ldk_close: 'the LDK close' };
  return s.skipped.length ? `not run: ${s.skipped.map((k) => what[k]).join(', ')}` : 'every figure ran';
}

/** Committees against lone treasuries (same load, same run), and the bytes of one update per group commit. */
function committeeLines(r: BenchResult): string[] {
  const pct = Object.entries(r.committee_vs_lone ?? {}).map(([id, p]) => `${id} ${p === null ? '-' : `${p} %`}`);
  const bytes = r.scenarios
    .filter((s) => s.update_bytes !== undefined)
    .map((s) => `${s.id} ${s.update_bytes!.toLocaleString('en-US')} B`);
  return [
    ...(pct.length ? [`committees vs lone treasuries (payments/s, same load): ${pct.join(', ')}`] : []),
    ...(bytes.length ? [`committee update bytes per group commit: ${bytes.join(', ')}`] : []),
    ...idleChannelsLine(r),
    ...promotionLines(r.committee3),
  ];
}

/** An update's bytes with 1 channel against 100 (99 of them idle), the same batched load on a committee of 3. */
function idleChannelsLine(r: BenchResult): string[] {
  const bytesOf = (id: string) => r.scenarios.find((s) => s.id === id)?.update_bytes;
  const one = bytesOf('committee3.batch100');
  const hundred = bytesOf('committee3.idle100.batch100');
  if (one === undefined || hundred === undefined) return [];
  const b = (n: number) => `${n.toLocaleString('en-US')} B`;
  return [`committee3 update bytes per group commit, 1 channel vs 100 channels (99 idle): ${b(one)} vs ${b(hundred)}`];
}

function promotionLines(f: PromotionGap | null | undefined): string[] {
  if (!f) return [];
  const timeout = `promotion timeout ${f.promotion_timeout_ms.toLocaleString('en-US')} ms`;
  return [
    f.promotion_gap_ms !== null && f.verified
      ? `committee3.promotion_gap_ms: payments flowed again ${f.promotion_gap_ms.toLocaleString('en-US')} ms after kill -9 of the primary (${timeout})`
      : `committee3.promotion_gap_ms: NOT measured (${timeout}): ${f.error ?? 'the totals did not check'}`,
  ];
}

/** The table and ratio lines printed at the end of a run. */
export function textReport(r: BenchResult): string {
  return `${table(HEADER, r.scenarios.map(cells))}\n\n${ratioLines(r).join('\n')}\n`;
}

const mdCell = (c: string) => c.replace(/\|/g, '\\|');

/** docs/benchmarks-latest.md: the machine, the date, the mode, the table with ids, the ratios. */
export function markdownReport(r: BenchResult): string {
  const m = r.machine;
  // a JSON from before `runs` was written says it through its rows
  const runs = r.runs ?? Math.max(1, ...r.scenarios.map((s) => s.runs_payments_per_s.length));
  const head = ['id', ...HEADER].map(mdCell);
  const rows = r.scenarios.map((s) => [`\`${s.id}\``, ...cells(s)].map(mdCell));
  return [
    '# Latest benchmark figures',
    '',
    '<!-- Generated by `npm run bench` from its JSON; do not edit. Regenerate with `npm run bench -- --report FILE`. -->',
    '',
    `Measured ${r.when} in \`${r.mode}\` mode, ${runs === 1 ? 'one run per scenario' : `the median of ${runs} runs per scenario`}.`,
    '',
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memory_gb} GB, Node ${m.node}, ${m.os}.`,
    '',
    `| ${head.join(' | ')} |`,
    `|${head.map(() => ' --- ').join('|')}|`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
    '',
    ...ratioLines(r).flatMap((l) => [`- ${l}`]),
    '',
    'How the scenarios are set up and what the comparisons show and do not show: [benchmarks.md](benchmarks.md).',
    '',
  ].join('\n');
}
