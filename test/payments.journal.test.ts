// run-tests lane: in-process
/**
 * The journal of keyed payments (src/node/payment-journal.ts): durable across reopen, compacted at
 * start-up by the retention rule, robust to a torn last line; and PaymentLog answering keys from it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { keyRef, PaymentJournal } from '../src/node/payment-journal.ts';
import { PaymentLog } from '../src/node/payment-log.ts';
import type { Payment } from '../src/node/payment.ts';
import { NodeError } from '../src/node/errors.ts';
import { tempDir } from './helpers/network.ts';

const CH = 'cd'.repeat(32);

test('journal: records survive a reopen, a torn last line is dropped, old keys are compacted away', async () => {
  const file = join(await tempDir(), 'payments.journal');
  const j = await PaymentJournal.open(file, { now: 1_000 });
  const k1 = keyRef('k1', 'req1');
  const k2 = keyRef('k2', 'req2');
  await j.append([
    { t: 'pay', kh: k1.key, fh: k1.fp, id: 'p7', ch: CH, amt: 500, pos: '1500', at: 1_000 },
    { t: 'refused', kh: k2.key, fh: k2.fp, id: 'p8', amt: 9, code: 'insufficient_funds', at: 50_000 },
  ]);
  await j.close();
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  await appendFile(file, '{"t":"pay","kh":"'); // a crash in the middle of a write

  const j2 = await PaymentJournal.open(file, { now: 2_000 });
  assert.equal(j2.get(k1.key)?.pos, 1500n);
  assert.equal(j2.get(k2.key)?.code, 'insufficient_funds');
  assert.equal(j2.maxPaymentNumber(), 8);
  const lines = (await readFile(file, 'utf8')).split('\n').filter(Boolean);
  assert.equal(lines.length, 2, 'the torn line is gone');
  for (const l of lines) JSON.parse(l);
  await j2.close();

  // 24 h later the first key is forgotten, the second (newer) kept.
  const j3 = await PaymentJournal.open(file, { now: 1_000 + 24 * 3600 * 1000 + 1 });
  assert.equal(j3.get(k1.key), undefined);
  assert.equal(j3.get(k2.key)?.id, 'p8');
  await j3.close();
});

test('journal: at most maxKeys keys, the newest kept', async () => {
  const file = join(await tempDir(), 'payments.journal');
  const j = await PaymentJournal.open(file, { maxKeys: 2 });
  const refs = ['a', 'b', 'c'].map((k) => keyRef(k, k));
  await j.append(
    refs.map((r, i) => ({
      t: 'pay' as const,
      kh: r.key,
      fh: r.fp,
      id: `p${i + 1}`,
      ch: CH,
      amt: 1,
      pos: String(i + 1),
      at: Date.now(),
    })),
  );
  assert.equal(j.size, 2);
  assert.equal(j.get(refs[0]!.key), undefined);
  assert.ok(j.get(refs[2]!.key));
  await j.close();
});

test('PaymentLog: a durable key answers its first outcome, and a different request is idempotency_conflict every time', async () => {
  const log = new PaymentLog();
  const known = keyRef('order-1', 'fp-1');
  const first: Payment = {
    payment_id: 'p1',
    direction: 'outgoing',
    channel_id: CH,
    amount_sat: 5,
    status: 'succeeded',
    failure_code: null,
    created_at: 0,
    resolved_at: null,
  };
  log.useDurableKeys({
    answer: (ref) => {
      if (ref.key !== known.key) return null;
      if (ref.fp !== known.fp) throw new NodeError('idempotency_conflict');
      return Promise.resolve(first);
    },
    fingerprintOf: (ref) => (ref.key === known.key ? known.fp : undefined),
  });
  let paid = 0;
  const pay = async () => {
    paid++;
    return first;
  };
  assert.equal((await log.idempotent('order-1', 'fp-1', pay)).payment_id, 'p1');
  for (let i = 0; i < 2; i++) {
    await assert.rejects(
      log.idempotent('order-1', 'fp-2', pay),
      (e: unknown) => e instanceof NodeError && e.code === 'idempotency_conflict',
    );
  }
  assert.equal((await log.idempotent('order-1', 'fp-1', pay)).payment_id, 'p1');
  assert.equal(paid, 0, 'nothing was paid again');
  // checkKey, which a batch runs on every key before it pays anything, says the same without paying.
  assert.doesNotThrow(() => log.checkKey('order-1', 'fp-1'));
  assert.throws(
    () => log.checkKey('order-1', 'fp-2'),
    (e: unknown) => e instanceof NodeError && e.code === 'idempotency_conflict',
  );
  assert.doesNotThrow(() => log.checkKey('order-9', 'fp-2'), 'an unknown key is free');
  await log.idempotent('order-2', 'fp-1', pay);
  assert.equal(paid, 1, 'a new key pays');
});
