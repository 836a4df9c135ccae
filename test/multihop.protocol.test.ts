// run-tests lane: in-process
/**
 * Multi-hop payments at the protocol level: lines of in-process treasuries (real signatures, real
 * transactions, a fake chain), linked by in-memory wires that can be cut. This file: paying along a path,
 * routing and fees, refusals and timeouts, contention for locked channels, committees, gossip. Settling
 * while a payment holds the path is multihop.settlement.protocol.test.ts; τ handed to a host,
 * multihop.freeze.protocol.test.ts. The real-process version, with the embedded regtest chain and
 * settlements on chain, is multihop.e2e.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { line, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { balances, outcome, recOf, unlocked, watch, holdAfterSeal } from './helpers/multihop-views.ts';
import { TreasuryError } from '../src/enclave/treasury/errors.ts';
import { localBalance } from '../src/enclave/treasury/state.ts';
import { findRoute } from '../src/enclave/treasury/routing.ts';
import { prng as rng, testSeed } from './helpers/seeded.ts';

test('alice → bob → carol and back: every channel moves by exactly the amount, locks released', async () => {
  const { nodes, channels } = await line(3);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  const r = await a.treasury.payMultihop(c.treasury.nodeId, 1_000, 1);
  assert.deepEqual(r.route, [a.treasury.nodeId, b.treasury.nodeId, c.treasury.nodeId]);
  assert.equal(r.fee_sat, '0');
  await waitFor(() => unlocked(nodes));
  assert.deepEqual(balances(nodes, channels), [
    { [channels[0]!]: 99_000n },
    { [channels[0]!]: 101_000n, [channels[1]!]: 99_000n },
    { [channels[1]!]: 101_000n },
  ]);
  for (let i = 0; i < 20; i++) await c.treasury.payMultihop(a.treasury.nodeId, 100, 1);
  await waitFor(() => unlocked(nodes));
  assert.deepEqual(balances(nodes, channels), [
    { [channels[0]!]: 101_000n },
    { [channels[0]!]: 99_000n, [channels[1]!]: 101_000n },
    { [channels[1]!]: 99_000n },
  ]);
  // both ends of each channel agree, and the direct payment path still works afterwards
  const [p] = await a.treasury.pay([{ channel_id: channels[0]!, amount_sat: 10 }]);
  assert.ok(p!.ok);
  await waitFor(
    () => b.treasury.channel(channels[0]!).total_received_sat === a.treasury.channel(channels[0]!).total_sent_sat,
  );
  assert.equal(b.treasury.channel(channels[0]!).remote_balance_sat, a.treasury.channel(channels[0]!).local_balance_sat);
});

test('a 4-hop path with fees: each intermediary keeps exactly its fee, the payer pays amount + fees', async () => {
  const { mesh, nodes, channels } = await line(5);
  await nodes[1]!.treasury.setFees(10, 1_000); // 10 sat + 0.1 %
  await nodes[2]!.treasury.setFees(5, 0);
  await nodes[3]!.treasury.setFees(0, 10_000); // 1 %
  await waitFor(() => true);
  for (const n of nodes) n.treasury.multihop.gossip();
  await waitFor(() => nodes[0]!.treasury.multihop.graph.get(nodes[3]!.treasury.nodeId)?.ann.fee_ppm === 10_000);
  // 125 sat of fees is above the default limit for 10,000 sat (1 % + 10): the payer allows more here
  const r = await nodes[0]!.treasury.payMultihop(nodes[4]!.treasury.nodeId, 10_000, 1, 200);
  // n3 forwards 10,000 (fee 100), n2 forwards 10,100 (fee 5), n1 forwards 10,105 (fee 10 + 10)
  assert.deepEqual(r.amounts, ['10125', '10105', '10100', '10000']);
  assert.equal(r.fee_sat, '125');
  await waitFor(() => unlocked(nodes));
  const b = balances(nodes, channels);
  assert.equal(b[0]![channels[0]!], 100_000n - 10_125n);
  assert.equal(b[1]![channels[0]!]! + b[1]![channels[1]!]!, 200_000n + 20n);
  assert.equal(b[2]![channels[1]!]! + b[2]![channels[2]!]!, 200_000n + 5n);
  assert.equal(b[3]![channels[2]!]! + b[3]![channels[3]!]!, 200_000n + 100n);
  assert.equal(b[4]![channels[3]!], 110_000n);
  // an intermediary whose fee went up after the announcement refuses the payment, nothing moves
  await nodes[2]!.treasury.setFees(1_000, 0);
  await assert.rejects(
    nodes[0]!.treasury.payMultihop(nodes[4]!.treasury.nodeId, 10_000, 1, 200),
    (e: TreasuryError) => e.code === 'fee_insufficient' || e.code === 'peer_refused',
  );
  await waitFor(() => unlocked(nodes));
  assert.deepEqual(balances(nodes, channels), b);
  void mesh;
});

test('no route, unknown destination, not enough capacity: refused with their codes, nothing locked', async () => {
  const { mesh, nodes, channels } = await line(3);
  const lone = await mesh.add('lone');
  await assert.rejects(
    nodes[0]!.treasury.payMultihop(lone.treasury.nodeId, 1_000, 1),
    (e: TreasuryError) => e.code === 'unknown_destination',
  );
  await assert.rejects(
    nodes[0]!.treasury.payMultihop(nodes[2]!.treasury.nodeId, 150_000, 1),
    (e: TreasuryError) => e.code === 'insufficient_capacity',
  );
  // lone has a channel with n2, but n2's announcement says nothing of it until it gossips: then a route exists
  await mesh.link('n2', 'lone');
  const dl = await mesh.deposit('lone', 50_000n);
  const d2 = await mesh.deposit('n2', 50_000n);
  const ch = await lone.treasury.openChannel(nodes[2]!.treasury.nodeId, lone.payoutAddress);
  await lone.treasury.addDeposit(ch.channel_id, dl);
  await nodes[2]!.treasury.addDeposit(ch.channel_id, d2);
  for (const n of [...nodes, lone]) n.treasury.multihop.gossip();
  await waitFor(
    () =>
      nodes[0]!.treasury.multihop.graph.has(lone.treasury.nodeId) &&
      !!nodes[0]!.treasury.multihop.graph
        .get(nodes[2]!.treasury.nodeId)
        ?.ann.channels.some((c) => c.peer === lone.treasury.nodeId),
  );
  await nodes[0]!.treasury.payMultihop(lone.treasury.nodeId, 1_000, 1);
  await waitFor(() => unlocked([...nodes, lone]));
  assert.equal(localBalance(lone.treasury.state, lone.treasury.state.channels[ch.channel_id]!), 51_000n);
  assert.equal(localBalance(nodes[0]!.treasury.state, nodes[0]!.treasury.state.channels[channels[0]!]!), 99_000n);
});

test('routing: the cheapest path with capacity as a constraint and fees added backwards; each refusal has its code', () => {
  const id = (c: string) => `02${c.repeat(64)}`;
  const [A, B, C, D, E] = ['a', 'b', 'c', 'd', 'e'].map(id) as [string, string, string, string, string];
  const ann = (node: string, chans: Array<[string, bigint]>, fee_base = 0, fee_ppm = 0) => ({
    ann: {
      node,
      seq: 1,
      fee_base,
      fee_ppm,
      channels: chans.map(([peer, cap], i) => ({ ch: `${i}`.padStart(64, '0'), peer, cap: cap.toString() })),
    },
  });
  const graph = new Map([
    [
      B,
      ann(
        B,
        [
          [C, 1_000n],
          [A, 0n],
          [D, 50_000n],
        ],
        1,
        0,
      ),
    ],
    [C, ann(C, [[E, 1_000n]], 2, 0)],
    [D, ann(D, [[E, 50_000n]], 3, 0)],
    [E, ann(E, [])],
  ]);
  const local = [{ peer: B, cap: 100_000n }];
  // two paths of the same length: the cheaper one (C asks 2 sat, D 3)
  assert.deepEqual(findRoute({ self: A, dest: E, amount: 500n, graph, local }), {
    route: [A, B, C, E],
    amounts: [503n, 502n, 500n],
  });
  // C cannot carry 5,000: the dearer path with the capacity
  assert.deepEqual(findRoute({ self: A, dest: E, amount: 5_000n, graph, local }), {
    route: [A, B, D, E],
    amounts: [5_004n, 5_003n, 5_000n],
  });
  // equal fees: the path whose channel into the destination has more capacity
  const even = new Map(graph);
  even.set(C, ann(C, [[E, 1_000n]], 3, 0));
  assert.deepEqual(findRoute({ self: A, dest: E, amount: 500n, graph: even, local }), {
    route: [A, B, D, E],
    amounts: [504n, 503n, 500n],
  });
  const thin = new Map(graph);
  thin.set(D, ann(D, [[E, 400n]], 3, 0));
  assert.throws(
    () => findRoute({ self: A, dest: E, amount: 5_000n, graph: thin, local }),
    (e: TreasuryError) => e.code === 'insufficient_capacity',
  );
  assert.throws(
    () => findRoute({ self: A, dest: E, amount: 60_000n, graph, local }),
    (e: TreasuryError) => e.code === 'insufficient_capacity',
  );
  assert.throws(
    () => findRoute({ self: A, dest: id('f'), amount: 1n, graph, local }),
    (e: TreasuryError) => e.code === 'unknown_destination',
  );
  assert.throws(
    () => findRoute({ self: A, dest: E, amount: 1n, graph, local: [] }),
    (e: TreasuryError) => e.code === 'no_route',
  );
  // the fee limit: 3 sat allowed passes, 2 sat does not (the cheapest path costs 3)
  assert.deepEqual(findRoute({ self: A, dest: E, amount: 500n, graph, local, maxFee: 3n }).amounts[0], 503n);
  assert.throws(
    () => findRoute({ self: A, dest: E, amount: 500n, graph, local, maxFee: 2n }),
    (e: TreasuryError) => e.code === 'fee_limit_exceeded',
  );
});

test('routing by cost: a longer path of cheap hops beats a short one through a greedy hop', () => {
  const id = (c: string) => `02${c.repeat(64)}`;
  const [A, G, X, Y, E] = ['a', '9', 'c', 'd', 'e'].map(id) as [string, string, string, string, string];
  const ann = (node: string, chans: string[], fee_base: number) => ({
    ann: {
      node,
      seq: 1,
      fee_base,
      fee_ppm: 0,
      channels: chans.map((peer, i) => ({ ch: `${i}`.padStart(64, '0'), peer, cap: '1000000' })),
    },
  });
  const graph = new Map([
    [G, ann(G, [E], 60_000)],
    [X, ann(X, [Y], 1)],
    [Y, ann(Y, [E], 1)],
    [E, ann(E, [], 0)],
  ]);
  const local = [
    { peer: G, cap: 1_000_000n },
    { peer: X, cap: 1_000_000n },
  ];
  assert.deepEqual(findRoute({ self: A, dest: E, amount: 1_000n, graph, local }), {
    route: [A, X, Y, E],
    amounts: [1_002n, 1_001n, 1_000n],
  });
  // the only path left is the greedy one: refused under the limit, paid only when the payer allows it
  const greedy = new Map([
    [G, graph.get(G)!],
    [E, graph.get(E)!],
  ]);
  assert.throws(
    () => findRoute({ self: A, dest: E, amount: 1_000n, graph: greedy, local, maxFee: 20n }),
    (e: TreasuryError) => e.code === 'fee_limit_exceeded',
  );
  assert.equal(
    findRoute({ self: A, dest: E, amount: 1_000n, graph: greedy, local, maxFee: 60_000n }).amounts[0],
    61_000n,
  );
});

test("an intermediary announcing a 60,000 sat fee on a 1,000 sat payment is not paid: refused by the payer's enclave, nothing locked or moved", async () => {
  const { nodes, channels } = await line(3);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  await b.treasury.setFees(60_000, 0);
  await waitFor(() => a.treasury.multihop.graph.get(b.treasury.nodeId)?.ann.fee_base === 60_000);
  const before = balances(nodes, channels);
  await assert.rejects(
    a.treasury.payMultihop(c.treasury.nodeId, 1_000, 1),
    (e: TreasuryError) => e.code === 'fee_limit_exceeded',
  );
  await assert.rejects(
    a.treasury.payMultihop(c.treasury.nodeId, 1_000, 1, 59_999),
    (e: TreasuryError) => e.code === 'fee_limit_exceeded',
  );
  assert.ok(unlocked(nodes));
  assert.deepEqual(balances(nodes, channels), before);
  assert.deepEqual(a.treasury.multihop.view(), [], 'no payment was even started');
  // the payer may allow it explicitly
  const r = await a.treasury.payMultihop(c.treasury.nodeId, 1_000, 1, 60_000);
  assert.equal(r.fee_sat, '60000');
  await waitFor(() => unlocked(nodes));
  assert.equal(balances(nodes, channels)[0]![channels[0]!], before[0]![channels[0]!]! - 61_000n);
});

test('a destination that never answers: the payer times out (path_timeout: definite), every lock is released, nothing moved', async () => {
  const { mesh, nodes, channels } = await line(3);
  const before = balances(nodes, channels);
  // carol's host drops everything from now on; bob still believes in the session
  mesh.mute('n2');
  await assert.rejects(
    nodes[0]!.treasury.payMultihop(nodes[2]!.treasury.nodeId, 1_000, 1),
    // Not `timeout` (504: outcome unknown): the round aborted, every hop keeps the old state.
    (e: TreasuryError) => e.code === 'path_timeout',
  );
  await waitFor(() => unlocked([nodes[0]!, nodes[1]!]), 5_000);
  assert.deepEqual(balances(nodes, channels), before);
  // a dead destination seen as disconnected: bob refuses at once
  mesh.unmute('n2');
  mesh.kill('n2');
  await assert.rejects(
    nodes[0]!.treasury.payMultihop(nodes[2]!.treasury.nodeId, 1_000, 1),
    (e: TreasuryError) => e.code === 'peer_not_connected',
  );
  assert.ok(unlocked([nodes[0]!, nodes[1]!]));
  assert.deepEqual(balances(nodes, channels), before);
});

/** The seed of this file's random choices (TEST_SEED replays a run). */
const SEED = testSeed('multihop.protocol');
const random = rng(SEED);

