/**
 * `GET /v1/multihop` over real node processes alice – bob – carol (real TCP, the embedded regtest chain):
 * a batch of routed payments to carol travels in one path round, and each of the three nodes lists that
 * round, with the same id and total, its own role, and the payments in it (at alice with their own
 * payment ids and fees, as GET /v1/payments has them; a payment refused alone is in no round). A bad
 * `limit` is a 400.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { waitUntil, type NodeProcess } from './helpers/network.ts';
import { startRoutedLine, type RoutedLine } from './helpers/routed-line.ts';
import type { RoundView } from '../src/node/multihop-rounds.ts';

let line: RoutedLine;
let alice: NodeProcess;
let bob: NodeProcess;
let carol: NodeProcess;

const rounds = async (n: NodeProcess) => (await n.ok('GET', '/v1/multihop')).rounds as RoundView[];

before(async () => {
  line = await startRoutedLine('teechain-rounds-api-', { base_sat: 2, ppm: 1_000 });
  ({ alice, bob, carol } = line);
});

after(() => line?.stop());

test('a batch of routed payments is one round on alice, bob and carol, with its payments, ids and total', async () => {
  const amounts = [1_000, 2_500, 40_000, 7];
  const entries = [
    ...amounts.map((amount_sat) => ({ dest: carol.id, amount_sat })),
    { dest: carol.id, amount_sat: 20_000, max_fee_sat: 0 }, // over its fee limit: refused alone, in no round
  ];
  const r = await alice.api('POST', '/v1/payments/batch', { payments: entries });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const res = r.body.results as Array<{ payment_id: string; status: string; fee_sat?: number }>;
  assert.deepEqual(
    res.map((x) => x.status),
    ['succeeded', 'succeeded', 'succeeded', 'succeeded', 'failed'],
  );
  const path = [alice.id, bob.id, carol.id];
  const total = String(amounts.reduce((s, a) => s + a, 0));
  // The unlock wave may still be on its way to carol when alice answers.
  await waitUntil(
    async () => {
      for (const n of [alice, bob, carol]) if ((await rounds(n)).some((x) => x.phase !== 'done')) return false;
      return true;
    },
    10_000,
    'the round done at every hop',
  );

  const [atAlice] = [await rounds(alice)];
  assert.equal(atAlice.length, 1, JSON.stringify(atAlice));
  const round = atAlice[0]!;
  assert.equal(round.role, 'payer');
  assert.deepEqual(round.route, path);
  assert.equal(round.amount_sat, total, "the round's amount is the sum of its payments");
  assert.deepEqual(
    round.payments,
    amounts.map((a, i) => ({
      payment_id: res[i]!.payment_id,
      amount_sat: String(a),
      fee_sat: String(res[i]!.fee_sat),
      outcome: 'succeeded',
      code: null,
    })),
  );
  const fees = round.payments.reduce((s, p) => s + BigInt(p.fee_sat), 0n);
  assert.equal(round.fee_sat, String(fees), "the payments' fees add up to the round's");
  assert.ok(fees > 0n, "bob's fee");
  assert.deepEqual(round.amounts, [String(BigInt(total) + fees), total]);

  for (const [n, role] of [
    [bob, 'intermediary'],
    [carol, 'destination'],
  ] as const) {
    const list = await rounds(n);
    assert.equal(list.length, 1, `${role}: ${JSON.stringify(list)}`);
    const x = list[0]!;
    assert.equal(x.round_id, round.round_id, `${role}: the same round`);
    assert.equal(x.role, role);
    assert.equal(x.amount_sat, total);
    assert.deepEqual(x.amounts, round.amounts);
    assert.deepEqual(
      x.payments,
      round.payments.map((p) => ({ ...p, payment_id: null })),
      `${role}: each payment's amount, fee and outcome, not the payer's ids`,
    );
  }
});

test('limit: the newest rounds first, capped at 1000; a bad one is a 400', async () => {
  const one = await alice.ok('GET', '/v1/multihop?limit=1');
  assert.equal(one.limit, 1);
  assert.ok(one.rounds.length <= 1);
  assert.equal((await alice.ok('GET', '/v1/multihop?limit=5000')).limit, 1000);
  for (const bad of ['0', '-1', 'abc', '1.5', '12345', '']) {
    const r = await alice.api('GET', `/v1/multihop?limit=${bad}`);
    assert.equal(r.status, 400, `limit=${bad}`);
    assert.equal(r.body.error.code, 'invalid_argument', `limit=${bad}`);
  }
  const other = await alice.api('GET', '/v1/multihop?offset=1');
  assert.equal(other.status, 400, 'an unknown parameter');
});
