// run-tests lane: in-process
/**
 * Payment refs in the enclave (src/enclave/treasury/payment-refs.ts): a keyed debit's ref is in the very seal
 * that makes the debit durable, a refusal leaves none, and refs the host journaled are dropped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, fundedDeposit, makePair, waitFor } from './helpers/treasury-pair.ts';
import { decodeState } from '../src/enclave/treasury/state.ts';
import { keyRef } from '../src/node/payment-journal.ts';

test('refs: sealed with their debit, none for a refusal, dropped once journaled', async () => {
  const pair = await makePair();
  await connect(pair);
  const { a, b } = pair;
  const da = await fundedDeposit(pair, a, 100_000n);
  const ch = (await a.treasury.openChannel(b.treasury.nodeId, a.state().config.payoutAddress)).channel_id;
  await a.treasury.addDeposit(ch, da);
  await waitFor(() => b.treasury.channels().length === 1);

  const r1 = keyRef('order-1', 'req-1');
  const r2 = keyRef('order-2', 'req-2');
  const results = await a.treasury.pay([
    { channel_id: ch, amount_sat: 700, ref: r1 },
    { channel_id: ch, amount_sat: 10_000_000, ref: r2 }, // beyond the balance: refused
  ]);
  assert.equal(results[0]!.ok, true);
  assert.equal(results[1]!.ok, false);
  // The last seal holds both the debit and its ref.
  const sealed = decodeState(a.sealed[a.sealed.length - 1]!);
  assert.equal(sealed.channels[ch]!.sent, 700n);
  assert.deepEqual(sealed.payRefs, { [r1.key]: { ch, pos: 700n, amt: 700, fp: r1.fp } });
  assert.deepEqual(a.treasury.payRefs(), [
    { key: r1.key, fp: r1.fp, channel_id: ch, position: '700', amount_sat: 700 },
  ]);

  // A malformed ref is refused and moves nothing.
  const bad = await a.treasury.pay([{ channel_id: ch, amount_sat: 1, ref: { key: 'zz', fp: r1.fp } }]);
  assert.deepEqual(
    bad.map((r) => (r.ok ? 'ok' : r.code)),
    ['invalid_argument'],
  );
  assert.equal(a.treasury.channel(ch).total_sent_sat, '700');

  // The host journaled r1: the next pay call says so, and its seal no longer holds it.
  await a.treasury.pay([{ channel_id: ch, amount_sat: 5 }], [r1.key]);
  assert.equal(decodeState(a.sealed[a.sealed.length - 1]!).payRefs, undefined);
  assert.deepEqual(a.treasury.payRefs(), []);
});
