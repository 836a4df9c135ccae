// run-tests lane: in-process
/**
 * What happens to deposits when a channel closes with a deposit change half done (its acknowledgement lost),
 * and to the channel's keys once its settlement is final. Two enclave cores in one process, a hostile wire,
 * a fake chain the test confirms transactions on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Transaction } from 'bitcoinjs-lib';
import { connect, fundedDeposit, makePair, openFundedPair, waitFor } from './helpers/treasury-pair.ts';
import { Mesh, type MeshNode } from './helpers/treasury-mesh.ts';
import { TreasuryError } from '../src/enclave/treasury/errors.ts';

function inputsOf(txHex: string): string[] {
  return Transaction.fromHex(txHex).ins.map((i) => `${Buffer.from(i.hash).reverse().toString('hex')}:${i.index}`);
}

/** A release attempt: the signed release, or the error the enclave answered with. */
async function tryRelease(pair: Awaited<ReturnType<typeof makePair>>, id: string) {
  return pair.a.treasury.releaseDeposit(id, undefined, 2).then(
    (r) => r,
    (e: unknown) => e,
  );
}

function assertRefusedAwaitingChain(attempt: unknown, what: string): void {
  if (!(attempt instanceof TreasuryError))
    throw new assert.AssertionError({ message: `${what}: the enclave signed a release: ${JSON.stringify(attempt)}` });
  assert.equal(attempt.code, 'deposit_not_free', what);
  assert.match(attempt.message, /awaiting the chain/, what);
}

const depositOf = (pair: Awaited<ReturnType<typeof makePair>>, id: string) =>
  pair.a.treasury.deposits().find((d) => d.deposit_id === id)!;

