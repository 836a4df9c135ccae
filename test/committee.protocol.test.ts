/**
 * Committee chains at the protocol level: 2-of-3 committees of in-process treasuries on both sides of a
 * channel, real signatures and secret shares, a fake chain. The real-process version (kill -9, the
 * embedded regtest chain) is committee.e2e.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Transaction } from 'bitcoinjs-lib';
import { Mesh, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { verifyDepositSpend } from '../src/treasury/transactions.ts';
import { replicaOf, signUpdate } from '../src/committee/update.ts';
import { combineShares, splitSecret } from '../src/committee/shares.ts';
import { bytesToHex } from '../enclave-sim/encoding.ts';
import { randomPrivateKey } from '../src/crypto/secp256k1.ts';
import type { CommitteeMessage } from '../src/protocol/messages.ts';
import { buildSpend, finalizeMultisigInput, signInput, type Spend } from '../src/bitcoin/index.ts';
import { publicKeyOf } from '../src/crypto/secp256k1.ts';
import { hexToBytes } from '../enclave-sim/encoding.ts';
import { RpcCode } from '../src/chain/rpc-client.ts';
import { expectRejected, newKey, startTestChain } from './helpers/chain.ts';

/** Two 2-of-3 committees with one funded channel between their primaries. */
async function twoCommittees() {
  const mesh = new Mesh();
  const a = await mesh.committee(['a0', 'a1', 'a2']);
  const b = await mesh.committee(['b0', 'b1', 'b2']);
  await mesh.link('a0', 'b0');
  const depA = await mesh.deposit('a0', 100_000n);
  const depB = await mesh.deposit('b0', 50_000n);
  const ch = await a[0]!.treasury.openChannel(b[0]!.treasury.nodeId, a[0]!.payoutAddress);
  await a[0]!.treasury.addDeposit(ch.channel_id, depA);
  await b[0]!.treasury.addDeposit(ch.channel_id, depB);
  return { mesh, a, b, channelId: ch.channel_id, depA, depB };
}

async function payAndWait(from: MeshNode, channelId: string, amounts: number[]): Promise<void> {
  const results = await from.treasury.pay(amounts.map((amount_sat) => ({ channel_id: channelId, amount_sat })));
  assert.ok(results.every((r) => r.ok), JSON.stringify(results.find((r) => !r.ok)));
  const last = (results[results.length - 1] as { position: string }).position;
  await waitFor(() => from.treasury.channel(channelId).total_acked_sat === last);
}

/** Checks a settlement spends both deposits with valid m-of-n signatures and pays the given balances. */
function checkSettlement(mesh: Mesh, hex: string, a0: MeshNode, expect: { a: bigint; b: bigint }, view: ReturnType<MeshNode['treasury']['channel']>) {
  const tx = Transaction.fromHex(hex);
  const deposits = [...view.local_deposits.map((d) => d.outpoint), ...view.remote_deposits.map((d) => d.outpoint)];
  assert.equal(tx.ins.length, deposits.length);
  for (const outpoint of deposits) {
    const [txid, vout] = outpoint.split(':') as [string, string];
    const funding = Transaction.fromHex(mesh.chain.txs.get(txid)!.hex).outs[Number(vout)]!;
    const witnessScript = bytesToHex(tx.ins.find((i) => bytesToHex(Uint8Array.from(i.hash).reverse()) === txid)!.witness.at(-1)!);
    assert.ok(verifyDepositSpend(hex, { outpoint, value: funding.value, m: 2, pubkeys: [], privkeys: [], witnessScript }), `${outpoint} is validly signed 2-of-3`);
  }
  const paid = new Map(tx.outs.map((o) => [bytesToHex(o.script), o.value]));
  const fee = expect.a + expect.b - tx.outs.reduce((s, o) => s + o.value, 0n);
  assert.ok(fee > 0n && fee < 2_000n, `fee ${fee}`);
  assert.equal([...paid.values()].reduce((s, v) => s + v, 0n) + fee, expect.a + expect.b);
  void a0;
}

