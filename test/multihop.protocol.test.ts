/**
 * Multi-hop payments at the protocol level: lines of in-process treasuries (real signatures, real
 * transactions, a fake chain), linked by in-memory wires that can be cut. The real-process version, with
 * the embedded regtest chain and settlements on chain, is multihop.e2e.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Transaction } from 'bitcoinjs-lib';
import { gossip, line, Mesh, payUntilMiddleCommitted, type Funder, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { TreasuryError } from '../src/enclave/treasury/errors.ts';
import {
  buildDepositScript,
  completePathAsPayer,
  pathFullySigned,
  planPathSettlement,
  signPathInputs,
  verifyDepositSpend,
} from '../src/enclave/treasury/transactions.ts';
import { publicKeyOf, randomPrivateKey } from '../src/crypto/secp256k1.ts';
import { bytesToHex, hexToBytes } from '../enclave-sim/encoding.ts';
import { decodeState, localBalance, type MhPayment } from '../src/enclave/treasury/state.ts';
import { findRoute } from '../src/enclave/treasury/routing.ts';
import { startTestChain } from './helpers/chain.ts';
import { prng as rng, testSeed } from './helpers/seeded.ts';

/** Each node's balance on each of its channels, as [node][channel] → sat. */
function balances(nodes: MeshNode[], channels: string[]): Array<Record<string, bigint>> {
  return nodes.map((n) =>
    Object.fromEntries(
      channels
        .filter((c) => n.treasury.state.channels[c])
        .map((c) => [c, localBalance(n.treasury.state, n.treasury.state.channels[c]!)]),
    ),
  );
}

function unlocked(nodes: MeshNode[]): boolean {
  return nodes.every((n) => Object.values(n.treasury.state.channels).every((c) => !c.lockedBy));
}

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

