// run-tests lane: in-process
/**
 * Refs of keyed routed payments at the payer (src/enclave/treasury/multihop/payer-refs.ts): sealed with the
 * round's lock, given the payment's outcome when the round resolves (also after a crash and a restart),
 * dropped once the host says it journaled them and not before; a malformed or repeated ref, or a drop of an
 * unknown key, changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crashAfterSealing, line, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { balances, outcome, resolved, unlocked } from './helpers/multihop-views.ts';
import { decodeState, encodeState } from '../src/enclave/treasury/state.ts';
import { keyRef } from '../src/node/payment-journal.ts';
import { TreasuryError } from '../src/enclave/treasury/errors.ts';

const over = (nodes: MeshNode[]) => unlocked(nodes) && resolved(nodes);

test('a keyed round: refs sealed with the lock, outcomes kept once it resolves, dropped only when resolved and journaled', async () => {
  const { mesh, nodes, channels } = await line(3, 100_000n);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  const r1 = keyRef('order-1', 'req-1');
  const r3 = keyRef('order-3', 'req-3');
  let lockSeal: Uint8Array | undefined;
  mesh.onSeal = (name, bytes) => {
    const phases = Object.values(decodeState(bytes).multihop ?? {}).map((r) => r.phase);
    if (name === a.name && !lockSeal && phases.includes('locked')) lockSeal = bytes;
  };
  const answer = await a.treasury.payMultihopRound(
    c.treasury.nodeId,
    [
      { amount_sat: 1_000, ref: r1 },
      { amount_sat: 500 }, // unkeyed: no ref
      { amount_sat: 10_000_000, ref: r3 }, // more than the path holds: refused before the lock, no ref
    ],
    1,
  );
  mesh.onSeal = undefined;
  assert.deepEqual(
    answer.results.map((r) => r.ok),
    [true, true, false],
  );
  const ok = answer.results[0] as { fee_sat: string; channel_id: string };

  // The seal that made the lock durable holds the ref, pending, and nothing for the refused payment.
  const atLock = decodeState(lockSeal!);
  const round = atLock.mhRefs?.[answer.payment_id!];
  assert.ok(round, 'the lock seal holds the round refs');
  assert.deepEqual(Object.keys(round.refs), [r1.key]);
  assert.equal(round.out, undefined);
  assert.equal(round.ch, channels[0]);

  // Resolved: the outcome is in the state (and in every seal from then on) until the host drops it.
  const expected = {
    key: r1.key,
    fp: r1.fp,
    round_id: answer.payment_id!,
    amount_sat: '1000',
    dest: c.treasury.nodeId,
    outcome: 'succeeded',
    channel_id: ok.channel_id,
    route: [a, b, c].map((n) => n.treasury.nodeId),
    fee_sat: ok.fee_sat,
  };
  assert.deepEqual(a.treasury.multihopRefs(), [expected]);
  assert.deepEqual(decodeState(a.sealed!).mhRefs?.[answer.payment_id!]?.out, { ok: true });

  // Bad input changes nothing: a drop of unknown keys, a malformed ref, a ref already held.
  await waitFor(() => over(nodes));
  const before = encodeState(a.treasury.state);
  assert.deepEqual(a.treasury.multihopRefs([keyRef('nobody', 'nothing').key, 'zz']), [expected]);
  assert.deepEqual(encodeState(a.treasury.state), before);
  const sent = a.treasury.channel(channels[0]!).total_sent_sat;
  for (const ref of [{ key: 'zz', fp: r1.fp }, r1]) {
    await assert.rejects(
      a.treasury.payMultihopRound(c.treasury.nodeId, [{ amount_sat: 7, ref }], 1),
      (e: unknown) => e instanceof TreasuryError && e.code === 'invalid_argument',
    );
    assert.equal(a.treasury.channel(channels[0]!).total_sent_sat, sent, 'nothing moved');
    assert.deepEqual(encodeState(a.treasury.state), before, 'nothing changed');
  }

  // The host journaled r1 and says so with its next round: gone from the state and from that round's seals.
  const r2 = keyRef('order-2', 'req-2');
  const next = await a.treasury.payMultihopRound(c.treasury.nodeId, [{ amount_sat: 200, ref: r2 }], 1, [r1.key]);
  assert.ok(next.results[0]!.ok);
  assert.deepEqual(
    a.treasury.multihopRefs().map((r) => [r.key, r.outcome]),
    [[r2.key, 'succeeded']],
  );
  assert.equal(decodeState(a.sealed!).mhRefs?.[answer.payment_id!], undefined);
  assert.deepEqual(a.treasury.multihopRefs([r2.key]), []);
});

test('an aborted keyed round keeps its code and its key may go again; a payment a hop left out keeps insufficient_capacity', async () => {
  const { mesh, nodes, channels } = await line(3, 100_000n);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  // bob cannot reach carol: he refuses the LOCK and the round aborts.
  mesh.unlink(b.name, c.name);
  await waitFor(() => !b.treasury.channels().some((ch) => ch.peer_connected && ch.peer_id === c.treasury.nodeId));
  const r = keyRef('abort-1', 'req');
  const aborted = await a.treasury.payMultihopRound(c.treasury.nodeId, [{ amount_sat: 300, ref: r }], 1);
  assert.equal(aborted.results[0]!.ok, false);
  const code = (aborted.results[0] as { code: string }).code;
  const [ref, ...more] = a.treasury.multihopRefs();
  assert.deepEqual(more, []);
  assert.deepEqual(
    { ...ref, round_id: undefined },
    {
      key: r.key,
      fp: r.fp,
      round_id: undefined,
      amount_sat: '300',
      dest: c.treasury.nodeId,
      outcome: 'failed',
      code,
    },
  );
  // The host goes again with the same key (as it does after an abort for a busy channel): nothing moved
  // for it, so the new round takes the ref over, and its outcome is the one kept.
  await mesh.link(b.name, c.name);
  const again = await a.treasury.payMultihopRound(c.treasury.nodeId, [{ amount_sat: 300, ref: r }], 1);
  assert.ok(again.results[0]!.ok, JSON.stringify(again.results[0]));
  assert.deepEqual(
    a.treasury.multihopRefs().map((x) => [x.key, x.round_id, x.outcome]),
    [[r.key, again.payment_id, 'succeeded']],
  );
  assert.deepEqual(a.treasury.multihopRefs([r.key]), []);

  // bob with less on his channel to carol than alice's graph says: he leaves the second payment out.
  const bc = channels[1]!;
  await waitFor(() => over(nodes));
  const [drained] = await b.treasury.pay([{ channel_id: bc, amount_sat: 60_000 }]);
  assert.ok(drained!.ok, JSON.stringify(drained));
  await waitFor(() => b.treasury.channel(bc).total_acked_sat === b.treasury.channel(bc).total_sent_sat);
  b.treasury.multihop.gossip();
  const cap = () => a.treasury.multihop.graph.get(b.treasury.nodeId)?.ann.channels.find((x) => x.ch === bc);
  await waitFor(() => cap() !== undefined && BigInt(cap()!.cap) < 50_000n);
  cap()!.cap = '100000';
  const [k1, k2] = [keyRef('fit-1', 'req'), keyRef('fit-2', 'req')];
  const fit = await a.treasury.payMultihopRound(
    c.treasury.nodeId,
    [
      { amount_sat: 30_000, ref: k1 },
      { amount_sat: 20_000, ref: k2 },
    ],
    1,
  );
  assert.deepEqual(
    fit.results.map((x) => (x.ok ? 'ok' : x.code)),
    ['ok', 'insufficient_capacity'],
  );
  assert.deepEqual(
    a.treasury
      .multihopRefs()
      .map((x) => [x.key, x.outcome, x.outcome === 'failed' ? x.code : x.outcome === 'succeeded' ? x.fee_sat : null]),
    [
      [k1.key, 'succeeded', (fit.results[0] as { fee_sat: string }).fee_sat],
      [k2.key, 'failed', 'insufficient_capacity'],
    ],
  );
});

test('the payer crashes right after sealing the lock: restarted, the ref is pending and cannot be dropped, then takes the outcome the round ends with', async () => {
  const { mesh, nodes, channels } = await line(3, 100_000n);
  const before = balances(nodes, channels);
  const r = keyRef('crash-1', 'req');
  const fired = crashAfterSealing(mesh, 'n0', 'locked');
  void nodes[0]!.treasury.payMultihopRound(nodes[2]!.treasury.nodeId, [{ amount_sat: 900, ref: r }], 1).catch(() => {});
  await waitFor(fired);
  mesh.onSeal = undefined;
  const a = await mesh.restart('n0', []);
  assert.deepEqual(
    a.treasury.multihopRefs([r.key]).map((x) => [x.key, x.outcome]),
    [[r.key, 'pending']],
    'a pending ref is not dropped',
  );
  await mesh.link('n0', 'n1');
  const live = () => nodes.map((n) => mesh.get(n.name));
  await waitFor(() => over(live()), 15_000);
  const moved = outcome(live(), channels, before);
  const [ref] = a.treasury.multihopRefs();
  assert.ok(ref && ref.outcome !== 'pending', JSON.stringify(ref));
  // What the ref says is what the channels did: all new (succeeded) or all old (failed, with the abort's code).
  if (ref.outcome === 'succeeded') assert.deepEqual(moved, [900n + BigInt(ref.fee_sat), 900n]);
  else assert.deepEqual(moved, [0n, 0n]);
  assert.deepEqual(a.treasury.multihopRefs([r.key]), []);
});
