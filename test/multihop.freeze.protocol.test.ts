// run-tests lane: in-process
/**
 * Multi-hop payments at the protocol level: τ handed to a host must not outlive its payment (issue #15).
 * Handing τ out is sealed first and freezes every channel τ spends until the chain decides; otherwise the
 * path channels move again only after the payer has dropped τ (the unlock wave). Same set-up as
 * multihop.protocol.test.ts (lines of in-process treasuries, wires that can be cut).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Transaction } from 'bitcoinjs-lib';
import { line, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { balances, phasesIn, recOf, txidIn, unlocked, watch, holdAfterSeal } from './helpers/multihop-views.ts';
import { TreasuryError } from '../src/enclave/treasury/errors.ts';
import { decodeState } from '../src/enclave/treasury/state.ts';

/**
 * What τ pays each node (its payout script; the payer's fee added back) against the sum of that node's
 * latest balances on the path channels, as the paid end of each channel sees them (it has applied the
 * payment; a hop still committed upstream has not, and takes τ's word for it).
 */
function tauAgainstViews(txHex: string, nodes: MeshNode[], channels: string[]) {
  const tx = Transaction.fromHex(txHex);
  const view = (i: number) => nodes[i + 1]!.treasury.channel(channels[i]!);
  const fee =
    channels.reduce((s, _ch, i) => s + BigInt(view(i).local_balance_sat) + BigInt(view(i).remote_balance_sat), 0n) -
    tx.outs.reduce((s, o) => s + o.value, 0n);
  return nodes.map((n, k) => {
    const script = n.treasury.state.channels[channels[Math.max(0, k - 1)]!]!.myPayout;
    const paid =
      tx.outs.filter((o) => Buffer.from(o.script).toString('hex') === script).reduce((s, o) => s + o.value, 0n) +
      (k === 0 ? fee : 0n);
    const latest =
      (k > 0 ? BigInt(view(k - 1).local_balance_sat) : 0n) +
      (k < channels.length ? BigInt(view(k).remote_balance_sat) : 0n);
    return { node: n.name, paid, latest };
  });
}

/** Direct payments on every path channel after the payment; returns which were accepted, once both ends agree. */
async function movePath(nodes: MeshNode[], channels: string[]): Promise<Array<string | true>> {
  const out: Array<string | true> = [];
  for (const [i, ch] of channels.entries()) {
    const [r] = await nodes[i]!.treasury.pay([{ channel_id: ch, amount_sat: 10_000 }]);
    out.push(r!.ok ? true : r!.code);
  }
  await waitFor(() =>
    channels.every(
      (ch, i) =>
        out[i] !== true ||
        (nodes[i + 1]!.treasury.channel(ch).total_received_sat === nodes[i]!.treasury.channel(ch).total_sent_sat &&
          nodes[i]!.treasury.channel(ch).total_acked_sat === nodes[i]!.treasury.channel(ch).total_sent_sat),
    ),
  );
  return out;
}

test("attack: the payer's host takes τ while alice is committed, lets the payment finish; the path cannot move on under τ", async () => {
  const { mesh, nodes, channels } = await line(3);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  // alice's host holds bob's release back (bob and carol have released)
  holdAfterSeal(mesh, 'n1', ['released'], 'n0');
  const paying = a.treasury.payMultihop(c.treasury.nodeId, 2_000, 1);
  await waitFor(() => mesh.holding('n1', 'n0') > 0 && recOf(a).phase === 'committed');
  mesh.onSeal = undefined;
  const tau = await a.treasury.settle(channels[0]!, 1);
  assert.equal(tau.txid, txidIn(recOf(a)), 'alice, committed, hands out τ');
  mesh.deliver('n1', 'n0');
  await paying; // the payment succeeded: every possible outcome is its new state
  const moved = await movePath(nodes, channels);
  const views = tauAgainstViews(tau.tx_hex!, nodes, channels);
  assert.deepEqual(
    views.map((v) => `${v.node} ${v.paid}`),
    views.map((v) => `${v.node} ${v.latest}`),
    `τ pays each node its latest balance (direct payments: ${JSON.stringify(moved)})`,
  );
  assert.deepEqual(moved, ['channel_busy', 'channel_busy'], 'the path channels stay frozen while τ is out');
  // the chain decides: τ seen spending the deposits closes every path channel at exactly those balances
  const before = balances(nodes, channels);
  await a.treasury.spentOnChain(channels[0]!, tau.tx_hex!);
  await b.treasury.spentOnChain(channels[0]!, tau.tx_hex!);
  await c.treasury.spentOnChain(channels[1]!, tau.tx_hex!);
  assert.deepEqual(balances(nodes, channels), before, 'the payment is not applied a second time');
  assert.ok(unlocked(nodes));
  for (const [i, ch] of channels.entries())
    for (const n of [nodes[i]!, nodes[i + 1]!]) assert.equal(n.treasury.channel(ch).status, 'closed');
});

