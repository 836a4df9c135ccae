/**
 * Multi-hop payments end to end: five treasury nodes as real processes (alice – bob – carol – dave – erin,
 * a line of channels), real TCP, routing learnt from the nodes' signed announcements, the embedded regtest
 * chain. Payments only name the destination; balances of every channel are checked at both ends, kill -9
 * hits nodes of the path mid-protocol, SIGSTOP silences the destination, a committed hop's τ races an old
 * state to the chain, and every channel is finally settled on chain. The link dave → erin runs through a
 * proxy that can cut it one way.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Transaction, address as baddress, networks } from 'bitcoinjs-lib';
import {
  attestationKey,
  fundDeposit,
  NodeProcess,
  openChannel,
  startTestChain,
  tempDir,
  waitUntil,
  type TestChain,
} from './helpers/network.ts';
import { prng as rng, testSeed } from './helpers/seeded.ts';
import { startTamperingProxy } from './helpers/proxy.ts';
import { openChannelBetween } from '../src/cli/channels.ts';
import { ApiClient } from '../src/cli/client.ts';

/** The seed of this file's random choices (kill points, stop points); TEST_SEED replays a run. */
const SEED = testSeed('multihop.e2e');
const random = rng(SEED);

let chain: TestChain;
let dir: string;
let key: string;
let nodes: NodeProcess[] = [];
/** channels[i] joins nodes[i] and nodes[i + 1]. */
let channels: string[] = [];
/** Between dave and erin (dave dials erin through it). */
let proxy: Awaited<ReturnType<typeof startTamperingProxy>>;
const DEPOSIT = 500_000;
const [ALICE, BOB, CAROL, DAVE, ERIN] = [0, 1, 2, 3, 4];

before(async () => {
  dir = await tempDir('teechain-mh-');
  chain = await startTestChain();
  key = await attestationKey(dir);
  nodes = await Promise.all(
    ['alice', 'bob', 'carol', 'dave', 'erin'].map((n) => NodeProcess.start(join(dir, n), chain, key)),
  );
  proxy = await startTamperingProxy(nodes[ERIN]!.ready.p2p);
  const end = (n: NodeProcess, p2p = n.ready.p2p) => ({
    api: new ApiClient(n.ready.rest_url, n.token),
    nodeId: n.id,
    p2p,
  });
  for (let i = 0; i + 1 < nodes.length; i++) {
    const [da, db] = await Promise.all([fundDeposit(nodes[i]!, DEPOSIT), fundDeposit(nodes[i + 1]!, DEPOSIT)]);
    channels.push(
      i + 1 === ERIN
        ? await openChannelBetween(end(nodes[i]!), end(nodes[i + 1]!, proxy.address), [da], [db])
        : await openChannel(nodes[i]!, nodes[i + 1]!, [da], [db]),
    );
  }
  // every node learns the whole line from the flooded announcements, each channel with its funded capacity
  // (one announced between its opening and its deposits says 0 until the next announcement)
  await waitUntil(
    async () => {
      for (const n of nodes) {
        const g = (await n.ok('GET', '/v1/graph')).nodes as Array<{ channels: Array<{ capacity_sat: string }> }>;
        const caps = g.flatMap((x) => x.channels.map((c) => BigInt(c.capacity_sat)));
        if (g.length < nodes.length || caps.length < 2 * channels.length || caps.some((c) => c === 0n)) return false;
      }
      return true;
    },
    20_000,
    'graph gossiped to every node',
  );
});

after(async () => {
  await proxy?.close();
  for (const n of nodes) await n.kill('SIGTERM');
  await chain?.close();
});

/** Each node's local balance on each of its channels: [node index] → { channel → sat }. */
async function balances(): Promise<Array<Record<string, bigint>>> {
  return Promise.all(
    nodes.map(async (n) => {
      const list = (await n.ok('GET', '/v1/channels')).channels as Array<{
        channel_id: string;
        local_balance_sat: string;
      }>;
      return Object.fromEntries(list.map((c) => [c.channel_id, BigInt(c.local_balance_sat)]));
    }),
  );
}