test('contention, made certain: a payment held mid-path makes every other payment over its channels channel_busy, locally and at a remote hop; it still completes, totals move by exactly what succeeded', async () => {
  const { mesh, nodes, channels } = await line(4);
  const [a, b, c, d] = nodes as [MeshNode, MeshNode, MeshNode, MeshNode];
  const before = balances(nodes, channels);
  // bob's COMMIT to carol is held back: a–b and b–c are locked (no timer runs once signed and committed)
  holdAfterSeal(mesh, 'n1', ['committed'], 'n2');
  const first = watch(a.treasury.payMultihop(c.treasury.nodeId, 1_000, 1));
  await waitFor(() => mesh.holding('n1', 'n2') > 0);
  mesh.onSeal = undefined;
  assert.equal(recOf(c).phase, 'signed', 'carol holds b–c locked for the first payment');
  // the opposite direction: dave locks c–d, carol refuses his LOCK (her b–c is taken): a remote refusal
  await assert.rejects(
    d.treasury.payMultihop(a.treasury.nodeId, 500, 1),
    (e: TreasuryError) => e.code === 'channel_busy',
  );
  // the same direction: alice's own a–b is taken, refused before anything is sent
  await assert.rejects(
    a.treasury.payMultihop(d.treasury.nodeId, 200, 1),
    (e: TreasuryError) => e.code === 'channel_busy',
  );
  // a direct payment on a locked channel
  const [direct] = await b.treasury.pay([{ channel_id: channels[1]!, amount_sat: 50 }]);
  assert.equal(direct!.ok ? 'accepted' : direct!.code, 'channel_busy');
  assert.equal(first.ok, null, 'the first payment is still in flight');
  mesh.deliver('n1', 'n2');
  await waitFor(() => first.ok !== null);
  assert.equal(first.ok, true, 'the held payment completes');
  await waitFor(() => unlocked(nodes));
  assert.deepEqual(outcome(nodes, channels, before), [1_000n, 1_000n, 0n], 'only the first payment moved anything');
  // once unlocked, the refused payment goes through: totals move by exactly the two successes
  await d.treasury.payMultihop(a.treasury.nodeId, 500, 1);
  await waitFor(() => unlocked(nodes));
  assert.deepEqual(outcome(nodes, channels, before), [500n, 500n, -500n]);
  const now = balances(nodes, channels);
  assert.equal(
    now[1]![channels[0]!]! + now[1]![channels[1]!]!,
    before[1]![channels[0]!]! + before[1]![channels[1]!]!,
    'bob neither gains nor loses',
  );
  assert.equal(
    now[2]![channels[1]!]! + now[2]![channels[2]!]!,
    before[2]![channels[1]!]! + before[2]![channels[2]!]! + 1_000n,
    'carol: the 1,000 paid to her; the 500 she forwarded neither adds nor takes',
  );
});

