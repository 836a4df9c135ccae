/**
 * `npm run bench`: payment throughput and latency of Teechain-style treasuries, side by side in the same
 * run with a Lightning-style model and LDK, on real node processes (enclave workers, sealed durable state,
 * TCP on loopback) and the embedded regtest chain.
 *
 *   npm run bench                      full run (median of 3 runs per scenario)
 *   npm run bench -- --quick           smoke run, a few minutes
 *   npm run bench -- --tiny            every scenario with a handful of payments (the test suite's run)
 *   npm run bench -- --out FILE        write the JSON there (default bench-results/latest.json)
 *   npm run bench -- --svg FILE        write the chart there (default: latest.svg beside the JSON)
 *   npm run bench -- --md FILE         write the report there (default docs/benchmarks-latest.md; not --tiny)
 *   npm run bench -- --batch 1,10,100  batch sizes for the batched scenarios
 *   npm run bench -- --runs N          runs per scenario
 *   npm run bench -- --pairs 1,2,4     numbers of channel pairs loaded at once
 *   npm run bench -- --promotion-timeout-ms N
 *                                      the committee backups' promotion timeout in the promotion figure
 *                                      (`committee3.promotion_gap_ms`; default the node's, 5000)
 *   npm run bench -- --only P1,P2      only the scenarios whose id starts with one of the prefixes (and the
 *                                      stages they need); the ratios, promotion figure and LDK close the
 *                                      selection lacks are left out and said so; never rewrites the report
 *   npm run bench -- --report FILE     only regenerate the report from a saved JSON, no run
 *   npm run bench -- --help            this text
 *
 * The scenarios are src/bench/scenarios/, each with a stable id; src/bench/runner.ts runs them. Prints a
 * table and writes JSON, an SVG chart and (except --tiny) docs/benchmarks-latest.md. Each scenario checks
 * afterwards that the totals moved by exactly the sum paid on both sides; a scenario that fails the check
 * is reported as such and the bench exits non-zero.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, platform, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { renderChart } from '../src/bench/chart.ts';
import { BenchUsageError, benchConfig } from '../src/bench/config.ts';
import { startBenchEnv } from '../src/bench/env.ts';
import { computeRatios, ratioIds } from '../src/bench/ratios.ts';
import { markdownReport, readResult, resultJson, textReport, type BenchResult } from '../src/bench/report.ts';
import { runStages } from '../src/bench/runner.ts';
import { benchPlan, planned } from '../src/bench/scenarios/index.ts';
import { parseOnly, selectPlan, withoutRatios, type Selected } from '../src/bench/selection.ts';

const OPTIONS = {
  quick: { type: 'boolean' },
  tiny: { type: 'boolean' },
  out: { type: 'string' },
  svg: { type: 'string' },
  md: { type: 'string' },
  batch: { type: 'string' },
  runs: { type: 'string' },
  pairs: { type: 'string' },
  'promotion-timeout-ms': { type: 'string' },
  report: { type: 'string' },
  only: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The usage text is this file's header comment, so the two cannot drift apart. */
async function usage(): Promise<string> {
  const source = await readFile(new URL(import.meta.url), 'utf8');
  const header = /\/\*\*\n([\s\S]*?)\*\//.exec(source)?.[1] ?? '';
  return header.replace(/^ \* ?/gm, '');
}

function parseFlags() {
  try {
    return parseArgs({ options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (err) {
    // parseArgs says which flag it refused; one line, never a stack trace.
    throw new BenchUsageError(err instanceof Error ? err.message.split('\n')[0]! : String(err));
  }
}

type Flags = ReturnType<typeof parseFlags>;
const DEFAULT_MD = 'docs/benchmarks-latest.md';

async function writeMarkdown(md: string, result: BenchResult): Promise<void> {
  await mkdir(dirname(md), { recursive: true });
  await writeFile(md, markdownReport(result));
}

async function run(values: Flags): Promise<void> {
  const MD = values.md ?? DEFAULT_MD;
  const cfg = benchConfig(values);
  const out = values.out ?? 'bench-results/latest.json';
  const svg = values.svg ?? join(dirname(out), 'latest.svg');
  let plan = benchPlan(cfg);
  let selected: Selected | undefined;
  if (values.only !== undefined) ({ plan, selected } = selectPlan(plan, parseOnly(values.only), cfg.batches));
  const skipped = selected?.skipped ?? [];
  // The ratios would throw at the end for a scenario the plan lacks: say so before an hour of measuring.
  const ids = new Set(planned(plan).map((s) => s.id));
  const missing = ratioIds(cfg.batches).filter((id) => !ids.has(id));
  if (!skipped.includes('ratios') && missing.length > 0)
    throw new Error(`the plan lacks scenarios the ratios compare: ${missing.join(', ')}`);
  process.stderr.write(`bench (${cfg.mode}): starting the regtest chain and treasury nodes…\n`);
  const env = await startBenchEnv((line) => process.stderr.write(`${line}\n`));
  let scenarios;
  try {
    scenarios = await runStages(plan.stages, env, { runs: cfg.runs });
  } finally {
    process.stderr.write('\n');
    await env.close();
  }
  const close = skipped.includes('ldk_close') ? null : plan.ldk.close();
  const result: BenchResult = {
    when: new Date().toISOString(),
    mode: cfg.mode,
    runs: cfg.runs,
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memory_gb: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      os: `${platform()} ${release()}`,
    },
    ...(skipped.includes('ratios') ? withoutRatios(scenarios, cfg.batches) : computeRatios(scenarios, cfg.batches)),
    ...(plan.promotion ? { committee3: plan.promotion.gap() } : {}),
    ...(selected ? { selected } : {}),
    ldk_close: close && {
      closing_txid: close.closingTxid,
      payee_output_sat: Number(close.payeeOutputSat),
      payer_output_sat: Number(close.payerOutputSat),
      fee_sat: Number(close.feeSat),
      verified: close.verified,
      error: close.verificationError ?? null,
    },
    scenarios,
  };
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, resultJson(result));
  await writeFile(
    svg,
    renderChart(
      scenarios.filter((s) => s.payments_per_s > 0),
      `teechain-ts vs Lightning-style model and LDK — ${result.machine.cores} cores, ${result.machine.node}`,
    ),
  );
  // A tiny run's figures mean nothing, and a selection's are not the whole table: neither replaces the
  // published ones (an explicit --md still writes where it says).
  const writesReport = cfg.mode !== 'tiny' && (!selected || values.md !== undefined);
  if (writesReport) await writeMarkdown(MD, result);
  process.stdout.write(`${textReport(result)}JSON: ${out}\nchart: ${svg}\n${writesReport ? `report: ${MD}\n` : ''}`);
  const promotion = plan.promotion?.gap();
  const closeFailed = !skipped.includes('ldk_close') && !close?.verified;
  if (scenarios.some((s) => !s.verified) || closeFailed || (promotion && !promotion.verified)) process.exitCode = 1;
}

async function main(): Promise<void> {
  const values = parseFlags();
  if (values.help) {
    process.stdout.write(await usage());
    return;
  }
  if (values.report === undefined) return run(values);
  const md = values.md ?? DEFAULT_MD;
  await writeMarkdown(md, await readResult(values.report));
  process.stdout.write(`report: ${md} (from ${values.report})\n`);
}

main().catch((err: unknown) => {
  if (err instanceof BenchUsageError) {
    process.stderr.write(`bench: ${err.message} (npm run bench -- --help)\n`);
    process.exit(2);
  }
  process.stderr.write(`\nbench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
