// run-tests lane: in-process
/**
 * A LOCK leaves before the seal of its lock (docs/protocol/multihop.md, "A LOCK leaves before its seal"):
 * the payer's and each intermediary's, when nothing of theirs is still waiting for a seal. A crash between
 * the two loses the lock at that hop while the hops after it hold the path locked; the payment then ends
 * cleanly, every channel all old or all new and nothing left locked: the SIGN that comes back for a payment
 * a hop has no record of is answered with an abort. In-process treasuries (helpers/treasury-mesh.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { line, spy, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { balances, outcome, recOf, resolved, unlocked, watch } from './helpers/multihop-views.ts';
import { decodeState } from '../src/enclave/treasury/state.ts';

for (const [who, victim, peers] of [
  ['alice (payer)', 'n0', ['n1']],
  ['bob (intermediary)', 'n1', ['n0', 'n2']],
] as const)
  test(`${who}'s LOCK leaves before its seal; a crash before that seal is durable ends the payment cleanly, all old or all new`, async () => {
    const { mesh, nodes, channels } = await line(3);
    const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
    const before = balances(nodes, channels);
    const v = mesh.get(victim);
    const sealsBefore = v.seals;
    // Every seal of the victim waits from now on, as a slow disk would, until the crash makes it fail.
    let hold = true;
    mesh.sealLatency = (name) =>
      name === victim && hold ? new Promise((r) => setTimeout(r, 20_000)) : Promise.resolve();
    const sent = spy(v);
    const paid = watch(a.treasury.payMultihop(c.treasury.nodeId, 1_000, 1));
    // The LOCK is out although none of the victim's seals has completed.
    await waitFor(() => sent.some((s) => s.msg.t === 'mh_lock'));
    assert.equal(v.seals, sealsBefore, 'the LOCK left before the seal of its lock');
    // The hops after the victim lock the path and sign τ: carol signed (and bob too, when alice is the victim).
    await waitFor(() => recOf(c)?.phase === 'signed' && (victim !== 'n0' || recOf(b)?.phase === 'signed'));
    mesh.crash(victim);
    hold = false;
    mesh.sealLatency = undefined;
    assert.equal(v.seals, sealsBefore, 'nothing of the payment was ever durable at the victim');
    const last = decodeState(v.blobs[v.blobs.length - 1]!.bytes);
    assert.deepEqual(Object.keys(last.multihop ?? {}), [], 'the victim restarts with no record of it');
    await mesh.restart(victim, [...peers]);
    const live = () => nodes.map((n) => mesh.get(n.name));
    await waitFor(() => unlocked(live()) && resolved(live()), 8_000);
    const moved = outcome(live(), channels, before);
    assert.ok(
      (moved[0] === 0n && moved[1] === 0n) || (moved[0] === 1_000n && moved[1] === 1_000n),
      `all old or all new: ${moved}`,
    );
    // The payer that forgot the payment never committed it: it ends in the old state everywhere.
    if (victim === 'n0') assert.deepEqual(moved, [0n, 0n]);
    else {
      await waitFor(() => paid.ok !== null);
      assert.equal(paid.ok, moved[0] === 1_000n, 'the payer was told the outcome');
    }
  });

test('with a payment of its own still waiting for a seal, the payer queues its LOCK behind it', async () => {
  const { mesh, nodes, channels } = await line(3);
  const [a, , c] = nodes as [MeshNode, MeshNode, MeshNode];
  let hold = true;
  const waiting: Array<() => void> = [];
  mesh.sealLatency = (name) => (name === 'n0' && hold ? new Promise<void>((r) => waiting.push(r)) : Promise.resolve());
  const sent = spy(a);
  // A direct payment on alice's channel to bob: debited, its seal in flight, its `pay` not yet sent.
  const direct = a.treasury.pay([{ channel_id: channels[0]!, amount_sat: 5 }]);
  const routed = a.treasury.payMultihop(c.treasury.nodeId, 1_000, 1);
  await waitFor(() => waiting.length > 0);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(
    sent.map((s) => s.msg.t),
    [],
    'no LOCK leaves alice before the seal of the payment ahead of it',
  );
  hold = false;
  for (const r of waiting.splice(0)) r();
  mesh.sealLatency = undefined;
  const [first] = await direct;
  assert.ok(first!.ok);
  // Had the LOCK overtaken the payment, bob's view of the channel would not have matched alice's description
  // of it, and he would have refused the lock (channel_busy).
  const r = await routed;
  assert.equal(r.route.length, 3);
  await waitFor(() => unlocked(nodes));
});

test("bob's UNLOCK leaves before the seal of his unlock; a crash before that seal is durable: he restarts released, alice's UNLOCK again unlocks him", async () => {
  const { mesh, nodes, channels } = await line(3);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  const before = balances(nodes, channels);
  const sealsAt: number[] = [];
  let hold = false;
  mesh.sealLatency = (name) => (name === 'n1' && hold ? new Promise((r) => setTimeout(r, 20_000)) : Promise.resolve());
  const t = b.treasury as unknown as { sendNow(peerId: string, msg: { t: string }): void };
  const send = t.sendNow.bind(b.treasury);
  t.sendNow = (peerId, msg) => {
    send(peerId, msg as never);
    // From bob's UNLOCK on, every seal of his waits, as a slow disk would, until the crash makes it fail.
    if (msg.t === 'mh_unlock') {
      sealsAt.push(b.seals);
      hold = true;
    }
  };
  await a.treasury.payMultihop(c.treasury.nodeId, 1_000, 1);
  await waitFor(() => recOf(c)?.phase === 'done' && sealsAt.length > 0);
  mesh.crash('n1');
  hold = false;
  mesh.sealLatency = undefined;
  assert.equal(b.seals, sealsAt[0], 'the UNLOCK left before the seal of the unlock, which never completed');
  const last = decodeState(b.blobs[b.blobs.length - 1]!.bytes);
  assert.deepEqual(
    Object.values(last.multihop ?? {}).map((r) => r.phase),
    ['released'],
    'bob restarts released, his channels locked',
  );
  await mesh.restart('n1', ['n0', 'n2']);
  const live = () => nodes.map((n) => mesh.get(n.name));
  await waitFor(() => unlocked(live()) && resolved(live()), 8_000);
  assert.deepEqual(outcome(live(), channels, before), [1_000n, 1_000n], 'all new');
});
