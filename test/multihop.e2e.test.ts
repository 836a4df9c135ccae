/**
 * Multi-hop payments end to end, routing and contention: five treasury nodes as real processes in a line
 * (helpers/multihop-line.ts), routing learnt from the nodes' signed announcements, payments that name only
 * the destination: many payments both ways, fees set through the API, the refusals that move nothing, and
 * payments contending for the same channels. Faults (a silenced destination, kill -9, a τ racing an old
 * state, settlement on chain) are multihop.faults.e2e.test.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { waitUntil } from './helpers/network.ts';
import {
  ALICE,
  BOB,
  CAROL,
  DAVE,
  ERIN,
  balances,
  channels,
  freeze,
  line3,
  mhRecords,
  nodes,
  pay,
  payBatch,
  payOn,
  resume,
  settledDown,
  useLine,
} from './helpers/multihop-line.ts';

useLine();

describe('multi-hop payments between real nodes', () => {
  test('alice → bob → carol and back, many payments: every channel moves by exactly the amount', async () => {
    const start = await balances();
    const r = await pay(ALICE, CAROL, 1_000);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.status, 'succeeded');
    assert.deepEqual(r.body.route, [nodes[ALICE]!.id, nodes[BOB]!.id, nodes[CAROL]!.id]);
    assert.equal(r.body.fee_sat, 0);
    assert.equal(r.body.channel_id, channels[0]);
    let net = 1_000; // alice → carol, so far
    for (let i = 0; i < 30; i++) {
      const back = i % 3 === 0;
      const amount = 100 + i * 7;
      const p = await pay(back ? CAROL : ALICE, back ? ALICE : CAROL, amount);
      assert.equal(p.status, 201, JSON.stringify(p.body));
      assert.equal(p.body.status, 'succeeded');
      net += back ? -amount : amount;
    }
    await waitUntil(() => settledDown([ALICE, BOB, CAROL]), 10_000, 'both ends agree');
    const now = await balances();
    const [ab, bc] = [channels[0]!, channels[1]!];
    assert.equal(now[ALICE]![ab], start[ALICE]![ab]! - BigInt(net));
    assert.equal(now[BOB]![ab], start[BOB]![ab]! + BigInt(net));
    assert.equal(now[BOB]![bc], start[BOB]![bc]! - BigInt(net));
    assert.equal(now[CAROL]![bc], start[CAROL]![bc]! + BigInt(net));
    // the destination's history shows the incoming payment; the payer's the route
    const hist = (await nodes[CAROL]!.ok('GET', '/v1/payments?limit=100')).payments as Array<{
      direction: string;
      amount_sat: number;
    }>;
    assert.ok(hist.some((p) => p.direction === 'incoming' && p.amount_sat === 1_000));
  });

  test('hundreds of routed payments both ways at once, in rounds: every payment its own outcome, every channel conserved, no deadlock', async (t) => {
    await waitUntil(() => settledDown([ALICE, BOB, CAROL]), 10_000, 'quiet');
    const start = line3(await balances());
    const known = new Set((await mhRecords(nodes[BOB]!)).map((r) => r.round_id));
    type Row = { payment_id: string; direction: string; amount_sat: number; status: string };
    const carolHistory = async () => (await nodes[CAROL]!.ok('GET', '/v1/payments?limit=1000')).payments as Row[];
    const carolBefore = new Set((await carolHistory()).map((p) => p.payment_id));
    const east = Array.from({ length: 300 }, (_, i) => 1 + (i % 17));
    const west = Array.from({ length: 200 }, (_, i) => 2 + (i % 5));
    // opposite directions contend for a–b and b–c: a round refused channel_busy is retried inside the node
    const [x, y] = await Promise.all([payBatch(ALICE, CAROL, east), payBatch(CAROL, ALICE, west)]);
    for (const [r, n] of [
      [x, east.length],
      [y, west.length],
    ] as const) {
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.results.length, n);
      assert.equal(
        r.body.succeeded,
        n,
        JSON.stringify(r.body.results.filter((p: { status: string }) => p.status !== 'succeeded')),
      );
      assert.equal(new Set(r.body.results.map((p: { payment_id: string }) => p.payment_id)).size, n, 'each its own id');
    }
    await waitUntil(() => settledDown([ALICE, BOB, CAROL]), 10_000, 'both ends agree');
    const now = line3(await balances());
    const net = BigInt(east.reduce((s, a) => s + a, 0) - west.reduce((s, a) => s + a, 0));
    assert.equal(now.alice, start.alice - net);
    assert.equal(now.carol, start.carol + net);
    assert.equal(now.bobAB, start.bobAB + net);
    assert.equal(now.bobBC, start.bobBC - net, 'bob neither gains nor loses (no fees here)');
    // the payer's history: each payment with its own amount, route and fee
    const hist = (await nodes[ALICE]!.ok('GET', '/v1/payments?limit=1000')).payments as Array<{
      payment_id: string;
      amount_sat: number;
      status: string;
      route?: string[];
    }>;
    for (const [i, r] of x.body.results.entries()) {
      const h = hist.find((p) => p.payment_id === r.payment_id);
      assert.equal(h?.amount_sat, east[i]);
      assert.equal(h?.status, 'succeeded');
      assert.deepEqual(h?.route, [nodes[ALICE]!.id, nodes[BOB]!.id, nodes[CAROL]!.id]);
    }
    // the destination's history: each payment of each round it received, with its own id and amount
    const received = (await carolHistory()).filter((p) => p.direction === 'incoming' && !carolBefore.has(p.payment_id));
    assert.equal(new Set(received.map((p) => p.payment_id)).size, east.length, 'one incoming entry per payment');
    assert.deepEqual(
      received.map((p) => p.amount_sat).sort((a, b) => a - b),
      [...east].sort((a, b) => a - b),
      'each with its own amount',
    );
    assert.ok(received.every((p) => p.status === 'succeeded'));
    const rounds = (await mhRecords(nodes[BOB]!)).filter((r) => !known.has(r.round_id));
    t.diagnostic(`${east.length + west.length} payments in ${rounds.length} rounds at bob (aborted ones included)`);
    assert.ok(rounds.length < 40, `rounds, not one path round per payment (${rounds.length})`);
  });

  test('a 4-hop path with fees set through the API: each intermediary keeps exactly its fee', async () => {
    await nodes[BOB]!.ok('POST', '/v1/fees', { base_sat: 10, ppm: 1_000 });
    await nodes[CAROL]!.ok('POST', '/v1/fees', { base_sat: 5, ppm: 0 });
    await nodes[DAVE]!.ok('POST', '/v1/fees', { base_sat: 0, ppm: 10_000 });
    await waitUntil(
      async () => {
        const g = (await nodes[ALICE]!.ok('GET', '/v1/graph')).nodes as Array<{ node_id: string; fee_ppm: number }>;
        return (
          g.find((x) => x.node_id === nodes[DAVE]!.id)?.fee_ppm === 10_000 &&
          g.find((x) => x.node_id === nodes[BOB]!.id)?.fee_ppm === 1_000
        );
      },
      10_000,
      'fees announced',
    );
    const start = await balances();
    // 125 sat of fees is above the default limit for 10,000 sat (1 % + 10): refused unless the payer allows it
    const refused = await pay(ALICE, ERIN, 10_000);
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'fee_limit_exceeded');
    const r = await pay(ALICE, ERIN, 10_000, 200);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.status, 'succeeded');
    assert.equal(r.body.route.length, 5);
    // dave forwards 10,000 (fee 100), carol 10,100 (fee 5), bob 10,105 (fee 10 + 10)
    assert.equal(r.body.fee_sat, 125);
    await waitUntil(() => settledDown(), 10_000, 'both ends agree');
    const now = await balances();
    const moved = [10_125n, 10_105n, 10_100n, 10_000n];
    channels.forEach((ch, i) => {
      assert.equal(now[i]![ch], start[i]![ch]! - moved[i]!, `payer side of channel ${i}`);
      assert.equal(now[i + 1]![ch], start[i + 1]![ch]! + moved[i]!, `paid side of channel ${i}`);
    });
    // and back, from erin to alice (fees of dave, carol, bob again)
    const back = await pay(ERIN, ALICE, 2_000, 200);
    assert.equal(back.status, 201, JSON.stringify(back.body));
    assert.equal(back.body.status, 'succeeded');
    for (const n of [BOB, CAROL, DAVE]) await nodes[n]!.ok('POST', '/v1/fees', { base_sat: 0, ppm: 0 });
    await waitUntil(
      async () => {
        for (const n of [ALICE, CAROL, ERIN]) {
          const g = (await nodes[n]!.ok('GET', '/v1/graph')).nodes as Array<{ fee_base_sat: number; fee_ppm: number }>;
          if (g.some((x) => x.fee_base_sat !== 0 || x.fee_ppm !== 0)) return false;
        }
        return true;
      },
      10_000,
      'fees back to zero everywhere',
    );
  });

  test('unknown destination, not enough capacity, no route: a 4xx with its code, nothing locked or moved', async () => {
    const before = await balances();
    const unknown = await nodes[ALICE]!.api('POST', '/v1/payments', {
      dest: `02${'ab'.repeat(32)}`,
      amount_sat: 1_000,
    });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'unknown_destination');
    const big = await pay(ALICE, CAROL, 5_000_000);
    assert.equal(big.status, 409);
    assert.equal(big.body.error.code, 'insufficient_capacity');
    assert.ok(await settledDown());
    assert.deepEqual(await balances(), before);
  });

  test('contention: a payment holding a–b and b–c makes every other payment over them wait for it; totals move by exactly what succeeded', async () => {
    await waitUntil(() => settledDown(), 10_000, 'quiet');
    const start = line3(await balances());
    // carol is stopped: alice's payment locks a–b (alice, bob) and b–c (bob) and cannot finish until she
    // is back (alice waits 5 s for carol's signatures, enough for the few requests below)
    freeze(CAROL);
    let first: Promise<Awaited<ReturnType<typeof pay>>>;
    let second: Promise<Awaited<ReturnType<typeof pay>>>;
    let direct: Array<ReturnType<typeof payOn>> = [];
    try {
      first = pay(ALICE, CAROL, 300);
      await waitUntil(
        async () => (await mhRecords(nodes[BOB]!)).some((r) => r.phase === 'locked'),
        4_000,
        'bob locked both channels for the first payment',
      );
      // the same direction: alice's node retries channel_busy for up to 8 s (queued)
      second = pay(ALICE, CAROL, 200);
      // direct payments on the locked channels, from either end, wait in their node for the round to end
      direct = (
        [
          [BOB, channels[1]!],
          [BOB, channels[0]!],
          [ALICE, channels[0]!],
        ] as const
      ).map(([from, ch]) => payOn(from, ch, 50));
      let answered = 0;
      for (const d of direct) void d.then(() => answered++);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(answered, 0, 'no direct payment is answered (refused) while the round holds its channel');
      assert.ok(
        (await mhRecords(nodes[BOB]!)).some((r) => r.phase === 'locked'),
        'the round still holds both',
      );
      assert.equal(
        (await mhRecords(nodes[ALICE]!)).filter((r) => r.phase !== 'done' && r.phase !== 'aborted').length,
        1,
        'the second payment did not lock anything while the first holds a–b',
      );
    } finally {
      resume(CAROL);
    }
    const [x, y] = await Promise.all([first, second]);
    assert.equal(x.status, 201, JSON.stringify(x.body));
    assert.equal(x.body.status, 'succeeded', 'the payment holding the channels completes');
    assert.equal(y.status, 201, JSON.stringify(y.body));
    assert.equal(y.body.status, 'succeeded', 'the queued payment went through once the channels were free');
    for (const r of await Promise.all(direct)) {
      assert.equal(r.status, 201, `a direct payment on a held channel waits, then goes: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.status, 'succeeded');
    }
    await waitUntil(() => settledDown(), 10_000, 'both ends agree');
    const now = line3(await balances());
    // routed 500 alice → carol; direct 50 bob → carol, 50 bob → alice, 50 alice → bob
    assert.equal(now.alice, start.alice - 500n);
    assert.equal(now.carol, start.carol + 550n);
    assert.equal(now.bobAB + now.bobBC, start.bobAB + start.bobBC - 50n, 'bob paid carol 50 and gained nothing else');
    assert.equal(now.bobAB, start.bobAB + 500n);
  });

  test('payments contending in opposite directions over the same channels: no deadlock, balances match what succeeded', async () => {
    await waitUntil(() => settledDown(), 10_000, 'quiet');
    const start = await balances();
    let net = 0;
    let succeeded = 0;
    for (let round = 0; round < 6; round++) {
      const [x, y] = await Promise.all([pay(ALICE, CAROL, 300), pay(CAROL, ALICE, 200)]);
      for (const [r, amount] of [
        [x, 300],
        [y, -200],
      ] as const) {
        if (r.status === 201 && r.body.status === 'succeeded') {
          net += amount;
          succeeded++;
        } else assert.equal(r.body.error?.code, 'channel_busy', JSON.stringify(r.body));
      }
    }
    assert.ok(succeeded > 0, 'some payment went through');
    await waitUntil(() => settledDown(), 10_000, 'both ends agree');
    const now = await balances();
    assert.equal(now[ALICE]![channels[0]!], start[ALICE]![channels[0]!]! - BigInt(net));
    assert.equal(now[CAROL]![channels[1]!], start[CAROL]![channels[1]!]! + BigInt(net));
    assert.equal(
      now[BOB]![channels[0]!]! + now[BOB]![channels[1]!]!,
      start[BOB]![channels[0]!]! + start[BOB]![channels[1]!]!,
      'bob neither gains nor loses',
    );
  });
});