test("deposit fate: a removal whose ack was lost is freed by the peer's settlement that does not spend it", async () => {
  const { pair, channelId } = await openFundedPair();
  const dr = await fundedDeposit(pair, pair.a, 200_000n);
  await pair.a.treasury.addDeposit(channelId, dr);
  await waitFor(() => pair.b.treasury.channel(channelId).remote_balance_sat === '1200000');
  const drOutpoint = depositOf(pair, dr).outpoint!;
  // b drops the deposit and acknowledges; the acknowledgement (and everything after it) never reaches a.
  pair.wire.tamper = (dir, frames) => (dir === 'ba' ? [] : frames);
  const removal = pair.a.treasury.removeDeposit(channelId, dr).catch((e: unknown) => e);
  await waitFor(() => pair.b.treasury.channel(channelId).remote_balance_sat === '1000000');
  const s = await pair.b.treasury.settle(channelId, 2);
  assert.ok(!inputsOf(s.tx_hex!).includes(drOutpoint), "the peer's settlement does not spend the removed deposit");
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

test("deposit fate: an addition whose ack was lost stays bound until the chain shows the peer's settlement spending it", async () => {
  const { pair, channelId } = await openFundedPair();
  const dx = await fundedDeposit(pair, pair.a, 300_000n);
  const dxOutpoint = depositOf(pair, dx).outpoint!;
  pair.wire.tamper = (dir, frames) => (dir === 'ba' ? [] : frames);
  const addition = pair.a.treasury.addDeposit(channelId, dx).catch((e: unknown) => e);
  // b credits it; its acknowledgement is lost.
  await waitFor(() => pair.b.treasury.channel(channelId).remote_balance_sat === '1300000');
  const s = await pair.b.treasury.settle(channelId, 2);
  assert.ok(inputsOf(s.tx_hex!).includes(dxOutpoint), "the peer's settlement spends the added deposit");
  assert.equal(((await addition) as TreasuryError).code, 'timeout');

  // The host shows b's settlement before it is confirmed: the channel closes, the deposit's fate waits.
  const closed = await pair.a.treasury.spentOnChain(channelId, s.tx_hex!);
  assert.equal(closed.status, 'closed');
  const attempt = await tryRelease(pair, dx);
  if (!(attempt instanceof TreasuryError)) {
    const spendsSettlementInput = inputsOf((attempt as { tx_hex: string }).tx_hex).every((o) =>
      inputsOf(s.tx_hex!).includes(o),
    );
    assert.fail(
      `the enclave signed a release of ${dx} conflicting with the peer's settlement (its input is an input of ${s.txid}: ${spendsSettlementInput})`,
    );
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
  const { pair, channelId } = await openFundedPair();
  const dr = await fundedDeposit(pair, pair.a, 200_000n);
  await pair.a.treasury.addDeposit(channelId, dr);
  const dx = await fundedDeposit(pair, pair.a, 300_000n);
  // Neither request reaches b: both stay half done on a.
  pair.wire.tamper = (dir, frames) => (dir === 'ab' ? [] : frames);
  const outcome = (p: Promise<unknown>) =>
    p.then(
      () => 'acknowledged',
      (e: unknown) => (e instanceof TreasuryError ? e.code : String(e)),
    );
  const pending = [
    outcome(pair.a.treasury.removeDeposit(channelId, dr)),
    outcome(pair.a.treasury.addDeposit(channelId, dx)),
  ];
  const s = await pair.a.treasury.settle(channelId, 2);
  const ins = inputsOf(s.tx_hex!);
  assert.ok(ins.includes(depositOf(pair, dr).outpoint!) && !ins.includes(depositOf(pair, dx).outpoint!));
  // b's settlement (which would not spend dr) could still win: both wait for the chain.
  assertRefusedAwaitingChain(await tryRelease(pair, dr), 'removing deposit');
  assertRefusedAwaitingChain(await tryRelease(pair, dx), 'adding deposit');
  assert.deepEqual([...pair.a.treasury.channel(channelId).awaiting_chain].sort(), [dr, dx].sort());
  // A host showing a forged spend (no valid signature) changes nothing.
  const forged = Transaction.fromHex(s.tx_hex!);
  forged.setWitness(
    0,
    forged.ins[0]!.witness.map((w, i, all) => (i === 0 || i === all.length - 1 ? w : Buffer.alloc(w.length, 0x30))),
  );
  for (let i = 1; i < forged.ins.length; i++) forged.setWitness(i, []);
  await assert.rejects(
    pair.a.treasury.spentOnChain(channelId, forged.toHex()),
    (e: unknown) => e instanceof TreasuryError && e.code === 'funding_mismatch',
  );

  pair.chain.spend(s.tx_hex!, 1);
  await pair.a.treasury.spentOnChain(channelId, s.tx_hex!);
  assert.equal(depositOf(pair, dr).status, 'spent');
  assert.equal(depositOf(pair, dr).spent_by, s.txid);
  assert.equal(depositOf(pair, dx).status, 'free');
  const release = await pair.a.treasury.releaseDeposit(dx, undefined, 2);
  assert.deepEqual(inputsOf(release.tx_hex), [depositOf(pair, dx).outpoint]);
  assert.deepEqual(await Promise.all(pending), ['timeout', 'timeout'], 'neither change was ever acknowledged');
});

test('deposit fate: a peer settlement with no input at all spends none of our undecided deposits: free at once', async () => {
  // A reply timeout no reconnection here comes near: the removal's outcome is its acknowledgement, not a race with the timer.
  const pair = await makePair({ replyTimeoutMs: 30_000 });
  await connect(pair);
  const dr = await fundedDeposit(pair, pair.a, 200_000n);
  const ch = await pair.a.treasury.openChannel(pair.b.treasury.nodeId, pair.a.state().config.payoutAddress);
  await pair.a.treasury.addDeposit(ch.channel_id, dr);
  await waitFor(() => pair.b.treasury.channels()[0]?.remote_balance_sat === '200000');
  // b drops a's only deposit, the acknowledgement is lost; b settles a channel it sees empty: no transaction.
  let drop = true;
  pair.wire.tamper = (dir, frames) => (drop && dir === 'ba' ? [] : frames);
  const removal = pair.a.treasury.removeDeposit(ch.channel_id, dr).then(
    () => 'acknowledged',
    (e: unknown) => (e instanceof TreasuryError ? e.code : String(e)),
  );
  await waitFor(() => pair.b.treasury.channel(ch.channel_id).remote_balance_sat === '0');
  const s = await pair.b.treasury.settle(ch.channel_id, 2);
  assert.equal(s.tx_hex, null);
  // a hears of it once the session is back (b's `settled` is re-sent after every handshake).
  drop = false;
  pair.a.treasury.disconnected(pair.a.conn);
  pair.b.treasury.disconnected(pair.b.conn);
  await connect(pair);
  await waitFor(() => pair.a.treasury.channel(ch.channel_id).status === 'closed');
  await waitFor(() => depositOf(pair, dr).status === 'free');
  assert.deepEqual(pair.a.treasury.channel(ch.channel_id).awaiting_chain, []);
  assert.deepEqual(inputsOf((await pair.a.treasury.releaseDeposit(dr, undefined, 2)).tx_hex), [
    depositOf(pair, dr).outpoint,
  ]);
  // b did drop the deposit: a, re-sending the removal once the session is back, gets b's acknowledgement.
  assert.equal(await removal, 'acknowledged', 'the removal is acknowledged once the session is back');
});

test('keys: a closed channel keeps its keys until its settlement is max(6, min_confirmations) deep, then forgets them on both sides', async () => {
  const { pair, channelId } = await openFundedPair();
  const spare = await fundedDeposit(pair, pair.a, 50_000n);
  await pair.a.treasury.pay([{ channel_id: channelId, amount_sat: 7_000 }]);
  await waitFor(() => pair.b.treasury.channel(channelId).total_received_sat === '7000');
  const s = await pair.a.treasury.settle(channelId, 2);
  await waitFor(() => pair.b.treasury.channel(channelId).status === 'closed');
  // Every private key the two enclaves hold for the channel's deposits (own ones and handed-over ones).
  const channelKeys = (side: typeof pair.a) => {
    const st = side.state();
    return [
      ...st.channels[channelId]!.peerDeposits.flatMap((d) => d.privkeys),
      ...Object.values(st.deposits)
        .filter((d) => d.channelId === channelId)
        .flatMap((d) => d.privkeys),
    ];
  };
  const keys = [...channelKeys(pair.a), ...channelKeys(pair.b)];
  assert.equal(keys.length, 4, "each side holds its own key and the peer's");

  // Confirmed, not yet final: kept.
  pair.chain.spend(s.tx_hex!, 5);
  const heldAt5: boolean[] = [];
  for (const side of [pair.a, pair.b]) {
    heldAt5.push((await side.treasury.spentOnChain(channelId, s.tx_hex!)).keys_held);
    assert.equal(channelKeys(side).length, 2, `${side.name} keeps the keys at depth 5`);
  }

  pair.chain.spend(s.tx_hex!, 6);
  for (const side of [pair.a, pair.b]) {
    const v = await side.treasury.spentOnChain(channelId, s.tx_hex!);
    const sealed = new TextDecoder().decode(side.sealed[side.sealed.length - 1]!);
    for (const k of keys)
      assert.ok(!sealed.includes(k), `${side.name}'s sealed state still holds a key of the settled channel at depth 6`);
    assert.deepEqual(channelKeys(side), []);
    assert.equal(v.keys_held, false, side.name);
    // No signing path finds them: the channel answers channel_closed, its deposits are spent.
    await assert.rejects(
      side.treasury.settle(channelId, 2),
      (e: unknown) => e instanceof TreasuryError && e.code === 'channel_closed',
    );
  }
  // What a re-broadcast needs stays; a deposit outside the channel keeps its key.
  assert.equal(pair.a.treasury.channel(channelId).settlement_tx_hex, s.tx_hex);
  assert.equal(pair.a.state().deposits[spare]!.privkeys.length, 1);
  assert.equal((await pair.a.treasury.releaseDeposit(spare, undefined, 2)).deposit_id, spare);
  assert.deepEqual(heldAt5, [true, true], 'keys_held while not final');
});

test('keys: every committee member forgets its keys and shares of a finally settled channel, and the committee still signs', async () => {
  const mesh = new Mesh();
  const a = await mesh.committee(['a0', 'a1', 'a2']);
  const b = await mesh.committee(['b0', 'b1', 'b2']);
  await mesh.link('a0', 'b0');
  const depA = await mesh.deposit('a0', 100_000n);
  const depB = await mesh.deposit('b0', 50_000n);
  const { channel_id: channelId } = await a[0]!.treasury.openChannel(b[0]!.treasury.nodeId, a[0]!.payoutAddress);
  await a[0]!.treasury.addDeposit(channelId, depA);
  await b[0]!.treasury.addDeposit(channelId, depB);
  const r = await a[0]!.treasury.settle(channelId, 2);
  await waitFor(() => b[0]!.treasury.channel(channelId).status === 'closed');
  const members = [...a, ...b];
  // Whole keys, key shares (sealed boxes) and member keys of the channel's deposits, as each member holds them.
  const secrets = (m: MeshNode) => {
    const st = m.treasury.state;
    const own = m.name.startsWith('a') ? depA : depB;
    const d = st.deposits[own]!;
    return [
      ...st.channels[channelId]!.peerDeposits.flatMap((p) => [
        ...p.privkeys,
        ...(p.shares ?? []).flatMap((s) => s.boxes),
      ]),
      ...d.privkeys,
      ...(d.sealedKeys ?? []),
      ...(st.committee!.memberKeys[own] ? [st.committee!.memberKeys[own]!] : []),
    ];
  };
  for (const m of members) assert.ok(secrets(m).length > 0, `${m.name} holds secrets of the open channel's deposits`);
  mesh.chain.spend(r.tx_hex!, 6);
  for (const m of members) {
    const v = await m.treasury.spentOnChain(channelId, r.tx_hex!);
    assert.deepEqual(secrets(m), [], `${m.name} forgot every secret of the settled channel`);
    assert.equal(v.keys_held, false, m.name);
  }
  // The committee's other business is untouched: two backups still release a new deposit, 2 of 3.
  const fresh = await mesh.deposit('a0', 20_000n);
  await waitFor(() => a[2]!.treasury.deposits().some((d) => d.deposit_id === fresh && d.status === 'free'));
  mesh.kill('a0');
  const release = await a[1]!.treasury.releaseDeposit(fresh, undefined, 2);
  assert.equal(a[2]!.treasury.state.committee!.signed[fresh], release.txid);
});
