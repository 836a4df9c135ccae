// run-tests lane: in-process
/**
 * The treasury protocol between two enclave cores (no processes): attestation handshake, channel open,
 * deposits, payments with group commit, resynchronisation, settlement, and a hostile wire.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Transaction } from 'bitcoinjs-lib';
import { connect, fundedDeposit, makePair, openFundedPair, waitFor as waitForIn } from './helpers/treasury-pair.ts';
import { TreasuryError } from '../src/enclave/treasury/errors.ts';
import { decodeState } from '../src/enclave/treasury/state.ts';
import { addressToOutputScript } from '../src/bitcoin/network.ts';
import { bytesToHex } from '../enclave-sim/encoding.ts';
import { prng, testSeed } from './helpers/seeded.ts';

/** Conditions on a loaded machine: a generous limit (it only matters when the condition never comes). */
const waitFor = (cond: () => boolean, timeoutMs = 30_000) => waitForIn(cond, timeoutMs);

/** Replies in success paths may take long on a loaded machine: no test here expects a timeout. */
const REPLY_TIMEOUT_MS = 15_000;
const openFunded = (values: { aValue?: bigint; bValue?: bigint } = {}) =>
  openFundedPair({ ...values, pair: { replyTimeoutMs: REPLY_TIMEOUT_MS } });

function payoutOf(side: { state(): { config: { payoutAddress: string } } }): string {
  return side.state().config.payoutAddress;
}

async function rejects(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof TreasuryError && err.code === code);
}

test("handshake: both enclaves attest each other and learn each other's node id", async () => {
  const pair = await makePair({ replyTimeoutMs: REPLY_TIMEOUT_MS });
  await connect(pair);
  assert.deepEqual(pair.a.treasury.info().peers, [pair.b.treasury.nodeId]);
  assert.deepEqual(pair.b.treasury.info().peers, [pair.a.treasury.nodeId]);
});

test('channel: deposits credit their owner once the counterparty has checked them', async () => {
  const { pair, channelId } = await openFunded();
  const a = pair.a.treasury.channel(channelId);
  const b = pair.b.treasury.channel(channelId);
  assert.equal(a.local_balance_sat, '1000000');
  assert.equal(a.remote_balance_sat, '500000');
  assert.equal(b.local_balance_sat, '500000');
  assert.equal(b.remote_balance_sat, '1000000');
});

test('payments: thousands of random payments both ways keep both enclaves in agreement', async () => {
  const { pair, channelId } = await openFunded();
  const rand = prng(testSeed('treasury.protocol payments'));
  let expectA = 1_000_000n;
  const batches: Promise<unknown>[] = [];
  for (let i = 0; i < 3000; i++) {
    const amount = 1 + Math.floor(rand() * 300);
    const fromA = rand() < 0.6;
    expectA += fromA ? -BigInt(amount) : BigInt(amount);
    batches.push((fromA ? pair.a : pair.b).treasury.pay([{ channel_id: channelId, amount_sat: amount }]));
  }
  const results = (await Promise.all(batches)).flat() as Array<{ ok: boolean }>;
  assert.ok(results.every((r) => r.ok));
  await waitFor(
    () =>
      pair.a.treasury.channel(channelId).total_acked_sat === pair.a.treasury.channel(channelId).total_sent_sat &&
      pair.b.treasury.channel(channelId).total_acked_sat === pair.b.treasury.channel(channelId).total_sent_sat,
  );
  assert.equal(pair.a.treasury.channel(channelId).local_balance_sat, expectA.toString());
  assert.equal(pair.b.treasury.channel(channelId).remote_balance_sat, expectA.toString());
  assert.equal(pair.b.treasury.channel(channelId).local_balance_sat, (1_500_000n - expectA).toString());
  // Group commit: far fewer seals than payments.
  assert.ok(pair.a.sealed.length < 3000, `a sealed ${pair.a.sealed.length} times`);
});