test('two payments contending in opposite directions: no deadlock, each ends cleanly, balances match what succeeded', async () => {
  const { nodes, channels } = await line(3);
  const [a, , c] = nodes as [MeshNode, MeshNode, MeshNode];
  const attempt = async (from: MeshNode, to: MeshNode, amount: number) => {
    for (let i = 0; i < 50; i++) {
      try {
        await from.treasury.payMultihop(to.treasury.nodeId, amount, 1);
        return true;
      } catch (e) {
        if ((e as TreasuryError).code !== 'channel_busy') return false;
        await waitFor(() => unlocked(nodes)); // the other payment is over: try again
      }
    }
    return false;
  };
  let firstTryBusy = 0;
  let firstTryOk = 0;
  for (let round = 0; round < 10; round++) {
    // the seed picks which of the two starts first
    const order = random() < 0.5;
    const one = () =>
      a.treasury.payMultihop(c.treasury.nodeId, 300, 1).then(
        () => {
          firstTryOk++;
          return true;
        },
        (e: TreasuryError) => {
          assert.equal(e.code, 'channel_busy');
          firstTryBusy++;
          return false;
        },
      );
    const two = () =>
      c.treasury.payMultihop(a.treasury.nodeId, 200, 1).then(
        () => {
          firstTryOk++;
          return true;
        },
        (e: TreasuryError) => {
          assert.equal(e.code, 'channel_busy');
          firstTryBusy++;
          return false;
        },
      );
    const [x, y] = order
      ? await Promise.all([one(), two()])
      : await Promise.all([two(), one()]).then(([q, p]) => [p, q]);
    await waitFor(() => unlocked(nodes));
    if (!x) assert.ok(await attempt(a, c, 300));
    if (!y) assert.ok(await attempt(c, a, 200));
  }
  await waitFor(() => unlocked(nodes));
  console.log(
    `opposite-direction rounds: ${firstTryOk} first tries succeeded, ${firstTryBusy} were channel_busy and retried`,
  );
  const b = balances(nodes, channels);
  assert.equal(b[0]![channels[0]!], 100_000n - 1_000n);
  assert.equal(b[2]![channels[1]!], 100_000n + 1_000n);
  assert.equal(b[1]![channels[0]!]! + b[1]![channels[1]!]!, 200_000n, 'bob neither gains nor loses');
});

