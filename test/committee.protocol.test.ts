/**
 * Committee chains at the protocol level: 2-of-3 committees of in-process treasuries on both sides of a
 * channel, real signatures and secret shares, a fake chain. The real-process version (kill -9, the
 * embedded regtest chain) is committee.e2e.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Transaction, opcodes, script as bscript, address as baddress } from 'bitcoinjs-lib';
import { Mesh, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { replicaOf, signUpdate } from '../src/enclave/committee/update.ts';
import { combineShares, splitSecret } from '../src/enclave/committee/shares.ts';
import { bytesToHex } from '../enclave-sim/encoding.ts';
import { randomPrivateKey } from '../src/crypto/secp256k1.ts';
import type { CommitteeMessage } from '../src/enclave/protocol/messages.ts';
import { buildSpend, finalizeMultisigInput, signInput, type Spend } from '../src/bitcoin/index.ts';
import { publicKeyOf } from '../src/crypto/secp256k1.ts';
import { hexToBytes } from '../enclave-sim/encoding.ts';
import { RpcCode } from '../src/chain/rpc-client.ts';
import { expectRejected, newKey, startTestChain } from './helpers/chain.ts';
import * as ecc from 'tiny-secp256k1';
import { NETWORK } from '../src/enclave/treasury/transactions.ts';
import { openBox } from '../src/crypto/ecies.ts';
import { prng, randBytes, testSeed } from './helpers/seeded.ts';

/** Protocol timeouts well above anything a loaded machine needs: no success path here waits on one. */
const TIMEOUTS = { replyTimeoutMs: 20_000, multihopTimeoutMs: 20_000 };
const WAIT_MS = 30_000;
/** A payout address's output script, from the address alone. */
const scriptOf = (addr: string) => baddress.toOutputScript(addr, NETWORK);

/** A deposit as the test funded it on the (fake) chain: known here, not from any enclave's report. */
interface Funded {
  id: string;
  txid: string;
  vout: number;
  value: bigint;
}

/** Like Mesh.deposit, but keeps the funding outpoint the test made. */
async function fund(mesh: Mesh, name: string, value: bigint): Promise<Funded> {
  const t = mesh.get(name).treasury;
  const dep = await t.newDeposit();
  const out = mesh.chain.fund(dep.address, value);
  await t.depositFunded(dep.deposit_id, out.txid, out.vout);
  return { id: dep.deposit_id, ...out, value };
}

/** Two 2-of-3 committees with one funded channel between their primaries. */
async function twoCommittees() {
  const mesh = new Mesh(TIMEOUTS);
  const a = await mesh.committee(['a0', 'a1', 'a2']);
  const b = await mesh.committee(['b0', 'b1', 'b2']);
  await mesh.link('a0', 'b0');
  const depA = await fund(mesh, 'a0', 100_000n);
  const depB = await fund(mesh, 'b0', 50_000n);
  const ch = await a[0]!.treasury.openChannel(b[0]!.treasury.nodeId, a[0]!.payoutAddress);
  await a[0]!.treasury.addDeposit(ch.channel_id, depA.id);
  await b[0]!.treasury.addDeposit(ch.channel_id, depB.id);
  return { mesh, a, b, channelId: ch.channel_id, depA, depB };
}

async function payAndWait(from: MeshNode, channelId: string, amounts: number[]): Promise<void> {
  const results = await from.treasury.pay(amounts.map((amount_sat) => ({ channel_id: channelId, amount_sat })));
  assert.ok(
    results.every((r) => r.ok),
    JSON.stringify(results.find((r) => !r.ok)),
  );
  const last = (results[results.length - 1] as { position: string }).position;
  await waitFor(() => from.treasury.channel(channelId).total_acked_sat === last, WAIT_MS);
}

