/**
 * A keyed routed payment cut off by a crash (real node processes alice – bob – carol, real TCP, the
 * embedded regtest chain): alice's node exits(137) while the journal holds the payment's start and not
 * its end — before the enclave was asked, once the round's lock is sealed, once the enclave has answered
 * (test-only switch TEECHAIN_TEST_CRASH_KEYED_ROUTED). Restarted, a retry with the same key answers the
 * payment's final outcome, never `in_flight` for ever: succeeded with the same payment id and both
 * channels moved exactly once, failed with the round's code and nothing moved, or `payment_not_started`
 * when nothing was locked; a second retry, and one after another kill -9, answers the same and pays nothing.
 * And one cut off by a silent destination (SIGSTOP): the payer's LOCK / SIGN wait aborts the round, which
 * answers `409 path_timeout` (definite: nothing moved), never `504 timeout` (outcome unknown), then and on
 * every retry of its key.
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

const AMOUNT = 4_000;
/** bob's fee on AMOUNT: 2 sat + 1,000 ppm. */
const FEE = 2 + (AMOUNT * 1_000) / 1_000_000;

before(async () => {
  line = await startRoutedLine('teechain-routed-crash-', { base_sat: 2, ppm: 1_000 });
  ({ alice, bob, carol, ab, bc } = line);
});

after(() => line?.stop());

async function local(n: NodeProcess, ch: string): Promise<bigint> {
  return BigInt((await n.ok('GET', `/v1/channels/${ch}`)).local_balance_sat);
}

/** alice's and bob's sides of alice – bob, bob's and carol's of bob – carol. */
async function balances(): Promise<bigint[]> {
  return [await local(alice, ab), await local(bob, ab), await local(bob, bc), await local(carol, bc)];
}

/** Both ends of both channels agree and no round holds a channel anywhere. */
async function quiet(): Promise<boolean> {
  for (const [x, y, ch] of [
    [alice, bob, ab],
    [bob, carol, bc],
  ] as const) {
    const [cx, cy] = await Promise.all([x.ok('GET', `/v1/channels/${ch}`), y.ok('GET', `/v1/channels/${ch}`)]);
    if (cx.local_balance_sat !== cy.remote_balance_sat || cx.total_acked_sat !== cx.total_sent_sat) return false;
  }
  for (const n of [alice, bob, carol]) {
    const rounds = (await n.ok('GET', '/v1/multihop')).rounds as Array<{ phase: string }>;
    if (rounds.some((r) => r.phase !== 'done' && r.phase !== 'aborted')) return false;
  }
  return true;
}

/** alice connected to bob again, with carol's channel in her graph: a payment to carol can be routed. */
async function routable(): Promise<void> {
  await waitUntil(
    async () => {
      const ch = await alice.api('GET', `/v1/channels/${ab}`);
      if (ch.status !== 200 || ch.body.peer_connected !== true) return false;
      const g = (await alice.ok('GET', '/v1/graph')).nodes as Array<{ node_id: string; channels: unknown[] }>;
      return g.some((x) => x.node_id === carol.id && x.channels.length > 0);
    },
    30_000,
    'alice reconnected, carol routable',
  );
}

/** alice restarted with the crash switch set to `at`. */
async function armCrash(at: 'journaled' | 'locked' | 'answered'): Promise<void> {
  await alice.kill('SIGTERM');
  process.env.TEECHAIN_TEST_CRASH_KEYED_ROUTED = at;
  try {
    await alice.launch();
  } finally {
    delete process.env.TEECHAIN_TEST_CRASH_KEYED_ROUTED;
  }
  await routable();
  await waitUntil(quiet, 30_000, 'the line is quiet');
}

/** Pays `body` and expects alice's node to exit(137) on the way; restarts it without the switch. */
async function crashOn(body: object): Promise<void> {
  const exited = new Promise((r) => alice.proc.once('exit', r));
  const answered = await alice.api('POST', '/v1/payments', body).catch(() => null);
  // Without the switch the node answers: kill it the usual way then, so the test still runs to its checks.
  if (answered !== null) await alice.kill('SIGKILL');
  await exited;
  const code = alice.proc.exitCode;
  await alice.launch();
  assert.equal(code, 137, `alice's node exited(137) in the window (answered: ${JSON.stringify(answered?.body)})`);
}

type Answer = { status: number; body: { status?: string; payment_id?: string; error?: { code: string } } };

