/**
 * `npm run bench` with flags it cannot run: one line naming the flag, exit 2, no stack trace, nothing
 * started; `--help` prints the usage. The script is run as a real process, as a user runs it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { benchConfig, BenchUsageError } from '../src/bench/config.ts';

function bench(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/bench.ts', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('bad bench flags: one line each, exit 2, nothing started', () => {
  const cases: [string[], RegExp][] = [
    [['--bogus'], /^bench: Unknown option '--bogus'/],
    [['--runs', 'three'], /^bench: --runs wants a positive whole number, not "three"/],
    [['--quick', '--batch', '10,0'], /^bench: --batch wants a positive whole number, not "0"/],
    [['--tiny', '--quick'], /^bench: --tiny and --quick are two sizes/],
    [['--quick', '--only', 'nosuchscenario'], /^bench: --only: no scenario id starts with 'nosuchscenario'/],
  ];
  for (const [args, want] of cases) {
    const r = bench(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, want);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /\n\s+at |starting the regtest chain/);
  }
});

test('--help prints the usage and exits 0 without starting anything', () => {
  const r = bench('--help');
  assert.equal(r.code, 0, r.stderr);
  for (const flag of ['--quick', '--only P1,P2', '--report FILE', '--help']) assert.ok(r.stdout.includes(flag), flag);
  assert.equal(r.stderr, '');
});

test('benchConfig keeps good numbers and refuses the rest', () => {
  const cfg = benchConfig({ quick: true, runs: '2', batch: '10,100', pairs: '1,4', 'promotion-timeout-ms': '750' });
  assert.equal(cfg.runs, 2);
  assert.deepEqual(cfg.batches, [10, 100]);
  assert.deepEqual(cfg.pairs, [1, 4]);
  assert.equal(cfg.promotionTimeoutMs, 750);
  for (const bad of [{ runs: '0' }, { runs: '1.5' }, { pairs: '2,' }, { 'promotion-timeout-ms': '-5' }, { batch: '' }])
    assert.throws(() => benchConfig(bad), BenchUsageError, JSON.stringify(bad));
});