/** The deposit keys of `deposit`, one per member of `committee` (primary first), as each member holds its own. */
function memberPubkeys(committee: MeshNode[], deposit: Funded): string[] {
  const [p, ...backups] = committee as [MeshNode, ...MeshNode[]];
  const keys = [
    p.treasury.state.deposits[deposit.id]!.privkeys[0]!,
    ...backups.map((m) => m.treasury.state.committee!.memberKeys[deposit.id]!),
  ];
  return keys.map((k) => bytesToHex(publicKeyOf(hexToBytes(k))));
}

/**
 * The fee rule of README "Settlement" (and src/enclave/treasury/transactions.ts): the settling side pays
 * rate × the finished transaction's virtual size, every signature counted at its largest (72 bytes with
 * the sighash byte). Counted here from the shape alone: `inputs` P2WSH m-of-n inputs, the given outputs.
 */
function ruleFee(
  inputs: number,
  m: number,
  n: number,
  outputScripts: Uint8Array[],
  feeRate: number,
): { fee: bigint; vsize: number } {
  const witnessScript = 1 + n * (1 + 33) + 1 + 1; // OP_m <pubkey>×n OP_n OP_CHECKMULTISIG
  const base = 4 + 1 + inputs * (32 + 4 + 1 + 4) + 1 + outputScripts.reduce((sum, o) => sum + 8 + 1 + o.length, 0) + 4;
  const witness = 2 + inputs * (1 + 1 + m * (1 + 72) + 1 + witnessScript); // marker+flag; items, dummy, sigs, script
  const vsize = Math.ceil((4 * base + witness) / 4);
  return { fee: BigInt(vsize * feeRate), vsize };
}

/**
 * Checks that input `index` of `tx` spends `deposit` with m valid signatures by `pubkeys`: the witness
 * script hashes to the P2WSH program of the funding output as the chain holds it, is the 2-of-3 script
 * over exactly those keys, and two signatures verify (tiny-secp256k1, not the product's ECDSA) over the
 * BIP143 digest of this very transaction, in CHECKMULTISIG order.
 */
function checkDepositInput(mesh: Mesh, tx: Transaction, index: number, deposit: Funded, pubkeys: string[]): void {
  const what = `${deposit.txid}:${deposit.vout}`;
  const funding = Transaction.fromHex(mesh.chain.txs.get(deposit.txid)!.hex).outs[deposit.vout]!;
  assert.equal(funding.value, deposit.value, `${what}: the funded value`);
  const program = funding.script;
  assert.equal(program.length, 34, `${what} is a P2WSH output`);
  assert.deepEqual([program[0], program[1]], [0x00, 0x20], `${what} is a P2WSH output`);
  const witness = tx.ins[index]!.witness;
  assert.equal(witness.length, 4, `${what}: dummy, two signatures, witness script`);
  assert.equal(witness[0]!.length, 0, `${what}: CHECKMULTISIG dummy is empty`);
  const ws = witness[3]!;
  assert.equal(
    createHash('sha256').update(ws).digest('hex'),
    bytesToHex(program.subarray(2)),
    `${what}: sha256(witness script) is the funding output's P2WSH program`,
  );
  const ops = bscript.decompile(ws)!;
  assert.equal(ops.length, 6, `${what}: a 2-of-3 multisig script`);
  assert.deepEqual(
    [ops[0], ops[4], ops[5]],
    [opcodes.OP_2, opcodes.OP_3, opcodes.OP_CHECKMULTISIG],
    `${what}: a 2-of-3 multisig script`,
  );
  const scriptKeys = ops.slice(1, 4).map((k) => bytesToHex(k as Uint8Array));
  assert.deepEqual(
    [...scriptKeys].sort(),
    [...pubkeys].sort(),
    `${what}: the script's keys are the committee members' own keys`,
  );
  let last = -1;
  for (const sig of witness.slice(1, 3)) {
    const { signature, hashType } = bscript.signature.decode(sig);
    assert.equal(hashType, Transaction.SIGHASH_ALL, `${what}: SIGHASH_ALL`);
    const digest = tx.hashForWitnessV0(index, ws, funding.value, hashType);
    const k = scriptKeys.findIndex((key, i) => i > last && ecc.verify(digest, hexToBytes(key), signature));
    assert.ok(k > last, `${what}: a signature that verifies against a later committee key than the previous one`);
    last = k;
  }
}

