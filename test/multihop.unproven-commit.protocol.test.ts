// run-tests lane: in-process
/**
 * A committee hop's COMMIT whose committed-proof fails (docs/protocol/multihop.md, "Committee hops"): a
 * lying backup of the committee signs its "I hold it committed" statement so that it verifies for nothing.
 * The next hop refuses that COMMIT without tearing its session down (event `multihop_commit_unproven`),
 * stays `signed` (nothing credited, nothing forwarded), refuses the COMMIT again on every
 * resynchronisation without a teardown loop, and the round resolves as the protocol says: a proven COMMIT
 * completes it (all new), or an old-state settlement by the refusing hop ends it (all old).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { committeeLine } from './helpers/committee-line.ts';
import { balances, outcome, unlocked } from './helpers/multihop-views.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { WAIT_MS, type MeshNode } from './helpers/treasury-mesh.ts';
import { hexToBytes } from '../enclave-sim/encoding.ts';
import { signCommitted } from '../src/enclave/committee/committed-proof.ts';
import type { SessionMessage } from '../src/enclave/protocol/messages.ts';
import { isHolding, type MhPayment } from '../src/enclave/treasury/multihop/records.ts';

/**
 * alice → bob (a 2-of-3 committee) → carol, bob's tail backup lying: each statement it acknowledges with
 * is its own genuine signature, but of the next view, so it verifies for no COMMIT the committee sends.
 */
async function withLyingBackup() {
  const line = await committeeLine(['lone', 'committee', 'lone']);
  const [alice, bob, carol] = line.nodes as [MeshNode, MeshNode, MeshNode];
  const liar = line.hops[1]!.members[2]!;
  const t = liar.treasury as unknown as { sendNow(peer: string, msg: SessionMessage): void };
  const send = t.sendNow.bind(liar.treasury);
  const key = hexToBytes(liar.treasury.state.identityKey);
  const epoch = () => bob.treasury.info().committee!.epoch ?? 0;
  t.sendNow = (peer, msg) => {
    if (msg.t === 'c_ack' && msg.sigs)
      msg = {
        ...msg,
        sigs: msg.sigs.map((s) =>
          s.committed
            ? {
                ...s,
                committed: s.committed.map((c) => signCommitted(bob.treasury.nodeId, epoch() + 1, c.pid, key)),
              }
            : s,
        ),
      };
    send(peer, msg);
  };
  return { ...line, alice, bob, carol };
}

const unprovenAt = (n: MeshNode) => n.events.filter((e) => e.type === 'multihop_commit_unproven');
const recordAt = (n: MeshNode, pid: string): MhPayment | undefined => n.treasury.state.multihop?.[pid];

/** Pays 1,000 sat alice → carol and waits until carol refused bob's COMMIT once. */
async function payUntilRefused(line: Awaited<ReturnType<typeof withLyingBackup>>) {
  const { alice, bob, carol } = line;
  const paying = alice.treasury.payMultihop(carol.treasury.nodeId, 1_000, 1);
  paying.catch(() => undefined);
  await waitFor(() => unprovenAt(carol).length > 0, WAIT_MS);
  const pid = Object.keys(bob.treasury.state.multihop ?? {})[0]!;
  const notice = unprovenAt(carol)[0] as { payment_id: string; channel_id: string; reason: string };
  assert.equal(notice.payment_id, pid);
  assert.equal(notice.channel_id, line.channels[1]);
  // The primary drops the liar's statements as they arrive (committed-proof.ts), so its COMMIT goes
  // without a proof rather than with a forged one.
  assert.match(notice.reason, /not proven replicated: no proof that the committee holds the commit/);
  return { paying, pid };
}

