// run-tests lane: in-process
/**
 * Path rounds at the protocol level (docs/protocol/multihop.md, "Rounds"): many payments to one
 * destination travel as one multi-hop payment (one lock, one τ, one commit, one release at every hop),
 * each with its own amount, fee and outcome. In-process treasuries in a line (helpers/treasury-mesh.ts).
 * Crashes during a round are multihop.phases / multihop.settlement.protocol / multihop.faults.e2e, which
 * run with rounds of many payments.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { line, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { balances, outcome, unlocked } from './helpers/multihop-views.ts';
import { share } from '../src/enclave/treasury/multihop/round.ts';
import { spendable } from '../src/enclave/treasury/state.ts';
import { prng as rng, testSeed } from './helpers/seeded.ts';

const SEED = testSeed('multihop.rounds.protocol');

test('a round of 400 payments alice → bob → carol: one multi-hop payment at every hop, each payment its own fee, every channel conserved', async (t) => {
  const random = rng(SEED);
  const { nodes, channels } = await line(3, 1_000_000n);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  await b.treasury.setFees(3, 2_500); // 3 sat + 0.25 % per round forwarded
  await waitFor(() => a.treasury.multihop.graph.get(b.treasury.nodeId)?.ann.fee_ppm === 2_500);
  const before = balances(nodes, channels);
  const amounts = Array.from({ length: 400 }, () => 1 + Math.floor(random() * 2_000));
  t.diagnostic(`TEST_SEED=${SEED}`);
  const r = await a.treasury.payMultihopRound(
    c.treasury.nodeId,
    amounts.map((amount_sat) => ({ amount_sat })),
    1,
  );
  assert.equal(r.results.length, amounts.length);
  const fees = r.results.map((x, i) => {
    assert.ok(x.ok, `payment ${i}: ${JSON.stringify(x)}`);
    assert.equal(x.channel_id, channels[0]);
    return BigInt(x.fee_sat);
  });
  const delivered = amounts.reduce((s, x) => s + BigInt(x), 0n);
  // the round forwarded `delivered` through bob once: bob's fee is charged once, on the sum
  const roundFee = 3n + (delivered * 2_500n) / 1_000_000n;
  assert.equal(
    fees.reduce((s, x) => s + x, 0n),
    roundFee,
    "the payments' fees add up to the round's",
  );
  for (const [i, f] of fees.entries())
    assert.ok(f <= BigInt(amounts[i]!) / 100n + 10n, `payment ${i} within its default fee limit`);
  await waitFor(() => unlocked(nodes));
  assert.deepEqual(outcome(nodes, channels, before), [delivered + roundFee, delivered]);
  // the destination's host hears of each payment with its own amount (its history shows each)
  const received = c.events.flatMap((e) => (e.type === 'pay_received' && e.channel_id === channels[1] ? [e] : []));
  assert.equal(received.length, 1, 'one event for the round');
  assert.deepEqual(received[0]!.amounts, amounts);
  const now = balances(nodes, channels);
  assert.equal(
    now[1]![channels[0]!]! + now[1]![channels[1]!]!,
    before[1]![channels[0]!]! + before[1]![channels[1]!]! + roundFee,
    'bob kept exactly the fee',
  );
  // one round: one record (one τ) at each hop, carrying the totals
  for (const n of nodes) {
    const recs = n.treasury.multihop.view();
    assert.equal(recs.length, 1, 'one multi-hop payment at every hop');
    assert.equal(recs[0]!.phase, 'done');
    assert.deepEqual(recs[0]!.amounts, [String(delivered + roundFee), String(delivered)]);
  }
});

test('one payment that no longer fits the path is refused alone with its code; the others of the round go through', async () => {
  const { nodes, channels } = await line(3);
  const [a, , c] = nodes as [MeshNode, MeshNode, MeshNode];
  const before = balances(nodes, channels);
  const room = Number(spendable(a.treasury.state, a.treasury.state.channels[channels[0]!]!));
  // what is left after the first two (10,000 sat) pays τ's own chain fee, which the payer's side bears
  const asked = [Math.floor(room / 2), Math.floor(room / 2) - 10_000, 25_000, 600, 400];
  const r = await a.treasury.payMultihopRound(
    c.treasury.nodeId,
    asked.map((amount_sat) => ({ amount_sat })),
    1,
  );
  assert.deepEqual(
    r.results.map((x) => (x.ok ? 'ok' : x.code)),
    ['ok', 'ok', 'insufficient_capacity', 'ok', 'ok'],
  );
  await waitFor(() => unlocked(nodes));
  const moved = BigInt(asked[0]! + asked[1]! + asked[3]! + asked[4]!);
  assert.deepEqual(outcome(nodes, channels, before), [moved, moved], 'exactly the payments that fit moved');
  // a round none of whose payments fits starts nothing
  const none = await a.treasury.payMultihopRound(c.treasury.nodeId, [{ amount_sat: room }], 1);
  assert.deepEqual(
    none.results.map((x) => (x.ok ? 'ok' : x.code)),
    ['insufficient_capacity'],
  );
  assert.equal(none.payment_id, null);
  assert.equal(a.treasury.multihop.view().length, 1, 'no second round was started');
});

test("a payment whose share of the round's fee is over its own limit is refused alone; the round is priced again without it", async () => {
  const { nodes, channels } = await line(3);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  await b.treasury.setFees(100, 0);
  await waitFor(() => a.treasury.multihop.graph.get(b.treasury.nodeId)?.ann.fee_base === 100);
  const before = balances(nodes, channels);
  // 100 sat shared by 1,000 / 1,000 / 2,000 sat: 25 / 25 / 50, over the 20 sat limit of the first; without
  // it, 1,000 / 2,000 share 100 as 33 / 67 (the odd satoshi to the larger remainder)
  const r = await a.treasury.payMultihopRound(
    c.treasury.nodeId,
    [
      { amount_sat: 1_000, max_fee_sat: 20 },
      { amount_sat: 1_000, max_fee_sat: 40 },
      { amount_sat: 2_000, max_fee_sat: 100 },
    ],
    1,
  );
  assert.deepEqual(
    r.results.map((x) => (x.ok ? x.fee_sat : x.code)),
    ['fee_limit_exceeded', '33', '67'],
  );
  await waitFor(() => unlocked(nodes));
  assert.deepEqual(outcome(nodes, channels, before), [3_100n, 3_000n]);
});

test('fee shares add up exactly to the fee, in proportion to the amounts', () => {
  const random = rng(SEED);
  for (let round = 0; round < 200; round++) {
    const amounts = Array.from({ length: 1 + Math.floor(random() * 50) }, () => BigInt(1 + Math.floor(random() * 1e6)));
    const fee = BigInt(Math.floor(random() * 1e5));
    const shares = share(fee, amounts);
    assert.equal(
      shares.reduce((s, x) => s + x, 0n),
      fee,
    );
    const sum = amounts.reduce((s, x) => s + x, 0n);
    for (const [i, s] of shares.entries()) {
      const exact = (fee * amounts[i]!) / sum;
      assert.ok(s === exact || s === exact + 1n, `share ${i}: ${s} vs ${exact}`);
    }
  }
});
