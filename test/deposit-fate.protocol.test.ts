/**
 * What happens to deposits when a channel closes with a deposit change half done (its acknowledgement lost),
 * and to the channel's keys once its settlement is final. Two enclave cores in one process, a hostile wire,
 * a fake chain the test confirms transactions on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Transaction } from 'bitcoinjs-lib';
import { connect, fundedDeposit, makePair, waitFor } from './helpers/treasury-pair.ts';
import { TreasuryError } from '../src/treasury/errors.ts';

async function openFunded() {
  const pair = await makePair();
  await connect(pair);
  const da = await fundedDeposit(pair, pair.a, 1_000_000n);
  const db = await fundedDeposit(pair, pair.b, 500_000n);
  const ch = await pair.a.treasury.openChannel(pair.b.treasury.nodeId, pair.a.state().config.payoutAddress);
  await pair.a.treasury.addDeposit(ch.channel_id, da);
  await waitFor(() => pair.b.treasury.channels().length === 1);
  await pair.b.treasury.addDeposit(ch.channel_id, db);
  return { pair, channelId: ch.channel_id, da, db };
}

function inputsOf(txHex: string): string[] {
  return Transaction.fromHex(txHex).ins.map((i) => `${Buffer.from(i.hash).reverse().toString('hex')}:${i.index}`);
}

/** A release attempt: the signed release, or the error the enclave answered with. */
async function tryRelease(pair: Awaited<ReturnType<typeof makePair>>, id: string) {
  return pair.a.treasury.releaseDeposit(id, undefined, 2).then((r) => r, (e: unknown) => e);
}

function assertRefusedAwaitingChain(attempt: unknown, what: string): void {
  if (!(attempt instanceof TreasuryError)) throw new assert.AssertionError({ message: `${what}: the enclave signed a release: ${JSON.stringify(attempt)}` });
  assert.equal(attempt.code, 'deposit_not_free', what);
  assert.match(attempt.message, /awaiting the chain/, what);
}

const depositOf = (pair: Awaited<ReturnType<typeof makePair>>, id: string) => pair.a.treasury.deposits().find((d) => d.deposit_id === id)!;

test('deposit fate: a removal whose ack was lost is freed by the peer\'s settlement that does not spend it', async () => {
  const { pair, channelId } = await openFunded();
  const dr = await fundedDeposit(pair, pair.a, 200_000n);
  await pair.a.treasury.addDeposit(channelId, dr);
  await waitFor(() => pair.b.treasury.channel(channelId).remote_balance_sat === '1200000');
  const drOutpoint = depositOf(pair, dr).outpoint!;
  // b drops the deposit and acknowledges; the acknowledgement (and everything after it) never reaches a.
  pair.wire.tamper = (dir, frames) => (dir === 'ba' ? [] : frames);
  const removal = pair.a.treasury.removeDeposit(channelId, dr).catch((e: unknown) => e);
  await waitFor(() => pair.b.treasury.channel(channelId).remote_balance_sat === '1000000');
  const s = await pair.b.treasury.settle(channelId, 2);
  assert.ok(!inputsOf(s.tx_hex!).includes(drOutpoint), 'the peer\'s settlement does not spend the removed deposit');
  assert.equal(((await removal) as TreasuryError).code, 'timeout');

  // The chain shows b's settlement (a's host found it spending the channel's deposits).
  pair.chain.spend(s.tx_hex!, 1);
  const closed = await pair.a.treasury.spentOnChain(channelId, s.tx_hex!);
  assert.equal(closed.status, 'closed');
  const d = depositOf(pair, dr);
  assert.equal(d.status, 'free', `the unspent deposit must be free again, not ${d.status} by ${d.spent_by}`);
  assert.equal(d.channel_id, null);
  const release = await pair.a.treasury.releaseDeposit(dr, undefined, 2);
  assert.deepEqual(inputsOf(release.tx_hex), [drOutpoint]);
  // The deposit that is certainly in any settlement is spent by it.
  const da = pair.a.treasury.deposits().find((x) => x.outpoint !== drOutpoint && x.channel_id === channelId)!;
  assert.equal(da.status, 'spent');
  assert.equal(da.spent_by, s.txid);
});

