// run-tests lane: in-process
/**
 * `npm run bench -- --only`: which stages and scenarios a selection runs, what it says it left out, that a
 * stage measures only its selected scenarios, and that a prefix naming nothing is refused. Nothing runs:
 * the plan is built and its stages driven with a recording context.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { benchConfig } from '../src/bench/config.ts';
import { textReport, type BenchResult } from '../src/bench/report.ts';
import { benchPlan, planned } from '../src/bench/scenarios/index.ts';
import { stage, type BenchEnv, type Run, type StageContext } from '../src/bench/scenario.ts';
import { parseOnly, selectPlan, SelectionError, withoutRatios } from '../src/bench/selection.ts';

const quick = benchConfig({ quick: true });

test('--only committee3,channel: those scenarios only, and the ratios and LDK close said to be skipped', () => {
  const plan = benchPlan(quick);
  const { plan: sel, selected } = selectPlan(plan, ['committee3', 'channel'], quick.batches);
  const ids = planned(sel).map((s) => s.id);
  assert.ok(ids.length > 0);
  for (const id of ids) assert.ok(id.startsWith('committee3') || id.startsWith('channel'), id);
  for (const id of ['committee3.unbatched', 'committee3.batch100', 'channel.unbatched', 'channel.pipelined'])
    assert.ok(ids.includes(id), id);
  assert.ok(!ids.includes('committee1.unbatched') && !ids.includes('ldk.unbatched') && !ids.includes('rest.32clients'));
  assert.equal(sel.promotion, plan.promotion, 'committee3 selects the promotion figure (committee3.promotion_gap_ms)');
  assert.ok(sel.stages.includes(plan.promotion!));
  assert.deepEqual(selected, { only: ['committee3', 'channel'], skipped: ['ratios', 'ldk_close'] });
});

test('--only: an exact id leaves the promotion figure out; a prefix of every ratio id keeps the ratios', () => {
  const plan = benchPlan(quick);
  const one = selectPlan(plan, ['committee3.unbatched'], quick.batches);
  assert.deepEqual(
    planned(one.plan).map((s) => s.id),
    ['committee3.unbatched'],
  );
  assert.equal(one.plan.promotion, null);
  assert.deepEqual(one.selected.skipped, ['ratios', 'promotion', 'ldk_close']);
  const all = selectPlan(plan, ['channel', 'lnmodel', 'ldk'], quick.batches);
  assert.deepEqual(all.selected.skipped, ['promotion']);
});

test('--only: a prefix that names no scenario is refused, naming it; so is an empty list', () => {
  const plan = benchPlan(quick);
  assert.throws(
    () => selectPlan(plan, ['channel', 'comittee3'], quick.batches),
    (err: Error) => {
      assert.ok(err instanceof SelectionError);
      assert.equal(err.message, "--only: no scenario id starts with 'comittee3'");
      return true;
    },
  );
  assert.deepEqual(parseOnly(' committee3, channel ,'), ['committee3', 'channel']);
  assert.throws(() => parseOnly(' , '), SelectionError);
});

test('--only: a selected stage sets up once and measures only its selected scenarios', async () => {
  const setUps: string[] = [];
  const spec = (id: string) => ({ id, name: id, group: 'teechain' as const, payments: 1, batch: null });
  const run: Run = { payments_per_s: 1, latency: { p50_ms: 1, p95_ms: 1, p99_ms: 1 }, verified: true, usage: {} };
  const s = stage<string>({
    title: 't',
    setUp: () => {
      setUps.push('up');
      return Promise.resolve('fixture');
    },
    scenarios: ['x.a', 'x.b', 'y.c'].map((id) => ({ ...spec(id), measure: () => Promise.resolve(run) })),
  });
  const plan = { stages: [s], ldk: { ...s, close: () => null }, promotion: null };
  const { plan: sel } = selectPlan(plan, ['x.b', 'y'], [100]);
  const measured: string[] = [];
  const ctx: StageContext = {
    env: {} as BenchEnv,
    async measure(sp, r) {
      measured.push(sp.id);
      await r(async (_nodes, load) => ({ result: await load(), seconds: 1, usage: {} }));
    },
    fail: () => assert.fail('no failure expected'),
    show: () => {},
  };
  for (const st of sel.stages) await st.run(ctx);
  assert.deepEqual(measured, ['x.b', 'y.c']);
  assert.deepEqual(setUps, ['up']);
});

test('report of a selection: says what was selected and skipped, prints no headline ratio', () => {
  const rows = [
    { id: 'committee1.unbatched', group: 'teechain-committee' as const, payments_per_s: 200 },
    { id: 'committee3.unbatched', group: 'teechain-committee' as const, payments_per_s: 120 },
  ].map((r) => ({
    ...r,
    name: r.id,
    p50_ms: 1,
    p95_ms: 1,
    p99_ms: 1,
    runs_payments_per_s: [r.payments_per_s],
    payments: 10,
    batch: 1,
    verified: true,
  }));
  const result: BenchResult = {
    when: '2026-01-02T03:04:05.000Z',
    mode: 'quick',
    runs: 1,
    machine: { cpu: 'Test CPU', cores: 2, memory_gb: 4, node: 'v20.0.0', os: 'linux 6' },
    ...withoutRatios(rows, [100]),
    ldk_close: null,
    selected: { only: ['committee1.unbatched', 'committee3.unbatched'], skipped: ['ratios', 'promotion', 'ldk_close'] },
    scenarios: rows,
  };
  assert.equal(result.ratio_vs_lightning.unbatched, null);
  const text = textReport(result);
  assert.ok(
    text.includes(
      'selected (--only committee1.unbatched,committee3.unbatched): not run: the headline ratios, the promotion figure, the LDK close',
    ),
    text,
  );
  assert.ok(text.includes('committee3.unbatched 60 %'), 'the committee ratio is still computed');
  assert.ok(!text.includes('ratio vs LDK') && !text.includes('Lightning-style') && !text.includes('LDK cooperative'));
});
