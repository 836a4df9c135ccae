// run-tests lane: in-process
/**
 * The host's side of keyed routed payments across crashes (src/node/keyed-routed.ts, multihop-payer.ts),
 * with the enclave as a test double: at start-up the journal is completed from the enclave's refs (a
 * resolved outcome journaled, an enclave success over a recorded failure, a start without a ref
 * `payment_not_started`, a pending ref journaled when a round ends later, a key the journal lacks journaled
 * with its ref's payment id: what a committee member's host does with refs adopted from its primary),
 * durable across a reopen and
 * answered so; the enclave is told to drop only what was journaled. And the payer hands the enclave each
 * keyed payment's ref, the same ref again when its round aborted for a busy channel, and the keys it
 * journaled with its next round.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { ChainSource } from '../src/node/chain-source.ts';
import type { EcallPort } from '../src/node/enclave-client.ts';
import { NodeError } from '../src/node/errors.ts';
import { journalKeys } from '../src/node/keyed-payments.ts';
import { RoutedKeys } from '../src/node/keyed-routed.ts';
import { MultihopPayer } from '../src/node/multihop-payer.ts';
import { keyRef, PaymentJournal, type KeyRef } from '../src/node/payment-journal.ts';
import { PaymentLog } from '../src/node/payment-log.ts';
import { tempDir } from './helpers/network.ts';

const CAROL = '03' + 'c'.repeat(64);
const CH = 'a'.repeat(64);
const ROUND = 'f'.repeat(64);
const ROUTE = ['alice', 'bob', 'carol'];

type Ref = {
  key: string;
  fp: string;
  round_id: string;
  amount_sat: string;
  outcome: 'pending' | 'succeeded' | 'failed';
  channel_id?: string;
  route?: string[];
  fee_sat?: string;
  code?: string;
  payment_id?: string;
  dest?: string;
};

/** An enclave double holding `refs` as the payer's enclave would: a drop removes resolved refs only. */
function enclaveWith(refs: Ref[]) {
  const drops: string[][] = [];
  const enclave = {
    call: (name: string, args: { drop?: string[] }) => {
      assert.equal(name, 'mh_refs');
      if (args.drop) {
        drops.push(args.drop);
        for (const k of args.drop) {
          const i = refs.findIndex((r) => r.key === k && r.outcome !== 'pending');
          if (i !== -1) refs.splice(i, 1);
        }
      }
      return Promise.resolve({ refs: refs.map((r) => ({ ...r })) });
    },
  } as unknown as EcallPort;
  return { enclave, drops };
}

const start = (k: KeyRef, id: string) =>
  ({ t: 'mh', kh: k.key, fh: k.fp, id, dest: CAROL, amt: 1_000, at: Date.now() }) as const;

test('start-up: resolved refs journaled, a start without a ref payment_not_started, a pending one journaled when a round ends', async () => {
  const file = join(await tempDir(), 'payments.journal');
  const [done, pending, none, failedHere, stranger] = ['done', 'pending', 'none', 'failed-here', 'x'].map((k) =>
    keyRef(k, 'req'),
  ) as [KeyRef, KeyRef, KeyRef, KeyRef, KeyRef];
  const j = await PaymentJournal.open(file);
  await j.append([
    start(done, 'p1'),
    start(pending, 'p2'),
    start(none, 'p3'),
    start(failedHere, 'p4'),
    // The host gave up on the call (the ecall failed), but the enclave's round went through.
    { t: 'mh_end', kh: failedHere.key, ok: false, code: 'internal', at: Date.now() },
  ]);
  const ok = (k: KeyRef): Ref => ({
    key: k.key,
    fp: k.fp,
    round_id: ROUND,
    amount_sat: '1000',
    dest: CAROL,
    outcome: 'succeeded',
    channel_id: CH,
    route: ROUTE,
    fee_sat: '3',
  });
  const refs: Ref[] = [
    ok(done),
    { key: pending.key, fp: pending.fp, round_id: ROUND, amount_sat: '1000', outcome: 'pending' },
    ok(failedHere),
    ok(stranger), // a key this journal does not have (past its retention, or taken on another member's host)
  ];
  const { enclave, drops } = enclaveWith(refs);
  const reported: string[] = [];
  const keys = await RoutedKeys.recover(j, enclave, (task) => reported.push(task), new PaymentLog());

  assert.deepEqual(j.get(done.key)!.mh, {
    dest: CAROL,
    done: true,
    ok: true,
    code: undefined,
    ch: CH,
    route: ROUTE,
    fee: 3,
  });
  assert.equal(j.get(failedHere.key)!.mh!.ok, true, "the enclave's success wins over the recorded failure");
  assert.deepEqual([j.get(none.key)!.mh!.done, j.get(none.key)!.mh!.code], [true, 'payment_not_started']);
  assert.equal(j.get(pending.key)!.mh!.done, false);
  assert.equal(j.get(stranger.key)!.mh!.ok, true, 'a key the journal did not have is journaled, start and end');
  assert.deepEqual(drops, [[done.key, failedHere.key, stranger.key]], 'only what is journaled is dropped');
  assert.equal(keys.waiting, 1);

  // The pending round aborts after the restart: a round end makes the host journal it and drop it.
  refs[0] = { ...refs[0]!, outcome: 'failed', code: 'path_timeout' };
  await keys.roundEnded();
  assert.deepEqual([j.get(pending.key)!.mh!.done, j.get(pending.key)!.mh!.code], [true, 'path_timeout']);
  assert.deepEqual(drops.at(-1), [pending.key]);
  assert.equal(keys.waiting, 0);
  assert.deepEqual(refs, []);
  const calls = drops.length;
  await keys.roundEnded();
  assert.equal(drops.length, calls, 'nothing waits: a round end asks the enclave nothing');
  await j.close();

  // Durable, and answered so: the first payment's id, its route and fee; the codes of those that failed.
  const again = await PaymentJournal.open(file);
  const answer = journalKeys(again, enclave).answer;
  const paid = await answer(done)!;
  assert.deepEqual(
    [paid.payment_id, paid.status, paid.route, paid.fee_sat, paid.channel_id],
    ['p1', 'succeeded', ROUTE, 3, CH],
  );
  for (const [k, code] of [
    [none, 'payment_not_started'],
    [pending, 'path_timeout'],
  ] as const)
    await assert.rejects(answer(k)!, (e: unknown) => e instanceof NodeError && e.code === code);
  assert.deepEqual(reported, []);
  await again.close();
});

