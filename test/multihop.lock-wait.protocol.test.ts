// run-tests lane: in-process
/**
 * Rounds that share an intermediary's channel onward queue for it there (lock-queue.ts) instead of being
 * refused `channel_busy` at once; the wait is bounded, so crossing paths cannot deadlock. In-process
 * treasuries (helpers/treasury-mesh.ts), the hop's messages held back or let through by the test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fundedChannel, gossip, line, Mesh, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { holdAfterSeal, unlocked, watch } from './helpers/multihop-views.ts';
import type { TreasuryError } from '../src/enclave/treasury/errors.ts';
import { localBalance } from '../src/enclave/treasury/state.ts';
import { prng as rng, testSeed } from './helpers/seeded.ts';

/** x1 – hub – y, and x2 – hub: two payers whose paths to y share the hub's channel to y. */
async function star() {
  const mesh = new Mesh();
  const all: MeshNode[] = [];
  for (const name of ['x1', 'hub', 'y', 'x2']) all.push(await mesh.add(name));
  const [x1, hub, y, x2] = all as [MeshNode, MeshNode, MeshNode, MeshNode];
  for (const x of [x1, x2]) await fundedChannel(mesh, x, hub, 100_000n);
  await fundedChannel(mesh, hub, y, 100_000n);
  await gossip(
    mesh,
    all.map((n) => n.name),
  );
  return { mesh, x1, x2, hub, y, all };
}

/** The sum of every node's channel balances. */
const total = (nodes: MeshNode[]) =>
  nodes.reduce(
    (s, n) => s + Object.values(n.treasury.state.channels).reduce((t, c) => t + localBalance(n.treasury.state, c), 0n),
    0n,
  );

test("a round meeting the hub's channel onward held by another round waits there, then goes through on its first attempt", async () => {
  const { mesh, x1, x2, hub, y, all } = await star();
  const before = total(all);
  // y's SIGN of the first round is held back: the hub's channel to y stays locked by it
  holdAfterSeal(mesh, 'y', ['signed'], 'hub');
  const first = watch(x1.treasury.payMultihop(y.treasury.nodeId, 1_000, 1));
  await waitFor(() => mesh.holding('y', 'hub') > 0);
  mesh.onSeal = undefined;
  // the second round locks x2's channel and reaches the hub, which has no free channel to y
  const second = watch(x2.treasury.payMultihop(y.treasury.nodeId, 500, 1));
  await waitFor(() => Object.values(x2.treasury.state.multihop ?? {}).some((r) => r.phase === 'locked'));
  assert.equal(second.ok, null, 'not refused: it waits at the hub');
  const atHub = Object.values(hub.treasury.state.multihop ?? {}).map((r) => r.phase);
  assert.deepEqual(atHub, ['locked'], 'the hub holds a record of the first round only');
  mesh.deliver('y', 'hub');
  await waitFor(() => first.ok !== null && second.ok !== null);
  assert.equal(first.ok, true);
  assert.equal(second.ok, true, 'the waiting round went through once the channel was free');
  await waitFor(() => unlocked(all));
  assert.equal(total(all), before, 'conserved');
});

test('a round waits at the hub only for a while: held longer, it is refused channel_busy and nothing stays locked for it', async () => {
  const { mesh, x1, x2, y, all } = await star();
  holdAfterSeal(mesh, 'y', ['signed'], 'hub');
  const first = watch(x1.treasury.payMultihop(y.treasury.nodeId, 1_000, 1));
  await waitFor(() => mesh.holding('y', 'hub') > 0);
  mesh.onSeal = undefined;
  await assert.rejects(
    x2.treasury.payMultihop(y.treasury.nodeId, 500, 1),
    (e: TreasuryError) => e.code === 'channel_busy',
  );
  assert.ok(
    Object.values(x2.treasury.state.channels).every((c) => !c.lockedBy),
    "x2's channel is free again",
  );
  mesh.deliver('y', 'hub');
  await waitFor(() => first.ok !== null);
  assert.equal(first.ok, true);
  await waitFor(() => unlocked(all));
});

const SEED = testSeed('multihop.lock-wait.protocol');

test('crossing paths on a ring of four, every node paying the node opposite at once, again and again: no deadlock, every channel conserved', async (t) => {
  t.diagnostic(`TEST_SEED=${SEED}`);
  const random = rng(SEED);
  const { mesh, nodes } = await line(4, 1_000_000n);
  await fundedChannel(mesh, nodes[3]!, nodes[0]!, 1_000_000n);
  await gossip(
    mesh,
    nodes.map((n) => n.name),
  );
  const before = nodes.map((n) => total([n]));
  const paid = nodes.map(() => 0n);
  const got = nodes.map(() => 0n);
  let busy = 0;
  let ok = 0;
  // each node pays the one opposite it 15 times; on channel_busy it tries again after a short random pause
  await Promise.all(
    nodes.map(async (n, i) => {
      const dest = nodes[(i + 2) % 4]!;
      for (let k = 0; k < 15; k++) {
        const amount = 1 + Math.floor(random() * 1_000);
        for (let attempt = 0; ; attempt++) {
          try {
            await n.treasury.payMultihop(dest.treasury.nodeId, amount, 1);
            paid[i]! += BigInt(amount);
            got[(i + 2) % 4]! += BigInt(amount);
            ok++;
            break;
          } catch (e) {
            assert.equal((e as TreasuryError).code, 'channel_busy', String(e));
            busy++;
            assert.ok(attempt < 200, 'gave up: a deadlock would look like this');
            await new Promise((r) => setTimeout(r, 1 + random() * 20));
          }
        }
      }
    }),
  );
  t.diagnostic(`${ok} rounds, ${busy} refused channel_busy and tried again`);
  assert.equal(ok, 60);
  await waitFor(() => unlocked(nodes));
  // no fees on this ring: each node moved by exactly what it was paid less what it paid
  nodes.forEach((n, i) => assert.equal(total([n]), before[i]! - paid[i]! + got[i]!, `${n.name} conserved`));
  for (const n of nodes)
    for (const c of Object.values(n.treasury.state.channels)) {
      const peer = nodes.find((m) => m.treasury.nodeId === c.peerId)!;
      assert.equal(
        n.treasury.channel(c.id).local_balance_sat,
        peer.treasury.channel(c.id).remote_balance_sat,
        'both ends agree',
      );
    }
});