test('payments: beyond balance, zero, unknown channel: refused, nothing moves', async () => {
  const { pair, channelId } = await openFunded();
  const [over] = await pair.a.treasury.pay([{ channel_id: channelId, amount_sat: 1_000_001 }]);
  assert.deepEqual(over && !over.ok && over.code, 'insufficient_funds');
  const [unknown] = await pair.a.treasury.pay([{ channel_id: 'cd'.repeat(32), amount_sat: 1 }]);
  assert.deepEqual(unknown && !unknown.ok && unknown.code, 'unknown_channel');
  const [zero] = await pair.a.treasury.pay([{ channel_id: channelId, amount_sat: 0 }]);
  assert.deepEqual(zero && !zero.ok && zero.code, 'invalid_argument');
  assert.equal(pair.a.treasury.channel(channelId).local_balance_sat, '1000000');
});

test('deposits: reuse, unconfirmed, non-existent or mismatched funding are refused', async () => {
  const pair = await makePair({ minConfirmations: 3, replyTimeoutMs: REPLY_TIMEOUT_MS });
  await connect(pair);
  const dep = await pair.a.treasury.newDeposit();
  await rejects(pair.a.treasury.depositFunded(dep.deposit_id, 'ee'.repeat(32), 0), 'funding_not_found');
  const other = await pair.a.treasury.newDeposit();
  const wrong = pair.chain.fund(other.address, 50_000n);
  await rejects(pair.a.treasury.depositFunded(dep.deposit_id, wrong.txid, wrong.vout), 'funding_mismatch');
  await rejects(pair.a.treasury.depositFunded(dep.deposit_id, wrong.txid, 7), 'funding_not_found');
  const young = pair.chain.fund(dep.address, 50_000n, 1);
  await rejects(pair.a.treasury.depositFunded(dep.deposit_id, young.txid, young.vout), 'deposit_unconfirmed');
  const ch = await pair.a.treasury.openChannel(pair.b.treasury.nodeId, payoutOf(pair.a));
  await rejects(pair.a.treasury.addDeposit(ch.channel_id, dep.deposit_id), 'deposit_not_free');
  // the host reports again once it is confirmed
  pair.chain.txs.get(young.txid)!.confirmations = 3;
  assert.equal((await pair.a.treasury.depositFunded(dep.deposit_id, young.txid, young.vout)).status, 'free');
  const d2 = await pair.a.treasury.newDeposit();
  const ok = pair.chain.fund(d2.address, 80_000n, 3);
  await pair.a.treasury.depositFunded(d2.deposit_id, ok.txid, ok.vout);
  await rejects(pair.a.treasury.depositFunded(other.deposit_id, ok.txid, ok.vout), 'deposit_in_use');
  await pair.a.treasury.addDeposit(ch.channel_id, d2.deposit_id);
  const ch2 = await pair.a.treasury.openChannel(pair.b.treasury.nodeId, payoutOf(pair.a));
  await rejects(pair.a.treasury.addDeposit(ch2.channel_id, d2.deposit_id), 'deposit_in_use');
});

test('deposits: removal needs the balance to cover it, and frees the deposit', async () => {
  const { pair, channelId, da } = await openFunded({ aValue: 300_000n, bValue: 100_000n });
  await pair.a.treasury.pay([{ channel_id: channelId, amount_sat: 1 }]);
  await rejects(pair.a.treasury.removeDeposit(channelId, da), 'insufficient_funds');
  const db2 = await fundedDeposit(pair, pair.a, 200_000n);
  await pair.a.treasury.addDeposit(channelId, db2);
  await pair.a.treasury.removeDeposit(channelId, db2);
  assert.equal(pair.a.treasury.deposits().find((d) => d.deposit_id === db2)!.status, 'free');
  await waitFor(() => pair.b.treasury.channel(channelId).remote_balance_sat === '299999');
  assert.equal(pair.a.treasury.channel(channelId).local_balance_sat, '299999');
});

