// run-tests lane: in-process
/**
 * The bench's plan and its ratios, without running anything: every scenario has its own stable id, the ids
 * the documents and ratios rely on are all planned, and a ratio whose scenario is missing fails loudly
 * instead of coming out null.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { benchConfig } from '../src/bench/config.ts';
import { computeRatios, ratioIds, type RatioRow } from '../src/bench/ratios.ts';
import { failedRow, rowOf } from '../src/bench/runner.ts';
import { benchPlan, planned } from '../src/bench/scenarios/index.ts';
import { markdownReport, type BenchResult } from '../src/bench/report.ts';

const REQUIRED = [
  'channel.unbatched',
  'channel.pipelined',
  'channel.batch100',
  'channel.batch1000',
  'channel.both_directions',
  'committee1.unbatched',
  'committee1.batch100',
  'committee3.unbatched',
  'committee3.batch100',
  'committee3.idle100.batch100',
  'committee5.batch100',
  'multihop2.single',
  'multihop3.single',
  'committee3.multihop2.single',
  'pairs4',
  'rest.32clients',
  'lnmodel.unbatched',
  'lnmodel.batch100',
  'lnmodel.htlc.unbatched',
  'lnmodel.htlc.batch100',
  'ldk.unbatched',
  'ldk.pipelined',
];

const MODES = [{ tiny: true }, { quick: true }, {}] as const;

test('bench plan: every scenario of every mode has a unique id', () => {
  for (const flags of MODES) {
    const ids = planned(benchPlan(benchConfig(flags))).map((s) => s.id);
    const seen = new Set<string>();
    for (const id of ids) {
      assert.match(id, /^[a-z0-9_]+(\.[a-z0-9_]+)*$/, `id '${id}'`);
      assert.ok(!seen.has(id), `id '${id}' is used by two scenarios`);
      seen.add(id);
    }
  }
});

test('bench plan: the full run has every documented id, and every id a ratio needs in every mode', () => {
  const full = new Set(planned(benchPlan(benchConfig({}))).map((s) => s.id));
  for (const id of REQUIRED) assert.ok(full.has(id), `full run lacks '${id}'`);
  for (const flags of [...MODES, { quick: true, batch: '10' }, { batch: '1,1000' }]) {
    const cfg = benchConfig(flags);
    const ids = new Set(planned(benchPlan(cfg)).map((s) => s.id));
    for (const id of ratioIds(cfg.batches)) assert.ok(ids.has(id), `${JSON.stringify(flags)}: no '${id}'`);
  }
});

/** A row per planned scenario, with made-up throughputs. */
function fakeRows(flags: Parameters<typeof benchConfig>[0]): RatioRow[] {
  return planned(benchPlan(benchConfig(flags))).map((s, i) => ({
    id: s.id,
    group: s.group,
    payments_per_s: 10 * (i + 1),
  }));
}

/** A quick run's result around `rows`, with its ratios, as the bench would write it. */
function quickResult(rows: BenchResult['scenarios']): BenchResult {
  return {
    when: '2026-01-02T03:04:05.000Z',
    mode: 'quick',
    runs: 1,
    machine: { cpu: 'Test CPU', cores: 2, memory_gb: 4, node: 'v20.0.0', os: 'linux 6' },
    ...computeRatios(rows, [100, 1000]),
    ldk_close: null,
    scenarios: rows,
  };
}

test('ratios: computed from ids, with the shapes of the JSON', () => {
  const rows = fakeRows({ quick: true });
  const rate = (id: string) => rows.find((r) => r.id === id)!.payments_per_s;
  const r = computeRatios(rows, [100, 1000]);
  const one = (x: number, y: number) => Math.round((x / y) * 10) / 10;
  assert.equal(r.ratio_vs_lightning.unbatched, one(rate('channel.unbatched'), rate('lnmodel.unbatched')));
  assert.equal(r.ratio_vs_lightning.batched, one(rate('channel.batch100'), rate('lnmodel.batch100')));
  assert.equal(r.ratio_vs_lightning.batch_size, 100);
  assert.equal(r.ratio_vs_lightning.batched_vs_htlc, one(rate('channel.batch100'), rate('lnmodel.htlc.batch100')));
  assert.equal(r.ratio_vs_ldk.pipelined, one(rate('channel.pipelined'), rate('ldk.pipelined')));
  assert.deepEqual(Object.keys(r.ratio_vs_lightning), [
    'unbatched',
    'batched',
    'batch_size',
    'unbatched_vs_htlc',
    'batched_vs_htlc',
    'best_vs_best',
  ]);
  assert.deepEqual(Object.keys(r.ratio_vs_ldk), ['unbatched', 'pipelined']);
  // without a batch=100 channel row, the largest batch is compared and the HTLC batch ratio is null
  const tiny = computeRatios(fakeRows({ tiny: true }), [10]);
  assert.equal(tiny.ratio_vs_lightning.batch_size, 10);
  assert.equal(tiny.ratio_vs_lightning.batched_vs_htlc, null);
});

test('ratios: a missing id is an error naming it, not a null ratio', () => {
  for (const id of ratioIds([100, 1000])) {
    const rows = fakeRows({ quick: true }).filter((r) => r.id !== id);
    assert.throws(
      () => computeRatios(rows, [100, 1000]),
      new RegExp(`no scenario with id '${id.replace('.', '\\.')}'`),
    );
  }
});