test('a lying backup: the next hop refuses its COMMIT, keeps the session, and takes the proven COMMIT that follows', async () => {
  const line = await withLyingBackup();
  const { mesh, bob, carol, channels } = line;
  const before = balances(line.nodes, channels);
  const { paying, pid } = await payUntilRefused(line);
  assert.ok(carol.treasury.info().peers.includes(bob.treasury.nodeId), 'carol kept her session with bob');
  assert.equal(recordAt(carol, pid)?.phase, 'signed', 'carol did not commit');
  assert.equal(recordAt(bob, pid)?.phase, 'committed');
  assert.deepEqual(outcome(line.nodes, channels, before), [0n, 0n], 'nothing applied anywhere');
  assert.equal(carol.treasury.channel(channels[1]!).total_received_sat, '0', 'nothing credited to carol');

  // A reconnection re-sends the COMMIT (resynchronisation): refused once more, and the session stays up.
  const seen = unprovenAt(carol).length;
  mesh.unlink(bob.name, carol.name);
  await mesh.link(bob.name, carol.name);
  await waitFor(() => unprovenAt(carol).length > seen, WAIT_MS);
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(carol.treasury.info().peers.includes(bob.treasury.nodeId), 'no teardown after the resent COMMIT');
  assert.equal(unprovenAt(carol).length, seen + 1, 'one refusal per COMMIT: no reconnect loop');
  assert.equal(recordAt(carol, pid)?.phase, 'signed');

  // The statements the backups would have signed honestly, on the same session: taken, the round completes.
  const epoch = bob.treasury.info().committee!.epoch ?? 0;
  const sigs = line.hops[1]!.members.slice(1).map(
    (b) => signCommitted(bob.treasury.nodeId, epoch, pid, hexToBytes(b.treasury.state.identityKey)).sig,
  );
  const rec = recordAt(bob, pid) as Extract<MhPayment, { phase: 'committed' }>;
  const out = bob.treasury.state.channels[channels[1]!]!;
  const internals = bob.treasury as unknown as {
    sendNow(peer: string, m: unknown): void;
    multihop: { payments: { commitMessage(r: unknown): Record<string, unknown> } };
  };
  assert.ok(out.lockedBy === pid);
  internals.sendNow(carol.treasury.nodeId, {
    ...internals.multihop.payments.commitMessage(rec),
    proof: { epoch, sigs },
  });
  await paying;
  await waitFor(() => unlocked(line.hops.flatMap((h) => h.members)), WAIT_MS);
  assert.deepEqual(outcome(line.nodes, channels, before), [1_000n, 1_000n], 'every channel in the new state');
  assert.equal(carol.treasury.channel(channels[1]!).total_received_sat, '1000');
});

test('a lying backup: the refusing hop settles the old state, every committed hop aborts on it, nobody loses', async () => {
  const line = await withLyingBackup();
  const { mesh, alice, bob, carol, channels } = line;
  const before = balances(line.nodes, channels);
  const { paying, pid } = await payUntilRefused(line);
  // carol, in doubt (`signed`), settles her channel with bob alone: the old state, which τ double-spends.
  // Her `settled` tells bob (committed) that the old state won; he aborts, and so does alice after him.
  const s = await carol.treasury.settle(channels[1]!, 1);
  assert.equal(s.local_balance_sat, before[2]![channels[1]!]!.toString(), 'carol settles her old balance');
  mesh.chain.spend(s.tx_hex!);
  await carol.treasury.spentOnChain(channels[1]!, s.tx_hex!);
  await assert.rejects(paying, 'the payer learns the round failed');
  await waitFor(() => [alice, bob, carol].every((n) => !isHolding(recordAt(n, pid)!)), WAIT_MS);
  for (const n of [alice, bob]) assert.equal(recordAt(n, pid)?.phase, 'aborted', `${n.name}: the old state`);
  await waitFor(() => !alice.treasury.state.channels[channels[0]!]!.lockedBy, WAIT_MS);
  const ab = [alice, bob].map((n) => n.treasury.channel(channels[0]!));
  assert.equal(ab[0]!.local_balance_sat, before[0]![channels[0]!]!.toString(), 'alice paid nothing');
  assert.equal(
    ab[1]!.local_balance_sat,
    before[1]![channels[0]!]!.toString(),
    'bob was paid nothing, forwarded nothing',
  );
});
