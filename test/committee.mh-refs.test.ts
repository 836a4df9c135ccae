// run-tests lane: in-process
/**
 * Refs of keyed routed payments across a committee (src/enclave/committee/update-mh-refs.ts): a committee
 * payer's round refs travel with its updates, so that every backup holds them, with the host's payment id,
 * the round's destination and, once the round resolves, its outcome, sealed with the adoption and announced
 * to its host (`pay_refs_held`), after the primary's host has dropped them too, until its own host drops
 * them; a promoted member refuses to route a held key again. Malformed rounds in an update are left out and
 * change nothing else.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fundedChannel, gossip, Mesh, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { TIMEOUTS } from './helpers/two-committees.ts';
import { decodeState } from '../src/enclave/treasury/state.ts';
import { keyRef } from '../src/node/payment-journal.ts';
import { checkRoundRefs } from '../src/enclave/treasury/multihop/payer-refs.ts';

/** A 2-of-3 committee a0 (primary), a1, a2 paying c through the lone b. */
async function setup() {
  const mesh = new Mesh(TIMEOUTS);
  const [a0, a1, a2] = (await mesh.committee(['a0', 'a1', 'a2'])) as [MeshNode, MeshNode, MeshNode];
  const b = await mesh.add('b');
  const c = await mesh.add('c');
  const channels = [await fundedChannel(mesh, a0, b, 100_000n), await fundedChannel(mesh, b, c, 100_000n)];
  await gossip(mesh, ['a0', 'b', 'c']);
  return { mesh, a0, a1, a2, b, c, channels };
}

const sealedRounds = (n: MeshNode) => decodeState(n.sealed!).mhRefs;

test("backups hold a committee payer's round refs with the outcome, sealed, until their own host drops them", async () => {
  const { a0, a1, a2, c } = await setup();
  const r1 = keyRef('routed-1', 'req-1');
  const r2 = keyRef('routed-2', 'req-2');
  const answer = await a0.treasury.payMultihopRound(
    c.treasury.nodeId,
    [
      { amount_sat: 1_000, payment_id: 'p7', ref: r1 },
      { amount_sat: 500 }, // unkeyed: no ref
      { amount_sat: 200, payment_id: 'p8', ref: r2 },
    ],
    1,
  );
  assert.deepEqual(
    answer.results.map((r) => r.ok),
    [true, true, true],
  );
  const pid = answer.payment_id!;
  const fee = (i: number) => (answer.results[i] as { fee_sat: string }).fee_sat;
  const held = (key: string, fp: string, id: string, amount: string, i: number) => ({
    key,
    fp,
    round_id: pid,
    amount_sat: amount,
    payment_id: id,
    dest: c.treasury.nodeId,
    outcome: 'succeeded',
    channel_id: (answer.results[0] as { channel_id: string }).channel_id,
    route: answer.route,
    fee_sat: fee(i),
  });
  const want = [held(r1.key, r1.fp, 'p7', '1000', 0), held(r2.key, r2.fp, 'p8', '200', 2)];
  const ch = want[0]!.channel_id;
  const sent = (n: MeshNode) => n.treasury.channel(ch).total_sent_sat;
  // The round answered once released: the update that replicated the release carried the outcome.
  for (const b of [a1, a2]) {
    await waitFor(() => b.treasury.multihopRefs().every((r) => r.outcome === 'succeeded'));
    assert.deepEqual(b.treasury.multihopRefs(), want, `${b.name} holds the refs`);
    assert.deepEqual(sealedRounds(b)?.[pid]?.out, { ok: true }, `${b.name} sealed the outcome`);
    assert.ok(b.events.some((e) => e.type === 'pay_refs_held'));
  }
  // The primary's host journals them and drops them: the backups keep theirs.
  assert.deepEqual(a0.treasury.multihopRefs([r1.key, r2.key]), []);
  await a0.treasury.pay([{ channel_id: ch, amount_sat: 5 }]);
  for (const b of [a1, a2]) await waitFor(() => sent(b) === sent(a0));
  for (const b of [a1, a2]) assert.deepEqual(b.treasury.multihopRefs(), want, `${b.name} still holds them`);

  // a1's host journals r1: gone from a1 at its next seal, r2 and a2's copies stay.
  assert.deepEqual(
    a1.treasury.multihopRefs([r1.key]).map((r) => r.key),
    [r2.key],
  );
  await a1.treasury.commit();
  assert.deepEqual(Object.keys(sealedRounds(a1)?.[pid]?.refs ?? {}), [r2.key]);
  assert.equal(a2.treasury.multihopRefs().length, 2);
});

