// run-tests lane: in-process
/**
 * Resolved multi-hop records (done, aborted) are kept only while a neighbour may still ask about them
 * (records.ts, `Resolution`): a neighbour that locks the channel again has shown it is past them. So the
 * sealed state, written at every step of every payment, holds about one resolved record per busy
 * channel instead of a long tail; and a record whose neighbour has not moved on is kept however many
 * other payments go by, so that a RELEASE lost on the way is sent again when the neighbour reconnects.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { line, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { unlocked } from './helpers/multihop-views.ts';
import { encodeState } from '../src/enclave/treasury/state.ts';
import type { Outgoing } from '../src/enclave/treasury/ports.ts';

const resolved = (n: MeshNode) =>
  Object.values(n.treasury.state.multihop ?? {}).filter((r) => r.phase === 'done' || r.phase === 'aborted');

test('a hundred routed payments alice → bob → carol: each keeps about one resolved record per channel, and the sealed state does not grow', async () => {
  const { nodes } = await line(3, 1_000_000n);
  const [a, , c] = nodes as [MeshNode, MeshNode, MeshNode];
  const pay = async () => {
    const r = await a.treasury.payMultihopRound(c.treasury.nodeId, [{ amount_sat: 1 }], 1);
    assert.ok(r.results[0]!.ok, JSON.stringify(r.results[0]));
    await waitFor(() => unlocked(nodes));
  };
  await pay();
  // the first payment is kept everywhere: no neighbour has locked its channels again yet
  assert.deepEqual(
    nodes.map((n) => resolved(n).length),
    [1, 1, 1],
  );
  const sizeAfterOne = nodes.map((n) => encodeState(n.treasury.state).length);
  for (let i = 0; i < 99; i++) await pay();
  for (const n of nodes) {
    const kept = resolved(n);
    assert.ok(kept.length <= 2, `${n.name} keeps ${kept.length} resolved records`);
    assert.ok(
      kept.every((r) => r.phase === 'done'),
      'only the latest payments',
    );
  }
  nodes.forEach((n, i) => {
    const size = encodeState(n.treasury.state).length;
    // a hundred payments later the state is as large as after the first (give or take one record and digits)
    assert.ok(
      size <= sizeAfterOne[i]! + 700,
      `${n.name}: ${size} bytes after 100 payments, ${sizeAfterOne[i]} after 1`,
    );
  });
});

test('an UNLOCK lost on its way is sent again at reconnection, however many payments on other channels went by meanwhile', async () => {
  // n0 – n1 – n2 – n3 – n4; n2 pays n4 (through n3), then n0 (through n1) seventy times
  const { mesh, nodes, channels } = await line(5, 1_000_000n);
  const [n0, , n2, n3, n4] = nodes as [MeshNode, MeshNode, MeshNode, MeshNode, MeshNode];
  // n2's host loses n2's UNLOCK to n3 of the first payment (nothing else): n3 stays released, its channels held
  const sessions = (n2.treasury as unknown as { sessions: { deliver(items: unknown[]): void } }).sessions;
  const deliver = sessions.deliver.bind(sessions);
  let lost = 0;
  sessions.deliver = (items) =>
    deliver(
      items.filter((item) => {
        const out = item as Partial<Outgoing>;
        if (lost > 0 || out.peerId !== n3.treasury.nodeId || out.msg?.t !== 'mh_unlock') return true;
        lost++;
        return false;
      }),
    );
  const first = await n2.treasury.payMultihopRound(n4.treasury.nodeId, [{ amount_sat: 1_000 }], 1);
  assert.ok(first.results[0]!.ok, JSON.stringify(first.results[0]));
  await waitFor(() => lost === 1);
  const pid = first.payment_id!;
  assert.equal(n3.treasury.state.multihop?.[pid]?.phase, 'released', 'n3 waits for the unlock');
  assert.equal(n3.treasury.state.channels[channels[2]!]!.lockedBy, pid);

  // seventy rounds n2 → n1 → n0: n2's channel to n1 moves on, its channel to n3 does not
  for (let i = 0; i < 70; i++) {
    const r = await n2.treasury.payMultihopRound(n0.treasury.nodeId, [{ amount_sat: 1 }], 1);
    assert.ok(r.results[0]!.ok, JSON.stringify(r.results[0]));
  }
  const kept = n2.treasury.state.multihop?.[pid];
  assert.equal(kept?.phase, 'done', "n2 still has the first payment's record");
  assert.deepEqual((kept as { waitsOn?: string[] }).waitsOn, [channels[2]], 'waiting only for n3');
  assert.ok(resolved(n2).length <= 3, `n2 keeps ${resolved(n2).length} resolved records`);

  // n2 and n3 reconnect: n2 sends the UNLOCK again, n3 and n4 unlock
  mesh.unlink(n2.name, n3.name);
  await mesh.link(n2.name, n3.name);
  await waitFor(() => unlocked(nodes));
  assert.equal(n3.treasury.state.multihop?.[pid]?.phase, 'done');
  assert.equal(n4.treasury.state.multihop?.[pid]?.phase, 'done');
  // the next round on that path shows n2 that n3 is past it: its record goes
  const next = await n2.treasury.payMultihopRound(n4.treasury.nodeId, [{ amount_sat: 1 }], 1);
  assert.ok(next.results[0]!.ok, JSON.stringify(next.results[0]));
  await waitFor(() => n2.treasury.state.multihop?.[pid] === undefined);
});
