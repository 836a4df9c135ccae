// run-tests lane: in-process
/**
 * A committee whose members settle a channel while the primary goes on paying on it (hole 3): the
 * members that signed must refuse every later update that moves the channel, so that no payment the
 * settlement leaves out is ever acknowledged to the peer; the primary learns of the signing, closes the
 * channel at the signed totals, and the chain moves again for the other channels.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Transaction } from 'bitcoinjs-lib';
import { Mesh, payAndWait, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { bytesToHex } from '../enclave-sim/encoding.ts';

/** Committee p, b1, b2 (2-of-3) with a channel funded both ways to lone q, and a second channel to lone r. */
async function committeeWithPeers() {
  const mesh = new Mesh();
  const [p, b1, b2] = (await mesh.committee(['p', 'b1', 'b2'])) as [MeshNode, MeshNode, MeshNode];
  const q = await mesh.add('q');
  const r = await mesh.add('r');
  await mesh.link('p', 'q');
  await mesh.link('p', 'r');
  const chQ = (await p.treasury.openChannel(q.treasury.nodeId, p.payoutAddress)).channel_id;
  await p.treasury.addDeposit(chQ, await mesh.deposit('p', 100_000n));
  await q.treasury.addDeposit(chQ, await mesh.deposit('q', 50_000n));
  const chR = (await p.treasury.openChannel(r.treasury.nodeId, p.payoutAddress)).channel_id;
  await p.treasury.addDeposit(chR, await mesh.deposit('p', 30_000n));
  await payAndWait(p, chQ, [2_000]);
  await payAndWait(q, chQ, [700]);
  await waitFor(() => p.treasury.info().committee!.acked_seq === p.treasury.info().committee!.seq);
  return { mesh, p, b1, b2, q, r, chQ, chR };
}

/** What the settlement pays to `script` (hex). */
function paidTo(hex: string, script: string): bigint {
  return Transaction.fromHex(hex)
    .outs.filter((o) => bytesToHex(o.script) === script)
    .reduce((s, o) => s + o.value, 0n);
}

test('two backups settle without the primary: no later payment on the channel reaches the peer, the other channels go on', async () => {
  const { mesh, p, b1, b2, q, chQ, chR } = await committeeWithPeers();
  // The host drops b2's frames to p: p never hears b2's signing request.
  mesh.block('b2', 'p');
  const settled = await b2.treasury.settle(chQ, 2);
  assert.ok(settled.tx_hex, 'b2 and b1 signed 2-of-3 without the primary');
  const qScript = b2.treasury.state.channels[chQ]!.peerPayout!;
  // The primary goes on paying q on the channel its backups have settled.
  await p.treasury.pay(Array.from({ length: 5 }, () => ({ channel_id: chQ, amount_sat: 1_000 })));
  // Payments on the other channel are replicated and acknowledged again: the chain moves.
  await payAndWait(p, chR, [500]);
  // Everything p will ever tell q about chQ has been delivered before chR's acknowledgement came back.
  await waitFor(() => q.treasury.channel(chQ).total_received_sat === p.treasury.channel(chQ).total_sent_sat);
  const qBalance = BigInt(q.treasury.channel(chQ).local_balance_sat);
  assert.ok(
    paidTo(settled.tx_hex, qScript) >= qBalance,
    `the settlement pays q ${paidTo(settled.tx_hex, qScript)} sat, q's enclave counts ${qBalance} sat as its own`,
  );
  // The primary has closed the channel at the signed totals, and refuses payments on it.
  await waitFor(() => p.treasury.channel(chQ).status === 'closed');
  assert.equal(p.treasury.channel(chQ).settlement_txid, settled.txid);
  assert.equal(p.treasury.channel(chQ).total_sent_sat, b1.treasury.channel(chQ).total_sent_sat);
  const again = await p.treasury.pay([{ channel_id: chQ, amount_sat: 1_000 }]);
  assert.equal(again[0]!.ok, false);
  // And the peer learns of the settlement from the primary.
  await waitFor(() => q.treasury.channel(chQ).status === 'closed');
  assert.equal(q.treasury.channel(chQ).settlement_txid, settled.txid);
  await payAndWait(p, chR, [600]);
  await waitFor(() => b2.treasury.channel(chR).total_sent_sat === '1100');
});

