// run-tests lane: in-process
/**
 * The view change at the protocol level (docs/protocol/committees.md, "View change"): in-process committees
 * with real signatures and a fake chain. A crashed primary's backup is promoted and pays on the same
 * channel; two backups that both suspect the primary end in one view; a vote is never given twice in an
 * epoch, even across a restart; a returning old primary is fenced off and rejoins as a backup.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Transaction, address as baddress } from 'bitcoinjs-lib';
import { hexToBytes } from '../enclave-sim/encoding.ts';
import type { CommitteeMessage, SessionMessage } from '../src/enclave/protocol/messages.ts';
import type { Treasury } from '../src/enclave/treasury/treasury.ts';
import { NETWORK } from '../src/enclave/treasury/transactions.ts';
import type { ViewSpec } from '../src/enclave/committee/view.ts';
import { signVote } from '../src/enclave/committee/view.ts';
import { committeeWithPeer, Mesh, payAndWait, spy, WAIT_MS, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { checkSettlement, scriptOf, twoCommittees } from './helpers/two-committees.ts';
import { prng } from './helpers/seeded.ts';
import { replicaOf } from '../src/enclave/committee/update.ts';
import { checkUpdate } from '../src/enclave/committee/update-rules.ts';

/** Long enough that a loaded machine running six enclaves in one process does not suspect a live primary. */
const PROMOTION_MS = 1_500;

/** Hands `msg` to `to`'s committee coordinator as if it came over its session with `from`. */
function deliverCommittee(to: MeshNode, from: MeshNode, msg: CommitteeMessage): Promise<void> {
  const c = (to.treasury as unknown as { committee: { handle(p: string, m: CommitteeMessage): Promise<void> } })
    .committee;
  return c.handle(from.treasury.nodeId, msg);
}

function committeeOf(t: Treasury) {
  return t.info().committee!;
}

/** A 2-of-3 committee p, b1, b2 and a lone channel peer q, the channel funded on both sides. */
async function setup(timeout = PROMOTION_MS) {
  const { mesh, p, b1, b2, q, ch } = await committeeWithPeer({
    replyTimeoutMs: 20_000,
    multihopTimeoutMs: 20_000,
    promotionTimeoutMs: timeout,
  });
  await waitFor(() => q.treasury.channel(ch).status === 'open' && !!q.treasury.state.channels[ch]!.peerRoster, WAIT_MS);
  return { mesh, p, b1, b2, q, ch };
}

test('the primary crashes: the first backup is promoted and pays on the same channel, nothing lost or counted twice', async () => {
  const { mesh, p, b1, b2, q, ch } = await setup();
  await payAndWait(p, ch, [1_000, 2_000]);
  await payAndWait(q, ch, [500]);
  mesh.crash('p');
  await waitFor(() => committeeOf(b1.treasury).role === 'primary', WAIT_MS);
  const view = committeeOf(b1.treasury);
  assert.equal(view.epoch, 1);
  assert.equal(view.treasury_id, p.treasury.nodeId, 'the committee keeps its identity');
  assert.deepEqual(
    view.members.map((m) => m.node_id),
    [b1.treasury.nodeId, b2.treasury.nodeId, p.treasury.nodeId],
    'the old primary moves to the tail',
  );
  assert.equal(view.chain, 2, 'the old primary stands by: nothing waits for it');
  await waitFor(() => committeeOf(b2.treasury).epoch === 1 && committeeOf(b2.treasury).index === 1, WAIT_MS);
  assert.ok(b1.events.some((e) => e.type === 'committee_view' && e.epoch === 1 && e.primary === b1.treasury.nodeId));
  assert.ok(b2.events.some((e) => e.type === 'committee_view' && e.epoch === 1 && e.index === 1));

  // The host of the new primary dials the channel peer; the peer rebinds the channel on the certificate.
  await mesh.link('b1', 'q');
  await waitFor(() => q.treasury.state.channels[ch]!.peerId === b1.treasury.nodeId, WAIT_MS);
  assert.equal(q.treasury.channel(ch).status, 'open');
  await payAndWait(b1, ch, [3_000]);
  await payAndWait(q, ch, [700]);
  // Both sides agree on every acknowledged payment, once: sent by the committee 6000, by q 1200.
  await waitFor(() => q.treasury.channel(ch).total_received_sat === '6000', WAIT_MS);
  assert.equal(b1.treasury.channel(ch).total_sent_sat, '6000');
  assert.equal(b1.treasury.channel(ch).total_received_sat, '1200');
  assert.equal(q.treasury.channel(ch).total_sent_sat, '1200');
  await waitFor(() => b2.treasury.channel(ch).total_received_sat === '1200', WAIT_MS);

  // A settlement by the new view's members pays exactly those balances.
  const settled = await b1.treasury.settle(ch, 2);
  const tx = Transaction.fromHex(settled.tx_hex!);
  const paid = new Map(tx.outs.map((o) => [baddress.fromOutputScript(o.script, NETWORK), BigInt(o.value)]));
  const fee = BigInt(settled.fee_sat);
  assert.equal(paid.get(q.payoutAddress), 50_000n + 6_000n - 1_200n);
  assert.equal(paid.get(p.payoutAddress), 100_000n - 6_000n + 1_200n - fee);
});