test("attack: an intermediary's host takes τ while bob is committed, then lets the release through; the path cannot move on under τ", async () => {
  const { mesh, nodes, channels } = await line(3);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  holdAfterSeal(mesh, 'n2', ['released'], 'n1');
  const paying = a.treasury.payMultihop(c.treasury.nodeId, 2_000, 1);
  paying.catch(() => undefined);
  await waitFor(() => mesh.holding('n2', 'n1') > 0 && recOf(b).phase === 'committed');
  mesh.onSeal = undefined;
  const tau = await b.treasury.settle(channels[1]!, 1);
  assert.equal(tau.txid, txidIn(recOf(b)), 'bob, committed, hands out τ');
  mesh.deliver('n2', 'n1');
  await waitFor(() => recOf(b).phase === 'released');
  const moved = await movePath(nodes, channels);
  const views = tauAgainstViews(tau.tx_hex!, nodes, channels);
  assert.deepEqual(
    views.map((v) => `${v.node} ${v.paid}`),
    views.map((v) => `${v.node} ${v.latest}`),
    `τ pays each node its latest balance (direct payments: ${JSON.stringify(moved)})`,
  );
  assert.deepEqual(moved, ['channel_busy', 'channel_busy'], 'the path channels stay frozen while τ is out');
  assert.equal(recOf(a).phase, 'committed', 'bob never passes the release on: alice keeps her lock');
  // a frozen hop may still settle alone: the new state, which pays its channel what τ pays it
  const sb = await b.treasury.settle(channels[1]!, 1);
  assert.notEqual(sb.txid, tau.txid);
  assert.equal(sb.local_balance_sat, '98000');
});

test('unlock wave: the path channels take payments again only once the payer has released and said so down the path', async () => {
  const { mesh, nodes, channels } = await line(3);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  // what alice sends bob from her release on is held back
  holdAfterSeal(mesh, 'n0', ['released', 'done'], 'n1');
  await a.treasury.payMultihop(c.treasury.nodeId, 1_000, 1);
  mesh.onSeal = undefined;
  const [early] = await b.treasury.pay([{ channel_id: channels[1]!, amount_sat: 500 }]);
  assert.equal(
    early!.ok ? 'accepted' : early!.code,
    'channel_busy',
    'bob has not heard that the payer released: τ may still be held upstream',
  );
  mesh.deliver('n0', 'n1');
  await waitFor(() => unlocked(nodes));
  assert.deepEqual(
    nodes.map((n) => recOf(n).phase),
    ['done', 'done', 'done'],
  );
  const [late] = await b.treasury.pay([{ channel_id: channels[1]!, amount_sat: 500 }]);
  assert.ok(late!.ok);
  await waitFor(
    () => c.treasury.channel(channels[1]!).total_received_sat === b.treasury.channel(channels[1]!).total_sent_sat,
  );
  assert.equal(c.treasury.channel(channels[1]!).local_balance_sat, '101500');
});