test('committee formation: chain order, m-of-n deposits with one key per member', async () => {
  const mesh = new Mesh();
  const [p, b1, b2] = await mesh.committee(['p', 'b1', 'b2']);
  const info = p!.treasury.info().committee!;
  assert.equal(info.size, 3);
  assert.equal(info.threshold, 2);
  assert.deepEqual(info.members.map((m) => m.node_id), [p!.treasury.nodeId, b1!.treasury.nodeId, b2!.treasury.nodeId]);
  assert.equal(b2!.treasury.info().committee!.index, 2);
  const id = await mesh.deposit('p', 10_000n);
  const dep = p!.treasury.deposits().find((d) => d.deposit_id === id)!;
  assert.equal(dep.m, 2);
  assert.equal(dep.pubkeys.length, 3);
  // Each member holds exactly its own key, and no two hold the same.
  const keys = [p!.treasury.state.deposits[id]!.privkeys, [b1!.treasury.state.committee!.memberKeys[id]!], [b2!.treasury.state.committee!.memberKeys[id]!]];
  assert.deepEqual(keys.map((k) => k.length), [1, 1, 1]);
  assert.equal(new Set(keys.flat()).size, 3);
  // The deposit reached the backups' replicas once the primary's update was acknowledged.
  await waitFor(() => b2!.treasury.deposits().some((d) => d.deposit_id === id && d.status === 'free'));
  // Backups refuse what only a primary does.
  await assert.rejects(b1!.treasury.newDeposit(), { code: 'not_primary' });
  await assert.rejects(b1!.treasury.pay([{ channel_id: '00'.repeat(32), amount_sat: 1 }]), { code: 'not_primary' });
});

test('an incomplete committee refuses deposits; a primary without its backups refuses payments', async () => {
  const mesh = new Mesh();
  await mesh.add('p', { role: 'primary', size: 3, address: 'p:1' });
  await assert.rejects(mesh.get('p').treasury.newDeposit(), { code: 'committee_incomplete' });
  const { a, channelId } = await twoCommittees();
  a[2]!.treasury.disconnected('a2|a1');
  a[0]!.treasury.disconnected('a0|a2');
  await assert.rejects(a[0]!.treasury.pay([{ channel_id: channelId, amount_sat: 5 }]), { code: 'committee_unavailable' });
});

test('payments are chain-replicated before they are acknowledged; settlement from the primary needs 2 of 3', async () => {
  const { mesh, a, b, channelId } = await twoCommittees();
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
  const view = a[0]!.treasury.channel(channelId);
  const r = await a[0]!.treasury.settle(channelId, 2);
  assert.ok(r.tx_hex);
  checkSettlement(mesh, r.tx_hex, a[0]!, { a: 100_000n - total + 300n, b: 50_000n + total - 300n }, view);
  assert.equal(r.local_balance_sat, (100_000n - total + 300n).toString());
  // Every member now refuses any other transaction for this channel.
  for (const m of a) assert.equal(m.treasury.state.committee!.signed[channelId] ?? r.txid, r.txid);
});

test('the primary is killed: two backups settle with the last acknowledged balances', async () => {
  const { mesh, a, b, channelId } = await twoCommittees();
  await payAndWait(a[0]!, channelId, Array.from({ length: 50 }, () => 100));
  await payAndWait(b[0]!, channelId, [1_234]);
  const expected = { a: 100_000n - 5_000n + 1_234n, b: 50_000n + 5_000n - 1_234n };
  mesh.kill('a0');
  const view = a[1]!.treasury.channel(channelId);
  assert.equal(view.local_balance_sat, expected.a.toString());
  const r = await a[1]!.treasury.settle(channelId, 2);
  checkSettlement(mesh, r.tx_hex!, a[1]!, expected, view);
  // The other committee's backups, with their own primary killed too, settle the same balances.
  mesh.kill('b0');
  const rb = await b[2]!.treasury.settle(channelId, 3);
  checkSettlement(mesh, rb.tx_hex!, b[2]!, { a: expected.a, b: expected.b }, b[2]!.treasury.channel(channelId));
});

