/**
 * `teechain stress` as a user runs it, on real processes: a 4-node ring (`teechain network up`), a short
 * run whose report is checked against the nodes' own histories and balances, an interrupted run (SIGINT)
 * that still verifies and writes its partial report, a run on a network it builds itself (`--fresh`), and
 * bad input. No assertion on timings: counts, balances and exit codes only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { NetworkFile } from '../src/cli/client.ts';
import { CLI, api, networkUp } from './helpers/launcher.ts';
import { spawnTracked, stopChild, tempDir, waitUntil, freePorts } from './helpers/network.ts';
import { prng, testSeed } from './helpers/seeded.ts';
import { runStress, sumOf } from './helpers/stress-run.ts';

type Node = NetworkFile['nodes'][number];

/** What the nodes say: each one's history length and the sum of every channel's local balance. */
async function nodesNow(nodes: Node[]) {
  const histories = await Promise.all(
    nodes.map(async (n) => (await api(n, 'GET', '/v1/payments?limit=1')).total as number),
  );
  let sum = 0n;
  for (const n of nodes)
    for (const c of (await api(n, 'GET', '/v1/channels')).channels) sum += BigInt(c.local_balance_sat);
  return { histories, sum };
}

/** The entries each node's history gained since `before`, read by the test itself. */
async function historySince(nodes: Node[], before: number[]) {
  const out: Array<Array<{ direction: string; status: string; amount_sat: number; payment_id: string }>> = [];
  for (const [i, n] of nodes.entries()) {
    const added = (await api(n, 'GET', '/v1/payments?limit=1')).total - before[i]!;
    const got = [];
    while (got.length < added)
      got.push(
        ...(await api(n, 'GET', `/v1/payments?offset=${got.length}&limit=${Math.min(1000, added - got.length)}`))
          .payments,
      );
    out.push(got);
  }
  return out;
}

/**
 * The nodes' own records, read here: as many outgoing payments succeeded as the report counts, all of
 * `amount`, the payees received exactly that many times `amount` (fees stay with the intermediaries'
 * balances), and the channels hold in all what they held before.
 */
async function assertReportIsTheNodes(
  nodes: Node[],
  before: Awaited<ReturnType<typeof nodesNow>>,
  r: { payments_ok: number },
  amount: number,
) {
  const after = await nodesNow(nodes);
  assert.equal(after.sum, before.sum);
  const history = await historySince(nodes, before.histories);
  const sent = history.flat().filter((p) => p.direction === 'outgoing' && p.status === 'succeeded');
  assert.equal(sent.length, r.payments_ok);
  assert.ok(sent.every((p) => p.amount_sat === amount));
  const received = history
    .flat()
    .filter((p) => p.direction === 'incoming')
    .reduce((a, p) => a + p.amount_sat, 0);
  assert.equal(received, r.payments_ok * amount);
}

