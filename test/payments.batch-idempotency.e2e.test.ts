/**
 * Idempotency keys on `POST /v1/payments/batch` entries, over real node processes alice – bob – carol
 * (real TCP, the embedded regtest chain): a retried batch pays each keyed entry once, whether the entry
 * went on a channel, directly by `dest` or routed, succeeded or was refused, and whether the payer was
 * killed with SIGKILL in between or crashed between the enclave's durable debit and the host's journal
 * write. A key that stands for another payment, or one key given twice in a batch, refuses the batch whole
 * and moves nothing. Entries without a key pay again, as documented.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { waitUntil, type NodeProcess } from './helpers/network.ts';
import { startRoutedLine, type RoutedLine } from './helpers/routed-line.ts';

let line: RoutedLine;
let alice: NodeProcess;
let bob: NodeProcess;
let carol: NodeProcess;
let ab: string;
let bc: string;

interface EntryAnswer {
  payment_id: string;
  status: string;
  failure_code: string | null;
  fee_sat?: number;
}

async function channel(n: NodeProcess, ch: string) {
  const v = await n.ok('GET', `/v1/channels/${ch}`);
  return { sent: BigInt(v.total_sent_sat), received: BigInt(v.total_received_sat), connected: v.peer_connected };
}

async function batch(payments: unknown[]): Promise<EntryAnswer[]> {
  const r = await alice.api('POST', '/v1/payments/batch', { payments });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.results as EntryAnswer[];
}

/** Every outgoing entry alice's history holds (since its process started). */
async function aliceOutgoing(): Promise<Array<{ payment_id: string; amount_sat: number }>> {
  const page = await alice.ok('GET', '/v1/payments?limit=1000');
  return page.payments.filter((p: { direction: string }) => p.direction === 'outgoing');
}

async function reconnected(): Promise<void> {
  await waitUntil(async () => (await channel(alice, ab)).connected === true, 20_000, 'alice and bob reconnected');
}

before(async () => {
  line = await startRoutedLine('teechain-batch-keys-');
  ({ alice, bob, carol, ab, bc } = line);
});

after(() => line?.stop());