test('settlement: either side alone, one transaction spending every deposit, paying the latest balances', async () => {
  const { pair, channelId } = await openFunded();
  await pair.a.treasury.pay([{ channel_id: channelId, amount_sat: 123_456 }]);
  await pair.b.treasury.pay([{ channel_id: channelId, amount_sat: 1_000 }]);
  await waitFor(
    () =>
      pair.b.treasury.channel(channelId).total_received_sat === '123456' &&
      pair.a.treasury.channel(channelId).total_received_sat === '1000',
  );
  const r = await pair.b.treasury.settle(channelId, 2);
  const tx = Transaction.fromHex(r.tx_hex!);
  assert.equal(tx.ins.length, 2);
  // Each output pays its owner's payout script its owner's balance (matched by script, so swapped
  // recipients fail); b settles, so b pays the fee from its side.
  const outputs = tx.outs
    .map((o) => ({ script: bytesToHex(o.script), value: o.value }))
    .sort((x, y) => (x.script < y.script ? -1 : 1));
  const expected = [
    { script: bytesToHex(addressToOutputScript(payoutOf(pair.a))), value: 1_000_000n - 123_456n + 1_000n },
    {
      script: bytesToHex(addressToOutputScript(payoutOf(pair.b))),
      value: 500_000n + 123_456n - 1_000n - BigInt(r.fee_sat),
    },
  ].sort((x, y) => (x.script < y.script ? -1 : 1));
  assert.deepEqual(outputs, expected, "each side's payout script is paid exactly its balance");
  assert.ok(BigInt(r.fee_sat) > 0n);
  await rejects(pair.b.treasury.settle(channelId, 2), 'channel_closed');
  // the peer learns of it and refuses further payments
  await waitFor(() => pair.a.treasury.channel(channelId).status === 'closed');
  const [late] = await pair.a.treasury.pay([{ channel_id: channelId, amount_sat: 1 }]);
  assert.equal(late && !late.ok && late.code, 'channel_closed');
  await rejects(pair.a.treasury.settle(channelId, 2), 'channel_closed');
});

test('hostile wire: a replayed frame tears the session down and credits nothing', async () => {
  const { pair, channelId } = await openFunded();
  await pair.a.treasury.pay([{ channel_id: channelId, amount_sat: 500 }]);
  await waitFor(() => pair.b.treasury.channel(channelId).total_received_sat === '500');
  const old = pair.wire.log.ab[pair.wire.log.ab.length - 1]!;
  await pair.b.treasury.receive(pair.b.conn, [old]);
  assert.equal(pair.b.treasury.channel(channelId).total_received_sat, '500');
  assert.equal(pair.b.treasury.info().peers.length, 0);
  assert.ok(pair.b.events.some((e) => e.type === 'peer_disconnected' && /replayed/.test(e.reason)));
});

test('hostile wire: a flipped byte or reordered frames are detected', async () => {
  for (const attack of ['flip', 'reorder'] as const) {
    const { pair, channelId } = await openFunded();
    pair.wire.tamper = (dir, frames) => {
      if (dir !== 'ab') return frames;
      if (attack === 'flip') {
        const f = new Uint8Array(frames[0]!);
        f[f.length - 20]! ^= 0x01;
        return [f, ...frames.slice(1)];
      }
      return frames.length > 1 ? [...frames].reverse() : frames;
    };
    if (attack === 'reorder') {
      // Two separate seals produce two frames; deliver them swapped.
      const held: Uint8Array[] = [];
      pair.wire.tamper = (dir, frames) => {
        if (dir !== 'ab') return frames;
        held.push(...frames);
        return held.length >= 2 ? [held[1]!, held[0]!] : [];
      };
      await pair.a.treasury.pay([{ channel_id: channelId, amount_sat: 10 }]);
      await pair.a.treasury.pay([{ channel_id: channelId, amount_sat: 20 }]);
    } else {
      await pair.a.treasury.pay([{ channel_id: channelId, amount_sat: 10 }]);
    }
    await waitFor(() => pair.b.treasury.info().peers.length === 0);
    assert.equal(pair.b.treasury.channel(channelId).total_received_sat, '0', attack);
    const reason = pair.b.events.find((e) => e.type === 'peer_disconnected');
    assert.match((reason as { reason: string }).reason, attack === 'flip' ? /tampered/ : /reordered/);
  }
});