test('ratios: a baseline that failed (0 payments/s) gives null, as today', () => {
  const rows = fakeRows({ quick: true }).map((r) => (r.group === 'ldk' ? { ...r, payments_per_s: 0 } : r));
  const r = computeRatios(rows, [100, 1000]);
  assert.equal(r.ratio_vs_ldk.unbatched, null);
  assert.equal(r.ratio_vs_ldk.pipelined, null);
});

test('runner rows: median of the runs, last run for latency and usage; a failure keeps its id', () => {
  const spec = { id: 'x.y', name: 'x y', group: 'teechain' as const, payments: 10, batch: 1, note: 'n' };
  const run = (rate: number, ok = true) => ({
    payments_per_s: rate,
    latency: { p50_ms: rate, p95_ms: rate, p99_ms: rate },
    verified: ok,
    usage: { cpu_ms_per_node: [rate], rss_mb_per_node: [rate] },
  });
  const row = rowOf(spec, [run(3.4), run(1.2), run(2.6, false)]);
  assert.equal(row.id, 'x.y');
  assert.equal(row.payments_per_s, 3);
  assert.deepEqual(row.runs_payments_per_s, [3, 1, 3]);
  assert.equal(row.p50_ms, 2.6);
  assert.deepEqual(row.cpu_ms_per_node, [2.6]);
  assert.equal(row.verified, false);
  assert.equal(row.note, 'n');
  const failed = failedRow(spec, `the chain is unreachable\nstderr: ${'x'.repeat(300)}`);
  assert.equal(failed.id, 'x.y');
  assert.equal(failed.verified, false);
  assert.equal(failed.note, 'FAILED: the chain is unreachable');
});

test('report: the document has the machine, date, mode, every row by id and the ratios', () => {
  const rows = planned(benchPlan(benchConfig({ quick: true }))).map((s, i) =>
    rowOf(s, [
      {
        payments_per_s: 100 * (i + 1),
        latency: { p50_ms: 1, p95_ms: 2, p99_ms: 3 },
        verified: true,
        usage: { cpu_ms_per_node: [5, 5], rss_mb_per_node: [80, 90] },
      },
    ]),
  );
  const result = quickResult(rows);
  const md = markdownReport(result);
  for (const s of ['2026-01-02T03:04:05.000Z', '`quick`', 'Test CPU, 2 cores', 'ratio vs Lightning-style model'])
    assert.ok(md.includes(s), s);
  for (const row of rows) assert.ok(md.includes(`| \`${row.id}\` | ${row.name} |`), row.id);
  // every line of the table has as many cells as its header (a '|' inside a cell is escaped)
  const lines = md.split('\n').filter((l) => l.startsWith('|'));
  const count = (l: string) => l.replace(/\\\|/g, '').split('|').length;
  assert.ok(lines.length === rows.length + 2);
  for (const l of lines) assert.equal(count(l), count(lines[0]!), l);
});

test('ratios: each committee row against the same load between lone treasuries, in percent', () => {
  const rows: RatioRow[] = [
    ...fakeRows({ quick: true }).filter((r) => !r.id.startsWith('committee')),
    { id: 'committee1.unbatched', group: 'teechain-committee', payments_per_s: 200 },
    { id: 'committee1.batch100', group: 'teechain-committee', payments_per_s: 10_000 },
    { id: 'committee3.unbatched', group: 'teechain-committee', payments_per_s: 110 },
    { id: 'committee3.batch100', group: 'teechain-committee', payments_per_s: 5_000 },
    { id: 'committee3.idle100.batch100', group: 'teechain-committee', payments_per_s: 4_000 },
    { id: 'committee5.batch100', group: 'teechain-committee', payments_per_s: 0 },
  ];
  assert.deepEqual(computeRatios(rows, [100, 1000]).committee_vs_lone, {
    'committee3.unbatched': 55,
    'committee3.batch100': 50,
    'committee3.idle100.batch100': 40,
    'committee5.batch100': 0,
  });
  const lone = rows.filter((r) => r.id !== 'committee1.batch100' && r.id !== 'committee1.unbatched');
  assert.deepEqual(computeRatios(lone, [100, 1000]).committee_vs_lone, {}, 'no lone rows: no committee ratios');
});

test('report: an update with 1 channel beside one with 100, from the rows the bench measured', () => {
  const specs = planned(benchPlan(benchConfig({ quick: true })));
  const bytes: Record<string, number> = { 'committee3.batch100': 1234, 'committee3.idle100.batch100': 1240 };
  const rows = specs.map((s) =>
    rowOf(s, [
      {
        payments_per_s: 100,
        latency: { p50_ms: 1, p95_ms: 2, p99_ms: 3 },
        verified: true,
        usage: {},
        ...(bytes[s.id] !== undefined ? { update_bytes: bytes[s.id] } : {}),
      },
    ]),
  );
  const result = quickResult(rows);
  assert.ok(
    markdownReport(result).includes(
      'committee3 update bytes per group commit, 1 channel vs 100 channels (99 idle): 1,234 B vs 1,240 B',
    ),
  );
  const without = { ...result, scenarios: rows.filter((r) => r.id !== 'committee3.idle100.batch100') };
  assert.ok(!markdownReport(without).includes('1 channel vs 100 channels'), 'no idle row: no comparison line');
});