test('a destination that never answers: the payer times out, every lock is released, nothing moved', async () => {
  const { mesh, nodes, channels } = await line(3);
  const before = balances(nodes, channels);
  // carol's host drops everything from now on; bob still believes in the session
  mesh.mute('n2');
  await assert.rejects(
    nodes[0]!.treasury.payMultihop(nodes[2]!.treasury.nodeId, 1_000, 1),
    (e: TreasuryError) => e.code === 'timeout',
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
  mesh.onSeal = (name, bytes) => {
    if (name === 'n1' && phasesIn(bytes).includes('committed')) mesh.hold('n1', 'n2');
  };
  let first: boolean | null = null;
  void a.treasury.payMultihop(c.treasury.nodeId, 1_000, 1).then(
    () => {
      first = true;
    },
    () => {
      first = false;
    },
  );
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
  assert.equal(first, null, 'the first payment is still in flight');
  mesh.deliver('n1', 'n2');
  await waitFor(() => first !== null);
  assert.equal(first, true, 'the held payment completes');
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

test('the path settlement τ spends every deposit of the path with valid signatures and pays the new state', async () => {
  const { mesh, nodes, channels } = await line(3);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  let rec: MhPayment | undefined;
  mesh.onSeal = (name, bytes) => {
    const r = Object.values(decodeState(bytes).multihop ?? {})[0];
    if (name === 'n1' && r?.phase === 'committed') rec = r;
  };
  await a.treasury.payMultihop(c.treasury.nodeId, 5_000, 1);
  assert.ok(rec, 'bob sealed τ when he committed');
  assert.ok(['released', 'done'].includes(Object.values(b.treasury.state.multihop!)[0]!.phase));
  assert.equal(
    Object.values(b.treasury.state.multihop!)[0]!.tx,
    undefined,
    'a released payment keeps no τ in the sealed state',
  );
  const tx = Transaction.fromHex(rec!.tx!);
  const inputs = rec!.hops.flatMap((h) => h.inputs);
  assert.equal(tx.ins.length, 4);
  for (const d of inputs) {
    const { m, pubkeys } = { m: 1, pubkeys: [] as string[] };
    assert.ok(verifyDepositSpend(rec!.tx!, { ...d, m, pubkeys, privkeys: [] }), `input ${d.outpoint} validly signed`);
  }
  const paid = (script: string) =>
    tx.outs.filter((o) => Buffer.from(o.script).toString('hex') === script).reduce((s, o) => s + o.value, 0n);
  const chAB = b.treasury.state.channels[channels[0]!]!;
  const chBC = b.treasury.state.channels[channels[1]!]!;
  assert.equal(paid(chAB.myPayout), 105_000n + 95_000n, 'bob: +5,000 on ab, −5,000 on bc');
  assert.equal(paid(c.treasury.state.channels[channels[1]!]!.myPayout), 105_000n);
  const fee = 400_000n - tx.outs.reduce((s, o) => s + o.value, 0n);
  assert.equal(paid(a.treasury.state.channels[channels[0]!]!.myPayout), 95_000n - fee, 'alice pays the fee');
});

/** Moved on each channel of a 3-line (0 = old state, the amount = new state), after checking both ends agree. */
function outcome(nodes: MeshNode[], channels: string[], before: Array<Record<string, bigint>>): bigint[] {
  const now = balances(nodes, channels);
  return channels.map((ch, i) => {
    const payer = nodes[i]!.treasury.channel(ch);
    const payee = nodes[i + 1]!.treasury.channel(ch);
    assert.equal(payer.local_balance_sat, payee.remote_balance_sat, `both ends of channel ${i} agree`);
    assert.equal(payer.remote_balance_sat, payee.local_balance_sat, `both ends of channel ${i} agree`);
    return before[i]![ch]! - now[i]![ch]!;
  });
}

const CRASHES: Array<[string, string, 'locked' | 'signed' | 'committed' | 'released' | 'done']> = [
  ['bob (intermediary)', 'n1', 'locked'],
  ['bob (intermediary)', 'n1', 'signed'],
  ['bob (intermediary)', 'n1', 'committed'],
  ['bob (intermediary)', 'n1', 'released'],
  ['bob (intermediary)', 'n1', 'done'],
  ['alice (payer)', 'n0', 'locked'],
  ['alice (payer)', 'n0', 'committed'],
  ['alice (payer)', 'n0', 'done'],
  ['carol (destination)', 'n2', 'signed'],
  ['carol (destination)', 'n2', 'released'],
  ['carol (destination)', 'n2', 'done'],
];

for (const [who, victim, phase] of CRASHES) {
  test(`crash of ${who} right after sealing "${phase}", restart from the sealed state: every channel ends all old or all new`, async () => {
    const { mesh, nodes, channels } = await line(3);
    const before = balances(nodes, channels);
    let fired = false;
    mesh.onSeal = (name, bytes) => {
      if (fired || name !== victim) return;
      if (Object.values(decodeState(bytes).multihop ?? {}).some((r) => r.phase === phase)) {
        fired = true;
        mesh.crash(victim); // the seal is durable; nothing it covers leaves the node
      }
    };
    let paid: boolean | null = null;
    void nodes[0]!.treasury.payMultihop(nodes[2]!.treasury.nodeId, 1_000, 1).then(
      () => {
        paid = true;
      },
      () => {
        paid = false;
      },
    );
    await waitFor(() => fired);
    mesh.onSeal = undefined;
    await mesh.restart(victim, victim === 'n1' ? ['n0', 'n2'] : ['n1']);
    const live = () => nodes.map((n) => mesh.get(n.name));
    await waitFor(
      () =>
        unlocked(live()) &&
        live().every((n) =>
          Object.values(n.treasury.state.multihop ?? {}).every((r) => r.phase === 'done' || r.phase === 'aborted'),
        ),
      8_000,
    );
    const moved = outcome(live(), channels, before);
    assert.ok(
      (moved[0] === 0n && moved[1] === 0n) || (moved[0] === 1_000n && moved[1] === 1_000n),
      `all old or all new: ${moved}`,
    );
    if (victim !== 'n0') {
      await waitFor(() => paid !== null);
      assert.equal(paid, moved[0] === 1_000n, 'the payer was told the outcome');
    }
    if (phase === 'committed' || phase === 'released' || phase === 'done')
      assert.equal(moved[0], 1_000n, 'after a commit the payment completes');
  });
}

test('bob committed, carol never hears of it: bob settles with τ, which pays every channel of the path in the new state', async () => {
  const { mesh, nodes, channels } = await line(3);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  const { paying } = await payUntilMiddleCommitted(mesh, [a, b, c], 2_000, 'onward');
  // a direct payment or a deposit change meets the lock
  const [busy] = await b.treasury.pay([{ channel_id: channels[0]!, amount_sat: 1 }]);
  assert.equal(busy!.ok ? null : busy!.code, 'channel_busy');
  const rec = structuredClone(Object.values(b.treasury.state.multihop!)[0]!);
  const s = await b.treasury.settle(channels[0]!, 1);
  assert.equal(s.txid, rec.txid, 'bob settles with τ');
  assert.equal(s.local_balance_sat, '102000', 'bob is paid the new state on the channel he settles');
  assert.equal(rec.hops.flatMap((h) => h.inputs).length, 4);
  assert.ok(
    pathFullySigned(
      s.tx_hex!,
      rec.hops.flatMap((h) => h.inputs),
    ),
  );
  // nothing closes until τ is seen on chain (should an old settlement win the race instead, it decides)
  assert.equal(b.treasury.channel(channels[1]!).status, 'open');
  await b.treasury.spentOnChain(channels[0]!, s.tx_hex!); // bob's host sees τ in the mempool
  assert.equal(b.treasury.channel(channels[1]!).status, 'closed', "τ closes both of bob's channels");
  assert.equal(b.treasury.channel(channels[1]!).settlement_txid, s.txid);
  await a.treasury.spentOnChain(channels[0]!, s.tx_hex!); // so does alice's
  await paying; // the new state
  // carol, who never got the commit, sees τ spend her channel's deposits on chain
  await c.treasury.spentOnChain(channels[1]!, s.tx_hex!);
  assert.equal(c.treasury.channel(channels[1]!).settlement_txid, s.txid);
  assert.ok(unlocked(nodes));
  assert.deepEqual(balances(nodes, channels), [
    { [channels[0]!]: 98_000n },
    { [channels[0]!]: 102_000n, [channels[1]!]: 98_000n },
    { [channels[1]!]: 102_000n },
  ]);
  // and the transaction pays exactly that (alice pays the fee)
  const tx = Transaction.fromHex(s.tx_hex!);
  const paid = (n: MeshNode, ch: string) =>
    tx.outs
      .filter((o) => Buffer.from(o.script).toString('hex') === n.treasury.state.channels[ch]!.myPayout)
      .reduce((x, o) => x + o.value, 0n);
  assert.equal(paid(b, channels[0]!), 200_000n);
  assert.equal(paid(c, channels[1]!), 102_000n);
});

test('bob committed, carol (not committed) settles the old state: τ can never confirm, bob and then alice fall back to the old state', async () => {
  const { mesh, nodes, channels } = await line(3);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  const before = balances(nodes, channels);
  mesh.onSeal = (name, bytes) => {
    if (name === 'n1' && Object.values(decodeState(bytes).multihop ?? {}).some((r) => r.phase === 'committed'))
      mesh.block('n1', 'n2');
  };
  let paid: boolean | null = null;
  void a.treasury.payMultihop(c.treasury.nodeId, 2_000, 1).then(
    () => {
      paid = true;
    },
    () => {
      paid = false;
    },
  );
  await waitFor(() => Object.values(b.treasury.state.multihop ?? {}).some((r) => r.phase === 'committed'));
  mesh.onSeal = undefined;
  const sc = await c.treasury.settle(channels[1]!, 1);
  assert.equal(sc.local_balance_sat, '100000', 'carol settles what she had');
  await waitFor(() => b.treasury.channel(channels[1]!).status === 'closed');
  assert.ok(!b.treasury.state.channels[channels[0]!]!.lockedBy, 'bob knows the old state won');
  assert.equal(Object.values(b.treasury.state.multihop!)[0]!.phase, 'aborted');
  // bob settles his other channel in the old state; alice, committed, learns from bob's totals that it is the old one
  const sb = await b.treasury.settle(channels[0]!, 1);
  assert.equal(sb.local_balance_sat, '100000');
  await waitFor(() => paid !== null);
  assert.equal(paid, false);
  assert.ok(unlocked(nodes));
  assert.deepEqual(balances(nodes, channels), before);
});

test('a committed hop that learns only from the chain: an old-state spend means old, a new-state one new', async () => {
  for (const carolState of ['old', 'new'] as const) {
    const { mesh, nodes, channels } = await line(3);
    const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
    const before = balances(nodes, channels);
    // old: carol never gets the commit; new: carol commits and releases, but her release never reaches bob
    mesh.onSeal = (name, bytes) => {
      const phase = Object.values(decodeState(bytes).multihop ?? {})[0]?.phase;
      if (carolState === 'old' && name === 'n1' && phase === 'committed') {
        mesh.block('n1', 'n2');
        mesh.block('n2', 'n1');
      }
      if (carolState === 'new' && name === 'n2' && phase === 'released') {
        mesh.block('n1', 'n2');
        mesh.block('n2', 'n1');
      }
    };
    let paid: boolean | null = null;
    void a.treasury.payMultihop(c.treasury.nodeId, 3_000, 1).then(
      () => {
        paid = true;
      },
      () => {
        paid = false;
      },
    );
    await waitFor(
      () =>
        Object.values(b.treasury.state.multihop ?? {}).some((r) => r.phase === 'committed') &&
        (carolState === 'old' || Object.values(c.treasury.state.multihop ?? {}).some((r) => r.phase === 'released')),
    );
    mesh.onSeal = undefined;
    const sc = await c.treasury.settle(channels[1]!, 1);
    assert.equal(sc.local_balance_sat, carolState === 'old' ? '100000' : '103000');
    await b.treasury.spentOnChain(channels[1]!, sc.tx_hex!);
    assert.equal(Object.values(b.treasury.state.multihop!)[0]!.phase, carolState === 'old' ? 'aborted' : 'released');
    if (carolState === 'new') {
      await waitFor(() => paid !== null);
      assert.equal(paid, true, 'bob released, and told alice');
    } else {
      await b.treasury.settle(channels[0]!, 1);
      await waitFor(() => paid !== null);
      assert.equal(paid, false);
    }
    await waitFor(() => unlocked(nodes));
    const moved = before[0]![channels[0]!]! - balances(nodes, channels)[0]![channels[0]!]!;
    assert.equal(moved, carolState === 'old' ? 0n : 3_000n);
    const bobNow = balances(nodes, channels)[1]!;
    assert.equal(bobNow[channels[0]!]! + bobNow[channels[1]!]!, 200_000n, 'bob neither gains nor loses');
  }
});

test('τ on a validating regtest chain: accepted, mined, paying every channel of the path its new state', async () => {
  const chain = await startTestChain();
  try {
    // deposits funded for real on the embedded chain; the treasuries' chain look-ups see those transactions
    const { mesh, nodes, channels } = await line(3, 100_000n, async (mesh, name, value) => {
      const t = mesh.get(name).treasury;
      const dep = await t.newDeposit();
      const f = await chain.faucet.fund(dep.address, value);
      await chain.faucet.mine(1);
      mesh.chain.txs.set(f.txid, { hex: f.hex, confirmations: 1, spent: new Set() });
      await t.depositFunded(dep.deposit_id, f.txid, f.vout);
      return dep.deposit_id;
    });
    const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
    const { paying } = await payUntilMiddleCommitted(mesh, [a, b, c], 2_000, 'onward');
    const s = await b.treasury.settle(channels[0]!, 1);
    assert.equal(await chain.rpc.sendRawTransaction(s.tx_hex!), s.txid);
    await chain.faucet.mine(1);
    const raw = await chain.rpc.call<{ hex: string; confirmations: number }>('getrawtransaction', [s.txid, true]);
    assert.ok(raw.confirmations >= 1, 'τ is mined');
    // each host's watcher shows its enclave the spend of its channels' deposits
    await b.treasury.spentOnChain(channels[0]!, raw.hex);
    await a.treasury.spentOnChain(channels[0]!, raw.hex);
    await paying;
    assert.ok(unlocked([a, b]));
    const tx = Transaction.fromHex(raw.hex);
    assert.equal(tx.ins.length, 4, 'every deposit of both channels');
    const paid = (n: MeshNode, ch: string) =>
      tx.outs
        .filter((o) => Buffer.from(o.script).toString('hex') === n.treasury.state.channels[ch]!.myPayout)
        .reduce((x, o) => x + o.value, 0n);
    assert.equal(paid(b, channels[0]!), 102_000n + 98_000n, 'bob: +2,000 from alice, −2,000 to carol, in one output');
    assert.equal(paid(c, channels[1]!), 102_000n);
    const fee = 400_000n - tx.outs.reduce((x, o) => x + o.value, 0n);
    assert.ok(fee > 0n);
    assert.equal(paid(a, channels[0]!), 98_000n - fee, 'alice, the payer, pays the fee');
    // carol, who never got the commit, closes her channel when her host shows her τ on chain
    await c.treasury.spentOnChain(channels[1]!, raw.hex);
    assert.equal(c.treasury.channel(channels[1]!).settlement_txid, s.txid);
    assert.equal(c.treasury.channel(channels[1]!).local_balance_sat, '102000');
  } finally {
    await chain.close();
  }
});

test('committees take no part: a committee refuses to pay or to be paid through a path, nothing locked', async () => {
  const mesh = new Mesh();
  const [p] = await mesh.committee(['p', 'p1']);
  const x = await mesh.add('x');
  await mesh.link('x', 'p');
  const dx = await mesh.deposit('x', 50_000n);
  const dp = await mesh.deposit('p', 50_000n);
  const ch = await x.treasury.openChannel(p!.treasury.nodeId, x.payoutAddress);
  await x.treasury.addDeposit(ch.channel_id, dx);
  await p!.treasury.addDeposit(ch.channel_id, dp);
  await assert.rejects(
    p!.treasury.payMultihop(x.treasury.nodeId, 1_000, 1),
    (e: TreasuryError) => e.code === 'multihop_unsupported',
  );
  await assert.rejects(
    x.treasury.payMultihop(p!.treasury.nodeId, 1_000, 1),
    (e: TreasuryError) => e.code === 'multihop_unsupported',
  );
  await waitFor(() => unlocked([x, p!]));
  assert.equal(x.treasury.channel(ch.channel_id).local_balance_sat, '50000');
});

test('a committed hop settles with τ while an old-state settlement wins the race to the chain: the old state decides, nothing is stuck', async () => {
  const { mesh, nodes, channels } = await line(3);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  const before = balances(nodes, channels);
  const { outcome: paid } = await payUntilMiddleCommitted(mesh, [a, b, c], 2_000);
  const old = await c.treasury.settle(channels[1]!, 1); // carol, not committed: the old state
  const tau = await b.treasury.settle(channels[0]!, 1); // bob, committed, whose host has not seen carol's yet
  assert.notEqual(tau.txid, old.txid);
  assert.equal(b.treasury.channel(channels[0]!).status, 'open', 'τ is only broadcast: nothing closed yet');
  // carol's settlement is the one the chain took; bob's host shows it to his enclave
  await b.treasury.spentOnChain(channels[1]!, old.tx_hex!);
  assert.equal(Object.values(b.treasury.state.multihop!)[0]!.phase, 'aborted');
  await waitFor(() => paid() !== null); // alice, committed, follows bob's abort from downstream
  assert.equal(paid(), false);
  const sb = await b.treasury.settle(channels[0]!, 1); // and bob's other channel settles in the old state
  assert.equal(sb.local_balance_sat, '100000');
  assert.ok(unlocked(nodes));
  assert.deepEqual(balances(nodes, channels), before);
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

test("the payer's last check: it signs the inputs it holds keys for itself and verifies only the others", () => {
  const key = () => bytesToHex(randomPrivateKey());
  const deposit = (priv: string, n: number) => {
    const { witnessScript } = buildDepositScript(1, [bytesToHex(publicKeyOf(hexToBytes(priv)))]);
    return { priv, input: { outpoint: `${String(n).repeat(64).slice(0, 64)}:0`, value: 100_000n, witnessScript } };
  };
  // Channel 0: the payer's deposit and the hop's (whose key the payer was handed); channel 1: two it has no key for.
  const [d0, d1, d2, d3] = [deposit(key(), 1), deposit(key(), 2), deposit(key(), 3), deposit(key(), 4)];
  const inputs = [d0, d1, d2, d3].map((d) => d.input);
  const script = (n: number) => `0014${String(n).repeat(40).slice(0, 40)}`;
  const plan = planPathSettlement({
    inputs,
    outputs: [
      { script: script(1), value: 190_000n },
      { script: script(2), value: 210_000n },
    ],
    payerScript: script(1),
    feeRate: 1,
  });
  const keysOf = (ds: Array<{ priv: string; input: { outpoint: string } }>) => (o: string) => {
    const d = ds.find((x) => x.input.outpoint === o);
    return d ? { m: 1, privkeys: [d.priv] } : null;
  };
  /** `txHex` with one byte of input `i`'s signature flipped. */
  const corrupt = (txHex: string, i: number) => {
    const tx = Transaction.fromHex(txHex);
    const w = tx.ins[i]!.witness.map((x) => Uint8Array.from(x));
    const sig = w.find((x) => x.length >= 70 && x.length <= 73)!;
    sig[10]! ^= 1;
    tx.setWitness(i, w);
    return tx.toHex();
  };
  const allSigned = signPathInputs(plan.spend.tx.toHex(), inputs, keysOf([d0, d1, d2, d3]));
  assert.ok(pathFullySigned(allSigned, inputs));
  // A hop put a bad signature on a channel-0 input: the payer's own signature replaces it.
  const badOwn = corrupt(allSigned, 0);
  assert.equal(pathFullySigned(badOwn, inputs), false);
  const complete = completePathAsPayer(badOwn, inputs, keysOf([d0, d1]));
  assert.ok(complete && pathFullySigned(complete, inputs), 'complete and valid');
  assert.equal(Transaction.fromHex(complete).getId(), plan.txid, 'same τ (witnesses are not in the txid)');
  // A bad signature on an input the payer cannot sign: refused.
  assert.equal(completePathAsPayer(corrupt(allSigned, 3), inputs, keysOf([d0, d1])), null);
  // Missing witnesses downstream: refused too.
  assert.equal(completePathAsPayer(plan.spend.tx.toHex(), inputs, keysOf([d0, d1])), null);
});

// ───────────── τ handed to a host must not outlive its payment (issue #15) ─────────────

const phasesIn = (bytes: Uint8Array) => Object.values(decodeState(bytes).multihop ?? {}).map((r) => r.phase);
const recOf = (n: MeshNode) => Object.values(n.treasury.state.multihop ?? {})[0]!;

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
  mesh.onSeal = (name, bytes) => {
    if (name === 'n1' && phasesIn(bytes).includes('released')) mesh.hold('n1', 'n0');
  };
  const paying = a.treasury.payMultihop(c.treasury.nodeId, 2_000, 1);
  await waitFor(() => mesh.holding('n1', 'n0') > 0 && recOf(a).phase === 'committed');
  mesh.onSeal = undefined;
  const tau = await a.treasury.settle(channels[0]!, 1);
  assert.equal(tau.txid, recOf(a).txid, 'alice, committed, hands out τ');
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
  mesh.onSeal = (name, bytes) => {
    if (name === 'n2' && phasesIn(bytes).includes('released')) mesh.hold('n2', 'n1');
  };
  const paying = a.treasury.payMultihop(c.treasury.nodeId, 2_000, 1);
  paying.catch(() => undefined);
  await waitFor(() => mesh.holding('n2', 'n1') > 0 && recOf(b).phase === 'committed');
  mesh.onSeal = undefined;
  const tau = await b.treasury.settle(channels[1]!, 1);
  assert.equal(tau.txid, recOf(b).txid, 'bob, committed, hands out τ');
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
  mesh.onSeal = (name, bytes) => {
    if (name === 'n0' && phasesIn(bytes).some((p) => p === 'released' || p === 'done')) mesh.hold('n0', 'n1');
  };
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
  mesh.onSeal = (name, bytes) => {
    if (name === 'n1' && phasesIn(bytes).includes('released')) mesh.hold('n1', 'n0');
  };
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
  mesh.onSeal = (name, bytes) => {
    if (name === 'n0' && phasesIn(bytes).includes('done')) mesh.hold('n0', 'n1');
  };
  await a.treasury.payMultihop(c.treasury.nodeId, 1_000, 1);
  mesh.onSeal = undefined;
  assert.equal(recOf(b).phase, 'released');
  b.treasury.multihop.peerPaidOnLocked(b.treasury.state.channels[channels[1]!]!, c.treasury.nodeId);
  assert.equal(recOf(b).phase, 'released', 'carol is downstream: she cannot have been unlocked before bob');
  b.treasury.multihop.peerPaidOnLocked(b.treasury.state.channels[channels[0]!]!, a.treasury.nodeId);
  assert.equal(recOf(b).phase, 'done');
  await b.treasury.commit();
  await waitFor(() => recOf(c).phase === 'done', 5_000); // bob passed the unlock on
  mesh.deliver('n0', 'n1');
  await waitFor(() => unlocked(nodes));
});

test('a released hop whose own settlement fails keeps its lock: the channel cannot move while τ may be held upstream', async () => {
  const { mesh, nodes, channels } = await line(3);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  mesh.onSeal = (name, bytes) => {
    if (name === 'n1' && phasesIn(bytes).includes('released')) mesh.hold('n1', 'n0');
  };
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
  let paid: boolean | null = null;
  void a.treasury.payMultihop(c.treasury.nodeId, 2_000, 1).then(
    () => {
      paid = true;
    },
    () => {
      paid = false;
    },
  );
  await waitFor(() => Object.values(b.treasury.state.multihop ?? {})[0]?.phase === 'committed');
  mesh.onSeal = undefined;
  const tau = await b.treasury.settle(channels[0]!, 1); // bob's host takes τ
  const old = await c.treasury.settle(channels[1]!, 1); // carol, never committed, settles what she had (her host may never broadcast it)
  assert.equal(old.local_balance_sat, '100000');
  await waitFor(() => b.treasury.channel(channels[1]!).status === 'closed');
  assert.equal(recOf(b).phase, 'committed', "the peer's word does not decide while τ is out");
  const [p] = await b.treasury.pay([{ channel_id: channels[0]!, amount_sat: 1_000 }]);
  assert.equal(p!.ok ? 'accepted' : p!.code, 'channel_busy', 'ab stays frozen: τ may still confirm');
  assert.equal(paid, null);
  // the chain shows carol's settlement: τ can never confirm; the old state decides everywhere
  await b.treasury.spentOnChain(channels[1]!, old.tx_hex!);
  assert.equal(recOf(b).phase, 'aborted');
  await waitFor(() => paid !== null);
  assert.equal(paid, false);
  assert.ok(unlocked([a, b]));
  assert.deepEqual(balances(nodes, channels), before);
  void tau;
});

test('a host that shows its enclave τ without broadcasting it cannot unlock the rest of the path', async () => {
  const { mesh, nodes, channels } = await line(4);
  const [a, x, b, c] = nodes as [MeshNode, MeshNode, MeshNode, MeshNode];
  mesh.onSeal = (name, bytes) => {
    if (name === 'n3' && phasesIn(bytes).includes('released')) mesh.hold('n3', 'n2');
  };
  let paid: boolean | null = null;
  void a.treasury.payMultihop(c.treasury.nodeId, 2_000, 1).then(
    () => {
      paid = true;
    },
    () => {
      paid = false;
    },
  );
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
  assert.equal(paid, null);
});