/**
 * Checks a committee settlement against what the test knows independently of it: it spends exactly the
 * two funded deposits, each validly signed 2-of-3 by its committee's keys (see checkDepositInput), and it
 * pays exactly each side's balance (from the payments the test made) to that side's payout script (from
 * the address the test gave it), the settler's output less the fee of the documented fee rule.
 */
function checkSettlement(
  mesh: Mesh,
  hex: string,
  expect: {
    deposits: Array<{ deposit: Funded; committee: MeshNode[] }>;
    settler: { script: Uint8Array; balance: bigint };
    other: { script: Uint8Array; balance: bigint };
    feeRate: number;
  },
): void {
  const tx = Transaction.fromHex(hex);
  const spent = tx.ins.map((i) => `${bytesToHex(Uint8Array.from(i.hash).reverse())}:${i.index}`);
  assert.deepEqual(
    [...spent].sort(),
    expect.deposits.map(({ deposit: d }) => `${d.txid}:${d.vout}`).sort(),
    'spends exactly both funded deposits',
  );
  for (const { deposit, committee } of expect.deposits) {
    checkDepositInput(
      mesh,
      tx,
      spent.indexOf(`${deposit.txid}:${deposit.vout}`),
      deposit,
      memberPubkeys(committee, deposit),
    );
  }
  const { fee, vsize } = ruleFee(
    expect.deposits.length,
    2,
    3,
    [expect.settler.script, expect.other.script],
    expect.feeRate,
  );
  assert.ok(
    tx.virtualSize() <= vsize && tx.virtualSize() >= vsize - 2,
    `the finished size ${tx.virtualSize()} vB is the rule's worst case ${vsize} vB, or a signature byte or two less`,
  );
  const paid = tx.outs.map((o) => [bytesToHex(o.script), o.value] as const).sort(([x], [y]) => x.localeCompare(y));
  const wanted = [
    [bytesToHex(expect.settler.script), expect.settler.balance - fee] as const,
    [bytesToHex(expect.other.script), expect.other.balance] as const,
  ].sort(([x], [y]) => x.localeCompare(y));
  assert.deepEqual(paid, wanted, `each side its balance to its own payout script, the settler less the fee ${fee} sat`);
}

/** The stable codes with which `to` answer `from`'s request to sign transaction `txid` (`signed` for a signature). */
async function askToSign(
  from: MeshNode,
  to: MeshNode[],
  kind: 'settle' | 'release',
  id: string,
  feeRate: number,
  txid: string,
): Promise<Record<string, string>> {
  type Ask = (
    to: string[],
    msg: CommitteeMessage & { req: number },
    needed: number,
    read: (msg: CommitteeMessage) => string | null,
  ) => Promise<Map<string, string>>;
  const coordinator = (from.treasury as unknown as { committee: { ask: Ask } }).committee;
  const answers = await coordinator.ask.call(
    coordinator,
    to.map((m) => m.treasury.nodeId),
    { t: 'c_sign', req: 0, kind, id, fee_rate: feeRate, txid },
    to.length,
    (msg) => (msg.t === 'c_error' ? msg.code : msg.t === 'c_sign_res' ? 'signed' : null),
  );
  return Object.fromEntries(to.map((m) => [m.name, answers.get(m.treasury.nodeId) ?? 'no answer']));
}

/**
 * Every member of `committee` signed `signed` for channel `channelId` and refuses any other transaction for
 * it: the same state at another fee rate (which a member that had signed nothing would sign) and `signed`
 * with 1,000 sat moved between its outputs. Each member is asked by another one over the committee link.
 */