test('resync: payments lost with a dropped session are credited after reconnecting, exactly once', async () => {
  const { pair, channelId } = await openFunded();
  let drop = true;
  pair.wire.tamper = (dir, frames) => (drop && dir === 'ab' ? [] : frames);
  await pair.a.treasury.pay([
    { channel_id: channelId, amount_sat: 700 },
    { channel_id: channelId, amount_sat: 300 },
  ]);
  assert.equal(pair.b.treasury.channel(channelId).total_received_sat, '0');
  drop = false;
  pair.a.treasury.disconnected(pair.a.conn);
  pair.b.treasury.disconnected(pair.b.conn);
  await connect(pair);
  await waitFor(() => pair.a.treasury.channel(channelId).total_acked_sat === '1000');
  assert.equal(pair.b.treasury.channel(channelId).total_received_sat, '1000');
  // a second reconnection re-sends the same totals: nothing is credited twice
  pair.a.treasury.disconnected(pair.a.conn);
  pair.b.treasury.disconnected(pair.b.conn);
  await connect(pair);
  // A later payment on the new session is delivered after whatever the reconnection re-sent: once it is
  // acknowledged, a double credit of the resent totals would have shown.
  await pair.a.treasury.pay([{ channel_id: channelId, amount_sat: 1 }]);
  await waitFor(() => pair.b.treasury.channel(channelId).total_received_sat !== '1000');
  assert.equal(
    pair.b.treasury.channel(channelId).total_received_sat,
    '1001',
    'the resent totals were credited once, then the new payment',
  );
  await waitFor(() => pair.a.treasury.channel(channelId).total_acked_sat === '1001');
  assert.equal(pair.b.treasury.channel(channelId).local_balance_sat, '501001');
  assert.equal(pair.a.treasury.channel(channelId).local_balance_sat, '998999');
});

test('durability: a pay message never leaves before the state that debits it is sealed', async () => {
  // a's seals can be held in flight: the test releases the one its payment starts.
  let hold: { reached: boolean; release: () => void } | null = null;
  const pair = await makePair({
    replyTimeoutMs: REPLY_TIMEOUT_MS,
    beforeSeal: (side) => {
      if (side !== 'a' || !hold) return;
      const h = hold;
      return new Promise<void>((resolve) => {
        h.reached = true;
        h.release = resolve;
      });
    },
  });
  await connect(pair);
  const da = await fundedDeposit(pair, pair.a, 100_000n);
  const ch = await pair.a.treasury.openChannel(pair.b.treasury.nodeId, payoutOf(pair.a));
  await pair.a.treasury.addDeposit(ch.channel_id, da);
  const before = pair.wire.log.ab.length;
  const sealsBefore = pair.a.sealed.length;
  const held = { reached: false, release: () => undefined as void };
  hold = held;
  const p = pair.a.treasury.pay([{ channel_id: ch.channel_id, amount_sat: 5 }]);
  await waitFor(() => held.reached);
  hold = null;
  assert.equal(pair.wire.log.ab.length, before, 'nothing sent while the seal is in flight');
  held.release();
  await p;
  assert.ok(pair.a.sealed.length > sealsBefore);
  assert.equal(pair.a.state().channels[ch.channel_id]!.sent, 5n);
  assert.equal(pair.wire.log.ab.length, before + 1);
});

test('learning a settlement from the chain: a validly signed spend closes the channel, a forged one does not', async () => {
  const { pair, channelId } = await openFunded();
  await pair.a.treasury.pay([{ channel_id: channelId, amount_sat: 4_000 }]);
  await waitFor(() => pair.b.treasury.channel(channelId).total_received_sat === '4000');
  // b settles, but its `settled` message never reaches a (b is gone for good)
  pair.wire.tamper = (dir, frames) => (dir === 'ba' ? [] : frames);
  const s = await pair.b.treasury.settle(channelId, 2);

  // a host that lies: a transaction spending the deposit with a made-up signature
  const dep = pair.a.treasury.channel(channelId).local_deposits[0]!;
  const [txid, vout] = dep.outpoint.split(':') as [string, string];
  const forged = new Transaction();
  forged.addInput(Buffer.from(txid, 'hex').reverse(), Number(vout));
  forged.addOutput(Buffer.from('0014' + '11'.repeat(20), 'hex'), 1000n);
  const witnessScript = pair.a.state().deposits[dep.deposit_id]!.witnessScript;
  forged.setWitness(0, [new Uint8Array(0), new Uint8Array(71).fill(0x30), Buffer.from(witnessScript, 'hex')]);
  await rejects(pair.a.treasury.spentOnChain(channelId, forged.toHex()), 'funding_mismatch');
  assert.equal(pair.a.treasury.channel(channelId).status, 'open');

  // the real settlement, as the host finds it on chain
  const closed = await pair.a.treasury.spentOnChain(channelId, s.tx_hex!);
  assert.equal(closed.status, 'closed');
  assert.equal(closed.settled_by, 'remote');
  assert.equal(closed.settlement_txid, s.txid);
  const [late] = await pair.a.treasury.pay([{ channel_id: channelId, amount_sat: 1 }]);
  assert.equal(late && !late.ok && late.code, 'channel_closed');
});

