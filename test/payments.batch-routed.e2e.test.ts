/**
 * `POST /v1/payments/batch` with routed entries, over real node processes alice – bob – carol (real TCP,
 * the embedded regtest chain, routing from the nodes' signed announcements): one request mixing entries
 * by channel, direct by `dest` and routed by `dest`, with entries that must fail alone; each answered at
 * its position with its own outcome, the routed ones in one path round, every channel moved by exactly
 * what was paid plus bob's fee. Then a channel alice opens to carol: the next payment to carol goes on it
 * directly (the host's view of its channels follows the opening).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fundDeposit, openChannel, waitUntil, type NodeProcess } from './helpers/network.ts';
import { startRoutedLine, type RoutedLine } from './helpers/routed-line.ts';

let line: RoutedLine;
let alice: NodeProcess;
let bob: NodeProcess;
let carol: NodeProcess;
let ab: string;
let bc: string;

async function local(n: NodeProcess, ch: string): Promise<bigint> {
  return BigInt((await n.ok('GET', `/v1/channels/${ch}`)).local_balance_sat);
}

/** Both ends of `ch` agree and nothing at `nodes` is locked by a multi-hop payment. */
async function quiet(pairs: Array<[NodeProcess, NodeProcess, string]>): Promise<boolean> {
  for (const [x, y, ch] of pairs) {
    const [cx, cy] = await Promise.all([x.ok('GET', `/v1/channels/${ch}`), y.ok('GET', `/v1/channels/${ch}`)]);
    if (cx.local_balance_sat !== cy.remote_balance_sat || cx.total_acked_sat !== cx.total_sent_sat) return false;
    for (const n of [x, y]) {
      const mh = (await n.ok('GET', '/v1/multihop')).rounds as Array<{ phase: string }>;
      if (mh.some((p) => p.phase !== 'done' && p.phase !== 'aborted')) return false;
    }
  }
  return true;
}

before(async () => {
  line = await startRoutedLine('teechain-batch-', { base_sat: 2, ppm: 1_000 });
  ({ alice, bob, carol, ab, bc } = line);
});

after(() => line?.stop());