test(
  'teechain stress on a running 4-node ring: counts match the nodes, money is conserved, Ctrl-C still verifies',
  { timeout: 600_000 },
  async (t) => {
    const datadir = await tempDir('teechain-stress-');
    const up = networkUp(datadir, ['--nodes', '4', '--topology', 'ring', '--base-port', '0', '--no-dashboard']);
    try {
      await up.ready;
      const network = JSON.parse(await readFile(join(datadir, 'network.json'), 'utf8')) as NetworkFile;
      const seed = testSeed('stress run');

      await t.test('a short run: the report is what the nodes say', async () => {
        const before = await nodesNow(network.nodes);
        const out = join(datadir, 'report.json');
        const run = await runStress([
          '--datadir',
          datadir,
          '--payments',
          '120',
          '--amount',
          '1000',
          '--concurrency',
          '2',
          '--seed',
          String(seed),
          '--out',
          out,
        ]);
        assert.equal(run.code, 0, run.stderr + run.stdout);
        const r = JSON.parse(await readFile(out, 'utf8'));
        for (const k of [
          'payments_ok',
          'payments_failed',
          'payments_in_doubt',
          'payments_per_s',
          'p50_ms',
          'p95_ms',
          'p99_ms',
          'throughput',
          'nodes',
          'network',
          'machine',
          'verification',
        ])
          assert.ok(k in r, `report field ${k}`);
        assert.equal(r.payments_attempted, 120);
        assert.equal(r.payments_ok + sumOf(r.payments_failed) + sumOf(r.payments_in_doubt), 120);
        assert.ok(r.payments_ok > 0, JSON.stringify(r.payments_failed));
        assert.equal(
          r.throughput.reduce((a: number, s: { ok: number }) => a + s.ok, 0),
          r.payments_ok,
        );
        assert.deepEqual(r.network.treasuries, ['alice', 'bob', 'carol', 'dave']);
        assert.equal(r.network.channels, 4);
        assert.equal(r.nodes.length, 4);
        for (const n of r.nodes) assert.ok(n.cpu_s >= 0 && n.rss_mb > 0, JSON.stringify(n));
        assert.equal(r.verification.ok, true, r.verification.mismatches.join('\n'));
        assert.match(run.stdout, /conservation\s+holds/);
        await assertReportIsTheNodes(network.nodes, before, r, 1000);
        assert.equal(r.verification.payer_history.checked, r.payments_ok);
        // Progress lines came once a second or so, on stderr, with the counts so far.
        assert.match(run.stderr, /\d+ s {2}\d+ ok {2}\d+\/s now/);
      });

      await t.test(
        'many in flight: payments go in batch requests, and the report is still what the nodes say',
        async () => {
          const before = await nodesNow(network.nodes);
          const out = join(datadir, 'batched.json');
          const run = await runStress([
            '--datadir',
            datadir,
            '--payments',
            '2000',
            '--amount',
            '1000',
            '--concurrency',
            '250',
            '--seed',
            String(seed + 3),
            '--out',
            out,
          ]);
          assert.equal(run.code, 0, run.stderr + run.stdout);
          const r = JSON.parse(await readFile(out, 'utf8'));
          assert.equal(r.workload.max_per_request, 1000);
          assert.ok(r.submission.batch_requests > 0, JSON.stringify(r.submission));
          // Every attempt went in exactly one request: alone or as one entry of a batch.
          assert.equal(
            r.submission.batched_payments + r.submission.single_requests,
            r.payments_attempted + r.busy_retries,
          );
          assert.equal(r.payments_attempted, 2000);
          assert.equal(r.payments_ok + sumOf(r.payments_failed) + sumOf(r.payments_in_doubt), 2000);
          assert.ok(r.payments_ok > 0, JSON.stringify(r.payments_failed));
          assert.equal(r.verification.ok, true, r.verification.mismatches.join('\n'));
          assert.equal(r.verification.payer_history.checked, r.payments_ok);
          await assertReportIsTheNodes(network.nodes, before, r, 1000);
          assert.match(run.stdout, /submitted\s+a payer's ready payments in POST \/v1\/payments\/batch/);
        },
      );

      await t.test('--no-keys: payments without keys, the same exact checks against the nodes', async () => {
        const before = await nodesNow(network.nodes);
        const out = join(datadir, 'no-keys.json');
        const run = await runStress([
          '--datadir',
          datadir,
          '--payments',
          '1000',
          '--amount',
          '1000',
          '--concurrency',
          '100',
          '--no-keys',
          '--seed',
          String(seed + 4),
          '--out',
          out,
        ]);
        assert.equal(run.code, 0, run.stderr + run.stdout);
        const r = JSON.parse(await readFile(out, 'utf8'));
        assert.equal(r.workload.idempotency_keys, false);
        assert.equal(r.payments_ok + sumOf(r.payments_failed) + sumOf(r.payments_in_doubt), 1000);
        assert.ok(r.payments_ok > 0, JSON.stringify(r.payments_failed));
        assert.equal(r.verification.ok, true, r.verification.mismatches.join('\n'));
        assert.equal(r.verification.payer_history.checked, r.payments_ok);
        // Payments in doubt may or may not have moved money: only a run without any is checked exactly here.
        if (sumOf(r.payments_in_doubt) === 0) await assertReportIsTheNodes(network.nodes, before, r, 1000);
        assert.match(run.stdout, /no idempotency keys/);
      });

      await t.test('Ctrl-C stops the load, verifies and writes the partial report (exit 130)', async () => {
        const out = join(datadir, 'partial.json');
        const run = await runStress(
          [
            '--datadir',
            datadir,
            '--duration',
            '300',
            '--amount',
            '500',
            '--concurrency',
            '1',
            '--seed',
            String(seed + 1),
            '--out',
            out,
          ],
          (proc, err) =>
            void waitUntil(() => /\b[1-9]\d* ok /.test(err()), 120_000, 'a payment in the live line').then(() =>
              proc.kill('SIGINT'),
            ),
        );
        assert.equal(run.code, 130, run.stderr + run.stdout);
        const r = JSON.parse(await readFile(out, 'utf8'));
        assert.equal(r.interrupted, true);
        assert.ok(r.payments_ok >= 1);
        assert.equal(r.verification.ok, true, r.verification.mismatches.join('\n'));
        assert.match(run.stdout, /\(interrupted\)/);
      });

      await t.test(
        'open loop: payments offered at a rate, the offered and achieved rates reported, verified',
        async () => {
          const out = join(datadir, 'open.json');
          const run = await runStress([
            '--datadir',
            datadir,
            '--rate',
            '20',
            '--duration',
            '3',
            '--amount',
            '700',
            '--seed',
            String(seed + 2),
            '--out',
            out,
          ]);
          assert.equal(run.code, 0, run.stderr + run.stdout);
          const r = JSON.parse(await readFile(out, 'utf8'));
          assert.equal(r.workload.mode, 'open');
          assert.equal(r.open_loop.offered_per_s, 20);
          // Whatever the machine managed: every payment issued is accounted for, and the report says whether it kept up.
          assert.ok(r.open_loop.issued >= 1);
          assert.equal(r.payments_attempted, r.open_loop.issued);
          assert.equal(r.payments_ok + sumOf(r.payments_failed) + sumOf(r.payments_in_doubt), r.open_loop.issued);
          assert.equal(typeof r.open_loop.fell_behind, 'boolean');
          assert.equal(r.verification.ok, true, r.verification.mismatches.join('\n'));
        },
      );

      await t.test('a network whose nodes do not answer: one line, exit 2', async () => {
        const dead = await tempDir('teechain-stress-dead-');
        const port = await freePorts([0, 1], prng(seed));
        await writeFile(join(dead, 'token'), 'x'.repeat(64));
        const nodes = ['alice', 'bob'].map((name, i) => ({
          name,
          nodeId: `02${String(i).repeat(64)}`,
          restUrl: `http://127.0.0.1:${port + i}`,
          tokenFile: join(dead, 'token'),
          p2p: `127.0.0.1:${port + 10 + i}`,
        }));
        await writeFile(join(dead, 'network.json'), JSON.stringify({ ...network, nodes }));
        const run = await runStress(['--datadir', dead, '--payments', '5']);
        assert.equal(run.code, 2);
        assert.match(run.stderr, /^teechain stress: (alice|bob) does not answer at http:\/\/127\.0\.0\.1:\d+ /);
        assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
      });
    } finally {
      up.proc.kill('SIGINT');
      await up.exited;
      await stopChild(up.proc);
    }
  },
);

test('teechain stress --fresh builds a network, loads it, verifies and stops it', { timeout: 300_000 }, async () => {
  const dir = await tempDir('teechain-stress-fresh-');
  const out = join(dir, 'report.json');
  const chart = join(dir, 'run.svg');
  const datadir = join(dir, 'net');
  await mkdir(datadir);
  const run = await runStress([
    '--fresh',
    '--datadir',
    datadir,
    '--nodes',
    '3',
    '--topology',
    'line',
    '--deposit-sat',
    '2000000',
    '--payments',
    '40',
    '--pattern',
    'hub',
    '--seed',
    '3',
    '--out',
    out,
    '--chart',
    chart,
  ]);
  assert.equal(run.code, 0, run.stderr + run.stdout);
  const r = JSON.parse(await readFile(out, 'utf8'));
  assert.equal(r.network.source, 'fresh');
  // The chart beside the JSON, drawn from it: a bar group per second, a bar per latency bucket.
  const svg = await readFile(chart, 'utf8');
  assert.match(svg, /^<\?xml [^>]*\?>\n<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.equal(svg.match(/class="second"/g)?.length, r.throughput.length);
  assert.equal(svg.match(/class="bucket"/g)?.length ?? 0, r.latency_histogram.counts.length);
  // Every succeeded payment timed is in a bucket (those learnt only by asking again after the load have no latency).
  const timed = r.latency_histogram.counts.reduce((a: number, b: number) => a + b, 0);
  assert.ok(timed >= 1 && timed <= r.payments_ok, `${timed} of ${r.payments_ok}`);
  assert.equal(r.network.topology, 'line');
  assert.equal(r.network.channels, 2);
  assert.equal(r.payments_attempted, 40);
  assert.equal(r.verification.ok, true, r.verification.mismatches.join('\n'));
  // Stopped at the end: the launcher's pid file is gone and no node answers any more.
  const network = JSON.parse(await readFile(join(datadir, 'network.json'), 'utf8')) as NetworkFile;
  await assert.rejects(readFile(join(datadir, 'network.pid')));
  await assert.rejects(fetch(`${network.nodes[0]!.restUrl}/v1/getinfo`));
});

test('bad input: an unknown topology, a rate of zero, no network at all: one line, exit 2', async () => {
  const empty = await tempDir('teechain-stress-none-');
  for (const [args, msg] of [
    [['--fresh', '--topology', 'mesh'], /unknown topology mesh/],
    [['--rate', '0'], /--rate must be a whole number from 1/],
    [['--datadir', empty], /no network at .*network\.json not found/],
  ] as Array<[string[], RegExp]>) {
    const run = await runStress(args);
    assert.equal(run.code, 2, args.join(' '));
    assert.match(run.stderr.split('\n')[0]!, msg);
    assert.equal(run.stdout, '');
  }
  // The global --datadir before the command names the same network as after it.
  const before = spawnTracked(process.execPath, ['--import', 'tsx', CLI, '--datadir', empty, 'stress'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  before.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => before.once('exit', resolve));
  assert.equal(code, 2);
  assert.match(stderr, new RegExp(`no network at ${empty}.*network\\.json not found`));
});