test('the payer: each keyed payment hands the enclave its ref, the same one after a busy abort, and its journaled key with the next round', async () => {
  const journal = await PaymentJournal.open(join(await tempDir(), 'payments.journal'));
  const calls: Array<{ payments: Array<{ ref?: { key: string; fp: string } }>; journaled?: string[] }> = [];
  const enclave = {
    call: (name: string, args: (typeof calls)[number]) => {
      assert.equal(name, 'mh_pay_round');
      calls.push(args);
      // The first round aborts for a busy channel; the rest go through.
      const result =
        calls.length === 1
          ? { ok: false, code: 'channel_busy', message: 'busy' }
          : { ok: true, fee_sat: '2', channel_id: CH };
      return Promise.resolve({ payment_id: ROUND, route: ROUTE, results: args.payments.map(() => result) });
    },
  } as unknown as EcallPort;
  const p = new MultihopPayer({
    enclave,
    chain: { feeRate: () => Promise.resolve(1) } as unknown as ChainSource,
    payments: new PaymentLog(),
    journal: () => journal,
    report: (task) => assert.fail(task),
    stopping: () => false,
  });
  const k1 = keyRef('order-1', 'req');
  const paid = await p.pay(CAROL, 1_000, 10_000, undefined, k1);
  assert.equal(paid.status, 'succeeded');
  assert.deepEqual(
    calls.map((c) => c.payments[0]!.ref),
    [k1, k1],
    'the retry after the busy abort carries the same ref',
  );
  assert.equal(journal.get(k1.key)!.mh!.ok, true);
  await p.pay(CAROL, 5, 10_000); // unkeyed
  assert.deepEqual(calls[2]!.journaled, [k1.key], 'the next round tells the enclave the key is journaled');
  assert.equal(calls[2]!.payments[0]!.ref, undefined);
  await journal.close();
});

test("a committee member's sync: adopted refs journaled with the first host's id, a pending one completed once resolved", async () => {
  const file = join(await tempDir(), 'payments.journal');
  const [resolved, pending, own] = ['adopted-done', 'adopted-pending', 'own'].map((k) => keyRef(k, 'req')) as [
    KeyRef,
    KeyRef,
    KeyRef,
  ];
  const j = await PaymentJournal.open(file);
  await j.append([start(own, 'p1')]);
  const refs: Ref[] = [
    {
      key: resolved.key,
      fp: resolved.fp,
      round_id: ROUND,
      amount_sat: '1000',
      payment_id: 'p40',
      dest: CAROL,
      outcome: 'succeeded',
      channel_id: CH,
      route: ROUTE,
      fee_sat: '3',
    },
    {
      key: pending.key,
      fp: pending.fp,
      round_id: ROUND,
      amount_sat: '700',
      payment_id: 'p41',
      dest: CAROL,
      outcome: 'pending',
    },
    { key: own.key, fp: own.fp, round_id: ROUND, amount_sat: '1000', dest: CAROL, outcome: 'pending' },
  ];
  const { enclave, drops } = enclaveWith(refs);
  const payments = new PaymentLog();
  const keys = await RoutedKeys.recover(j, enclave, () => undefined, payments);

  // Keys this host never took: journaled under the id the first host gave them, the resolved one ended.
  assert.deepEqual(
    [j.get(resolved.key)!.id, j.get(resolved.key)!.amt, j.get(resolved.key)!.mh],
    ['p40', 1_000, { dest: CAROL, done: true, ok: true, code: undefined, ch: CH, route: ROUTE, fee: 3 }],
  );
  assert.deepEqual(
    [j.get(pending.key)!.id, j.get(pending.key)!.amt, j.get(pending.key)!.mh!.done],
    ['p41', 700, false],
  );
  assert.equal(j.get(own.key)!.id, 'p1', 'a key the journal knows keeps its record');
  assert.deepEqual(drops, [[resolved.key]], 'only the resolved ref is dropped');
  assert.ok(Number(payments.newId().slice(1)) > 41, 'the ids it journaled are reserved here');
  // Answered as the first payment: the same id, and in_flight while its round is pending.
  const answer = journalKeys(j, enclave).answer;
  assert.deepEqual([(await answer(pending)!).payment_id, (await answer(pending)!).status], ['p41', 'in_flight']);

  // The pending round resolves (adopted from a later update, or finished once promoted): the next sync ends it.
  refs[0] = { ...refs[0]!, outcome: 'failed', code: 'path_timeout' };
  await keys.sync(payments);
  assert.deepEqual([j.get(pending.key)!.mh!.done, j.get(pending.key)!.mh!.code], [true, 'path_timeout']);
  assert.deepEqual(drops.at(-1), [pending.key]);
  await j.close();
});
