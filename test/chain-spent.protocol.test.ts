// run-tests lane: in-process
/**
 * What the enclave does when its host's chain shows an output already spent (the fake chain marks the
 * inputs of every transaction broadcast on it spent): a funding report and a peer's deposit grant over a
 * spent output are refused `funding_spent`; a committed multi-hop hop whose path settlement τ has an input
 * already spent refuses to hand τ out (`multihop_in_doubt`) until the chain shows which state won.
 * In-process cores, a fake chain; the end-to-end versions run real processes on the regtest chain.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { payments, Transaction } from 'bitcoinjs-lib';
import { randomBytes } from 'node:crypto';
import { connect, fundedDeposit, makePair, waitFor, type FakeChain } from './helpers/treasury-pair.ts';
import { line, payUntilMiddleCommitted, type MeshNode } from './helpers/treasury-mesh.ts';
import { TreasuryError } from '../src/enclave/treasury/errors.ts';
import { NETWORK } from '../src/enclave/treasury/transactions.ts';
import { isFrozen } from '../src/enclave/treasury/multihop/records.ts';
import { txidIn } from './helpers/multihop-views.ts';

/** Broadcasts on `chain` a transaction spending `txid:vout` to a stranger (its witness is no concern of the fake chain). */
function spendElsewhere(chain: FakeChain, outpoint: string, value: bigint): string {
  const [txid, vout] = outpoint.split(':') as [string, string];
  const tx = new Transaction();
  tx.addInput(Buffer.from(txid, 'hex').reverse(), Number(vout));
  tx.addOutput(payments.p2wpkh({ hash: randomBytes(20), network: NETWORK }).output!, value - 1_000n);
  return chain.broadcast(tx.toHex());
}

const isCode = (code: string, message?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof TreasuryError, `a TreasuryError, not ${String(e)}`);
  assert.equal(e.code, code, e.message);
  if (message) assert.match(e.message, message);
  return true;
};

test('funding_spent: a funding output the chain shows spent is refused; the deposit stays pending and nothing is sealed', async () => {
  const pair = await makePair();
  const dep = await pair.a.treasury.newDeposit();
  const out = pair.chain.fund(dep.address, 100_000n);
  spendElsewhere(pair.chain, `${out.txid}:${out.vout}`, 100_000n);
  assert.ok(pair.chain.isSpent(out.txid, out.vout));
  const seals = pair.a.sealed.length;
  await assert.rejects(pair.a.treasury.depositFunded(dep.deposit_id, out.txid, out.vout), isCode('funding_spent'));
  const d = pair.a.treasury.deposits().find((x) => x.deposit_id === dep.deposit_id)!;
  assert.equal(d.status, 'pending');
  assert.equal(d.outpoint, null);
  assert.equal(pair.a.sealed.length, seals, 'a refused funding report seals nothing');
  // An unspent output of the same address is taken as usual.
  const good = pair.chain.fund(dep.address, 70_000n);
  assert.equal((await pair.a.treasury.depositFunded(dep.deposit_id, good.txid, good.vout)).status, 'free');
});

test('funding_spent: the peer refuses a deposit whose output its own chain shows spent; the deposit is free again, both sides unchanged', async () => {
  const pair = await makePair();
  await connect(pair);
  const da = await fundedDeposit(pair, pair.a, 100_000n);
  const ch = await pair.a.treasury.openChannel(pair.b.treasury.nodeId, pair.a.state().config.payoutAddress);
  await pair.a.treasury.addDeposit(ch.channel_id, da);
  await waitFor(() => pair.b.treasury.channel(ch.channel_id).remote_balance_sat === '100000');
  const dx = await fundedDeposit(pair, pair.a, 50_000n);
  const dxOutpoint = pair.a.treasury.deposits().find((d) => d.deposit_id === dx)!.outpoint!;
  // a's host never told its enclave; b's enclave asks its own host, which shows the output spent.
  spendElsewhere(pair.chain, dxOutpoint, 50_000n);
  const [viewA, viewB] = [pair.a.treasury.channel(ch.channel_id), pair.b.treasury.channel(ch.channel_id)];
  await assert.rejects(pair.a.treasury.addDeposit(ch.channel_id, dx), isCode('peer_refused', /funding_spent/));
  assert.equal(pair.a.treasury.deposits().find((d) => d.deposit_id === dx)!.status, 'free');
  assert.deepEqual(pair.a.treasury.channel(ch.channel_id), viewA);
  assert.deepEqual(pair.b.treasury.channel(ch.channel_id), viewB);
  assert.ok(!pair.b.treasury.channel(ch.channel_id).remote_deposits.some((d) => d.outpoint === dxOutpoint));
});

test('multihop_in_doubt: a committed hop whose host already sees an input of τ spent does not hand τ out; the chain decides, then it settles the old state', async () => {
  const { mesh, nodes, channels } = await line(3);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  // bob commits; nothing more passes between bob and carol.
  const { outcome: paid } = await payUntilMiddleCommitted(mesh, [a, b, c], 2_000);
  // carol, never committed, settles the old state; it is broadcast (her deposits' outputs are spent on chain),
  // but bob's host has not shown it to bob's enclave yet.
  const old = await c.treasury.settle(channels[1]!, 1);
  mesh.chain.broadcast(old.tx_hex!);
  const rec = () => Object.values(b.treasury.state.multihop!)[0]!;
  const seals = b.seals;
  const tauTxid = txidIn(rec());
  assert.ok(tauTxid, 'bob holds τ complete');
  await assert.rejects(b.treasury.settle(channels[0]!, 1), isCode('multihop_in_doubt', /already spent/));
  assert.equal(rec().phase, 'committed');
  assert.ok(!isFrozen(rec()), 'τ was never handed out');
  assert.equal(b.seals, seals, 'the refusal seals nothing');
  assert.equal(b.treasury.channel(channels[0]!).status, 'open');
  assert.ok(b.treasury.state.channels[channels[0]!]!.lockedBy, 'the channel stays locked until the chain decides');

  // The host shows carol's settlement: the old state won, bob aborts, alice follows, bob settles the old state.
  await b.treasury.spentOnChain(channels[1]!, old.tx_hex!);
  assert.equal(rec().phase, 'aborted');
  await waitFor(() => paid() !== null);
  assert.equal(paid(), false);
  const sb = await b.treasury.settle(channels[0]!, 1);
  assert.equal(sb.local_balance_sat, '100000');
  assert.notEqual(sb.txid, tauTxid, 'the old state, not τ');
});