test("the signers' notices are lost: their refusal of the next update tells the primary, and what it had queued on the channel never leaves", async () => {
  const { mesh, p, b1, b2, q, chQ, chR } = await committeeWithPeers();
  // Test hook: the direct notices never arrive (as if the primary restarted before sealing what they said).
  for (const m of [b1, b2])
    (m.treasury as unknown as { committee: { announceSigned(id: string): void } }).committee.announceSigned = () =>
      undefined;
  mesh.block('b2', 'p');
  const settled = await b2.treasury.settle(chQ, 2);
  const qScript = b2.treasury.state.channels[chQ]!.peerPayout!;
  assert.equal(p.treasury.channel(chQ).status, 'open', 'the primary has not heard of the settlement');
  // These debits are sealed and replicated, but no signer acknowledges that update.
  const results = await p.treasury.pay(Array.from({ length: 5 }, () => ({ channel_id: chQ, amount_sat: 1_000 })));
  assert.ok(
    results.every((r) => r.ok),
    'the primary debited them before it knew',
  );
  await payAndWait(p, chR, [500]);
  assert.equal(p.treasury.channel(chQ).status, 'closed');
  assert.equal(p.treasury.channel(chQ).settlement_txid, settled.txid);
  assert.equal(p.treasury.channel(chQ).total_sent_sat, '2000', 'closed at the signed totals');
  await waitFor(() => q.treasury.channel(chQ).status === 'closed');
  assert.equal(
    q.treasury.channel(chQ).total_received_sat,
    '2000',
    'q was never told of the debits the settlement leaves out',
  );
  assert.ok(paidTo(settled.tx_hex!, qScript) >= BigInt(q.treasury.channel(chQ).local_balance_sat));
  // The settlement pays q exactly its balance: 50,000 − 700 + 2,000.
  assert.equal(paidTo(settled.tx_hex!, qScript), 51_300n);
});

test('a member upstream of the signers, which adopted the later payments, lets the closure at the signed totals through', async () => {
  const mesh = new Mesh();
  const [p, b1, b2, b3] = (await mesh.committee(['p', 'b1', 'b2', 'b3'], 2)) as [
    MeshNode,
    MeshNode,
    MeshNode,
    MeshNode,
  ];
  const q = await mesh.add('q');
  const r = await mesh.add('r');
  await mesh.link('p', 'q');
  await mesh.link('p', 'r');
  const chQ = (await p.treasury.openChannel(q.treasury.nodeId, p.payoutAddress)).channel_id;
  await p.treasury.addDeposit(chQ, await mesh.deposit('p', 100_000n));
  const chR = (await p.treasury.openChannel(r.treasury.nodeId, p.payoutAddress)).channel_id;
  await p.treasury.addDeposit(chR, await mesh.deposit('p', 30_000n));
  await payAndWait(p, chQ, [2_000]);
  await waitFor(() => b3.treasury.channel(chQ).total_sent_sat === '2000');
  for (const m of [b1, b2, b3])
    (m.treasury as unknown as { committee: { announceSigned(id: string): void } }).committee.announceSigned = () =>
      undefined;
  // b3 and b2 settle; neither p nor b1 hears of it.
  mesh.block('b3', 'p');
  mesh.block('b3', 'b1');
  const settled = await b3.treasury.settle(chQ, 2);
  assert.equal(b1.treasury.state.committee!.signed[chQ], undefined, 'b1 did not sign');
  const results = await p.treasury.pay([{ channel_id: chQ, amount_sat: 1_000 }]);
  assert.ok(results[0]!.ok);
  await payAndWait(p, chR, [500]);
  // b1 had sealed the debit (3,000 sent); it let the closure back to the signed 2,000 through, as b2 reported it.
  assert.equal(b1.treasury.channel(chQ).status, 'closed');
  assert.equal(b1.treasury.channel(chQ).total_sent_sat, '2000');
  assert.equal(p.treasury.channel(chQ).settlement_txid, settled.txid);
  assert.equal(
    q.treasury.channel(chQ).total_received_sat,
    '2000',
    'q was never told of the debit the settlement leaves out',
  );
  await waitFor(() => b3.treasury.channel(chR).total_sent_sat === '500');
});