test("a τ that shows up after its channels moved on is an ordinary settlement, not the payment's outcome again", async () => {
  const { mesh, nodes, channels } = await line(3);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  let tx: string | undefined;
  mesh.onSeal = (name, bytes) => {
    const r = Object.values(decodeState(bytes).multihop ?? {})[0];
    if (name === 'n1' && r?.phase === 'committed') tx = r.tx;
  };
  await a.treasury.payMultihop(c.treasury.nodeId, 1_000, 1);
  mesh.onSeal = undefined;
  await waitFor(() => unlocked(nodes));
  const [p] = await b.treasury.pay([{ channel_id: channels[1]!, amount_sat: 5_000 }]);
  assert.ok(p!.ok);
  await waitFor(
    () =>
      b.treasury.channel(channels[1]!).total_received_sat === c.treasury.channel(channels[1]!).total_sent_sat &&
      c.treasury.channel(channels[1]!).total_received_sat === b.treasury.channel(channels[1]!).total_sent_sat,
  );
  const before = balances(nodes, channels);
  // τ leaked (here: read from a sealed state) and mined later: the channels close, nothing is credited again
  await c.treasury.spentOnChain(channels[1]!, tx!);
  await b.treasury.spentOnChain(channels[1]!, tx!);
  assert.deepEqual(balances(nodes, channels), before);
  assert.equal(c.treasury.channel(channels[1]!).status, 'closed');
  assert.equal(
    b.treasury.channel(channels[0]!).status,
    'open',
    "bob's other channel is not closed on the payment's behalf",
  );
  for (const n of nodes) assert.ok(['done', 'released'].includes(recOf(n).phase));
});

test('the freeze is sealed before τ leaves: the payer crashed right after handing τ out stays frozen after its restart', async () => {
  const { mesh, nodes, channels } = await line(3);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  holdAfterSeal(mesh, 'n1', ['released'], 'n0');
  void a.treasury.payMultihop(c.treasury.nodeId, 2_000, 1).catch(() => undefined);
  await waitFor(() => mesh.holding('n1', 'n0') > 0 && recOf(a).phase === 'committed');
  mesh.onSeal = undefined;
  const tau = await a.treasury.settle(channels[0]!, 1);
  mesh.crash('n0'); // nothing more is sealed; bob's release, held back, is lost with the session
  mesh.deliver('n1', 'n0');
  const a2 = await mesh.restart('n0', ['n1']); // bob re-sends his release after the handshake
  await waitFor(() => recOf(a2).phase !== 'committed');
  assert.equal(recOf(a2).phase, 'released', 'the release applies the new state but does not unlock');
  const [p] = await a2.treasury.pay([{ channel_id: channels[0]!, amount_sat: 1_000 }]);
  assert.equal(p!.ok ? 'accepted' : p!.code, 'channel_busy');
  const [q] = await b.treasury.pay([{ channel_id: channels[1]!, amount_sat: 1_000 }]);
  assert.equal(q!.ok ? 'accepted' : q!.code, 'channel_busy');
  assert.equal(recOf(b).phase, 'released', 'no unlock came down the path');
  const views = tauAgainstViews(tau.tx_hex!, [a2, b, c], channels);
  assert.deepEqual(
    views.map((v) => v.paid),
    views.map((v) => v.latest),
  );
});

test("unlock overtaken: a payment from the upstream neighbour on a released hop's channel is its unlock; one from downstream is not", async () => {
  const { mesh, nodes, channels } = await line(3);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  holdAfterSeal(mesh, 'n0', ['done'], 'n1');
  await a.treasury.payMultihop(c.treasury.nodeId, 1_000, 1);
  mesh.onSeal = undefined;
  assert.equal(recOf(b).phase, 'released');
  b.treasury.multihop.peerPaidOnLocked(b.treasury.state.channels[channels[1]!]!);
  assert.equal(recOf(b).phase, 'released', 'carol is downstream: she cannot have been unlocked before bob');
  b.treasury.multihop.peerPaidOnLocked(b.treasury.state.channels[channels[0]!]!);
  assert.equal(recOf(b).phase, 'done');
  await b.treasury.commit();
  await waitFor(() => recOf(c).phase === 'done', 5_000); // bob passed the unlock on
  mesh.deliver('n0', 'n1');
  await waitFor(() => unlocked(nodes));
});