describe('batch entries routed by dest', () => {
  test('one batch of direct and routed entries: each its own outcome in order, the routed ones in one round, exact balances', async () => {
    const start = {
      alice: await local(alice, ab),
      bobAB: await local(bob, ab),
      bobBC: await local(bob, bc),
      carol: await local(carol, bc),
    };
    const roundsBefore = ((await bob.ok('GET', '/v1/multihop')).rounds as unknown[]).length;
    const entries = [
      { dest: carol.id, amount_sat: 1_000 }, // routed
      { channel_id: ab, amount_sat: 300 }, // direct, by channel
      { dest: carol.id, amount_sat: 2_000 }, // routed
      { dest: bob.id, amount_sat: 400 }, // direct, by dest
      { dest: carol.id, amount_sat: 10_000_000 }, // routed, more than the path holds: refused alone
      { dest: carol.id, amount_sat: 500, max_fee_sat: 0 }, // its share of bob's fee is over its limit
      { dest: 'cd'.repeat(33), amount_sat: 5 }, // nobody: no channel, no announcement
      { channel_id: 'ab'.repeat(32), amount_sat: 5 }, // no such channel
    ];
    const r = await alice.api('POST', '/v1/payments/batch', { payments: entries });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const res = r.body.results as Array<{
      payment_id: string;
      status: string;
      failure_code: string | null;
      message?: string;
      channel_id?: string;
      route?: string[];
      fee_sat?: number;
    }>;
    assert.equal(res.length, entries.length);
    assert.deepEqual(
      res.map((x) => [x.status, x.failure_code]),
      [
        ['succeeded', null],
        ['succeeded', null],
        ['succeeded', null],
        ['succeeded', null],
        ['failed', 'insufficient_capacity'],
        ['failed', 'fee_limit_exceeded'],
        ['failed', 'unknown_destination'],
        ['failed', 'unknown_channel'],
      ],
      JSON.stringify(res),
    );
    assert.equal(r.body.succeeded, 4);
    assert.equal(r.body.failed, 4);
    assert.equal(new Set(res.map((x) => x.payment_id)).size, entries.length, 'each entry its own payment');
    for (const i of [4, 5, 6, 7]) assert.equal(typeof res[i]!.message, 'string');
    const path = [alice.id, bob.id, carol.id];
    for (const i of [0, 2]) {
      assert.deepEqual(res[i]!.route, path);
      assert.equal(res[i]!.channel_id, ab);
    }
    for (const i of [1, 3]) {
      assert.equal(res[i]!.channel_id, ab);
      assert.equal(res[i]!.route, undefined, 'direct');
    }
    // bob charges 2 + 3,000 × 1,000 / 10⁶ = 5 sat for the round's 3,000, shared 1,000 : 2,000 (largest remainder)
    const fees = [res[0]!.fee_sat!, res[2]!.fee_sat!];
    assert.equal(fees[0]! + fees[1]!, 5);
    assert.ok(fees[0]! >= 1 && fees[0]! <= 2 && fees[1]! >= 3 && fees[1]! <= 4, `shares ${fees}`);

    await waitUntil(
      () =>
        quiet([
          [alice, bob, ab],
          [bob, carol, bc],
        ]),
      15_000,
      'both channels agree',
    );
    const routed = 3_000n;
    assert.equal(await local(alice, ab), start.alice - routed - 5n - 300n - 400n);
    assert.equal(await local(bob, ab), start.bobAB + routed + 5n + 300n + 400n);
    assert.equal(await local(bob, bc), start.bobBC - routed);
    assert.equal(await local(carol, bc), start.carol + routed);
    // the payer's history: every entry, refused ones too, with its amount and outcome
    const hist = (await alice.ok('GET', '/v1/payments?limit=100')).payments as Array<{
      payment_id: string;
      amount_sat: number;
      status: string;
    }>;
    res.forEach((x, i) => {
      const h = hist.find((p) => p.payment_id === x.payment_id);
      assert.equal(h?.amount_sat, entries[i]!.amount_sat, `entry ${i}`);
      assert.equal(h?.status, x.status, `entry ${i}`);
    });
    // the two routed payments that fit went in one path round: one record more at bob
    const rounds = ((await bob.ok('GET', '/v1/multihop')).rounds as unknown[]).length - roundsBefore;
    assert.equal(rounds, 1);
  });

  test('a malformed batch is a 400 and pays nothing', async () => {
    const before = await local(alice, ab);
    const r = await alice.api('POST', '/v1/payments/batch', {
      payments: [
        { dest: carol.id, amount_sat: 10 },
        { dest: carol.id, channel_id: ab, amount_sat: 10 },
      ],
    });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'invalid_argument');
    assert.equal(await local(alice, ab), before);
  });

  test('a channel opened to a destination that was routed: the next payment to it goes directly', async () => {
    const routed = await alice.ok('POST', '/v1/payments', { dest: carol.id, amount_sat: 50 });
    assert.deepEqual(routed.route, [alice.id, bob.id, carol.id]);
    const [da, dc] = await Promise.all([fundDeposit(alice, 100_000), fundDeposit(carol, 100_000)]);
    const ac = await openChannel(alice, carol, [da], [dc]);
    const before = await local(alice, ac);
    const direct = await alice.ok('POST', '/v1/payments/batch', { payments: [{ dest: carol.id, amount_sat: 70 }] });
    assert.equal(direct.results[0].status, 'succeeded', JSON.stringify(direct));
    assert.equal(direct.results[0].channel_id, ac);
    assert.equal(direct.results[0].route, undefined);
    const single = await alice.ok('POST', '/v1/payments', { dest: carol.id, amount_sat: 80 });
    assert.equal(single.channel_id, ac);
    assert.equal(single.route, undefined);
    assert.equal(await local(alice, ac), before - 150n);
  });
});