test('deposit fate: an addition whose ack was lost stays bound until the chain shows the peer\'s settlement spending it', async () => {
  const { pair, channelId } = await openFunded();
  const dx = await fundedDeposit(pair, pair.a, 300_000n);
  const dxOutpoint = depositOf(pair, dx).outpoint!;
  pair.wire.tamper = (dir, frames) => (dir === 'ba' ? [] : frames);
  const addition = pair.a.treasury.addDeposit(channelId, dx).catch((e: unknown) => e);
  // b credits it; its acknowledgement is lost.
  await waitFor(() => pair.b.treasury.channel(channelId).remote_balance_sat === '1300000');
  const s = await pair.b.treasury.settle(channelId, 2);
  assert.ok(inputsOf(s.tx_hex!).includes(dxOutpoint), 'the peer\'s settlement spends the added deposit');
  assert.equal(((await addition) as TreasuryError).code, 'timeout');

  // The host shows b's settlement before it is confirmed: the channel closes, the deposit's fate waits.
  const closed = await pair.a.treasury.spentOnChain(channelId, s.tx_hex!);
  assert.equal(closed.status, 'closed');
  const attempt = await tryRelease(pair, dx);
  if (!(attempt instanceof TreasuryError)) {
    const spendsSettlementInput = inputsOf((attempt as { tx_hex: string }).tx_hex).every((o) => inputsOf(s.tx_hex!).includes(o));
    assert.fail(`the enclave signed a release of ${dx} conflicting with the peer's settlement (its input is an input of ${s.txid}: ${spendsSettlementInput})`);
  }
  assertRefusedAwaitingChain(attempt, 'before the chain shows the winner');
  assert.equal(depositOf(pair, dx).status, 'in_channel');
  assert.equal(depositOf(pair, dx).awaiting_chain, true);
  assert.deepEqual(pair.a.treasury.channel(channelId).awaiting_chain, [dx]);

  pair.chain.spend(s.tx_hex!, 1);
  await pair.a.treasury.spentOnChain(channelId, s.tx_hex!);
  const d = depositOf(pair, dx);
  assert.equal(d.status, 'spent');
  assert.equal(d.spent_by, s.txid);
  assert.equal(d.awaiting_chain, false);
  assert.deepEqual(pair.a.treasury.channel(channelId).awaiting_chain, []);
  const late = await tryRelease(pair, dx);
  assert.ok(late instanceof TreasuryError && late.code === 'deposit_not_free');
});

test('deposit fate: after our own settlement, the chain showing it spends the removing deposit and frees the adding one', async () => {
  const { pair, channelId } = await openFunded();
  const dr = await fundedDeposit(pair, pair.a, 200_000n);
  await pair.a.treasury.addDeposit(channelId, dr);
  const dx = await fundedDeposit(pair, pair.a, 300_000n);
  // Neither request reaches b: both stay half done on a.
  pair.wire.tamper = (dir, frames) => (dir === 'ab' ? [] : frames);
  const pending = [pair.a.treasury.removeDeposit(channelId, dr).catch(() => undefined), pair.a.treasury.addDeposit(channelId, dx).catch(() => undefined)];
  const s = await pair.a.treasury.settle(channelId, 2);
  const ins = inputsOf(s.tx_hex!);
  assert.ok(ins.includes(depositOf(pair, dr).outpoint!) && !ins.includes(depositOf(pair, dx).outpoint!));
  // b's settlement (which would not spend dr) could still win: both wait for the chain.
  assertRefusedAwaitingChain(await tryRelease(pair, dr), 'removing deposit');
  assertRefusedAwaitingChain(await tryRelease(pair, dx), 'adding deposit');
  assert.deepEqual([...pair.a.treasury.channel(channelId).awaiting_chain].sort(), [dr, dx].sort());
  // A host showing a forged spend (no valid signature) changes nothing.
  const forged = Transaction.fromHex(s.tx_hex!);
  forged.setWitness(0, forged.ins[0]!.witness.map((w, i, all) => (i === 0 || i === all.length - 1 ? w : Buffer.alloc(w.length, 0x30))));
  for (let i = 1; i < forged.ins.length; i++) forged.setWitness(i, []);
  await assert.rejects(pair.a.treasury.spentOnChain(channelId, forged.toHex()), (e: unknown) => e instanceof TreasuryError && e.code === 'funding_mismatch');

  pair.chain.spend(s.tx_hex!, 1);
  await pair.a.treasury.spentOnChain(channelId, s.tx_hex!);
  assert.equal(depositOf(pair, dr).status, 'spent');
  assert.equal(depositOf(pair, dr).spent_by, s.txid);
  assert.equal(depositOf(pair, dx).status, 'free');
  const release = await pair.a.treasury.releaseDeposit(dx, undefined, 2);
  assert.deepEqual(inputsOf(release.tx_hex), [depositOf(pair, dx).outpoint]);
  await Promise.all(pending);
});
