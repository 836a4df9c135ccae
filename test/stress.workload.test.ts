// run-tests lane: in-process
/**
 * The stress workload without a network: the same seed gives the same sequence of (payer, payee, amount),
 * `--payments N` is its first N, each pattern chooses whom it says, the default amounts have the fitted
 * shape, per-payer queues keep each payer's order, and bad options are usage errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  fixedAmount,
  smallPaymentAmount,
  MAX_SMALL_PAYMENT_SAT,
  SMALL_PAYMENT_MEDIAN_SAT,
} from '../src/stress/amounts.ts';
import { channelsOf, randomChannels } from '../src/cli/network.ts';
import { parseStressArgs, UsageError } from '../src/stress/options.ts';
import { seededRandom } from '../src/stress/random.ts';
import { paymentSequence, PerPayerQueues, type PlannedPayment } from '../src/stress/workload.ts';
import { testSeed } from './helpers/seeded.ts';

const take = (it: Iterable<PlannedPayment>, n: number) => {
  const out: PlannedPayment[] = [];
  for (const p of it) {
    out.push(p);
    if (out.length === n) break;
  }
  return out;
};

test('the same seed gives the same sequence, another seed another; --payments N is its first N', () => {
  const seed = testSeed('stress sequence');
  const o = { seed, pattern: 'uniform' as const, treasuries: 5, amount: smallPaymentAmount() };
  const a = take(paymentSequence(o), 2_000);
  const b = take(paymentSequence(o), 2_000);
  assert.deepEqual(a, b);
  assert.notDeepEqual(take(paymentSequence({ ...o, seed: seed + 1 }), 2_000), a);
  const limited = [...paymentSequence({ ...o, limit: 300 })];
  assert.deepEqual(limited, a.slice(0, 300));
  for (const p of a) {
    assert.notEqual(p.payer, p.payee);
    assert.ok(p.payer >= 0 && p.payer < 5 && p.payee >= 0 && p.payee < 5);
    assert.ok(Number.isSafeInteger(p.amount) && p.amount >= 1 && p.amount <= MAX_SMALL_PAYMENT_SAT);
  }
});

test('patterns: uniform uses every ordered pair, hub puts the first treasury on one side of each payment, zipf favours a few payees', () => {
  const seed = testSeed('stress patterns');
  const n = 4;
  const run = (pattern: 'uniform' | 'zipf' | 'hub') =>
    take(paymentSequence({ seed, pattern, treasuries: n, amount: fixedAmount(1) }), 20_000);
  const pairs = new Set(run('uniform').map((p) => `${p.payer}>${p.payee}`));
  assert.equal(pairs.size, n * (n - 1));
  const hub = run('hub');
  assert.ok(hub.every((p) => p.payer === 0 || p.payee === 0));
  const toHub = hub.filter((p) => p.payee === 0).length / hub.length;
  assert.ok(toHub > 0.45 && toHub < 0.55, `to the hub: ${toHub}`);
  const byPayee = new Array<number>(n).fill(0);
  for (const p of run('zipf')) byPayee[p.payee]!++;
  const sorted = [...byPayee].sort((x, y) => y - x);
  // Weights 1, 1/2, 1/3, 1/4 (of 25/12): the most popular payee gets about 48%, the least about 12%.
  assert.ok(sorted[0]! / 20_000 > 0.4 && sorted[3]! / 20_000 < 0.2, `payees: ${byPayee.join(', ')}`);
});

test('default amounts: median and mean near the fitted figures, within the cap', () => {
  const rand = seededRandom(testSeed('stress amounts'));
  const draw = smallPaymentAmount();
  const xs = Array.from({ length: 40_000 }, () => draw(rand)).sort((a, b) => a - b);
  const median = xs[xs.length >> 1]!;
  assert.ok(Math.abs(median / SMALL_PAYMENT_MEDIAN_SAT - 1) < 0.06, `median ${median}`);
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  // The cap cuts the upper tail, so the mean falls below the fitted 103,962 sat, but not by much.
  assert.ok(mean > 80_000 && mean < 104_000, `mean ${mean}`);
  assert.ok(xs[0]! >= 1 && xs[xs.length - 1]! <= MAX_SMALL_PAYMENT_SAT);
});

test('per-payer queues: each payer gets its own payments in sequence order, and together exactly the sequence', () => {
  const seed = testSeed('stress queues');
  const o = { seed, pattern: 'zipf' as const, treasuries: 4, amount: fixedAmount(5), limit: 5_000 };
  const q = new PerPayerQueues(paymentSequence(o), 4);
  const got: PlannedPayment[][] = [[], [], [], []];
  // Payer 3 drains first, then the others in turn: the look-ahead buffers what the others have not taken.
  for (const payer of [3, 0, 2, 1]) for (let p = q.nextFor(payer); p; p = q.nextFor(payer)) got[payer]!.push(p);
  assert.ok(q.exhausted());
  const all = [...paymentSequence(o)];
  for (let payer = 0; payer < 4; payer++)
    assert.deepEqual(
      got[payer],
      all.filter((p) => p.payer === payer),
    );
});

test('bad options are usage errors with one line', () => {
  const bad: Array<[string[], RegExp]> = [
    [['--fresh', '--topology', 'mesh'], /unknown topology mesh/],
    [['--rate', '0'], /--rate must be a whole number from 1/],
    [['--rate', '10', '--concurrency', '2'], /exclude each other/],
    [['--pattern', 'pareto'], /unknown pattern pareto/],
    [['--nodes', '4'], /add --fresh/],
    [['--amount', '1.5'], /--amount must be a whole number/],
    [['--fresh', '--nodes', '1'], /--nodes must be a whole number from 2/],
    [['--bogus'], /bogus/],
  ];
  for (const [args, msg] of bad)
    assert.throws(
      () => parseStressArgs(args),
      (e: unknown) => e instanceof UsageError && msg.test(e.message) && !e.message.includes('\n'),
      args.join(' '),
    );
  const ok = parseStressArgs(['--payments', '50', '--seed', '9']);
  assert.equal(ok.durationS, null);
  assert.equal(ok.payments, 50);
  assert.deepEqual(ok.mode, { kind: 'closed', concurrency: 4 });
  assert.equal(parseStressArgs([]).durationS, 10);
});

test('--topology random: connected, no self-loop, no pair twice, about n/2 channels beyond a tree, fixed by the seed', () => {
  const seed = testSeed('stress random topology');
  for (let n = 2; n <= 10; n++) {
    for (let k = 0; k < 20; k++) {
      const pairs = randomChannels(n, seed + k);
      const full = (n * (n - 1)) / 2;
      assert.equal(pairs.length, Math.min(full, n - 1 + Math.floor(n / 2)), `n ${n}`);
      const seen = new Set<string>();
      for (const [a, b] of pairs) {
        assert.ok(Number.isInteger(a) && Number.isInteger(b) && a >= 0 && b < n && a < b, `${a}-${b} of ${n}`);
        assert.ok(!seen.has(`${a}-${b}`), `${a}-${b} twice`);
        seen.add(`${a}-${b}`);
      }
      // Connected: every node reached from node 0 over the channels.
      const reached = new Set([0]);
      for (let grew = true; grew;) {
        grew = false;
        for (const [a, b] of pairs)
          if (reached.has(a) !== reached.has(b)) {
            reached.add(a).add(b);
            grew = true;
          }
      }
      assert.equal(reached.size, n, `n ${n}, seed ${seed + k}: ${JSON.stringify(pairs)}`);
      assert.deepEqual(randomChannels(n, seed + k), pairs);
      assert.deepEqual(channelsOf('random', n, seed + k), pairs);
    }
  }
  assert.deepEqual(randomChannels(2, seed), [[0, 1]]);
  // Different seeds, different graphs: 8 nodes have far more than 20 such graphs.
  const graphs = new Set(Array.from({ length: 20 }, (_, k) => JSON.stringify(randomChannels(8, seed + k))));
  assert.ok(graphs.size > 10, `${graphs.size} distinct graphs of 20 seeds`);
  const o = parseStressArgs(['--fresh', '--topology', 'random', '--nodes', '5', '--seed', '7']);
  assert.equal(o.topology, 'random');
  assert.equal(o.seed, 7);
});
