/**
 * Multi-hop payments end to end: five treasury nodes as real processes (alice – bob – carol – dave – erin,
 * a line of channels), real TCP, routing learnt from the nodes' signed announcements, the embedded regtest
 * chain. Payments only name the destination; balances of every channel are checked at both ends, kill -9
 * hits nodes of the path mid-protocol, and every channel is finally settled on chain.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Transaction, address as baddress, networks } from 'bitcoinjs-lib';
import { attestationKey, fundDeposit, NodeProcess, openChannel, startTestChain, tempDir, waitUntil, type TestChain } from './helpers/network.ts';

let chain: TestChain;
let dir: string;
let key: string;
let nodes: NodeProcess[] = [];
/** channels[i] joins nodes[i] and nodes[i + 1]. */
let channels: string[] = [];
const DEPOSIT = 500_000;
const [ALICE, BOB, CAROL, DAVE, ERIN] = [0, 1, 2, 3, 4];

before(async () => {
  dir = await tempDir('teechain-mh-');
  chain = await startTestChain();
  key = await attestationKey(dir);
  nodes = await Promise.all(['alice', 'bob', 'carol', 'dave', 'erin'].map((n) => NodeProcess.start(join(dir, n), chain, key)));
  for (let i = 0; i + 1 < nodes.length; i++) {
    const [da, db] = await Promise.all([fundDeposit(nodes[i]!, DEPOSIT), fundDeposit(nodes[i + 1]!, DEPOSIT)]);
    channels.push(await openChannel(nodes[i]!, nodes[i + 1]!, [da], [db]));
  }
  // every node learns the whole line from the flooded announcements, each channel with its funded capacity
  // (one announced between its opening and its deposits says 0 until the next announcement)
  await waitUntil(async () => {
    for (const n of nodes) {
      const g = (await n.ok('GET', '/v1/graph')).nodes as Array<{ channels: Array<{ capacity_sat: string }> }>;
      const caps = g.flatMap((x) => x.channels.map((c) => BigInt(c.capacity_sat)));
      if (g.length < nodes.length || caps.length < 2 * channels.length || caps.some((c) => c === 0n)) return false;
    }
    return true;
  }, 20_000, 'graph gossiped to every node');
});

after(async () => {
  for (const n of nodes) await n.kill('SIGTERM');
  await chain?.close();
});

/** Each node's local balance on each of its channels: [node index] → { channel → sat }. */
async function balances(): Promise<Array<Record<string, bigint>>> {
  return Promise.all(nodes.map(async (n) => {
    const list = (await n.ok('GET', '/v1/channels')).channels as Array<{ channel_id: string; local_balance_sat: string }>;
    return Object.fromEntries(list.map((c) => [c.channel_id, BigInt(c.local_balance_sat)]));
  }));
}

/** Both ends of every channel agree, nothing is locked, no multi-hop payment is unresolved. */
async function settledDown(ids = nodes.map((_, i) => i)): Promise<boolean> {
  for (const i of ids) {
    const n = nodes[i]!;
    const mh = await n.api('GET', '/v1/multihop');
    if (mh.status !== 200 || mh.body.payments.some((p: { phase: string }) => p.phase !== 'done' && p.phase !== 'aborted')) return false;
    const chs = await n.api('GET', '/v1/channels');
    if (chs.status !== 200) return false;
    for (const c of chs.body.channels) {
      const j = channels.indexOf(c.channel_id);
      const peer = nodes[j === i ? i + 1 : i - 1]!;
      const other = await peer.api('GET', `/v1/channels/${c.channel_id}`);
      if (other.status !== 200 || other.body.local_balance_sat !== c.remote_balance_sat || other.body.remote_balance_sat !== c.local_balance_sat) return false;
    }
  }
  return true;
}