/** The retry's answer once it is final (not a 201 `in_flight`). */
async function finalAnswer(body: object, what: string): Promise<Answer> {
  let last: Answer | undefined;
  try {
    await waitUntil(
      async () => {
        last = await alice.api('POST', '/v1/payments', body);
        return !(last.status === 201 && last.body.status === 'in_flight');
      },
      30_000,
      `${what}: the retry answers the final outcome`,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; it still answers ${last?.status} ${JSON.stringify(last?.body)}`);
  }
  return last!;
}

/** What moved on [alice ab, bob ab, bob bc, carol bc] since `before`. */
async function moved(before: bigint[]): Promise<bigint[]> {
  await waitUntil(quiet, 30_000, 'the line is quiet');
  return (await balances()).map((b, i) => b - before[i]!);
}

const ONCE = [-(AMOUNT + FEE), AMOUNT + FEE, -AMOUNT, AMOUNT].map(BigInt);
const NOTHING = [0n, 0n, 0n, 0n];

/** Answers `body` twice more, once after a kill -9: the same answer each time, and nothing more moves. */
async function sameAgain(body: object, first: Answer, before: bigint[], expected: bigint[]): Promise<void> {
  const pick = (a: Answer) => [a.status, a.body.status, a.body.payment_id, a.body.error?.code];
  assert.deepEqual(pick(await alice.api('POST', '/v1/payments', body)), pick(first), 'a second retry answers the same');
  await alice.kill('SIGKILL');
  await alice.launch();
  await routable();
  assert.deepEqual(pick(await alice.api('POST', '/v1/payments', body)), pick(first), 'after kill -9: the same');
  assert.deepEqual(await moved(before), expected, 'the retries moved nothing more');
}

describe('a keyed routed payment cut off by a crash answers its final outcome', () => {
  test('killed once the enclave answered the round, before the journal has its end: succeeded, moved once', async () => {
    await armCrash('answered');
    const before = await balances();
    const body = { dest: carol.id, amount_sat: AMOUNT, idempotency_key: 'routed-answered' };
    await crashOn(body);
    await routable();
    const retry = await finalAnswer(body, 'answered');
    assert.equal(retry.status, 201, JSON.stringify(retry.body));
    assert.equal(retry.body.status, 'succeeded');
    const full = retry.body as { route: string[]; fee_sat: number; channel_id: string };
    assert.deepEqual(full.route, [alice.id, bob.id, carol.id]);
    assert.equal(full.fee_sat, FEE);
    assert.equal(full.channel_id, ab);
    assert.deepEqual(await moved(before), ONCE, 'both channels moved exactly once');
    await sameAgain(body, retry, before, ONCE);
  });

  test('killed once the round lock is sealed: the round resolves after the restart and the retry answers how', async (t) => {
    await armCrash('locked');
    const before = await balances();
    const body = { dest: carol.id, amount_sat: AMOUNT, idempotency_key: 'routed-locked' };
    await crashOn(body);
    await routable();
    const retry = await finalAnswer(body, 'locked');
    t.diagnostic(`the round cut off at its lock ended: ${JSON.stringify(retry.body)}`);
    // The restarted payer finishes the round with its peers, or its LOCK wait times out and it aborts:
    // whichever it was, the answer and the channels say the same.
    const expected = retry.status === 201 ? ONCE : NOTHING;
    if (retry.status === 201) assert.equal(retry.body.status, 'succeeded');
    else assert.ok(retry.body.error && retry.body.error.code !== 'payment_not_started', JSON.stringify(retry.body));
    assert.deepEqual(await moved(before), expected, `moved as answered (${JSON.stringify(retry.body)})`);
    await sameAgain(body, retry, before, expected);
  });

  test('killed after the start is journaled, before the enclave is asked: payment_not_started, never paid', async () => {
    await armCrash('journaled');
    const before = await balances();
    const body = { dest: carol.id, amount_sat: AMOUNT, idempotency_key: 'routed-journaled' };
    await crashOn(body);
    await routable();
    const retry = await finalAnswer(body, 'journaled');
    assert.equal(retry.status, 409, JSON.stringify(retry.body));
    assert.equal(retry.body.error?.code, 'payment_not_started');
    assert.deepEqual(await moved(before), NOTHING);
    await sameAgain(body, retry, before, NOTHING);
    // A new key pays.
    const fresh = await alice.ok('POST', '/v1/payments', { ...body, idempotency_key: 'routed-journaled-2' });
    assert.equal(fresh.status, 'succeeded');
    assert.deepEqual(await moved(before), ONCE);
  });

  test("a destination silent through the payer's wait: 409 path_timeout at once and on every retry, nothing moved", async () => {
    await routable();
    await waitUntil(quiet, 30_000, 'the line is quiet');
    const before = await balances();
    const body = { dest: carol.id, amount_sat: AMOUNT, idempotency_key: 'routed-silent' };
    // carol's sockets stay open but she answers nothing: bob's LOCK waits on her until alice gives up.
    carol.proc.kill('SIGSTOP');
    let first: Answer;
    let retry: Answer;
    try {
      first = await alice.api('POST', '/v1/payments', body);
      retry = await alice.api('POST', '/v1/payments', body);
    } finally {
      carol.proc.kill('SIGCONT');
    }
    assert.equal(first.status, 409, JSON.stringify(first.body));
    assert.equal(first.body.error?.code, 'path_timeout');
    const pick = (a: Answer) => [a.status, a.body.payment_id, a.body.error?.code];
    assert.deepEqual(pick(retry), pick(first), 'a retry with the same key answers the same definite failure');
    assert.deepEqual(await moved(before), NOTHING, 'every hop kept the old state');
    await sameAgain(body, first, before, NOTHING);
  });
});
