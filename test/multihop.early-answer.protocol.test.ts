// run-tests lane: in-process
/**
 * The payer answers at the next hop's RELEASE, before the seal of its own release
 * (docs/protocol/multihop.md, "The payer answers at RELEASE"): that RELEASE says every hop after it released
 * durably, and the payer committed durably, so the new state is decided. A crash of the payer between
 * its answer and that seal restarts it committed; the RELEASE sent again on reconnection releases it, and
 * every channel ends in the new state, moved once. In-process treasuries (helpers/treasury-mesh.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { line, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { balances, outcome, phasesIn, resolved, unlocked, watch } from './helpers/multihop-views.ts';
import { keyRef } from '../src/node/payment-journal.ts';
import { TreasuryError } from '../src/enclave/treasury/errors.ts';

/** Seals that hang, as on a slow disk, until `release` (after a crash, which makes them fail). */
function slowDisk() {
  const waiting: Array<() => void> = [];
  return {
    hang: () => new Promise<void>((resolve) => waiting.push(resolve)),
    get hanging() {
      return waiting.length;
    },
    release: () => waiting.splice(0).forEach((r) => r()),
  };
}

const over = (nodes: MeshNode[]) => unlocked(nodes) && resolved(nodes);

test("the payer answers succeeded at bob's RELEASE while its own release seal hangs; crashed before that seal, it restarts committed and ends all new, paid once, the key held", async () => {
  const { mesh, nodes, channels } = await line(3, 100_000n);
  const [a, , c] = nodes as [MeshNode, MeshNode, MeshNode];
  const before = balances(nodes, channels);
  const r = keyRef('early-answer-1', 'req');
  // Alice's seals hang, as a slow disk would, from the one that would make her release durable on.
  const releasedHere = () =>
    Object.values(a.treasury.state.multihop ?? {}).some((x) => x.phase === 'released' || x.phase === 'done');
  const disk = slowDisk();
  mesh.sealLatency = (name) => (name === a.name && releasedHere() ? disk.hang() : Promise.resolve());
  const paid = watch(a.treasury.payMultihopRound(c.treasury.nodeId, [{ amount_sat: 900, ref: r }], 1));
  await waitFor(() => paid.ok !== null, 8_000);
  assert.equal(paid.ok, true, 'the payment succeeded');
  assert.ok(disk.hanging > 0, 'the release seal was in flight when the payer answered');
  const last = a.blobs[a.blobs.length - 1]!.bytes;
  assert.deepEqual(phasesIn(last), ['committed'], 'what alice last made durable is her commit, not her release');

  mesh.crash(a.name);
  mesh.sealLatency = undefined;
  disk.release();
  const back = await mesh.restart(a.name, ['n1']);
  assert.deepEqual(
    back.treasury.multihopRefs().map((x) => [x.key, x.outcome]),
    [[r.key, 'pending']],
    'restarted committed: the keyed payment is pending, not failed',
  );
  // A retry of the key while the round finishes is refused: it would pay twice.
  await assert.rejects(
    back.treasury.payMultihopRound(c.treasury.nodeId, [{ amount_sat: 900, ref: r }], 1),
    (e: unknown) => e instanceof TreasuryError && e.code === 'invalid_argument',
  );
  const live = () => nodes.map((n) => mesh.get(n.name));
  await waitFor(() => over(live()), 15_000);
  const [ref] = back.treasury.multihopRefs();
  assert.equal(ref?.outcome, 'succeeded', 'the ref takes the outcome the payer answered');
  const fee = BigInt(ref.outcome === 'succeeded' ? ref.fee_sat : '0');
  assert.deepEqual(outcome(live(), channels, before), [900n + fee, 900n], 'all new, each channel moved once');
});

test('an unkeyed payment answered early: its payer crashed before the release seal, every channel ends all new, once', async () => {
  const { mesh, nodes, channels } = await line(3);
  const [a, , c] = nodes as [MeshNode, MeshNode, MeshNode];
  const before = balances(nodes, channels);
  const disk = slowDisk();
  mesh.sealLatency = (name) =>
    name === a.name && Object.values(a.treasury.state.multihop ?? {}).some((x) => x.phase === 'done')
      ? disk.hang()
      : Promise.resolve();
  const result = await a.treasury.payMultihop(c.treasury.nodeId, 1_000, 1);
  assert.equal(result.route.length, 3);
  assert.ok(disk.hanging > 0, 'answered while the release seal hung');
  mesh.crash(a.name);
  mesh.sealLatency = undefined;
  disk.release();
  await mesh.restart(a.name, ['n1']);
  const live = () => nodes.map((n) => mesh.get(n.name));
  await waitFor(() => over(live()), 15_000);
  assert.deepEqual(outcome(live(), channels, before), [1_000n + BigInt(result.fee_sat), 1_000n]);
});