test('the primary is killed: two backups release a free deposit, only to the payout address', async () => {
  const mesh = new Mesh();
  const [p, b1, b2] = await mesh.committee(['p', 'b1', 'b2']);
  const id = await mesh.deposit('p', 40_000n);
  await waitFor(() => b2!.treasury.deposits().some((d) => d.deposit_id === id && d.status === 'free'));
  const dep = p!.treasury.deposits().find((d) => d.deposit_id === id)!;
  mesh.kill('p');
  await assert.rejects(b1!.treasury.releaseDeposit(id, mesh.get('b2').payoutAddress, 2), { code: 'invalid_argument' });
  const r = await b1!.treasury.releaseDeposit(id, undefined, 2);
  const [txid, vout] = dep.outpoint!.split(':') as [string, string];
  const funding = Transaction.fromHex(mesh.chain.txs.get(txid)!.hex).outs[Number(vout)]!;
  assert.equal(verifyDepositSpend(r.tx_hex, { outpoint: dep.outpoint!, value: funding.value, m: 2, pubkeys: [], privkeys: [], witnessScript: dep.witness_script }), r.txid);
  const out = Transaction.fromHex(r.tx_hex).outs;
  assert.equal(out.length, 1);
  assert.equal(out[0]!.value, 40_000n - BigInt(r.fee_sat));
  // b2 signed it and will sign nothing else for this deposit.
  assert.equal(b2!.treasury.state.committee!.signed[id], r.txid);
  assert.equal(b2!.treasury.deposits().find((d) => d.deposit_id === id)!.status, 'spent');
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
  const relay = (msg: CommitteeMessage) => (b1.treasury as unknown as { sendNow(p: string, m: CommitteeMessage): void }).sendNow(b2.treasury.nodeId, msg);
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
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(b2.treasury.info().committee!.seq, seq, 'nothing older, repeated or forged was applied');
  assert.equal(b2.treasury.channel(channelId).total_sent_sat, '60');
  assert.equal(b2.seals, sealsBefore, 'and nothing was sealed for them');
  // The chain still works: the primary's next update goes through.
  await payAndWait(p, channelId, [5]);
  await waitFor(() => b2.treasury.channel(channelId).total_sent_sat === '65');
  // A settlement request for an old state (balances at 65, then one more payment) is refused.
  const oldPlan = p.treasury.planFor('settle', channelId, 2);
  await payAndWait(p, channelId, [7]);
  const ask = (txid: string) => relay({ t: 'c_sign', req: 99, kind: 'settle', id: channelId, fee_rate: 2, txid });
  ask(oldPlan.plan.txid);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(b2.treasury.state.committee!.signed[channelId], undefined, 'an old-state settlement is refused');
  assert.equal(b2.treasury.channel(channelId).status, 'open');
  ask(p.treasury.planFor('settle', channelId, 2).plan.txid);
  await waitFor(() => b2.treasury.state.committee!.signed[channelId] !== undefined);
  assert.equal(b2.treasury.channel(channelId).status, 'closed', 'the current state is signed, and the member closes the channel');
});

