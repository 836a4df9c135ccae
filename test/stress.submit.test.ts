// run-tests lane: in-process
/**
 * How `teechain stress` submits payments (src/stress/submit.ts), against a real HTTP server standing in for
 * a node: the payments a payer has ready in one tick go in one `POST /v1/payments/batch` (direct and
 * routed ones in separate requests, at most `--batch N` entries a request), a lone one and every one with
 * `--batch 1` in `POST /v1/payments`; each payment gets its own entry's outcome; a batch refused whole
 * before any entry started counts every entry failed, any other error answer leaves them unknown (to be
 * asked again by key), never succeeded. `--no-keys` drops the keys, and `--chaos`, which needs them. An
 * open loop against a node slower than its rate keeps more than 4,096 payments waiting (batched, a
 * network answers many thousands a few seconds after they leave).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiClient } from '../src/cli/client.ts';
import { Submitter } from '../src/stress/submit.ts';
import type { Treasury } from '../src/stress/target.ts';
import type { Outcome, PaymentRequest } from '../src/stress/pay.ts';
import { requestOf, runLoad } from '../src/stress/load.ts';
import { Recorder } from '../src/stress/recorder.ts';
import { paymentSequence } from '../src/stress/workload.ts';
import { fixedAmount } from '../src/stress/amounts.ts';
import { parseStressArgs, UsageError } from '../src/stress/options.ts';

type Body = { payments?: PaymentRequest[] } & Partial<PaymentRequest>;

/** A stand-in node: answers each payment by its amount (1: succeeded, 2: failed, 3: in flight); records requests. */
async function standIn(answer?: (req: IncomingMessage, res: ServerResponse, body: Body) => boolean) {
  const requests: Array<{ path: string; body: Body }> = [];
  const entryAnswer = (p: PaymentRequest) =>
    p.amount_sat === 1
      ? { payment_id: `id-${p.idempotency_key}`, status: 'succeeded', failure_code: null }
      : p.amount_sat === 2
        ? { payment_id: `id-${p.idempotency_key}`, status: 'failed', failure_code: 'insufficient_funds' }
        : { payment_id: `id-${p.idempotency_key}`, status: 'in_flight', failure_code: null };
  const server = createServer((req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      const body = JSON.parse(data) as Body;
      requests.push({ path: req.url!, body });
      if (answer?.(req, res, body)) return;
      res.writeHead(201, { 'content-type': 'application/json' });
      if (req.url === '/v1/payments/batch') {
        const results = body.payments!.map(entryAnswer);
        res.end(JSON.stringify({ succeeded: 0, failed: 0, results }));
      } else res.end(JSON.stringify(entryAnswer(body as PaymentRequest)));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const api = new ApiClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'token');
  const treasury: Treasury = { name: 'alice', id: 'a', api, members: [{ name: 'alice', api }] };
  return {
    requests,
    treasuries: [treasury, { ...treasury, name: 'bob', id: 'b' }, { ...treasury, name: 'carol', id: 'c' }],
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Payer 0's channel peer is 1; payments to 2 are routed. */
const direct = (a: number, b: number) => (a === 0 && b === 1) || (a === 1 && b === 0);
const req = (key: string, amount: number, dest = 'b'): PaymentRequest => ({
  dest,
  amount_sat: amount,
  idempotency_key: key,
});

test('stress: the payments a payer has ready at once go in batches, direct and routed apart, each its own outcome', async () => {
  const node = await standIn();
  try {
    const s = new Submitter(node.treasuries, 1000, direct);
    const outcomes = await Promise.all([
      s.send(0, 1, req('k1', 1)),
      s.send(0, 1, req('k2', 2)),
      s.send(0, 2, req('k3', 1, 'c')),
      s.send(0, 1, req('k4', 3)),
      s.send(0, 2, req('k5', 2, 'c')),
    ]);
    assert.deepEqual(outcomes, [
      { kind: 'succeeded', paymentId: 'id-k1' },
      { kind: 'failed', code: 'insufficient_funds' },
      { kind: 'succeeded', paymentId: 'id-k3' },
      { kind: 'unknown', code: 'in_flight' },
      { kind: 'failed', code: 'insufficient_funds' },
    ] satisfies Outcome[]);
    assert.deepEqual(
      node.requests.map((r) => [r.path, r.body.payments!.map((p) => p.idempotency_key)]),
      [
        ['/v1/payments/batch', ['k1', 'k2', 'k4']],
        ['/v1/payments/batch', ['k3', 'k5']],
      ],
    );
    // One payment ready alone goes in a request of its own.
    assert.deepEqual(await s.send(0, 1, req('k6', 1)), { kind: 'succeeded', paymentId: 'id-k6' });
    assert.equal(node.requests.at(-1)!.path, '/v1/payments');
    assert.deepEqual(s.figures, { max_per_request: 1000, single_requests: 1, batch_requests: 2, batched_payments: 5 });
  } finally {
    await node.close();
  }
});

test('stress: --batch N splits what is ready into requests of at most N; --batch 1 sends each alone', async () => {
  const node = await standIn();
  try {
    const s = new Submitter(node.treasuries, 2, direct);
    await Promise.all(['a', 'b', 'c', 'd', 'e'].map((k) => s.send(0, 1, req(k, 1))));
    assert.deepEqual(
      node.requests.map((r) => [r.path, r.body.payments?.length ?? 1]),
      [
        ['/v1/payments/batch', 2],
        ['/v1/payments/batch', 2],
        ['/v1/payments', 1],
      ],
    );
    node.requests.length = 0;
    const one = new Submitter(node.treasuries, 1, direct);
    await Promise.all(['f', 'g', 'h'].map((k) => one.send(0, 1, req(k, 1))));
    assert.deepEqual(
      node.requests.map((r) => r.path),
      ['/v1/payments', '/v1/payments', '/v1/payments'],
    );
    assert.equal(one.figures.batch_requests, 0);
  } finally {
    await node.close();
  }
});

test('stress: a batch refused whole counts its entries failed; a 5xx or a short answer leaves them unknown', async () => {
  let status = 400;
  let body: unknown = { error: { code: 'invalid_argument', message: 'refused before any entry started' } };
  const node = await standIn((_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
    return true;
  });
  try {
    const s = new Submitter(node.treasuries, 1000, direct);
    const two = () => Promise.all([s.send(0, 1, req('x1', 1)), s.send(0, 1, req('x2', 1))]);
    assert.deepEqual(await two(), [
      { kind: 'failed', code: 'invalid_argument' },
      { kind: 'failed', code: 'invalid_argument' },
    ]);
    // A 4xx the route may give after some entries left: nothing sure about any of them.
    body = { error: { code: 'payment_cut_off', message: 'from an entry' } };
    assert.deepEqual(await two(), [
      { kind: 'unknown', code: 'payment_cut_off' },
      { kind: 'unknown', code: 'payment_cut_off' },
    ]);
    status = 500;
    body = { error: { code: 'internal', message: 'x' } };
    assert.deepEqual(await two(), [
      { kind: 'unknown', code: 'internal' },
      { kind: 'unknown', code: 'internal' },
    ]);
    // An answer that leaves an entry out: none of them counts as succeeded.
    status = 201;
    body = { succeeded: 1, failed: 0, results: [{ payment_id: 'p1', status: 'succeeded', failure_code: null }] };
    assert.deepEqual(await two(), [
      { kind: 'unknown', code: 'bad_answer' },
      { kind: 'unknown', code: 'bad_answer' },
    ]);
  } finally {
    await node.close();
  }
});

test('stress: --no-keys sends payments without idempotency keys, and refuses --chaos, which asks by key', () => {
  const plain = parseStressArgs([]);
  assert.equal(plain.noKeys, false);
  const o = parseStressArgs(['--no-keys', '--batch', '500']);
  assert.equal(o.noKeys, true);
  assert.equal(o.batch, 500);
  const treasuries = [{ id: 'a' }, { id: 'b' }] as Treasury[];
  const p = { seq: 7, payer: 0, payee: 1, amount: 1_000 };
  assert.deepEqual(requestOf({ treasuries, keyPrefix: 'run', noKeys: true }, p, 2), { dest: 'b', amount_sat: 1_000 });
  assert.deepEqual(requestOf({ treasuries, keyPrefix: 'run' }, p, 2), {
    dest: 'b',
    amount_sat: 1_000,
    idempotency_key: 'run-7.2',
  });
  assert.throws(
    () => parseStressArgs(['--fresh', '--no-keys', '--chaos', 'kill:5s']),
    (err: Error) => {
      assert.ok(err instanceof UsageError);
      assert.match(err.message, /--no-keys .*--chaos needs the idempotency keys/);
      return true;
    },
  );
  assert.throws(() => parseStressArgs(['--batch', '0']), UsageError);
  assert.throws(() => parseStressArgs(['--batch', '10001']), UsageError);
});

test(
  'stress: an open loop keeps more than 4,096 payments waiting for their answers when the network is slow',
  { timeout: 60_000 },
  async () => {
    const total = 6_000;
    // Answers nothing until every payment of the run has arrived: a network slower than the rate offered.
    let arrived = 0;
    const held: Array<() => void> = [];
    const node = await standIn((_req, res, body) => {
      arrived += body.payments?.length ?? 1;
      held.push(() => {
        res.writeHead(201, { 'content-type': 'application/json' });
        const answer = (p: PaymentRequest) => ({
          payment_id: `id-${p.idempotency_key}`,
          status: 'succeeded',
          failure_code: null,
        });
        res.end(
          JSON.stringify(
            body.payments
              ? { succeeded: 0, failed: 0, results: body.payments.map(answer) }
              : answer(body as PaymentRequest),
          ),
        );
      });
      if (arrived === total) for (const release of held.splice(0)) release();
      return true;
    });
    try {
      const recorder = new Recorder(3);
      const figures = await runLoad({
        treasuries: node.treasuries,
        sequence: paymentSequence({ seed: 1, pattern: 'uniform', treasuries: 3, amount: fixedAmount(1), limit: total }),
        mode: { kind: 'open', rate: 200_000 },
        durationMs: 30_000,
        recorder,
        interrupted: new Promise(() => undefined),
        keyPrefix: 'open',
        submitter: new Submitter(node.treasuries, 1000, () => true),
      });
      assert.equal(figures!.issued, total);
      assert.equal(figures!.not_offered, 0);
      assert.ok(figures!.max_in_flight > 4_096, String(figures!.max_in_flight));
      assert.equal(recorder.ok, total);
    } finally {
      await node.close();
    }
  },
);