test('the old primary comes back: its old-epoch update is refused, it adopts the certificate and rejoins as a backup', async () => {
  const { mesh, p, b1, b2, q, ch } = await setup();
  await payAndWait(p, ch, [1_000]);
  const oldUpdate = p.committeeSent.filter((s) => s.t === 'c_update').at(-1)!.update!;
  mesh.crash('p');
  await waitFor(() => committeeOf(b1.treasury).role === 'primary' && committeeOf(b2.treasury).epoch === 1, WAIT_MS);
  await mesh.link('b1', 'q');
  await waitFor(() => q.treasury.state.channels[ch]!.peerId === b1.treasury.nodeId, WAIT_MS);
  await payAndWait(b1, ch, [2_000]);

  const fromB1 = spy(b1);
  const fromB2 = spy(b2);
  await mesh.restart('p', []);
  await mesh.link('p', 'b1');
  await mesh.link('p', 'b2');
  // Its first words as the primary of epoch 0 (the update to its old successor) are refused.
  await waitFor(
    () => fromB1.some((s) => s.msg.t === 'c_refuse' && s.msg.code === 'stale_epoch' && s.to === p.treasury.nodeId),
    WAIT_MS,
  );
  await waitFor(() => committeeOf(p.treasury).epoch === 1 && committeeOf(p.treasury).role === 'backup', WAIT_MS);
  assert.equal(committeeOf(p.treasury).index, 2);
  // It catches up from its predecessor in the new order, and keeps its own deposit key as a member's key.
  await waitFor(() => p.treasury.channel(ch).total_sent_sat === '3000', WAIT_MS);
  const depId = p.treasury.state.channels[ch]!.myDeposits[0]!;
  assert.ok(p.treasury.state.committee!.memberKeys[depId]);
  // An update of the old epoch sent over its real session to a member is refused, and changes nothing there.
  const seqBefore = b2.treasury.state.committee!.seq;
  (p.treasury as unknown as { sendNow(id: string, m: SessionMessage): void }).sendNow(b2.treasury.nodeId, {
    t: 'c_update',
    update: oldUpdate,
  });
  await waitFor(
    () => fromB2.some((s) => s.msg.t === 'c_refuse' && s.msg.code === 'stale_epoch' && s.to === p.treasury.nodeId),
    WAIT_MS,
  );
  assert.equal(b2.treasury.state.committee!.seq, seqBefore);
  assert.equal(b2.treasury.channel(ch).total_sent_sat, '3000');
  // It cannot pay: it is a backup now.
  await assert.rejects(p.treasury.pay([{ channel_id: ch, amount_sat: 1 }]), /backup|not_primary/);
  assert.equal(p.treasury.state.committee!.primaryId, b1.treasury.nodeId);
  // The committee goes on paying with the old primary standing by.
  await payAndWait(b1, ch, [500]);
  await waitFor(() => p.treasury.channel(ch).total_sent_sat === '3500', WAIT_MS);
});

