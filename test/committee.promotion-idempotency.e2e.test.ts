/**
 * Idempotency keys across a promotion (docs/api.md, "Idempotency"): a keyed payment acknowledged by a
 * committee's primary and retried with its key on the backup promoted after the primary was killed with
 * SIGKILL answers the first payment (same payment_id, succeeded) and pays nothing more, on both sides of
 * the channel; and still after the old primary restarted and rejoined as a backup. Real node processes,
 * a 2-of-3 committee, a lone channel peer, the embedded regtest chain.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  fundDeposit,
  NodeProcess,
  openChannel,
  startCommittee,
  startE2eFile,
  waitUntil,
  type TestChain,
} from './helpers/network.ts';

let chain: TestChain;
let dir: string;
let key: string;

before(async () => ({ chain, dir, key } = await startE2eFile()));
after(() => chain?.close());

const PROMOTION = ['--promotion-timeout-ms', '1500'];

async function totals(n: NodeProcess, ch: string): Promise<{ sent: string; received: string }> {
  const v = await n.ok('GET', `/v1/channels/${ch}`);
  return { sent: v.total_sent_sat, received: v.total_received_sat };
}

test('a keyed payment acknowledged by the killed primary, retried on the promoted backup, pays once', async () => {
  const [members, q] = await Promise.all([
    startCommittee(dir, chain, key, 'pidem-a', 30_000, PROMOTION),
    NodeProcess.start(join(dir, 'pidem-q'), chain, key),
  ]);
  const [p, b1, b2] = members as [NodeProcess, NodeProcess, NodeProcess];
  const [da, dq] = await Promise.all([fundDeposit(p, 1_000_000), fundDeposit(q, 500_000)]);
  const ch = await openChannel(p, q, [da], [dq]);

  // An unkeyed payment first, so that the keyed one's id is one the new primary would not give it by chance.
  assert.equal((await p.ok('POST', '/v1/payments', { channel_id: ch, amount_sat: 10 })).status, 'succeeded');
  const request = { channel_id: ch, amount_sat: 1_234, idempotency_key: 'promotion-retry-1' };
  const first = await p.ok('POST', '/v1/payments', request);
  assert.equal(first.status, 'succeeded');
  // A second keyed payment, acknowledged too: its ref travels in a later update than the first's.
  const request2 = { ...request, amount_sat: 66, idempotency_key: 'promotion-retry-2' };
  const second = await p.ok('POST', '/v1/payments', request2);
  assert.equal(second.status, 'succeeded');
  await p.kill('SIGKILL');

  await waitUntil(async () => (await b1.ok('GET', '/v1/committee')).role === 'primary', 30_000, 'b1 promoted');
  await waitUntil(async () => (await b2.ok('GET', '/v1/committee')).epoch === 1, 15_000, 'b2 adopts the view');

  // The retry answers the first payment: the same id, succeeded once the peer has followed the new primary.
  let retried: { status: string; payment_id: string } | undefined;
  await waitUntil(
    async () => {
      const r = await b1.api('POST', '/v1/payments', request);
      assert.notEqual(r.status, 409, `the promoted member takes writes: ${JSON.stringify(r.body)}`);
      if (r.status !== 201 || r.body.status !== 'succeeded') return false;
      retried = r.body;
      return true;
    },
    30_000,
    'the retry answers on the new primary',
  );
  assert.equal(retried!.payment_id, first.payment_id, 'the first payment id');
  // The second's acknowledgement may reach the new primary only as the peer resynchronises with it: the
  // retry answers in_flight until then (the status follows the channel's totals), never a new payment.
  await waitUntil(
    async () => {
      const again = await b1.ok('POST', '/v1/payments', request2);
      assert.equal(again.payment_id, second.payment_id);
      return again.status === 'succeeded';
    },
    15_000,
    'the second retry answers succeeded',
  );
  // Moved once, on both sides.
  await waitUntil(
    async () => (await totals(q, ch)).received === (await totals(b1, ch)).sent,
    15_000,
    'the peer has every payment the new primary sent',
  );
  assert.deepEqual(await totals(b1, ch), { sent: '1310', received: '0' });
  assert.deepEqual(await totals(q, ch), { sent: '0', received: '1310' });
  // The key still conflicts with another request.
  const conflict = await b1.api('POST', '/v1/payments', { ...request, amount_sat: 5 });
  assert.equal(conflict.status, 409);
  assert.equal(conflict.body.error.code, 'idempotency_conflict');

  // The old primary rejoins as a backup; the retry on the primary still pays nothing more.
  await p.launch(PROMOTION);
  await waitUntil(
    async () => {
      const c = (await p.ok('GET', '/v1/committee')) as { epoch: number; role: string };
      return c.epoch === 1 && c.role === 'backup';
    },
    30_000,
    'the old primary rejoins as a backup',
  );
  const fresh = await b1.ok('POST', '/v1/payments', { channel_id: ch, amount_sat: 7 });
  assert.equal(fresh.status, 'succeeded');
  const onOld = await p.api('POST', '/v1/payments', request);
  assert.equal(onOld.status, 409);
  assert.equal(onOld.body.error.code, 'not_primary');
  const third = await b1.ok('POST', '/v1/payments', request);
  assert.equal(third.payment_id, first.payment_id);
  assert.equal(third.status, 'succeeded');
  await waitUntil(async () => (await totals(p, ch)).sent === '1317', 30_000, 'the old primary catches up');
  assert.deepEqual(await totals(b1, ch), { sent: '1317', received: '0' });
  assert.deepEqual(await totals(q, ch), { sent: '0', received: '1317' });
  for (const n of [p, b1, b2, q]) await n.kill('SIGTERM');
});