async function pay(from: number, to: number, amount: number, maxFeeSat?: number) {
  return nodes[from]!.api('POST', '/v1/payments', { dest: nodes[to]!.id, amount_sat: amount, ...(maxFeeSat !== undefined ? { max_fee_sat: maxFeeSat } : {}) });
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
    const hist = (await nodes[CAROL]!.ok('GET', '/v1/payments?limit=100')).payments as Array<{ direction: string; amount_sat: number }>;
    assert.ok(hist.some((p) => p.direction === 'incoming' && p.amount_sat === 1_000));
  });

  test('a 4-hop path with fees set through the API: each intermediary keeps exactly its fee', async () => {
    await nodes[BOB]!.ok('POST', '/v1/fees', { base_sat: 10, ppm: 1_000 });
    await nodes[CAROL]!.ok('POST', '/v1/fees', { base_sat: 5, ppm: 0 });
    await nodes[DAVE]!.ok('POST', '/v1/fees', { base_sat: 0, ppm: 10_000 });
    await waitUntil(async () => {
      const g = (await nodes[ALICE]!.ok('GET', '/v1/graph')).nodes as Array<{ node_id: string; fee_ppm: number }>;
      return g.find((x) => x.node_id === nodes[DAVE]!.id)?.fee_ppm === 10_000 && g.find((x) => x.node_id === nodes[BOB]!.id)?.fee_ppm === 1_000;
    }, 10_000, 'fees announced');
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
    await waitUntil(async () => {
      for (const n of [ALICE, CAROL, ERIN]) {
        const g = (await nodes[n]!.ok('GET', '/v1/graph')).nodes as Array<{ fee_base_sat: number; fee_ppm: number }>;
        if (g.some((x) => x.fee_base_sat !== 0 || x.fee_ppm !== 0)) return false;
      }
      return true;
    }, 10_000, 'fees back to zero everywhere');
  });

  test('unknown destination, not enough capacity, no route: a 4xx with its code, nothing locked or moved', async () => {
    const before = await balances();
    const unknown = await nodes[ALICE]!.api('POST', '/v1/payments', { dest: `02${'ab'.repeat(32)}`, amount_sat: 1_000 });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'unknown_destination');
    const big = await pay(ALICE, CAROL, 5_000_000);
    assert.equal(big.status, 409);
    assert.equal(big.body.error.code, 'insufficient_capacity');
    assert.ok(await settledDown());
    assert.deepEqual(await balances(), before);
  });

  test('payments contending in opposite directions over the same channels: no deadlock, balances match what succeeded', async () => {
    await waitUntil(() => settledDown(), 10_000, 'quiet');
    const start = await balances();
    let net = 0;
    for (let round = 0; round < 8; round++) {
      const [x, y] = await Promise.all([pay(ALICE, CAROL, 300), pay(CAROL, ALICE, 200)]);
      for (const [r, amount] of [[x, 300], [y, -200]] as const) {
        if (r.status === 201 && r.body.status === 'succeeded') net += amount;
        else assert.equal(r.body.error?.code, 'channel_busy', JSON.stringify(r.body));
      }
    }
    await waitUntil(() => settledDown(), 10_000, 'both ends agree');
    const now = await balances();
    assert.equal(now[ALICE]![channels[0]!], start[ALICE]![channels[0]!]! - BigInt(net));
    assert.equal(now[CAROL]![channels[1]!], start[CAROL]![channels[1]!]! + BigInt(net));
    assert.equal(now[BOB]![channels[0]!]! + now[BOB]![channels[1]!]!, start[BOB]![channels[0]!]! + start[BOB]![channels[1]!]!, 'bob neither gains nor loses');
  });

  test('kill -9 of the intermediary, the payer and the destination mid-protocol: every channel ends in a consistent state', async () => {
    await waitUntil(() => settledDown(), 10_000, 'quiet');
    const start = await balances();
    const bobStart = start[BOB]![channels[0]!]! + start[BOB]![channels[1]!]!;
    for (const victim of [BOB, ALICE, CAROL, BOB]) {
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
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 400));
      await nodes[victim]!.kill('SIGKILL');
      stop = true;
      await stream;
      await nodes[victim]!.launch();
      await waitUntil(() => settledDown([ALICE, BOB, CAROL]), 45_000, `path resolved after killing node ${victim}`);
      const now = await balances();
      const moved = start[ALICE]![channels[0]!]! - now[ALICE]![channels[0]!]!;
      assert.ok(moved >= acked, `alice paid ${moved} ≥ acknowledged ${acked}`);
      assert.ok(moved <= attempted, `alice paid ${moved} ≤ attempted ${attempted}`);
      assert.equal(now[CAROL]![channels[1]!]! - start[CAROL]![channels[1]!]!, moved, 'carol received exactly what alice paid');
      assert.equal(now[BOB]![channels[0]!]! + now[BOB]![channels[1]!]!, bobStart, 'bob, the intermediary, lost nothing');
      Object.assign(start[ALICE]!, { [channels[0]!]: now[ALICE]![channels[0]!]! });
      Object.assign(start[CAROL]!, { [channels[1]!]: now[CAROL]![channels[1]!]! });
    }
  });

  test('every channel settled on chain pays each side its balance', async () => {
    await waitUntil(() => settledDown(), 10_000, 'quiet');
    const final = await balances();
    const payout = await Promise.all(nodes.map(async (n) => (await n.ok('GET', '/v1/getinfo')).payout_address as string));
    for (const [i, ch] of channels.entries()) {
      const s = await nodes[i]!.ok('POST', `/v1/channels/${ch}/settle`, {});
      await chain.mine(1);
      const raw = await chain.rpc.call<{ hex: string; confirmations: number }>('getrawtransaction', [s.txid, true]);
      assert.ok(raw.confirmations >= 1);
      const outs = new Map<string, bigint>();
      for (const o of Transaction.fromHex(raw.hex).outs) outs.set(baddress.fromOutputScript(o.script, networks.regtest), o.value);
      assert.equal(outs.get(payout[i]!), final[i]![ch]! - BigInt(s.fee_sat), `settler of channel ${i}`);
      assert.equal(outs.get(payout[i + 1]!), final[i + 1]![ch], `other side of channel ${i}`);
    }
    // with every channel closed, erin is still in the graph but no path leads there
    await waitUntil(async () => {
      const r = await pay(ALICE, ERIN, 1_000);
      return r.status === 409 && r.body.error.code === 'no_route';
    }, 10_000, 'no_route once the channels are gone');
  });
});