test('a vote given in an epoch is never given again, even after the voter restarts', async () => {
  const { mesh, p, b1, b2 } = await setup(60_000); // no automatic round: the test drives the proposal
  const before = committeeOf(b1.treasury).members.map((m) => m.node_id);
  mesh.crash('p');
  const view = {
    t: 'c_propose' as const,
    epoch: 1,
    members: [before[1]!, before[2]!, before[0]!],
    chain: 2,
    seq: b1.treasury.state.committee!.seq,
  };
  // b2 suspects the primary only after the timeout: force its clock by making it hear nothing for long.
  const promotion = (b2.treasury as unknown as { committee: { promotion: { lastHeard: number } } }).committee.promotion;
  promotion.lastHeard = 0;
  const sent = spy(b2);
  await deliverCommittee(b2, b1, view);
  const votes = () => sent.filter((s) => s.msg.t === 'c_vote');
  assert.equal(votes().length, 1, 'b2 votes for the first proposal of epoch 1');
  assert.equal(b2.treasury.state.committee!.vote?.epoch, 1, 'the vote is sealed with its epoch');
  await deliverCommittee(b2, b1, view);
  assert.equal(votes().length, 1, 'a second proposal of the same epoch gets no vote');

  // Crash and restart from the last sealed state: the vote was sealed before it left, so it still holds.
  mesh.crash('b2');
  await mesh.restart('b2', []);
  const after = spy(b2);
  (b2.treasury as unknown as { committee: { promotion: { lastHeard: number } } }).committee.promotion.lastHeard = 0;
  await deliverCommittee(b2, b1, view);
  assert.equal(after.filter((s) => s.msg.t === 'c_vote').length, 0, 'no second vote in epoch 1 after a restart');
  await deliverCommittee(b2, b1, { ...view, epoch: 2 });
  assert.equal(after.filter((s) => s.msg.t === 'c_vote').length, 1, 'the next epoch may be voted for');
  void p;
});

test('a member refuses a certificate with too few votes, forged votes, or an old epoch', async () => {
  const { b1, b2, p } = await setup(60_000);
  const ids = committeeOf(b2.treasury).members.map((m) => m.node_id);
  const spec: ViewSpec = { treasury_id: ids[0]!, epoch: 1, members: [ids[1]!, ids[2]!, ids[0]!], chain: 2 };
  const key = (n: MeshNode) => hexToBytes(n.treasury.state.identityKey);
  const vote = (n: MeshNode, s: ViewSpec = spec) => ({ node_id: n.treasury.nodeId, sig: signVote(s, key(n)) });
  const stranger = await new Mesh().add('x');
  const cases: Array<[string, object]> = [
    ['one vote of two needed', { ...spec, votes: [vote(b1)] }],
    ['the same vote twice', { ...spec, votes: [vote(b1), vote(b1)] }],
    ['a vote for another view', { ...spec, votes: [vote(b1), vote(p, { ...spec, epoch: 2 })] }],
    ['a vote relabelled as another member', { ...spec, votes: [vote(b1), { ...vote(p), node_id: ids[2]! }] }],
    ['a non-member votes', { ...spec, votes: [vote(b1), vote(stranger)] }],
    ['epoch 0', { ...spec, epoch: 0, votes: [vote(b1, { ...spec, epoch: 0 }), vote(p, { ...spec, epoch: 0 })] }],
  ];
  for (const [why, cert] of cases) {
    await deliverCommittee(b2, b1, { t: 'c_view', cert } as CommitteeMessage);
    assert.equal(committeeOf(b2.treasury).epoch, 0, why);
    assert.equal(committeeOf(b2.treasury).members[0]!.node_id, ids[0], why);
  }
  // The same view with two genuine votes is adopted; an older certificate afterwards changes nothing.
  await deliverCommittee(b2, b1, { t: 'c_view', cert: { ...spec, votes: [vote(b1), vote(p)] } });
  assert.equal(committeeOf(b2.treasury).epoch, 1);
  assert.equal(committeeOf(b2.treasury).role, 'backup');
  assert.equal(b2.treasury.state.committee!.primaryId, b1.treasury.nodeId);
});