/**
 * Checks every seal `side` made: an unprotected one (no counter advance) must equal the last protected
 * state except for higher `received` / `acked` totals. Returns how many seals were unprotected.
 */
function assertOnlyCreditsUnprotected(side: { name: string; sealed: Uint8Array[]; protects: boolean[] }): number {
  let base = decodeState(side.sealed[0]!);
  assert.equal(side.protects[0], true, 'the first seal is protected');
  let unprotected = 0;
  side.sealed.forEach((bytes, i) => {
    const s = decodeState(bytes);
    if (side.protects[i]) {
      base = s;
      return;
    }
    unprotected++;
    for (const [id, ch] of Object.entries(s.channels)) {
      const b = base.channels[id];
      assert.ok(b, `${side.name} seal ${i}: a channel appeared in an unprotected seal`);
      assert.ok(ch.received >= b.received && ch.acked >= b.acked, `${side.name} seal ${i}: a total went down`);
      ch.received = b.received;
      ch.acked = b.acked;
    }
    assert.deepEqual(s, base, `${side.name} seal ${i}: an unprotected seal changed more than credits`);
  });
  return unprotected;
}

test("sealing: only a payee's credits skip the rollback counter; debits, deposits and settlement never do", async () => {
  const { pair, channelId, db } = await openFunded();
  const protectedSeals = (side: typeof pair.a, from: number) => side.protects.slice(from).filter(Boolean).length;
  // One payment a → b: a's debit is protected, b's credit is not.
  let [fromA, fromB] = [pair.a.sealed.length, pair.b.sealed.length];
  await pair.a.treasury.pay([{ channel_id: channelId, amount_sat: 1_000 }]);
  await waitFor(() => pair.a.treasury.channel(channelId).total_acked_sat === '1000');
  assert.ok(pair.a.protects.slice(fromA).every(Boolean), "the payer's seals are protected");
  assert.ok(
    pair.b.protects.length > fromB && pair.b.protects.slice(fromB).every((p) => !p),
    "the payee's seals are not",
  );
  // Random payments both ways, many in flight: every unprotected seal is credits only, on both sides.
  const rand = prng(testSeed('treasury.protocol sealing'));
  for (let i = 0; i < 400; i++) {
    const fromSideA = rand() < 0.5;
    void (fromSideA ? pair.a : pair.b).treasury.pay([
      { channel_id: channelId, amount_sat: 1 + Math.floor(rand() * 50) },
    ]);
    if (i % 7 === 0) await new Promise((r) => setImmediate(r));
  }
  await waitFor(() =>
    ['a', 'b'].every((s) => {
      const v = pair[s as 'a' | 'b'].treasury.channel(channelId);
      return v.total_acked_sat === v.total_sent_sat;
    }),
  );
  // A new deposit (no message at all), a deposit leaving and a settlement change more than credits: protected.
  [fromA, fromB] = [pair.a.sealed.length, pair.b.sealed.length];
  await fundedDeposit(pair, pair.b, 10_000n);
  assert.ok(pair.b.protects.slice(fromB).every(Boolean), 'a local-only change is protected');
  await pair.b.treasury.removeDeposit(channelId, db).catch(() => undefined);
  await pair.a.treasury.settle(channelId, 2);
  assert.ok(protectedSeals(pair.a, fromA) >= 1 && protectedSeals(pair.b, fromB) >= 1);
  const [ua, ub] = [assertOnlyCreditsUnprotected(pair.a), assertOnlyCreditsUnprotected(pair.b)];
  assert.ok(ua > 0 && ub > 0, `both sides had credit-only seals (a ${ua}, b ${ub})`);
});