async function checkRefusesOthers(
  committee: MeshNode[],
  channelId: string,
  signed: string,
  feeRate: number,
): Promise<void> {
  const txid = Transaction.fromHex(signed).getId();
  const signedBy = () =>
    Object.fromEntries(committee.map((m) => [m.name, m.treasury.state.committee!.signed[channelId]]));
  // The settler's request reached every member; the last one may still be answering it.
  await waitFor(() => Object.values(signedBy()).every((t) => t !== undefined), WAIT_MS).catch(() => undefined);
  assert.deepEqual(
    signedBy(),
    Object.fromEntries(committee.map((m) => [m.name, txid])),
    'every member signed this settlement and recorded it',
  );
  const otherRate = committee[0]!.treasury.planFor('settle', channelId, feeRate + 1).plan.txid;
  const moved = Transaction.fromHex(signed);
  moved.outs[0]!.value += 1_000n;
  moved.outs[1]!.value -= 1_000n;
  const alternatives = [otherRate, moved.getId()];
  assert.equal(new Set([...alternatives, txid]).size, 3);
  for (const txid of alternatives) {
    const [first, ...rest] = committee as [MeshNode, ...MeshNode[]];
    const answers = {
      ...(await askToSign(first, rest, 'settle', channelId, feeRate + 1, txid)),
      ...(await askToSign(rest[0]!, [first], 'settle', channelId, feeRate + 1, txid)),
    };
    assert.deepEqual(
      answers,
      Object.fromEntries(committee.map((m) => [m.name, 'already_signed'])),
      `every member refuses ${txid === otherRate ? 'the same state at another fee rate' : 'the settlement with 1,000 sat moved'}`,
    );
  }
}

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
  // README "Committee chains": calling settle again retries the very same transaction, whatever fee rate it names.
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

test("one compromised member's key cannot move a 2-of-3 deposit: the regtest chain refuses it, two keys spend it", async () => {
  const chain = await startTestChain();
  try {
    const mesh = new Mesh(TIMEOUTS);
    const [p, b1, b2] = await mesh.committee(['p', 'b1', 'b2']);
    const dep = await p!.treasury.newDeposit();
    const funded = await chain.faucet.fund(dep.address, 60_000n);
    await chain.faucet.mine(1);
    // The test-only hook: read the member's key out of its in-process state, as an attacker of one TEE would.
    const stolen = b1!.treasury.state.committee!.memberKeys[dep.deposit_id]!;
    const second = b2!.treasury.state.committee!.memberKeys[dep.deposit_id]!;
    const thief = newKey();
    const spend = (): Spend =>
      buildSpend({
        inputs: [
          {
            kind: 'p2wsh-multisig',
            txid: funded.txid,
            vout: funded.vout,
            valueSat: 60_000n,
            witnessScript: hexToBytes(dep.witness_script),
          },
        ],
        outputs: [{ address: thief.address, valueSat: 58_000n }],
      });
    const one = spend();
    one.tx.setWitness(0, [new Uint8Array(0), signInput(one, 0, hexToBytes(stolen)), hexToBytes(dep.witness_script)]);
    await expectRejected(chain.rpc, one.tx.toHex(), RpcCode.VERIFY_REJECTED, /script|signature|verify/i, [
      { txid: funded.txid, vout: funded.vout },
    ]);
    // The same key twice is still one signer.
    const twice = spend();
    const sig = signInput(twice, 0, hexToBytes(stolen));
    twice.tx.setWitness(0, [new Uint8Array(0), sig, sig, hexToBytes(dep.witness_script)]);
    await expectRejected(chain.rpc, twice.tx.toHex(), RpcCode.VERIFY_REJECTED, /script|signature|verify/i);
    // Two members' keys (m = 2) do spend it: the deposit really is 2-of-3 over those keys.
    const two = spend();
    finalizeMultisigInput(
      two,
      0,
      [stolen, second].map((k) => ({
        pubkey: publicKeyOf(hexToBytes(k)),
        signature: signInput(two, 0, hexToBytes(k)),
      })),
    );
    assert.equal(await chain.rpc.sendRawTransaction(two.tx.toHex()), two.tx.getId());
  } finally {
    await chain.close();
  }
});