/** Both ends of every channel agree, nothing is locked, no multi-hop payment is unresolved. */
async function settledDown(ids = nodes.map((_, i) => i)): Promise<boolean> {
  for (const i of ids) {
    const n = nodes[i]!;
    const mh = await n.api('GET', '/v1/multihop');
    if (
      mh.status !== 200 ||
      mh.body.payments.some((p: { phase: string }) => p.phase !== 'done' && p.phase !== 'aborted')
    )
      return false;
    const chs = await n.api('GET', '/v1/channels');
    if (chs.status !== 200) return false;
    for (const c of chs.body.channels) {
      const j = channels.indexOf(c.channel_id);
      const peer = nodes[j === i ? i + 1 : i - 1]!;
      const other = await peer.api('GET', `/v1/channels/${c.channel_id}`);
      if (
        other.status !== 200 ||
        other.body.local_balance_sat !== c.remote_balance_sat ||
        other.body.remote_balance_sat !== c.local_balance_sat
      )
        return false;
    }
  }
  return true;
}

async function pay(from: number, to: number, amount: number, maxFeeSat?: number) {
  return nodes[from]!.api('POST', '/v1/payments', {
    dest: nodes[to]!.id,
    amount_sat: amount,
    ...(maxFeeSat !== undefined ? { max_fee_sat: maxFeeSat } : {}),
  });
}

/** The node's multi-hop records (GET /v1/multihop). */
async function mhRecords(
  n: NodeProcess,
): Promise<Array<{ payment_id: string; role: string; phase: string; code: string | null; txid: string | null }>> {
  return (await n.ok('GET', '/v1/multihop')).payments;
}

/** A direct payment on one channel, as POST /v1/payments answers it. */
function payOn(from: number, channel: string, amount: number) {
  return nodes[from]!.api('POST', '/v1/payments', { channel_id: channel, amount_sat: amount });
}

/** Stops a node's process (SIGSTOP): its sockets stay open, it answers nothing, until `resume`. */
function freeze(i: number): void {
  nodes[i]!.proc.kill('SIGSTOP');
}

function resume(i: number): void {
  nodes[i]!.proc.kill('SIGCONT');
}

/** `ids` are all connected to their neighbours on the line and `from` knows a funded route to `to`. */
async function pathReady(from: number, to: number, ids = [ALICE, BOB, CAROL]): Promise<boolean> {
  for (const i of ids) {
    const r = await nodes[i]!.api('GET', '/v1/peers');
    if (r.status !== 200) return false;
    const peers = new Set((r.body.peers as Array<{ peer_id: string }>).map((p) => p.peer_id));
    for (const j of [i - 1, i + 1]) if (ids.includes(j) && !peers.has(nodes[j]!.id)) return false;
  }
  const g = (await nodes[from]!.ok('GET', '/v1/graph')).nodes as Array<{
    node_id: string;
    channels: Array<{ capacity_sat: string }>;
  }>;
  return (
    ids.every(
      (i) =>
        i === from ||
        g.some(
          (x) =>
            x.node_id === nodes[i]!.id && x.channels.length > 0 && x.channels.every((c) => BigInt(c.capacity_sat) > 0n),
        ),
    ) && g.some((x) => x.node_id === nodes[to]!.id)
  );
}

