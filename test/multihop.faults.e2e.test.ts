/**
 * Multi-hop payments end to end, under faults: five treasury nodes as real processes in a line
 * (helpers/multihop-line.ts). SIGSTOP silences the destination mid-payment, kill -9 hits nodes of the path
 * mid-protocol (under lone payments and under rounds of many), a committed hop's τ races an old state to the chain (the dave → erin proxy cuts the link one
 * way), and every channel is finally settled on chain. Routing and contention are multihop.e2e.test.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Transaction, address as baddress, networks } from 'bitcoinjs-lib';
import { waitUntil } from './helpers/network.ts';
import { prng as rng, testSeed } from './helpers/seeded.ts';
import { split } from './helpers/multihop-views.ts';
import {
  ALICE,
  BOB,
  CAROL,
  DAVE,
  ERIN,
  balances,
  chain,
  channels,
  freeze,
  line3,
  mhRecords,
  nodes,
  pathReady,
  pay,
  payBatch,
  payOn,
  proxy,
  resume,
  settledDown,
  useLine,
} from './helpers/multihop-line.ts';

/** The seed of this file's random choices (kill points, stop points); TEST_SEED replays a run. */
const SEED = testSeed('multihop.faults.e2e');
const random = rng(SEED);

useLine();

describe('multi-hop payments between real nodes', () => {
  test('a destination that goes silent mid-payment: the payer is told it failed, nothing moved, it pays elsewhere meanwhile and carol again once she is back', async (t) => {
    await waitUntil(() => settledDown(), 10_000, 'quiet');
    const start = line3(await balances());
    // the seed picks: before alice asks, or as soon as alice's enclave has started the payment (carol may
    // then have signed already, and the payment completes once she is back)
    const stopEarly = random() < 0.5;
    t.diagnostic(`carol stops ${stopEarly ? 'before the payment' : 'once alice has started it'} (TEST_SEED=${SEED})`);
    const known = new Set((await mhRecords(nodes[ALICE]!)).map((x) => x.round_id));
    let r: Awaited<ReturnType<typeof pay>>;
    try {
      if (stopEarly) freeze(CAROL);
      const paying = pay(ALICE, CAROL, 1_000);
      if (!stopEarly) {
        await waitUntil(
          async () => (await mhRecords(nodes[ALICE]!)).some((x) => !known.has(x.round_id)),
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
        // Definite (409), not 504 `timeout` (outcome unknown): alice's abort keeps the old state everywhere.
        assert.equal(r.status, 409, JSON.stringify(r.body));
        assert.equal(r.body.error.code, 'path_timeout', 'alice gave up waiting for carol');
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

  test('kill -9 of the intermediary, the payer and the destination mid-protocol, lone payments and rounds: every channel ends in a consistent state, and paying works after each restart', async (t) => {
    await waitUntil(() => settledDown(), 10_000, 'quiet');
    const start = await balances();
    const bobStart = start[BOB]![channels[0]!]! + start[BOB]![channels[1]!]!;
    // each victim once: the seed picks one to kill under lone payments of 100 sat, the other two under rounds
    // of 20 payments of 5 sat (a crash of each hop after each sealed phase of a round, lone or not, is
    // multihop.settlement.protocol's; here it is the real process and its restart)
    const lone = Math.floor(random() * 3);
    const runs = [BOB, ALICE, CAROL].map((victim, i) => ({ victim, size: i === lone ? 1 : 20 }));
    for (const { victim, size } of runs) {
      // the seed picks the kill point: after 1 to 3 acknowledged rounds, then 0 to 150 ms into the next ones
      const ackedFirst = BigInt(100 * (1 + Math.floor(random() * 3)));
      const into = Math.floor(random() * 150);
      t.diagnostic(
        `kill -9 of node ${victim} under rounds of ${size} after ${ackedFirst} sat acknowledged + ${into} ms (TEST_SEED=${SEED})`,
      );
      let acked = 0n;
      let attempted = 0n;
      let stop = false;
      const amounts = split(100, size);
      const stream = (async () => {
        while (!stop) {
          attempted += 100n;
          if (size === 1) {
            const r = await pay(ALICE, CAROL, 100).catch(() => null);
            if (r?.status === 201 && r.body.status === 'succeeded') acked += 100n;
            continue;
          }
          const r = await payBatch(ALICE, CAROL, amounts).catch(() => null);
          if (r?.status === 201)
            (r.body.results as Array<{ status: string }>).forEach((p, i) => {
              if (p.status === 'succeeded') acked += BigInt(amounts[i]!);
            });
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
      assert.equal(tau.status, 200, JSON.stringify(tau.body)); // POST …/settle answers 200
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