test('the channel peer follows a new primary only on a valid certificate of the roster it verified', async () => {
  const { mesh, p, b1, b2, q, ch } = await setup(60_000);
  const ids = committeeOf(b1.treasury).members.map((m) => m.node_id);
  const key = (n: MeshNode) => hexToBytes(n.treasury.state.identityKey);
  const vote = (n: MeshNode, s: ViewSpec) => ({ node_id: n.treasury.nodeId, sig: signVote(s, key(n)) });
  const spec: ViewSpec = { treasury_id: ids[0]!, epoch: 1, members: [ids[1]!, ids[2]!, ids[0]!], chain: 2 };
  await mesh.link('b1', 'q');
  const send = (from: MeshNode, cert: object) =>
    (from.treasury as unknown as { sendNow(id: string, m: SessionMessage): void }).sendNow(q.treasury.nodeId, {
      t: 'view',
      cert,
    } as SessionMessage);
  const bound = () => q.treasury.state.channels[ch]!.peerId;
  const settle = () => new Promise((r) => setTimeout(r, 200));
  // Too few votes, a forged vote, a certificate naming someone else first: the channel stays with p.
  send(b1, { ...spec, votes: [vote(b1, spec)] });
  send(b1, { ...spec, votes: [vote(b1, spec), { node_id: ids[0]!, sig: vote(b2, spec).sig }] });
  const b2First: ViewSpec = { ...spec, members: [ids[2]!, ids[1]!, ids[0]!] };
  send(b1, { ...b2First, votes: [vote(b1, b2First), vote(b2, b2First)] });
  await settle();
  assert.equal(bound(), p.treasury.nodeId);
  // A non-member with a valid-looking certificate of its own committee cannot take the channel.
  const other = await mesh.committee(['x0', 'x1', 'x2']);
  await mesh.link('x0', 'q');
  const xs = other.map((n) => n.treasury.nodeId);
  const xSpec: ViewSpec = { treasury_id: xs[0]!, epoch: 1, members: [xs[0]!, xs[1]!, xs[2]!], chain: 3 };
  send(other[0]!, { ...xSpec, votes: [vote(other[0]!, xSpec), vote(other[1]!, xSpec), vote(other[2]!, xSpec)] });
  await settle();
  assert.equal(bound(), p.treasury.nodeId);
  // The genuine view: q rebinds to b1, and then no older epoch takes it back.
  send(b1, { ...spec, votes: [vote(b1, spec), vote(b2, spec)] });
  await waitFor(() => bound() === b1.treasury.nodeId, WAIT_MS);
  await mesh.link('b2', 'q');
  send(b2, { ...b2First, votes: [vote(b1, b2First), vote(b2, b2First)] });
  await settle();
  assert.equal(bound(), b1.treasury.nodeId, 'an epoch not above the adopted one is refused');
});

for (const seed of [1, 2, 3, 4]) {
  test(`two backups that both suspect the primary: exactly one view wins each epoch (seed ${seed})`, async () => {
    const mesh = new Mesh({ replyTimeoutMs: 20_000, multihopTimeoutMs: 20_000, promotionTimeoutMs: PROMOTION_MS });
    const names = ['p', 'b1', 'b2', 'b3', 'b4'];
    const nodes = await mesh.committee(names);
    // b1 and b2 cannot reach each other, so each sees itself as the first live backup and proposes.
    mesh.unlink('b1', 'b2');
    const random = prng(seed); // each seed is one reproducible interleaving
    mesh.sealLatency = () => new Promise((r) => setTimeout(r, Math.floor(random() * 8)));
    const live = nodes.slice(1);
    const sent = live.map((n) => spy(n));
    const proposed = (i: number) => sent[i]!.some((x) => x.msg.t === 'c_propose');
    // Until both candidates have proposed, what the others send them is held back: otherwise, on a loaded
    // machine, one candidate's view can reach the other through them before the other's own timeout, and
    // the case is no longer two rival proposals.
    const held = ['b3', 'b4'].flatMap((from) => ['b1', 'b2'].map((to) => [from, to] as const));
    for (const [from, to] of held) mesh.hold(from, to);
    mesh.crash('p');
    await waitFor(() => proposed(0) && proposed(1), WAIT_MS);
    for (const [from, to] of held) mesh.deliver(from, to);
    const epochOf = (n: MeshNode) => committeeOf(n.treasury).epoch;
    // The members that reach both candidates settle on one view.
    await waitFor(() => live.slice(2).every((n) => epochOf(n) > 0 && epochOf(n) === epochOf(live[2]!)), WAIT_MS);
    // The partition heals: everyone ends in one view with one primary.
    await mesh.link('b2', 'b1');
    await waitFor(() => {
      const views = live.map((n) => committeeOf(n.treasury));
      return views.every((v) => v.epoch === views[0]!.epoch && v.members[0]!.node_id === views[0]!.members[0]!.node_id);
    }, WAIT_MS);
    assert.ok(proposed(0) && proposed(1), 'both suspecting backups proposed a view');
    const primaries = live.filter((n) => committeeOf(n.treasury).role === 'primary');
    assert.equal(primaries.length, 1, 'one primary');
    // No epoch ever had two views: every member that adopted epoch e adopted the same order.
    const adopted = new Map<number, Set<string>>();
    for (const n of live)
      for (const e of n.events)
        if (e.type === 'committee_view') {
          const set = adopted.get(e.epoch) ?? new Set<string>();
          set.add(e.members.map((m) => m.node_id).join());
          adopted.set(e.epoch, set);
        }
    for (const [epoch, views] of adopted) assert.equal(views.size, 1, `epoch ${epoch} had ${views.size} views`);
    assert.ok(adopted.size >= 1);
  });
}

