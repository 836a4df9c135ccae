// run-tests lane: in-process
/**
 * Committee chains at the protocol level: 2-of-3 committees of in-process treasuries on both sides of a
 * channel, real signatures and secret shares, a fake chain: formation, replication before acknowledgement,
 * settlement and release, refused updates. The keys themselves (one per member, handed over as shares) are
 * committee.keys.test.ts; the real-process version (kill -9, the embedded regtest chain) is
 * committee.e2e.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Transaction } from 'bitcoinjs-lib';
import { Mesh, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { replicaOf, signUpdate } from '../src/enclave/committee/update.ts';
import { bytesToHex } from '../enclave-sim/encoding.ts';
import { randomPrivateKey } from '../src/crypto/secp256k1.ts';
import type { CommitteeMessage } from '../src/enclave/protocol/messages.ts';
import {
  TIMEOUTS,
  WAIT_MS,
  scriptOf,
  fund,
  twoCommittees,
  payAndWait,
  memberPubkeys,
  ruleFee,
  checkDepositInput,
  checkSettlement,
  askToSign,
  checkRefusesOthers,
} from './helpers/two-committees.ts';

test('committee formation: chain order, m-of-n deposits with one key per member', async () => {
  const mesh = new Mesh(TIMEOUTS);
  const [p, b1, b2] = await mesh.committee(['p', 'b1', 'b2']);
  const info = p!.treasury.info().committee!;
  assert.equal(info.size, 3);
  assert.equal(info.threshold, 2);
  assert.deepEqual(
    info.members.map((m) => m.node_id),
    [p!.treasury.nodeId, b1!.treasury.nodeId, b2!.treasury.nodeId],
  );
  assert.equal(b2!.treasury.info().committee!.index, 2);
  const id = await mesh.deposit('p', 10_000n);
  const dep = p!.treasury.deposits().find((d) => d.deposit_id === id)!;
  assert.equal(dep.m, 2);
  assert.equal(dep.pubkeys.length, 3);
  // Each member holds exactly its own key, and no two hold the same.
  const keys = [
    p!.treasury.state.deposits[id]!.privkeys,
    [b1!.treasury.state.committee!.memberKeys[id]!],
    [b2!.treasury.state.committee!.memberKeys[id]!],
  ];
  assert.deepEqual(
    keys.map((k) => k.length),
    [1, 1, 1],
  );
  assert.equal(new Set(keys.flat()).size, 3);
  // The deposit reached the backups' replicas once the primary's update was acknowledged.
  await waitFor(() => b2!.treasury.deposits().some((d) => d.deposit_id === id && d.status === 'free'), WAIT_MS);
  // Backups refuse what only a primary does.
  await assert.rejects(b1!.treasury.newDeposit(), { code: 'not_primary' });
  await assert.rejects(b1!.treasury.pay([{ channel_id: '00'.repeat(32), amount_sat: 1 }]), { code: 'not_primary' });
});

test('an incomplete committee refuses deposits; a primary without its backups refuses payments', async () => {
  const mesh = new Mesh(TIMEOUTS);
  await mesh.add('p', { role: 'primary', size: 3, address: 'p:1' });
  await assert.rejects(mesh.get('p').treasury.newDeposit(), { code: 'committee_incomplete' });
  const { a, channelId } = await twoCommittees();
  a[2]!.treasury.disconnected('a2|a1');
  a[0]!.treasury.disconnected('a0|a2');
  await assert.rejects(a[0]!.treasury.pay([{ channel_id: channelId, amount_sat: 5 }]), {
    code: 'committee_unavailable',
  });
});

test('payments are chain-replicated before they are acknowledged; settlement from the primary needs 2 of 3', async () => {
  const { mesh, a, b, channelId, depA, depB } = await twoCommittees();
  const amounts = Array.from({ length: 200 }, (_, i) => 1 + (i % 7));
  const total = BigInt(amounts.reduce((s, x) => s + x, 0));
  await payAndWait(a[0]!, channelId, amounts.slice(0, 100));
  await payAndWait(a[0]!, channelId, amounts.slice(100));
  await payAndWait(b[0]!, channelId, [300]);
  // Every member of both committees holds the acknowledged totals.
  for (const m of [...a, ...b]) {
    const v = m.treasury.channel(channelId);
    const mine = m.name.startsWith('a');
    assert.equal(v.total_sent_sat, (mine ? total : 300n).toString(), m.name);
    assert.equal(v.total_received_sat, (mine ? 300n : total).toString(), m.name);
  }
  const expected = { a: 100_000n - total + 300n, b: 50_000n + total - 300n };
  const r = await a[0]!.treasury.settle(channelId, 2);
  assert.ok(r.tx_hex);
  checkSettlement(mesh, r.tx_hex, {
    deposits: [
      { deposit: depA, committee: a },
      { deposit: depB, committee: b },
    ],
    settler: { script: scriptOf(a[0]!.payoutAddress), balance: expected.a },
    other: { script: scriptOf(b[0]!.payoutAddress), balance: expected.b },
    feeRate: 2,
  });
  assert.equal(r.local_balance_sat, expected.a.toString());
  assert.equal(r.txid, Transaction.fromHex(r.tx_hex).getId());
  // Every member signed this one, and now refuses any other transaction for this channel.
  await checkRefusesOthers(a, channelId, r.tx_hex, 2);
});

test('a primary alone cannot settle (one key of 2-of-3); with one backup back, the very same settlement is signed', async () => {
  const { mesh, a, b, channelId, depA, depB } = await twoCommittees();
  await payAndWait(a[0]!, channelId, [2_000, 500]);
  const expected = { a: 100_000n - 2_500n, b: 50_000n + 2_500n };
  mesh.kill('a1');
  mesh.kill('a2');
  await assert.rejects(a[0]!.treasury.settle(channelId, 2), (err: { code?: string; message?: string }) => {
    assert.equal(err.code, 'committee_unavailable');
    assert.match(err.message!, /fewer than 2 members signed/);
    return true;
  });
  // The primary closed the channel first and will sign nothing else; a1 comes back and the retry completes it.
  const planned = a[0]!.treasury.state.committee!.signed[channelId]!;
  assert.equal(a[0]!.treasury.channel(channelId).status, 'closed');
  await mesh.restart('a1', ['a0']);
  // docs/protocol/committees.md: calling settle again retries the very same transaction, whatever fee rate it names.
  const r = await a[0]!.treasury.settle(channelId, 5);
  assert.equal(r.txid, planned, 'the retry is the transaction first planned');
  checkSettlement(mesh, r.tx_hex!, {
    deposits: [
      { deposit: depA, committee: a },
      { deposit: depB, committee: b },
    ],
    settler: { script: scriptOf(a[0]!.payoutAddress), balance: expected.a },
    other: { script: scriptOf(b[0]!.payoutAddress), balance: expected.b },
    feeRate: 2,
  });
  await checkRefusesOthers([a[0]!, a[1]!], channelId, r.tx_hex!, 2);
});

test('the primary is killed: two backups settle with the last acknowledged balances', async () => {
  const { mesh, a, b, channelId, depA, depB } = await twoCommittees();
  await payAndWait(
    a[0]!,
    channelId,
    Array.from({ length: 50 }, () => 100),
  );
  await payAndWait(b[0]!, channelId, [1_234]);
  const expected = { a: 100_000n - 5_000n + 1_234n, b: 50_000n + 5_000n - 1_234n };
  const deposits = [
    { deposit: depA, committee: a },
    { deposit: depB, committee: b },
  ];
  const scripts = { a: scriptOf(a[0]!.payoutAddress), b: scriptOf(b[0]!.payoutAddress) };
  mesh.kill('a0');
  assert.equal(a[1]!.treasury.channel(channelId).local_balance_sat, expected.a.toString());
  const r = await a[1]!.treasury.settle(channelId, 2);
  checkSettlement(mesh, r.tx_hex!, {
    deposits,
    settler: { script: scripts.a, balance: expected.a },
    other: { script: scripts.b, balance: expected.b },
    feeRate: 2,
  });
  await checkRefusesOthers([a[1]!, a[2]!], channelId, r.tx_hex!, 2);
  // The other committee's backups, with their own primary killed too, settle the same balances (b pays the fee).
  mesh.kill('b0');
  const rb = await b[2]!.treasury.settle(channelId, 3);
  checkSettlement(mesh, rb.tx_hex!, {
    deposits,
    settler: { script: scripts.b, balance: expected.b },
    other: { script: scripts.a, balance: expected.a },
    feeRate: 3,
  });
  await checkRefusesOthers([b[2]!, b[1]!], channelId, rb.tx_hex!, 3);
});

test('the middle backup dies with updates it never forwarded: the primary settles with the tail, caught up first', async () => {
  const { mesh, a, b, channelId, depA, depB } = await twoCommittees();
  await payAndWait(a[0]!, channelId, [1_000]);
  // The tail misses three updates: backup 1 applies them, but what it forwards never arrives, nor do the
  // primary's own copies (it sends every member each update itself): their session drops with them held.
  mesh.hold('a0', 'a2');
  mesh.hold('a1', 'a2');
  const seq = a[1]!.treasury.info().committee!.seq;
  for (let i = 1; i <= 3; i++) {
    void a[0]!.treasury.pay([{ channel_id: channelId, amount_sat: 100 }]).catch(() => undefined);
    await waitFor(() => a[1]!.treasury.info().committee!.seq === seq + i, WAIT_MS);
  }
  mesh.kill('a1');
  assert.equal(a[2]!.treasury.info().committee!.seq, seq, 'the tail is three updates behind');
  mesh.unlink('a0', 'a2');
  mesh.deliver('a0', 'a2'); // the session is gone: its held frames with it
  await mesh.link('a2', 'a0');
  // One delta on its own would not apply onto the tail's state; the updates since it do.
  const r = await a[0]!.treasury.settle(channelId, 2);
  checkSettlement(mesh, r.tx_hex!, {
    deposits: [
      { deposit: depA, committee: a },
      { deposit: depB, committee: b },
    ],
    settler: { script: scriptOf(a[0]!.payoutAddress), balance: 100_000n - 1_300n },
    other: { script: scriptOf(b[0]!.payoutAddress), balance: 50_000n + 1_300n },
    feeRate: 2,
  });
  assert.ok(a[2]!.treasury.info().committee!.seq >= seq + 3, 'the tail applied the updates it missed');
});

test('a live primary releases a free deposit: its backups sign the release its update shows, and only that one', async () => {
  const mesh = new Mesh(TIMEOUTS);
  const [p, b1, b2] = await mesh.committee(['p', 'b1', 'b2']);
  const dep = await fund(mesh, 'p', 40_000n);
  await waitFor(() => b2!.treasury.deposits().some((d) => d.deposit_id === dep.id && d.status === 'free'), WAIT_MS);
  const r = await p!.treasury.releaseDeposit(dep.id, undefined, 2);
  const tx = Transaction.fromHex(r.tx_hex);
  assert.equal(r.txid, tx.getId());
  checkDepositInput(mesh, tx, 0, dep, memberPubkeys([p!, b1!, b2!], dep));
  // The release at another fee rate is another transaction: a member that did not sign refuses to plan it.
  await waitFor(() => b2!.treasury.deposits().some((d) => d.deposit_id === dep.id && d.status === 'spent'), WAIT_MS);
  const other = [b1!, b2!].find((m) => !m.treasury.state.committee!.signed[dep.id]);
  if (other) assert.throws(() => other.treasury.planFor('release', dep.id, 3), { code: 'deposit_not_free' });
});

test('the primary is killed: two backups release a free deposit, only to the payout address', async () => {
  const mesh = new Mesh(TIMEOUTS);
  const [p, b1, b2] = await mesh.committee(['p', 'b1', 'b2']);
  const dep = await fund(mesh, 'p', 40_000n);
  const id = dep.id;
  await waitFor(() => b2!.treasury.deposits().some((d) => d.deposit_id === id && d.status === 'free'), WAIT_MS);
  mesh.kill('p');
  await assert.rejects(b1!.treasury.releaseDeposit(id, mesh.get('b2').payoutAddress, 2), { code: 'invalid_argument' });
  const r = await b1!.treasury.releaseDeposit(id, undefined, 2);
  const tx = Transaction.fromHex(r.tx_hex);
  assert.equal(r.txid, tx.getId());
  assert.equal(tx.ins.length, 1);
  assert.equal(
    `${bytesToHex(Uint8Array.from(tx.ins[0]!.hash).reverse())}:${tx.ins[0]!.index}`,
    `${dep.txid}:${dep.vout}`,
  );
  checkDepositInput(mesh, tx, 0, dep, memberPubkeys([p!, b1!, b2!], dep));
  // All of it, less the rule's fee, to the committee's payout address (the primary's, replicated).
  const payout = scriptOf(p!.payoutAddress);
  const { fee } = ruleFee(1, 2, 3, [payout], 2);
  assert.deepEqual(
    tx.outs.map((o) => [bytesToHex(o.script), o.value]),
    [[bytesToHex(payout), 40_000n - fee]],
  );
  assert.equal(r.fee_sat, fee.toString());
  // b2 signed it and will sign nothing else for this deposit: not the same release at another fee rate.
  assert.equal(b2!.treasury.state.committee!.signed[id], r.txid);
  assert.equal(b2!.treasury.deposits().find((d) => d.deposit_id === id)!.status, 'spent');
  const otherRate = b2!.treasury.planFor('release', id, 3).plan.txid;
  assert.notEqual(otherRate, r.txid);
  assert.deepEqual(await askToSign(b1!, [b2!], 'release', id, 3, otherRate), { b2: 'already_signed' });
});

test('a member refuses stale, reordered and forged updates, and settlements of an old state', async () => {
  const { a, channelId } = await twoCommittees();
  const [p, b1, b2] = a as [MeshNode, MeshNode, MeshNode];
  // Genuine updates, as the middle member relayed them, after each of three payments.
  const genuine = [];
  for (const amount of [10, 20, 30]) {
    await payAndWait(p, channelId, [amount]);
    genuine.push(structuredClone(b1.treasury.state.committee!.lastUpdate!));
  }
  const seq = b2.treasury.info().committee!.seq;
  assert.equal(seq, genuine[2]!.seq);
  assert.equal(b2.treasury.channel(channelId).total_sent_sat, '60');
  // b1 is compromised: it replays older updates (out of order), a duplicate, and one it signed itself.
  const relay = (msg: CommitteeMessage) =>
    (b1.treasury as unknown as { sendNow(p: string, m: CommitteeMessage): void }).sendNow(b2.treasury.nodeId, msg);
  const sealsBefore = b2.seals;
  relay({ t: 'c_update', update: genuine[0]! });
  relay({ t: 'c_update', update: genuine[1]! });
  relay({ t: 'c_update', update: genuine[2]! });
  const forged = structuredClone(p.treasury.state);
  forged.channels[channelId]!.sent = 0n;
  relay({ t: 'c_update', update: signUpdate(replicaOf(forged, seq + 1), bytesToHex(randomPrivateKey())) });
  const tampered = { ...genuine[2]!, seq: seq + 1, body: genuine[2]!.body.replace('"sent":"60n"', '"sent":"0n"') };
  assert.notEqual(tampered.body, genuine[2]!.body);
  relay({ t: 'c_update', update: tampered });
  // A definite later event: b2 answers a request b1 sends after those (one session applies frames in order).
  assert.deepEqual(await askToSign(b1, [b2], 'settle', channelId, 2, '00'.repeat(32)), { [b2.name]: 'state_mismatch' });
  assert.equal(b2.treasury.info().committee!.seq, seq, 'nothing older, repeated or forged was applied');
  assert.equal(b2.treasury.channel(channelId).total_sent_sat, '60');
  assert.equal(b2.seals, sealsBefore, 'and nothing was sealed for them');
  // The chain still works: the primary's next update goes through.
  await payAndWait(p, channelId, [5]);
  await waitFor(() => b2.treasury.channel(channelId).total_sent_sat === '65', WAIT_MS);
  // A settlement request for an old state (balances at 65, then one more payment) is refused.
  const oldPlan = p.treasury.planFor('settle', channelId, 2);
  await payAndWait(p, channelId, [7]);
  await waitFor(() => b2.treasury.channel(channelId).total_sent_sat === '72', WAIT_MS);
  assert.deepEqual(
    await askToSign(b1, [b2], 'settle', channelId, 2, oldPlan.plan.txid),
    { [b2.name]: 'state_mismatch' },
    'an old-state settlement is refused',
  );
  assert.equal(b2.treasury.state.committee!.signed[channelId], undefined);
  assert.equal(b2.treasury.channel(channelId).status, 'open');
  const current = p.treasury.planFor('settle', channelId, 2).plan.txid;
  assert.notEqual(current, oldPlan.plan.txid);
  assert.deepEqual(await askToSign(b1, [b2], 'settle', channelId, 2, current), { [b2.name]: 'signed' });
  assert.equal(b2.treasury.state.committee!.signed[channelId], current);
  assert.equal(
    b2.treasury.channel(channelId).status,
    'closed',
    'the current state is signed, and the member closes the channel',
  );
});