test('a backup holding a key would not route it again; malformed rounds are left out, the update and the good round adopted', async () => {
  const { a0, a1, a2, c, channels } = await setup();
  const r1 = keyRef('routed-held', 'req');
  await a0.treasury.payMultihopRound(c.treasury.nodeId, [{ amount_sat: 300, payment_id: 'p1', ref: r1 }], 1);
  await waitFor(() => a1.treasury.multihopRefs().length === 1);
  // The check a round's refs pass before anything moves, on the backup's state (what it pays on once
  // promoted): the key it holds is refused, as on the primary itself.
  for (const n of [a0, a1])
    assert.throws(
      () => checkRoundRefs(n.treasury.state, [r1]),
      (err: Error & { code?: string }) => err.code === 'invalid_argument',
      `${n.name} refuses the held key`,
    );

  const ch = channels[0]!;
  const route = [a0.treasury.nodeId, c.treasury.nodeId];
  const hex = (ch2: string, n: number) => ch2.repeat(n);
  const entry = { fp: r1.fp, k: 0, amt: 10n, fee: 0n };
  const good = keyRef('good', 'req');
  // The primary's word, as a compromised primary could give it: its rounds go out with its next update.
  a0.treasury.state.mhRefs = {
    [hex('a', 64)]: { ch, route, out: { ok: true }, refs: { [good.key]: { ...entry, fp: good.fp, id: 'p9' } } },
    zz: { ch, route, refs: { [hex('1', 32)]: entry } }, // not a round id
    [hex('b', 64)]: { ch: hex('9', 64), route, refs: { [hex('2', 32)]: entry } }, // a channel not held
    [hex('c', 64)]: { ch, route: ['x', 'y'], refs: { [hex('3', 32)]: entry } }, // not node ids
    [hex('d', 64)]: { ch, route, refs: { nope: entry } }, // not a key hash
    [hex('e', 64)]: { ch, route, refs: { [hex('4', 32)]: { ...entry, amt: 10 as unknown as bigint } } },
    [hex('f', 64)]: { ch, route, refs: { [hex('5', 32)]: { ...entry, id: 'Not An Id' } } },
    [hex('0', 64)]: { ch, route, out: { ok: false, code: 'Bad Code' }, refs: { [hex('6', 32)]: entry } },
  };
  const before = a1.treasury.channel(ch).total_sent_sat;
  await a0.treasury.pay([{ channel_id: ch, amount_sat: 7 }]);
  for (const b of [a1, a2]) {
    await waitFor(() => b.treasury.channel(ch).total_sent_sat === (BigInt(before) + 7n).toString());
    const keys = b.treasury
      .multihopRefs()
      .map((r) => r.key)
      .sort();
    assert.deepEqual(keys, [good.key, r1.key].sort(), `${b.name} kept the good round (and the earlier one) only`);
    const kept = b.treasury.multihopRefs().find((r) => r.key === good.key)!;
    assert.deepEqual([kept.payment_id, kept.outcome, kept.dest], ['p9', 'succeeded', c.treasury.nodeId]);
  }
});

test("a backup's own pending round that no update holds (it was primary, its LOCK never replicated) fails, payment_not_started", async () => {
  const { a0, a1, channels } = await setup();
  const ch = channels[0]!;
  const lost = keyRef('never-replicated', 'req');
  const pid = 'e'.repeat(64);
  // As a restarted former primary holds it: the round's refs sealed with a LOCK that no member ever got.
  a1.treasury.state.mhRefs = {
    [pid]: {
      ch,
      route: [a0.treasury.nodeId, a1.treasury.nodeId],
      refs: { [lost.key]: { fp: lost.fp, k: 0, amt: 50n, fee: 0n, id: 'p3' } },
    },
  };
  assert.equal(a1.treasury.multihopRefs()[0]!.outcome, 'pending');
  const events = a1.events.filter((e) => e.type === 'pay_refs_held').length;
  await a0.treasury.pay([{ channel_id: ch, amount_sat: 9 }]);
  await waitFor(() => a1.treasury.multihopRefs()[0]?.outcome === 'failed');
  assert.deepEqual(
    a1.treasury.multihopRefs().map((r) => [r.key, r.payment_id, r.outcome, 'code' in r ? r.code : undefined]),
    [[lost.key, 'p3', 'failed', 'payment_not_started']],
  );
  await waitFor(() => a1.events.filter((e) => e.type === 'pay_refs_held').length > events);
  assert.deepEqual(sealedRounds(a1)?.[pid]?.out, { ok: false, code: 'payment_not_started' });
});