test('gossip: small capacity changes wait for the refresh interval; new channels, fees and big moves go out at once', async () => {
  const { nodes, channels } = await line(2);
  const [a, b] = nodes as [MeshNode, MeshNode];
  const seqSeenByB = () => b.treasury.multihop.graph.get(a.treasury.nodeId)!.ann.seq;
  const capSeenByB = () => b.treasury.multihop.graph.get(a.treasury.nodeId)!.ann.channels[0]!.cap;
  const pay = async (sat: number) => {
    await a.treasury.pay([{ channel_id: channels[0]!, amount_sat: sat }]);
  };
  // a barrier: a payment a sends after an announcement it may have made reaches b after it (one session,
  // strict order); once b has credited it, b has handled whatever a announced before
  const delivered = () =>
    waitFor(
      () => b.treasury.channel(channels[0]!).total_received_sat === a.treasury.channel(channels[0]!).total_sent_sat,
    );
  assert.equal(capSeenByB(), '100000');
  const first = seqSeenByB();
  await pay(1_000); // 1% of the announced capacity
  a.treasury.multihop.gossip();
  await pay(12_000); // 13% in all: over an eighth
  await delivered();
  assert.equal(seqSeenByB(), first, 'a small move is not re-announced yet');
  a.treasury.multihop.gossip();
  await waitFor(() => capSeenByB() === '87000');
  assert.ok(seqSeenByB() > first);
  const second = seqSeenByB();
  await pay(500);
  a.treasury.multihop.gossip();
  await pay(1);
  await delivered();
  assert.equal(seqSeenByB(), second, 'nor a second small one');
  a.treasury.multihop.capacityRefreshMs = 0; // the interval has passed
  a.treasury.multihop.gossip();
  await waitFor(() => capSeenByB() === '86499');
  a.treasury.multihop.capacityRefreshMs = 60_000;
  await pay(1);
  await a.treasury.setFees(10, 100); // a fee change goes out at once, with the capacity of the moment
  await waitFor(() => b.treasury.multihop.graph.get(a.treasury.nodeId)!.ann.fee_ppm === 100);
  assert.equal(capSeenByB(), '86498');
});