test('one compromised member\'s key cannot move a 2-of-3 deposit: the regtest chain refuses it, two keys spend it', async () => {
  const chain = await startTestChain();
  try {
    const mesh = new Mesh();
    const [p, b1, b2] = await mesh.committee(['p', 'b1', 'b2']);
    const dep = await p!.treasury.newDeposit();
    const funded = await chain.faucet.fund(dep.address, 60_000n);
    await chain.faucet.mine(1);
    // The test-only hook: read the member's key out of its in-process state, as an attacker of one TEE would.
    const stolen = b1!.treasury.state.committee!.memberKeys[dep.deposit_id]!;
    const second = b2!.treasury.state.committee!.memberKeys[dep.deposit_id]!;
    const thief = newKey();
    const spend = (): Spend => buildSpend({
      inputs: [{ kind: 'p2wsh-multisig', txid: funded.txid, vout: funded.vout, valueSat: 60_000n, witnessScript: hexToBytes(dep.witness_script) }],
      outputs: [{ address: thief.address, valueSat: 58_000n }],
    });
    const one = spend();
    one.tx.setWitness(0, [new Uint8Array(0), signInput(one, 0, hexToBytes(stolen)), hexToBytes(dep.witness_script)]);
    await expectRejected(chain.rpc, one.tx.toHex(), RpcCode.VERIFY_REJECTED, /script|signature|verify/i, [{ txid: funded.txid, vout: funded.vout }]);
    // The same key twice is still one signer.
    const twice = spend();
    const sig = signInput(twice, 0, hexToBytes(stolen));
    twice.tx.setWitness(0, [new Uint8Array(0), sig, sig, hexToBytes(dep.witness_script)]);
    await expectRejected(chain.rpc, twice.tx.toHex(), RpcCode.VERIFY_REJECTED, /script|signature|verify/i);
    // Two members' keys (m = 2) do spend it: the deposit really is 2-of-3 over those keys.
    const two = spend();
    finalizeMultisigInput(two, 0, [stolen, second].map((k) => ({ pubkey: publicKeyOf(hexToBytes(k)), signature: signInput(two, 0, hexToBytes(k)) })));
    assert.equal(await chain.rpc.sendRawTransaction(two.tx.toHex()), two.tx.getId());
  } finally {
    await chain.close();
  }
});

test('handed-over keys are kept as 2-of-3 secret shares: no member holds one whole', async () => {
  const { a, b, channelId } = await twoCommittees();
  for (const m of [...a, ...b]) {
    const ch = m.treasury.state.channels[channelId]!;
    for (const d of ch.peerDeposits) {
      assert.deepEqual(d.privkeys, [], `${m.name} holds no whole key of the peer's deposit`);
      assert.equal(d.shares!.length, 3);
      for (const s of d.shares!) assert.equal(s.boxes.length, 3);
    }
  }
  // The grant carried each member's key split for the peer's roster, never whole keys, plain or sealed.
  const grant = b[0]!.treasury.state.deposits[Object.keys(b[0]!.treasury.state.deposits)[0]!]!;
  assert.equal(grant.sealedKeys, undefined);
  assert.equal(grant.peerShares!.length, 3);
  for (const s of grant.peerShares!) assert.equal(s.boxes.length, 3);
});

test('Shamir sharing: fewer than m shares reconstruct nothing, any m reconstruct the secret', async () => {
  const secret = new Uint8Array(randomBytes(32));
  const shares = await splitSecret(secret, 5, 3);
  assert.equal(shares.length, 5);
  for (const pick of [[0, 1, 2], [1, 3, 4], [0, 2, 4]]) {
    assert.deepEqual(await combineShares(pick.map((i) => shares[i]!)), secret);
  }
  for (const pick of [[0, 1], [2, 4], [3, 1]]) {
    assert.notDeepEqual(await combineShares(pick.map((i) => shares[i]!)), secret, 'two of a 3-of-5 rebuild something else');
  }
  await assert.rejects(combineShares([shares[0]!]), /at least two/);
  await assert.rejects(splitSecret(secret, 3, 1), /2 ≤ m ≤ n/);
  // A single share is uniformly random whatever the secret: two different secrets, same share distribution size.
  const other = await splitSecret(new Uint8Array(32), 3, 2);
  assert.equal(other[0]!.length, shares[0]!.length);
});
