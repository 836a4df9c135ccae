/**
 * Two 2-of-3 committees of in-process treasuries with a funded channel between their primaries
 * (treasury-mesh.ts: real signatures and shares, a fake chain), and the checks of what they sign made from
 * what the test knows on its own: the funding outputs it made, the payments, the documented fee rule.
 * Used by committee.protocol.test.ts and committee.keys.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Transaction, opcodes, script as bscript, address as baddress } from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { bytesToHex, hexToBytes } from '../../enclave-sim/encoding.ts';
import { publicKeyOf } from '../../src/crypto/secp256k1.ts';
import type { CommitteeMessage } from '../../src/enclave/protocol/messages.ts';
import { NETWORK } from '../../src/enclave/treasury/transactions.ts';
import { Mesh, payAndWait, WAIT_MS, type MeshNode, type MeshOptions } from './treasury-mesh.ts';
import { waitFor } from './treasury-pair.ts';

/** Protocol timeouts well above anything a loaded machine needs: no success path here waits on one. */
export const TIMEOUTS = { replyTimeoutMs: 20_000, multihopTimeoutMs: 20_000 };
/** The one pay-and-wait helper and its wait, from treasury-mesh.ts, for the files that take their set-up from here. */
export { payAndWait, WAIT_MS };
/** A payout address's output script, from the address alone. */
export const scriptOf = (addr: string) => baddress.toOutputScript(addr, NETWORK);

/** A deposit as the test funded it on the (fake) chain: known here, not from any enclave's report. */
export interface Funded {
  id: string;
  txid: string;
  vout: number;
  value: bigint;
}

/** Like Mesh.deposit, but keeps the funding outpoint the test made. */
export async function fund(mesh: Mesh, name: string, value: bigint): Promise<Funded> {
  const t = mesh.get(name).treasury;
  const dep = await t.newDeposit();
  const out = mesh.chain.fund(dep.address, value);
  await t.depositFunded(dep.deposit_id, out.txid, out.vout);
  return { id: dep.deposit_id, ...out, value };
}

/** Two 2-of-3 committees with one funded channel between their primaries (`options`: the mesh's, e.g. promotion). */
export async function twoCommittees(options: MeshOptions = {}) {
  const mesh = new Mesh({ ...TIMEOUTS, ...options });
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

/** The deposit keys of `deposit`, one per member of `committee` (primary first), as each member holds its own. */
export function memberPubkeys(committee: MeshNode[], deposit: Funded): string[] {
  const [p, ...backups] = committee as [MeshNode, ...MeshNode[]];
  const keys = [
    p.treasury.state.deposits[deposit.id]!.privkeys[0]!,
    ...backups.map((m) => m.treasury.state.committee!.memberKeys[deposit.id]!),
  ];
  return keys.map((k) => bytesToHex(publicKeyOf(hexToBytes(k))));
}

/**
 * The fee rule of docs/protocol/channels.md "Settlement" (and src/enclave/treasury/transactions.ts): the settling side pays
 * rate × the finished transaction's virtual size, every signature counted at its largest (72 bytes with
 * the sighash byte). Counted here from the shape alone: `inputs` P2WSH m-of-n inputs, the given outputs.
 */
export function ruleFee(
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
export function checkDepositInput(
  mesh: Mesh,
  tx: Transaction,
  index: number,
  deposit: Funded,
  pubkeys: string[],
): void {
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
export function checkSettlement(
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
export async function askToSign(
  from: MeshNode,
  to: MeshNode[],
  kind: 'settle' | 'release' | 'tau',
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
export async function checkRefusesOthers(
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