test("a committee peer follows the other committee's new primary, its backups check the proof, and the new view settles with the peer's shares", async () => {
  const { mesh, a, b, channelId, depA, depB } = await twoCommittees({ promotionTimeoutMs: PROMOTION_MS });
  const [a0, a1, a2] = a as [MeshNode, MeshNode, MeshNode];
  const [b0, b1, b2] = b as [MeshNode, MeshNode, MeshNode];
  await payAndWait(a0, channelId, [1_000]);
  await payAndWait(b0, channelId, [200]);
  mesh.crash('a0');
  await waitFor(() => committeeOf(a1.treasury).role === 'primary' && committeeOf(a2.treasury).epoch === 1, WAIT_MS);
  await mesh.link('a1', 'b0');
  // b0 rebinds, and its backups take the rebinding in its next update (update rules: the certificate checks out).
  for (const m of [b0, b1, b2])
    await waitFor(() => m.treasury.state.channels[channelId]!.peerId === a1.treasury.nodeId, WAIT_MS);
  await payAndWait(a1, channelId, [2_000]);
  await payAndWait(b0, channelId, [300]);
  for (const m of [a1, a2, b0, b1, b2]) {
    const v = m.treasury.channel(channelId);
    const mine = m.name.startsWith('a');
    assert.equal(v.total_sent_sat, mine ? '3000' : '500', m.name);
    assert.equal(v.total_received_sat, mine ? '500' : '3000', m.name);
  }
  // The new view settles: its members' deposit keys, and their shares of b's keys in the formation order.
  const r = await a1.treasury.settle(channelId, 2);
  checkSettlement(mesh, r.tx_hex!, {
    deposits: [
      { deposit: depA, committee: a },
      { deposit: depB, committee: b },
    ],
    settler: { script: scriptOf(a0.payoutAddress), balance: 100_000n - 3_000n + 500n },
    other: { script: scriptOf(b0.payoutAddress), balance: 50_000n + 3_000n - 500n },
    feeRate: 2,
  });
});

test("a committee peer's backup refuses an update that hands the channel to someone without a certificate of its roster", async () => {
  const { mesh, a, b, channelId } = await twoCommittees();
  const [a0, a1, a2] = a as [MeshNode, MeshNode, MeshNode];
  const b1 = b[1]!;
  const replica = b1.treasury.state;
  const ids = [a0, a1, a2].map((n) => n.treasury.nodeId);
  const spec: ViewSpec = { treasury_id: ids[0]!, epoch: 1, members: [ids[1]!, ids[2]!, ids[0]!], chain: 2 };
  const key = (n: MeshNode) => hexToBytes(n.treasury.state.identityKey);
  const vote = (n: MeshNode, s: ViewSpec) => ({ node_id: n.treasury.nodeId, sig: signVote(s, key(n)) });
  const stranger = (await mesh.committee(['x0', 'x1', 'x2'])).map((n) => n);
  const xs = stranger.map((n) => n.treasury.nodeId);
  const xSpec: ViewSpec = { treasury_id: xs[0]!, epoch: 1, members: xs, chain: 3 };
  const rebound = (peerId: string, view?: object) => {
    const body = replicaOf(replica, replica.committee!.seq + 1);
    const ch = body.channels[channelId]!;
    body.channels[channelId] = { ...ch, peerId, peerRoster: { ...ch.peerRoster!, ...(view ? { view } : {}) } as never };
    return body;
  };
  const cases: Array<[string, ReturnType<typeof rebound>]> = [
    ['another peer, no certificate', rebound(xs[0]!)],
    ['a member, no certificate', rebound(ids[1]!)],
    ['a member, one vote', rebound(ids[1]!, { ...spec, votes: [vote(a1, spec)] })],
    [
      'a stranger committee certifying itself',
      rebound(xs[0]!, { ...xSpec, votes: stranger.map((n) => vote(n, xSpec)) }),
    ],
    [
      'a certificate naming another member first',
      rebound(ids[2]!, { ...spec, votes: [vote(a1, spec), vote(a2, spec)] }),
    ],
  ];
  for (const [why, body] of cases) assert.equal(checkUpdate(replica, body)?.code, 'channel_changed', why);
  assert.equal(checkUpdate(replica, rebound(ids[1]!, { ...spec, votes: [vote(a1, spec), vote(a2, spec)] })), null);
});