/** What alice–bob–carol hold on the two channels between them. */
function line3(b: Array<Record<string, bigint>>) {
  const [ab, bc] = [channels[0]!, channels[1]!];
  return { alice: b[ALICE]![ab]!, bobAB: b[BOB]![ab]!, bobBC: b[BOB]![bc]!, carol: b[CAROL]![bc]! };
}

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

  test('contention: a payment holding a–b and b–c makes every other payment over them channel_busy or wait; totals move by exactly what succeeded', async () => {
    await waitUntil(() => settledDown(), 10_000, 'quiet');
    const start = line3(await balances());
    // carol is stopped: alice's payment locks a–b (alice, bob) and b–c (bob) and cannot finish until she
    // is back (alice waits 5 s for carol's signatures, enough for the few requests below)
    freeze(CAROL);
    let first: Promise<Awaited<ReturnType<typeof pay>>>;
    let second: Promise<Awaited<ReturnType<typeof pay>>>;
    try {
      first = pay(ALICE, CAROL, 300);
      await waitUntil(
        async () => (await mhRecords(nodes[BOB]!)).some((r) => r.phase === 'locked'),
        4_000,
        'bob locked both channels for the first payment',
      );
      // the same direction: alice's node retries channel_busy for up to 8 s (queued)
      second = pay(ALICE, CAROL, 200);
      // direct payments on the locked channels are refused at once, from either end
      for (const [from, ch] of [
        [BOB, channels[1]!],
        [BOB, channels[0]!],
        [ALICE, channels[0]!],
      ] as const) {
        const r = await payOn(from, ch, 50);
        assert.equal(r.status, 409, `direct payment from node ${from} on a locked channel: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.code, 'channel_busy');
      }
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
    await waitUntil(() => settledDown(), 10_000, 'both ends agree');
    const now = line3(await balances());
    assert.equal(now.alice, start.alice - 500n);
    assert.equal(now.carol, start.carol + 500n);
    assert.equal(now.bobAB + now.bobBC, start.bobAB + start.bobBC, 'bob neither gains nor loses');
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

  test('a destination that goes silent mid-payment: the payer is told it failed, nothing moved, it pays elsewhere meanwhile and carol again once she is back', async (t) => {
    await waitUntil(() => settledDown(), 10_000, 'quiet');
    const start = line3(await balances());
    // the seed picks: before alice asks, or as soon as alice's enclave has started the payment (carol may
    // then have signed already, and the payment completes once she is back)
    const stopEarly = random() < 0.5;
    t.diagnostic(`carol stops ${stopEarly ? 'before the payment' : 'once alice has started it'} (TEST_SEED=${SEED})`);
    const known = new Set((await mhRecords(nodes[ALICE]!)).map((x) => x.payment_id));
    let r: Awaited<ReturnType<typeof pay>>;
    try {
      if (stopEarly) freeze(CAROL);
      const paying = pay(ALICE, CAROL, 1_000);
      if (!stopEarly) {
        await waitUntil(
          async () => (await mhRecords(nodes[ALICE]!)).some((x) => !known.has(x.payment_id)),
          10_000,
          'alice started the payment',
        );
        freeze(CAROL);
      }
      r = await paying;
      if (r.status === 201) {
        // carol signed before she was stopped: alice committed, so the payment can only complete
        // (in_flight: alice's node stopped waiting for carol's release after 10 s)
        assert.ok(['succeeded', 'in_flight'].includes(r.body.status), JSON.stringify(r.body));
      } else {
        assert.equal(r.status, 504, JSON.stringify(r.body));
        assert.equal(r.body.error.code, 'timeout', 'alice gave up waiting for carol');
        // bob hears of alice's abort and unlocks: alice pays bob while carol is still silent
        await waitUntil(
          async () => (await mhRecords(nodes[BOB]!)).every((x) => x.phase === 'done' || x.phase === 'aborted'),
          10_000,
          'bob aborted too',
        );
        const direct = await pay(ALICE, BOB, 700);
        assert.equal(direct.status, 201, JSON.stringify(direct.body));
        assert.equal(direct.body.status, 'succeeded');
      }
    } finally {
      resume(CAROL);
    }
    await waitUntil(
      () => settledDown(),
      15_000,
      'every record resolved and both ends of each channel agree once carol is back',
    );
    const mid = line3(await balances());
    const moved = r.status === 201 ? 1_000n : 0n;
    const direct = r.status === 201 ? 0n : 700n;
    assert.equal(mid.alice, start.alice - moved - direct, 'alice paid what succeeded, nothing more');
    assert.equal(mid.bobAB, start.bobAB + moved + direct);
    assert.equal(mid.bobBC, start.bobBC - moved, 'b–c is not half-moved');
    assert.equal(mid.carol, start.carol + moved);
    // carol is back: the same payment goes through, and moves exactly its amount
    await waitUntil(() => pathReady(ALICE, CAROL), 15_000, 'path alice → carol ready');
    const again = await pay(ALICE, CAROL, 1_000);
    assert.equal(again.status, 201, JSON.stringify(again.body));
    assert.equal(again.body.status, 'succeeded');
    await waitUntil(() => settledDown(), 10_000, 'both ends agree');
    const now = line3(await balances());
    assert.equal(now.alice, mid.alice - 1_000n);
    assert.equal(now.carol, mid.carol + 1_000n);
    assert.equal(now.bobAB + now.bobBC, mid.bobAB + mid.bobBC);
  });

  test('kill -9 of the intermediary, the payer and the destination mid-protocol: every channel ends in a consistent state, and paying works after each restart', async (t) => {
    await waitUntil(() => settledDown(), 10_000, 'quiet');
    const start = await balances();
    const bobStart = start[BOB]![channels[0]!]! + start[BOB]![channels[1]!]!;
    for (const victim of [BOB, ALICE, CAROL, BOB]) {
      // the seed picks the kill point: after 1 to 3 acknowledged payments, then 0 to 150 ms into the next ones
      const ackedFirst = BigInt(100 * (1 + Math.floor(random() * 3)));
      const into = Math.floor(random() * 150);
      t.diagnostic(`kill -9 of node ${victim} after ${ackedFirst} sat acknowledged + ${into} ms (TEST_SEED=${SEED})`);
      let acked = 0n;
      let attempted = 0n;
      let stop = false;
      const stream = (async () => {
        while (!stop) {
          attempted += 100n;
          const r = await pay(ALICE, CAROL, 100).catch(() => null);
          if (r?.status === 201 && r.body.status === 'succeeded') acked += 100n;
        }
      })();
      await waitUntil(() => acked >= ackedFirst, 30_000, `${ackedFirst} sat acknowledged before the kill`);
      await new Promise((r) => setTimeout(r, into)); // where the kill lands, not a synchronisation
      await nodes[victim]!.kill('SIGKILL');
      stop = true;
      await stream;
      await nodes[victim]!.launch();
      await waitUntil(() => settledDown([ALICE, BOB, CAROL]), 45_000, `path resolved after killing node ${victim}`);
      let now = await balances();
      const moved = start[ALICE]![channels[0]!]! - now[ALICE]![channels[0]!]!;
      assert.ok(acked >= ackedFirst, `payments were acknowledged before the kill (${acked})`);
      assert.ok(moved >= acked, `alice paid ${moved} ≥ acknowledged ${acked}`);
      assert.ok(moved <= attempted, `alice paid ${moved} ≤ attempted ${attempted}`);
      assert.equal(
        now[CAROL]![channels[1]!]! - start[CAROL]![channels[1]!]!,
        moved,
        'carol received exactly what alice paid',
      );
      assert.equal(
        now[BOB]![channels[0]!]! + now[BOB]![channels[1]!]!,
        bobStart,
        'bob, the intermediary, lost nothing',
      );
      // after the restart a payment goes through and moves exactly its amount (no fees: they were reset to 0)
      await waitUntil(() => pathReady(ALICE, CAROL), 30_000, `path alice → carol ready after node ${victim} restarted`);
      const after = await pay(ALICE, CAROL, 1_000);
      assert.equal(after.status, 201, `payment after restarting node ${victim}: ${JSON.stringify(after.body)}`);
      assert.equal(after.body.status, 'succeeded');
      assert.equal(after.body.fee_sat, 0);
      await waitUntil(() => settledDown([ALICE, BOB, CAROL]), 10_000, 'both ends agree');
      const prev = now;
      now = await balances();
      assert.equal(
        now[ALICE]![channels[0]!],
        prev[ALICE]![channels[0]!]! - 1_000n,
        'alice paid exactly 1,000 after the restart',
      );
      assert.equal(now[CAROL]![channels[1]!], prev[CAROL]![channels[1]!]! + 1_000n, 'carol received exactly 1,000');
      assert.equal(now[BOB]![channels[0]!], prev[BOB]![channels[0]!]! + 1_000n);
      assert.equal(now[BOB]![channels[1]!], prev[BOB]![channels[1]!]! - 1_000n);
      Object.assign(start[ALICE]!, { [channels[0]!]: now[ALICE]![channels[0]!]! });
      Object.assign(start[CAROL]!, { [channels[1]!]: now[CAROL]![channels[1]!]! });
    }
  });

  test("dave committed, erin never got the commit and settles the old state; dave's τ loses the race: dave's chain watcher sees erin's settlement, the old state decides everywhere, nothing stays locked", async (t) => {
    const [cd, de] = [channels[2]!, channels[3]!];
    await waitUntil(() => settledDown(), 10_000, 'quiet');
    await waitUntil(() => pathReady(CAROL, ERIN, [CAROL, DAVE, ERIN]), 30_000, 'path carol → erin ready');
    const start = await balances();
    const pending = async (n: number) =>
      (await mhRecords(nodes[n]!)).filter((r) => r.phase !== 'done' && r.phase !== 'aborted');
    // erin's signatures reach dave; nothing dave sends erin after them does (his COMMIT): dave commits, erin stays signed
    proxy.dropFromNext('toClient', 'toTarget');
    const paying = pay(CAROL, ERIN, 2_000);
    await waitUntil(async () => (await pending(DAVE)).some((r) => r.phase === 'committed'), 15_000, 'dave committed');
    assert.deepEqual(
      (await pending(ERIN)).map((r) => r.phase),
      ['signed'],
      'erin never got the commit',
    );
    assert.deepEqual(
      (await pending(CAROL)).map((r) => r.phase),
      ['committed'],
      'carol, the payer, committed',
    );
    proxy.drop('toClient'); // and erin's word does not reach dave: he learns from the chain only

    // erin, not committed, settles the old state, which reaches the chain first
    const old = await nodes[ERIN]!.ok('POST', `/v1/channels/${de}/settle`, {});
    assert.equal(BigInt(old.local_balance_sat), start[ERIN]![de], 'erin settles what she had');
    // dave's host has not heard of it from erin and asks dave to settle c–d. Either its chain already
    // shows an input of τ spent and dave withholds τ (it can never confirm), or dave's watcher was quicker
    // and showed him erin's settlement: the payment is then aborted and c–d settles in the old state
    const tauTxid = (await mhRecords(nodes[DAVE]!)).find((r) => r.phase === 'committed')?.txid;
    assert.ok(tauTxid, 'dave holds τ');
    const tau = await nodes[DAVE]!.api('POST', `/v1/channels/${cd}/settle`, {});
    const cdSettled = tau.status !== 409;
    t.diagnostic(`dave asked to settle c–d: ${tau.status} ${tau.body.error?.code ?? tau.body.txid}`);
    if (!cdSettled) {
      assert.equal(tau.body.error.code, 'multihop_in_doubt', JSON.stringify(tau.body));
    } else {
      assert.equal(tau.status, 201, JSON.stringify(tau.body));
      assert.notEqual(tau.body.txid, tauTxid, 'not τ');
      assert.equal(BigInt(tau.body.local_balance_sat), start[DAVE]![cd], 'c–d settled in the old state');
    }
    await chain.mine(1);
    const mined = await chain.rpc.call<{ confirmations: number }>('getrawtransaction', [old.txid, true]);
    assert.ok(mined.confirmations >= 1, "erin's old-state settlement is what the chain took");

    // dave's own chain watcher shows him the spend: the old state decides, dave aborts, carol follows
    await waitUntil(
      async () => (await pending(DAVE)).length === 0,
      60_000,
      'dave resolved the payment on seeing the old state on chain',
    );
    assert.equal((await mhRecords(nodes[DAVE]!)).find((r) => r.txid === tauTxid)?.phase, 'aborted', 'dave aborted');
    await waitUntil(async () => (await pending(CAROL)).length === 0, 30_000, 'carol, the payer, resolved it');
    assert.equal((await mhRecords(nodes[CAROL]!)).find((r) => r.txid === tauTxid)?.phase, 'aborted', 'carol aborted');
    const answer = await paying;
    if (answer.status === 201) {
      assert.equal(answer.body.status, 'in_flight', JSON.stringify(answer.body));
      const hist = (await nodes[CAROL]!.ok('GET', '/v1/payments?limit=20')).payments as Array<{
        payment_id: string;
        status: string;
      }>;
      assert.equal(
        hist.find((p) => p.payment_id === answer.body.payment_id)?.status,
        'failed',
        'the payment ends failed',
      );
    } else {
      assert.ok(answer.status >= 400, JSON.stringify(answer.body));
    }
    const deAtDave = await nodes[DAVE]!.ok('GET', `/v1/channels/${de}`);
    assert.equal(deAtDave.status, 'closed');
    assert.equal(deAtDave.settlement_txid, old.txid, "d–e closed by erin's settlement");
    assert.equal(BigInt(deAtDave.local_balance_sat), start[DAVE]![de], 'in the old state');
    if (cdSettled) {
      // carol's watcher closes c–d at the old state dave settled
      await waitUntil(
        async () => (await nodes[CAROL]!.ok('GET', `/v1/channels/${cd}`)).status === 'closed',
        30_000,
        'carol sees c–d settled',
      );
      const c = await nodes[CAROL]!.ok('GET', `/v1/channels/${cd}`);
      assert.equal(c.settlement_txid, tau.body.txid);
      assert.equal(BigInt(c.local_balance_sat), start[CAROL]![cd]);
      return;
    }
    // c–d is still open, in the old state, unlocked at both ends
    await waitUntil(() => settledDown([CAROL, DAVE]), 10_000, 'carol and dave agree');
    const now = await balances();
    assert.equal(now[CAROL]![cd], start[CAROL]![cd]);
    assert.equal(now[DAVE]![cd], start[DAVE]![cd]);
    // nothing is stuck: carol pays dave on c–d, which moves by exactly that
    const p = await payOn(CAROL, cd, 1_500);
    assert.equal(p.status, 201, JSON.stringify(p.body));
    assert.equal(p.body.status, 'succeeded');
    await waitUntil(() => settledDown([CAROL, DAVE]), 10_000, 'carol and dave agree');
    const last = await balances();
    assert.equal(last[CAROL]![cd], start[CAROL]![cd]! - 1_500n);
    assert.equal(last[DAVE]![cd], start[DAVE]![cd]! + 1_500n);
  });

  test('every channel still open settled on chain pays each side its balance', async () => {
    await waitUntil(() => settledDown(), 10_000, 'quiet');
    const final = await balances();
    const payout = await Promise.all(
      nodes.map(async (n) => (await n.ok('GET', '/v1/getinfo')).payout_address as string),
    );
    for (const [i, ch] of channels.entries()) {
      if ((await nodes[i]!.ok('GET', `/v1/channels/${ch}`)).status === 'closed') continue; // d–e, settled by erin above
      const s = await nodes[i]!.ok('POST', `/v1/channels/${ch}/settle`, {});
      await chain.mine(1);
      const raw = await chain.rpc.call<{ hex: string; confirmations: number }>('getrawtransaction', [s.txid, true]);
      assert.ok(raw.confirmations >= 1);
      const outs = new Map<string, bigint>();
      for (const o of Transaction.fromHex(raw.hex).outs)
        outs.set(baddress.fromOutputScript(o.script, networks.regtest), o.value);
      assert.equal(outs.get(payout[i]!), final[i]![ch]! - BigInt(s.fee_sat), `settler of channel ${i}`);
      assert.equal(outs.get(payout[i + 1]!), final[i + 1]![ch], `other side of channel ${i}`);
    }
    // with every channel closed, erin is still in the graph but no path leads there
    await waitUntil(
      async () => {
        const r = await pay(ALICE, ERIN, 1_000);
        return r.status === 409 && r.body.error.code === 'no_route';
      },
      10_000,
      'no_route once the channels are gone',
    );
  });
});
