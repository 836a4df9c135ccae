// run-tests lane: in-process
/**
 * The host's list of path rounds (src/node/multihop-rounds.ts), fed `mh_round` events as an enclave sends
 * them: newest first, bounded to the newest 1,000, the enclave's records having the last word on phase,
 * totals and txid, rounds the process never heard of after the others, each payment's outcome following
 * its round's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_ROUNDS, RoundLog, type EnclaveRound, type RoundEvent } from '../src/node/multihop-rounds.ts';

const route = ['02' + 'a'.repeat(64), '02' + 'b'.repeat(64), '02' + 'c'.repeat(64)];
const id = (n: number) => n.toString(16).padStart(64, '0');

function started(n: number, payments = [{ amount: '10', fee: '1' }]): RoundEvent {
  const total = payments.reduce((s, p) => s + BigInt(p.amount), 0n);
  const fees = payments.reduce((s, p) => s + BigInt(p.fee), 0n);
  return {
    type: 'mh_round',
    round_id: id(n),
    role: 'intermediary',
    phase: 'locked',
    route,
    amounts: [String(total + fees), String(total)],
    txid: null,
    code: null,
    payments,
  };
}

test('newest first, bounded to the newest 1,000, limit honoured', () => {
  const log = new RoundLog();
  for (let n = 1; n <= MAX_ROUNDS + 5; n++) log.note(started(n));
  const all = log.view([], MAX_ROUNDS);
  assert.equal(all.length, MAX_ROUNDS);
  assert.equal(all[0]!.round_id, id(MAX_ROUNDS + 5), 'the newest first');
  assert.equal(all.at(-1)!.round_id, id(6), 'the oldest five dropped');
  assert.deepEqual(
    log.view([], 2).map((r) => r.round_id),
    [id(MAX_ROUNDS + 5), id(MAX_ROUNDS + 4)],
  );
});

test("a round's phase, totals and outcomes: from its events, then from the enclave's record", () => {
  const log = new RoundLog();
  const payments = [
    { amount: '100', fee: '2' },
    { amount: '50', fee: '1' },
    { amount: '30', fee: '1' },
  ];
  log.note(started(1, payments));
  assert.deepEqual(
    log.view([], 10)[0]!.payments.map((p) => p.outcome),
    ['pending', 'pending', 'pending'],
  );
  // SIGN came back: the second was left out further down; the totals are those of the other two.
  log.note({
    ...started(1),
    phase: 'signed',
    amounts: ['133', '130'],
    txid: 'f'.repeat(64),
    payments: undefined,
    dropped: [1],
  });
  const record: EnclaveRound = {
    payment_id: id(1),
    role: 'intermediary',
    phase: 'released',
    route,
    amounts: ['133', '130'],
    txid: 'f'.repeat(64),
    code: null,
  };
  const [r] = log.view([record], 10);
  assert.equal(r!.phase, 'released', "the enclave's record has the last word");
  assert.equal(r!.amount_sat, '130');
  assert.equal(r!.fee_sat, '3');
  assert.deepEqual(
    r!.payments.map((p) => [p.amount_sat, p.outcome, p.code]),
    [
      ['100', 'succeeded', null],
      ['50', 'failed', 'insufficient_capacity'],
      ['30', 'succeeded', null],
    ],
  );
  // A round that aborted: every payment in it failed with the round's code.
  log.note(started(2));
  log.note({ ...started(2), phase: 'aborted', code: 'channel_busy', payments: undefined });
  const [aborted] = log.view([], 1);
  assert.deepEqual(
    aborted!.payments.map((p) => [p.outcome, p.code]),
    [['failed', 'channel_busy']],
  );
});

test("a round the process never heard of (from before a restart) comes after the others, from the enclave's record", () => {
  const log = new RoundLog();
  log.note(started(7));
  const old: EnclaveRound = {
    payment_id: id(3),
    role: 'payer',
    phase: 'done',
    route,
    amounts: ['11', '10'],
    txid: 'e'.repeat(64),
    code: null,
  };
  const view = log.view([old], 10);
  assert.deepEqual(
    view.map((r) => [r.round_id, r.role, r.amount_sat, r.payments.length]),
    [
      [id(7), 'intermediary', '10', 1],
      [id(3), 'payer', '10', 0],
    ],
  );
  assert.equal(log.view([old], 1).length, 1, 'within the limit');
});