test('a released hop whose own settlement fails keeps its lock: the channel cannot move while τ may be held upstream', async () => {
  const { mesh, nodes, channels } = await line(3);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  holdAfterSeal(mesh, 'n1', ['released'], 'n0');
  void a.treasury.payMultihop(c.treasury.nodeId, 2_000, 1).catch(() => undefined);
  await waitFor(() => mesh.holding('n1', 'n0') > 0 && recOf(b).phase === 'released');
  mesh.onSeal = undefined;
  await assert.rejects(b.treasury.settle(channels[1]!, 1_000), (e: TreasuryError) => e.code === 'fee_exceeds_balance');
  const [p] = await b.treasury.pay([{ channel_id: channels[1]!, amount_sat: 1_000 }]);
  assert.equal(p!.ok ? 'accepted' : p!.code, 'channel_busy');
  mesh.deliver('n1', 'n0');
  await waitFor(() => unlocked(nodes));
});

test('τ out, and the peer only says it settled the old state: nothing unlocks until the chain shows that settlement', async () => {
  const { mesh, nodes, channels } = await line(3);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  const before = balances(nodes, channels);
  mesh.onSeal = (name, bytes) => {
    if (name === 'n1' && phasesIn(bytes).includes('committed')) mesh.block('n1', 'n2');
  };
  const paid = watch(a.treasury.payMultihop(c.treasury.nodeId, 2_000, 1));
  await waitFor(() => Object.values(b.treasury.state.multihop ?? {})[0]?.phase === 'committed');
  mesh.onSeal = undefined;
  const tau = await b.treasury.settle(channels[0]!, 1); // bob's host takes τ
  const old = await c.treasury.settle(channels[1]!, 1); // carol, never committed, settles what she had (her host may never broadcast it)
  assert.equal(old.local_balance_sat, '100000');
  await waitFor(() => b.treasury.channel(channels[1]!).status === 'closed');
  assert.equal(recOf(b).phase, 'committed', "the peer's word does not decide while τ is out");
  const [p] = await b.treasury.pay([{ channel_id: channels[0]!, amount_sat: 1_000 }]);
  assert.equal(p!.ok ? 'accepted' : p!.code, 'channel_busy', 'ab stays frozen: τ may still confirm');
  assert.equal(paid.ok, null);
  // the chain shows carol's settlement: τ can never confirm; the old state decides everywhere
  await b.treasury.spentOnChain(channels[1]!, old.tx_hex!);
  assert.equal(recOf(b).phase, 'aborted');
  await waitFor(() => paid.ok !== null);
  assert.equal(paid.ok, false);
  assert.ok(unlocked([a, b]));
  assert.deepEqual(balances(nodes, channels), before);
  void tau;
});

test('a host that shows its enclave τ without broadcasting it cannot unlock the rest of the path', async () => {
  const { mesh, nodes, channels } = await line(4);
  const [a, x, b, c] = nodes as [MeshNode, MeshNode, MeshNode, MeshNode];
  holdAfterSeal(mesh, 'n3', ['released'], 'n2');
  const paid = watch(a.treasury.payMultihop(c.treasury.nodeId, 2_000, 1));
  await waitFor(() => mesh.holding('n3', 'n2') > 0 && recOf(b).phase === 'committed');
  mesh.onSeal = undefined;
  const tau = await b.treasury.settle(channels[2]!, 1); // bob's host takes τ out of bob…
  await b.treasury.spentOnChain(channels[2]!, tau.tx_hex!); // …and tells bob the chain has it, keeping it for later
  assert.equal(b.treasury.channel(channels[1]!).status, 'closed', 'bob takes τ for the outcome');
  mesh.deliver('n3', 'n2');
  // a barrier: once x has bob's announcement of his closed channels, it has handled all bob sent before
  b.treasury.multihop.gossip();
  await waitFor(() => x.treasury.multihop.graph.get(b.treasury.nodeId)?.ann.channels.length === 0);
  // x and alice hold τ's channel a–x; nothing told them the chain decided: it stays frozen
  assert.equal(recOf(x).phase, 'committed');
  const [p] = await a.treasury.pay([{ channel_id: channels[0]!, amount_sat: 1_000 }]);
  assert.equal(p!.ok ? 'accepted' : p!.code, 'channel_busy');
  const [q] = await x.treasury.pay([{ channel_id: channels[0]!, amount_sat: 1_000 }]);
  assert.equal(q!.ok ? 'accepted' : q!.code, 'channel_busy');
  assert.equal(paid.ok, null);
});