test('handed-over keys are kept as 2-of-3 secret shares: no member holds one whole', async () => {
  const { a, b, channelId, depA, depB } = await twoCommittees();
  for (const m of [...a, ...b]) {
    const ch = m.treasury.state.channels[channelId]!;
    assert.equal(ch.peerDeposits.length, 1, `${m.name} holds the peer's one deposit`);
    for (const d of ch.peerDeposits) {
      assert.deepEqual(d.privkeys, [], `${m.name} holds no whole key of the peer's deposit`);
      assert.equal(d.shares!.length, 3);
      for (const s of d.shares!) assert.equal(s.boxes.length, 3);
    }
  }
  // The shares are real: each member opens only its own box, and any two members' shares rebuild each of
  // the peer committee's keys of that deposit (the keys its members hold).
  for (const [mine, peers, dep] of [
    [a, b, depB],
    [b, a, depA],
  ] as const) {
    const d = mine[0]!.treasury.state.channels[channelId]!.peerDeposits[0]!;
    assert.equal(d.outpoint, `${dep.txid}:${dep.vout}`);
    assert.deepEqual(d.shares!.map((s) => s.pubkey).sort(), memberPubkeys([...peers], dep).sort());
    for (const s of d.shares!) {
      const open = (m: MeshNode, box: string): Uint8Array | null =>
        openBox(hexToBytes(m.treasury.state.identityKey), box, 'key-share'); // coordinator.ts AAD_SHARE
      const shares = mine.map((m, i) => open(m, s.boxes[i]!));
      assert.ok(
        shares.every((x) => x !== null),
        'each member opens its own share',
      );
      assert.equal(open(mine[0]!, s.boxes[1]!), null, "and not another member's");
      for (const pair of [
        [0, 1],
        [1, 2],
        [0, 2],
      ]) {
        assert.equal(
          bytesToHex(publicKeyOf(await combineShares(pair.map((i): Uint8Array => shares[i]!)))),
          s.pubkey,
          `members ${pair} rebuild the key`,
        );
      }
    }
  }
  // The grant carried each member's key split for the peer's roster, never whole keys, plain or sealed.
  const grant = b[0]!.treasury.state.deposits[Object.keys(b[0]!.treasury.state.deposits)[0]!]!;
  assert.equal(grant.sealedKeys, undefined);
  assert.equal(grant.peerShares!.length, 3);
  for (const s of grant.peerShares!) assert.equal(s.boxes.length, 3);
});

test('Shamir sharing: fewer than m shares reconstruct nothing, any m reconstruct the secret', async () => {
  const seed = testSeed('committee.protocol Shamir');
  const secret = randBytes(prng(seed), 32);
  const shares = await splitSecret(secret, 5, 3);
  assert.equal(shares.length, 5);
  for (const pick of [
    [0, 1, 2],
    [1, 3, 4],
    [0, 2, 4],
  ]) {
    assert.deepEqual(await combineShares(pick.map((i) => shares[i]!)), secret);
  }
  for (const pick of [
    [0, 1],
    [2, 4],
    [3, 1],
  ]) {
    assert.notDeepEqual(
      await combineShares(pick.map((i) => shares[i]!)),
      secret,
      'two of a 3-of-5 rebuild something else',
    );
  }
  await assert.rejects(combineShares([shares[0]!]), /at least two/);
  await assert.rejects(splitSecret(secret, 3, 1), /2 ≤ m ≤ n/);
  // Each split draws fresh randomness: a second split of the same secret shares no value with the first,
  // and no share is the secret (committee.shares.test.ts tests the share bytes' distribution).
  const again = await splitSecret(secret, 5, 3);
  const values = new Set([...shares, ...again].map((s) => bytesToHex(s.subarray(0, 32))));
  assert.equal(values.size, 10, `two splits of one secret give ten distinct shares (seed ${seed})`);
  assert.ok(!values.has(bytesToHex(secret)), `no share is the secret (seed ${seed})`);
});
