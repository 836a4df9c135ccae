// run-tests lane: in-process
/**
 * A direct payment that meets a channel held by a multi-hop round (`channel_busy`, nothing moved) waits in
 * the node's payment pipeline and goes again when a round ends, ahead of newer payments, for a bounded
 * time; then it is refused with `channel_busy`. The enclave is a test double that refuses while the
 * channel is held; the same behaviour between real processes is multihop.e2e's contention test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EcallPort } from '../src/node/enclave-client.ts';
import { NodeError } from '../src/node/errors.ts';
import { PaymentLog } from '../src/node/payment-log.ts';
import { PaymentPipeline } from '../src/node/payment-pipeline.ts';

const CH = 'a'.repeat(64);

/** An enclave whose channel CH refuses payments while `held`; it records every payment it was asked. */
function enclave() {
  const e = {
    held: true,
    sent: 0,
    asked: [] as number[][],
    port: {
      call: (name: string, args: { payments: Array<{ amount_sat: number }> }) => {
        assert.equal(name, 'pay');
        e.asked.push(args.payments.map((p) => p.amount_sat));
        return Promise.resolve({
          results: args.payments.map((p) => {
            if (e.held) return { ok: false, code: 'channel_busy', message: 'held by a multi-hop payment' };
            e.sent += p.amount_sat;
            return { ok: true, channel_id: CH, position: String(e.sent) };
          }),
        });
      },
    } as unknown as EcallPort,
  };
  return e;
}

function pipeline(port: EcallPort, busyWaitMs?: number) {
  const p = new PaymentPipeline({
    enclave: port,
    payments: new PaymentLog(),
    report: () => undefined,
    stopping: () => false,
    ...(busyWaitMs !== undefined ? { busyWaitMs } : {}),
  });
  return { p };
}

test('a payment meeting a held channel waits, goes when a round ends, ahead of a newer one, and succeeds once', async () => {
  const e = enclave();
  const { p } = pipeline(e.port);
  const first = p.submit(CH, 10);
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(e.asked, [[10]], 'refused once, nothing moved');
  assert.equal(first.payment.status, 'pending', 'not failed: it waits');
  e.held = false;
  p.roundEnded();
  const second = p.submit(CH, 20);
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(e.asked.at(-1), [10, 20], 'the waiting payment goes first, the newer one after it');
  p.acked(CH, 30n);
  assert.equal((await first.done).status, 'succeeded');
  assert.equal((await second.done).status, 'succeeded');
  assert.equal(e.sent, 30, 'each paid once');
});

test('a channel held longer than the wait: the payment goes again meanwhile, then is refused channel_busy, having moved nothing', async () => {
  const e = enclave();
  const { p } = pipeline(e.port, 400);
  const { payment, done } = p.submit(CH, 10);
  await assert.rejects(done, (err: unknown) => err instanceof NodeError && err.code === 'channel_busy');
  assert.ok(e.asked.length >= 2, `asked again without a round's end (${e.asked.length} times)`);
  assert.equal(payment.status, 'failed');
  assert.equal(e.sent, 0);
});