test('a promotion racing a settlement: the view changes, the signed settlement stands and the new primary pays nothing beyond it', async () => {
  const { mesh, p, b1, b2, q, ch } = await setup();
  await payAndWait(p, ch, [4_000]);
  await payAndWait(q, ch, [1_000]);
  mesh.crash('p');
  // b2 settles with b1's signature while both are about to suspect the primary.
  const settling = b2.treasury.settle(ch, 2);
  await waitFor(() => committeeOf(b1.treasury).role === 'primary' && committeeOf(b2.treasury).epoch === 1, WAIT_MS);
  const r = await settling;
  assert.equal(b1.treasury.state.committee!.signed[ch], r.txid, 'b1 signed the same settlement');
  const tx = Transaction.fromHex(r.tx_hex!);
  const paid = new Map(tx.outs.map((o) => [baddress.fromOutputScript(o.script, NETWORK), BigInt(o.value)]));
  assert.equal(paid.get(q.payoutAddress), 50_000n + 4_000n - 1_000n);
  assert.equal(paid.get(p.payoutAddress), 100_000n - 4_000n + 1_000n - BigInt(r.fee_sat));
  // The new primary holds the channel closed at the signed totals and pays no more on it.
  const res = await b1.treasury.pay([{ channel_id: ch, amount_sat: 100 }]);
  assert.equal(res[0]!.ok, false);
  assert.equal((res[0] as { code: string }).code, 'channel_closed');
  assert.equal(b1.treasury.channel(ch).total_sent_sat, '4000');
});

test('a partition around the primary heals: what it did alone is never released, the peer follows the new view, nothing counts twice', async () => {
  const { mesh, p, b1, b2, q, ch } = await setup();
  await payAndWait(p, ch, [1_000]);
  await payAndWait(q, ch, [100]);
  // p loses its backups but keeps its channel peer and keeps running.
  mesh.unlink('p', 'b1');
  mesh.unlink('p', 'b2');
  mesh.unlink('b1', 'b2');
  await mesh.link('b2', 'b1');
  await p.treasury.pay([{ channel_id: ch, amount_sat: 5_000 }]).catch(() => undefined);
  await q.treasury.pay([{ channel_id: ch, amount_sat: 300 }]);
  await waitFor(() => committeeOf(b1.treasury).role === 'primary' && committeeOf(b2.treasury).epoch === 1, WAIT_MS);
  assert.equal(q.treasury.channel(ch).total_received_sat, '1000', "p's lone payment never reached q");
  assert.equal(committeeOf(p.treasury).role, 'primary', 'p does not know yet');
  // q's host finds the new primary; the channel follows it and q's payment made to p during the partition counts once.
  await mesh.link('b1', 'q');
  await waitFor(() => q.treasury.state.channels[ch]!.peerId === b1.treasury.nodeId, WAIT_MS);
  await waitFor(() => q.treasury.channel(ch).total_acked_sat === '400', WAIT_MS);
  assert.equal(b1.treasury.channel(ch).total_received_sat, '400');
  // The partition heals: p adopts the view, drops its channel peer, and takes the replicated state over its own.
  await mesh.link('p', 'b1');
  await mesh.link('p', 'b2');
  await waitFor(() => committeeOf(p.treasury).epoch === 1 && committeeOf(p.treasury).role === 'backup', WAIT_MS);
  // (The mesh's host does not pass a close on to the other side: p's end of the session is what shows it.)
  assert.ok(!p.treasury.info().peers.includes(q.treasury.nodeId), 'p ended its session with q');
  await payAndWait(b1, ch, [2_000]);
  await waitFor(() => p.treasury.channel(ch).total_sent_sat === '3000', WAIT_MS);
  assert.equal(p.treasury.channel(ch).total_received_sat, '400');
  assert.equal(q.treasury.channel(ch).total_received_sat, '3000');
  assert.equal(q.treasury.channel(ch).total_sent_sat, '400');
});