describe('idempotency keys on batch entries', () => {
  test('a retried batch pays each keyed entry once, before and after kill -9 of the payer; unkeyed entries pay again', async () => {
    const entries = [
      { channel_id: ab, amount_sat: 1_000, idempotency_key: 'batch-1/a' }, // on a channel
      { dest: bob.id, amount_sat: 2_000, idempotency_key: 'batch-1/b' }, // direct, by dest
      { dest: carol.id, amount_sat: 3_000, idempotency_key: 'batch-1/c' }, // routed through bob
      { channel_id: ab, amount_sat: 10_000_000, idempotency_key: 'batch-1/d' }, // more than alice holds
      { channel_id: ab, amount_sat: 500 }, // no key
    ];
    const before = { ab: await channel(alice, ab), bc: await channel(carol, bc) };
    const first = await batch(entries);
    assert.deepEqual(
      first.map((r) => [r.status, r.failure_code]),
      [
        ['succeeded', null],
        ['succeeded', null],
        ['succeeded', null],
        ['failed', 'insufficient_funds'],
        ['succeeded', null],
      ],
      JSON.stringify(first),
    );
    const fee = BigInt(first[2]!.fee_sat ?? 0);
    // What alice's side of ab carries after n runs of the unkeyed entry (the keyed ones pay once).
    const sentAfter = (unkeyedRuns: bigint) => before.ab.sent + 1_000n + 2_000n + 3_000n + fee + 500n * unkeyedRuns;
    assert.equal((await channel(alice, ab)).sent, sentAfter(1n));

    /** The retry answers every keyed entry with its first payment and outcome; the unkeyed one is new. */
    const sameAsFirst = (again: EntryAnswer[], what: string) => {
      for (const i of [0, 1, 2, 3]) {
        assert.equal(again[i]!.payment_id, first[i]!.payment_id, `${what}: entry ${i} is the first payment`);
        assert.equal(again[i]!.failure_code, first[i]!.failure_code, `${what}: entry ${i}'s outcome`);
      }
      assert.equal(again[3]!.status, 'failed', `${what}: the refused entry is still refused`);
      assert.notEqual(again[4]!.payment_id, first[4]!.payment_id, `${what}: the unkeyed entry is a new payment`);
    };

    const again = await batch(entries);
    sameAsFirst(again, 'retried at once');
    for (const i of [0, 1, 2]) assert.equal(again[i]!.status, 'succeeded');
    assert.equal((await channel(alice, ab)).sent, sentAfter(2n), 'only the unkeyed entry paid again');

    await alice.kill('SIGKILL');
    await alice.launch();
    await reconnected();
    const afterCrash = await batch(entries);
    sameAsFirst(afterCrash, 'retried after kill -9');
    assert.equal((await channel(alice, ab)).sent, sentAfter(3n), 'only the unkeyed entry paid again');
    // A direct entry's acknowledgement may be re-learnt from bob's resync just after the restart.
    await waitUntil(
      async () => (await batch(entries.slice(0, 4))).slice(0, 3).every((r) => r.status === 'succeeded'),
      20_000,
      'the keyed entries answer succeeded',
    );
    assert.equal((await channel(alice, ab)).sent, sentAfter(3n), 'the retries of keyed entries moved nothing');
    // The restarted alice recorded no second payment for a keyed entry.
    const keyedIds = new Set(first.slice(0, 4).map((r) => r.payment_id));
    const amounts = (await aliceOutgoing()).filter((p) => !keyedIds.has(p.payment_id)).map((p) => p.amount_sat);
    assert.ok(
      amounts.every((a) => a === 500),
      `alice's new history holds only unkeyed payments: ${JSON.stringify(amounts)}`,
    );
    // Neither bob nor carol was restarted: carol was paid the routed entry once, and nothing else.
    const carolNow = await channel(carol, bc);
    assert.equal(carolNow.received - before.bc.received, 3_000n, 'carol received the routed entry once');
    const bobSide = await channel(bob, ab);
    assert.equal(bobSide.received, sentAfter(3n), "bob's enclave credited exactly what alice's sent");
  });

  test('a key that stands for another payment, or one key twice in a batch, refuses the whole batch and moves nothing', async () => {
    await batch([{ channel_id: ab, amount_sat: 700, idempotency_key: 'batch-2/a' }]);
    const sent = (await channel(alice, ab)).sent;
    const historyBefore = (await aliceOutgoing()).length;

    const conflict = await alice.api('POST', '/v1/payments/batch', {
      payments: [
        { channel_id: ab, amount_sat: 100, idempotency_key: 'batch-2/new' },
        { channel_id: ab, amount_sat: 701, idempotency_key: 'batch-2/a' },
      ],
    });
    assert.equal(conflict.status, 409, JSON.stringify(conflict.body));
    assert.equal(conflict.body.error.code, 'idempotency_conflict');
    assert.match(conflict.body.error.message, /payments\[1\]/);

    const twice = await alice.api('POST', '/v1/payments/batch', {
      payments: [
        { channel_id: ab, amount_sat: 100, idempotency_key: 'batch-2/twice' },
        { dest: bob.id, amount_sat: 100, idempotency_key: 'batch-2/twice' },
      ],
    });
    assert.equal(twice.status, 400, JSON.stringify(twice.body));
    assert.equal(twice.body.error.code, 'invalid_argument');
    assert.match(twice.body.error.message, /payments\[0\] and payments\[1\]/);

    assert.equal((await channel(alice, ab)).sent, sent, 'the refused batches moved nothing');
    assert.equal((await aliceOutgoing()).length, historyBefore, 'and started no payment');
    // The key a refused batch named is still free: it pays now.
    const fresh = await batch([{ channel_id: ab, amount_sat: 100, idempotency_key: 'batch-2/new' }]);
    assert.equal(fresh[0]!.status, 'succeeded');
    assert.equal((await channel(alice, ab)).sent, sent + 100n);
    // The same key by the one-payment route is the same payment.
    const single = await alice.ok('POST', '/v1/payments', {
      channel_id: ab,
      amount_sat: 100,
      idempotency_key: 'batch-2/new',
    });
    assert.equal(single.payment_id, fresh[0]!.payment_id);
    assert.equal((await channel(alice, ab)).sent, sent + 100n);
  });

  test('a crash between the enclave debit and the journal write: the retried batch pays nothing again', async () => {
    const entries = [
      { channel_id: ab, amount_sat: 1_100, idempotency_key: 'batch-3/a' },
      { dest: bob.id, amount_sat: 1_200, idempotency_key: 'batch-3/b' },
    ];
    const sent = (await channel(alice, ab)).sent;
    await alice.kill('SIGTERM');
    // Test-only switch: the node exits(137) as soon as the pay ecall for a keyed payment returns.
    process.env.TEECHAIN_TEST_CRASH_AFTER_KEYED_PAY = '1';
    try {
      await alice.launch();
    } finally {
      delete process.env.TEECHAIN_TEST_CRASH_AFTER_KEYED_PAY;
    }
    await reconnected();
    const exited = new Promise((r) => alice.proc.once('exit', r));
    const lost = await alice.api('POST', '/v1/payments/batch', { payments: entries }).catch(() => null);
    if (lost !== null) await alice.kill('SIGKILL');
    await exited;
    assert.equal(alice.proc.exitCode, 137, 'the node exited between the debit seal and the journal write');

    await alice.launch();
    await reconnected();
    assert.equal((await channel(alice, ab)).sent, sent + 2_300n, 'the debit before the crash is durable');
    await waitUntil(
      async () => (await batch(entries)).every((r) => r.status === 'succeeded'),
      20_000,
      'the retried entries answer succeeded',
    );
    assert.equal((await channel(alice, ab)).sent, sent + 2_300n, 'the retries moved nothing');
    assert.equal((await channel(bob, ab)).received, sent + 2_300n, 'bob was credited once');
    assert.deepEqual(await aliceOutgoing(), [], 'the restarted alice started no payment for the retried keys');
  });
});
