/**
 * `teechain stress --fresh --sweep nodes=2,3` on real processes: a fresh network of each size on a random
 * topology, each loaded for a short while, verified and stopped before the next; the JSON has one entry per
 * size (each verified, its counts adding up, its channels those of the random graph) and the sweep's
 * parameters, and the table a row per size. Bad --sweep specs, and --sweep without --fresh: one line, exit 2.
 * No assertion on timings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { randomChannels } from '../src/cli/network.ts';
import { parseStressArgs, parseSweep, UsageError } from '../src/stress/options.ts';
import type { SweepReport } from '../src/stress/sweep.ts';
import { tempDir } from './helpers/network.ts';
import { runStress, sumOf } from './helpers/stress-run.ts';
import { testSeed } from './helpers/seeded.ts';

test('--sweep nodes=L: the sizes, in order, each from 2 to 10 and once', () => {
  assert.deepEqual(parseSweep('nodes=2,4,8'), [2, 4, 8]);
  assert.deepEqual(parseSweep('nodes=3'), [3]);
  assert.deepEqual(parseSweep('nodes=10,2'), [10, 2]);
});

const BAD: Array<[string[], RegExp]> = [
  [['--sweep', 'nodes=2,3'], /--sweep builds a fresh network of each size: add --fresh/],
  [['--fresh', '--sweep', 'nodes='], /each size is a whole number from 2 to 10 \(an empty size\)/],
  [['--fresh', '--sweep', 'channels=2,4'], /unknown --sweep channels=2,4: --sweep nodes=2,4,8/],
  [['--fresh', '--sweep', 'nodes=1'], /each size is a whole number from 2 to 10, not 1/],
  [['--fresh', '--sweep', 'nodes=a'], /each size is a whole number from 2 to 10, not a/],
  [['--fresh', '--sweep', 'nodes=2,,4'], /an empty size/],
  [['--fresh', '--sweep', 'nodes=11'], /not 11/],
  [['--fresh', '--sweep', 'nodes=2,2'], /each size once/],
  [['--fresh', '--sweep', 'nodes'], /unknown --sweep nodes:/],
  [['--fresh', '--sweep', 'nodes=2,3', '--nodes', '4'], /drop --nodes/],
];

test('bad --sweep specs, or --sweep without --fresh, are usage errors of one line', () => {
  for (const [args, msg] of BAD)
    assert.throws(
      () => parseStressArgs(args),
      (e: unknown) => e instanceof UsageError && msg.test(e.message) && !e.message.includes('\n'),
      args.join(' '),
    );
});

test('the command: a bad --sweep is one line on stderr, nothing on stdout, exit 2', async () => {
  for (const [args, msg] of BAD.slice(0, 3)) {
    const run = await runStress(args);
    assert.equal(run.code, 2, args.join(' '));
    assert.match(run.stderr.split('\n')[0]!, msg, args.join(' '));
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(run.stdout, '');
  }
});

test(
  'teechain stress --fresh --sweep nodes=2,3: one fresh network per size, each verified, one entry and one row each',
  { timeout: 300_000 },
  async () => {
    const seed = testSeed('stress sweep');
    const dir = await tempDir('teechain-stress-sweep-');
    const datadir = join(dir, 'net');
    await mkdir(datadir);
    const out = join(dir, 'sweep.json');
    const run = await runStress([
      '--fresh',
      '--datadir',
      datadir,
      '--sweep',
      'nodes=2,3',
      '--topology',
      'random',
      '--duration',
      '2',
      '--amount',
      '1000',
      '--seed',
      String(seed),
      '--out',
      out,
    ]);
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const r = JSON.parse(await readFile(out, 'utf8')) as SweepReport;
    assert.deepEqual(r.sweep.nodes, [2, 3]);
    assert.equal(r.sweep.topology, 'random');
    assert.equal(r.sweep.hosts, 'local');
    assert.equal(r.sweep.seed, seed);
    assert.equal(r.sweep.pattern, 'uniform');
    assert.equal(r.sweep.mode, 'closed');
    assert.equal(r.sweep.concurrency_per_payer, 4);
    assert.equal(r.sweep.duration_limit_s, 2);
    assert.deepEqual(r.sweep.amounts, { fixed_sat: 1000 });
    assert.equal(r.verified, true);
    assert.equal(r.interrupted, false);
    assert.deepEqual(
      r.entries.map((e) => e.nodes),
      [2, 3],
    );
    for (const e of r.entries) {
      const rep = e.report!;
      assert.equal(e.error, null);
      assert.equal(e.verified, true, rep.verification.mismatches.join('\n'));
      assert.equal(rep.verification.ok, true);
      // Each size its own fresh network, of that size, on the random graph of the run's seed.
      assert.equal(rep.network.source, 'fresh');
      assert.equal(rep.network.topology, 'random');
      assert.equal(rep.network.treasuries.length, e.nodes);
      assert.equal(e.channels, randomChannels(e.nodes, seed).length);
      assert.equal(rep.network.channels, e.channels);
      // The same workload on every size.
      assert.equal(rep.workload.seed, seed);
      assert.equal(rep.workload.duration_limit_s, 2);
      // Counts: the entry is the report's, and every attempted payment is accounted for.
      assert.ok(e.payments_ok! > 0, 'some payments succeeded');
      assert.equal(e.payments_ok, rep.payments_ok);
      assert.equal(e.payments_failed, sumOf(rep.payments_failed));
      assert.equal(e.payments_in_doubt, sumOf(rep.payments_in_doubt));
      assert.equal(e.payments_attempted, e.payments_ok! + e.payments_failed! + e.payments_in_doubt!);
      assert.equal(rep.verification.payer_history.checked, rep.payments_ok);
      assert.equal(rep.verification.conservation.holds, true);
      assert.equal(e.payments_per_s, rep.payments_per_s);
      assert.equal(e.p50_ms, rep.p50_ms);
      assert.equal(e.p99_ms, rep.p99_ms);
      // The busiest process is one of that network's, with the highest CPU share of them.
      const procs = rep.nodes.flatMap((n) => ('unavailable' in n ? [] : [n]));
      assert.equal(procs.length, e.nodes);
      assert.equal(e.busiest!.cpu_pct, Math.max(...procs.map((n) => n.cpu_pct)));
      assert.ok(procs.some((n) => n.name === e.busiest!.name && n.cpu_pct === e.busiest!.cpu_pct));
      assert.equal(e.generator_cpu_pct, rep.generator.cpu_pct);
    }
    // Each size was built in its own data dir under --datadir, and stopped before the next.
    assert.deepEqual((await readdir(datadir)).sort(), ['nodes-2', 'nodes-3']);
    for (const size of ['nodes-2', 'nodes-3'])
      await assert.rejects(readFile(join(datadir, size, 'network.pid')), `${size} stopped`);
    // The table: a header, then one row per size with its figures as in the JSON.
    const lines = run.stdout.trim().split('\n');
    assert.match(lines[0]!, /^sweep: random, uniform, closed loop, 4 in flight per payer, 2 s, seed \d+$/);
    assert.match(lines[2]!, /^nodes\s+channels\s+payments\/s\s+p50 ms\s+p99 ms\s+failed\s+verified\s+busiest process/);
    const rows = lines.slice(4);
    assert.equal(rows.length, 2);
    for (const [i, e] of r.entries.entries()) {
      const cells = rows[i]!.split(/\s{2,}/);
      assert.deepEqual(cells.slice(0, 8), [
        String(e.nodes),
        String(e.channels),
        String(e.payments_per_s),
        String(e.p50_ms),
        String(e.p99_ms),
        String(e.payments_failed),
        'yes',
        e.busiest!.name,
      ]);
    }
  },
);
