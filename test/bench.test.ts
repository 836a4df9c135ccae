/**
 * Smoke test of `npm run bench` with tiny counts: every scenario produces its figures and its payments
 * really happened (the harness checks each channel's totals moved by exactly the sum paid on both
 * sides). Never a timed assertion: speed is measured by the benchmark, not asserted here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BenchResult } from '../src/bench/report.ts';
import type { ScenarioRow } from '../src/bench/scenario.ts';
import { tempDir } from './helpers/network.ts';

/** The JSON as written: a row's group is any string to this test, which checks rather than trusts it. */
type Json = Omit<BenchResult, 'scenarios'> & { scenarios: Array<Omit<ScenarioRow, 'group'> & { group: string }> };

const run = promisify(execFile);

test('bench --tiny: figures for every scenario, every payment checked', { timeout: 300_000 }, async () => {
  const dir = await tempDir('teechain-bench-test-');
  const out = join(dir, 'bench.json');
  const r = await run(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, '../scripts/bench.ts'), '--tiny', '--out', out],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  assert.match(r.stdout, /ratio vs Lightning-style model/);
  const json = JSON.parse(await readFile(out, 'utf8')) as Json;
  assert.ok(json.machine.cores >= 1);
  assert.ok(typeof json.ratio_vs_lightning.unbatched === 'number');
  assert.ok(
    typeof json.ratio_vs_ldk.unbatched === 'number' && typeof json.ratio_vs_ldk.pipelined === 'number',
    'ratio_vs_ldk',
  );
  assert.equal(json.scenarios.filter((s) => s.group === 'ldk').length, 2);
  assert.deepEqual(
    json.scenarios
      .filter((s) => s.group === 'teechain-multihop')
      .map((s) => s.id)
      .sort(),
    [
      'multihop.star3',
      'multihop.star4',
      'multihop.star5',
      'multihop2.batched',
      'multihop2.single',
      'multihop3.batched',
      'multihop3.single',
    ],
    'multi-hop: 2 and 3 hops, one at a time and in rounds',
  );
  assert.equal(json.ldk_close?.verified, true, `LDK cooperative close: ${json.ldk_close?.error}`);
  const ids = json.scenarios.map((s) => s.id);
  assert.equal(new Set(ids).size, ids.length, `scenario ids unique: ${ids}`);
  for (const id of ['channel.unbatched', 'channel.both_directions', 'committee2.batch100', 'pairs1', 'rest.32clients'])
    assert.ok(ids.includes(id), `no scenario '${id}' in ${ids}`);
  const measured = json.scenarios.filter((s) => s.group !== 'unavailable');
  assert.ok(measured.length >= 8);
  for (const s of measured) {
    for (const k of ['name', 'payments_per_s', 'p50_ms', 'p99_ms']) assert.ok(k in s, `${s.name}: ${k}`);
    assert.ok(s.payments_per_s > 0, s.name);
    assert.equal(s.verified, true, `${s.name}: payments were not all accounted for`);
    // CPU and memory of every node the scenario ran on, measured over its last run
    assert.ok(Array.isArray(s.cpu_ms_per_node) && s.cpu_ms_per_node.length >= 2, `${s.name}: cpu_ms_per_node`);
    assert.ok(
      s.cpu_ms_per_node.every((ms: number) => Number.isFinite(ms) && ms >= 0) &&
        s.cpu_ms_per_node.some((ms: number) => ms > 0),
      `${s.name}: cpu ${s.cpu_ms_per_node}`,
    );
    assert.ok(
      Array.isArray(s.rss_mb_per_node) &&
        s.rss_mb_per_node.length === s.cpu_ms_per_node.length &&
        s.rss_mb_per_node.every((mb: number) => mb > 10),
      `${s.name}: rss ${s.rss_mb_per_node}`,
    );
  }
  assert.ok((await readFile(join(dir, 'latest.svg'), 'utf8')).startsWith('<svg'));
});
