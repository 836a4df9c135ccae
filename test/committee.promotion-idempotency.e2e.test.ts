/**
 * Idempotency keys across a promotion (docs/api.md, "Idempotency"): a keyed payment acknowledged by a
 * committee's primary and retried with its key on the backup promoted after the primary was killed with
 * SIGKILL answers the first payment (same payment_id, succeeded) and pays nothing more, on both sides of
 * the channel; and still after the old primary restarted and rejoined as a backup. The same for a keyed
 * payment routed through the peer to a third node: the promoted member answers its first payment and routes
 * nothing again. Real node processes, a 2-of-3 committee, a lone channel peer and a node beyond it, the
 * embedded regtest chain.
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

/** `from` has `to`'s channel in its graph: a payment to `to` can be routed. */
async function routable(from: NodeProcess, to: NodeProcess): Promise<void> {
  await waitUntil(
    async () => {
      const g = (await from.ok('GET', '/v1/graph')).nodes as Array<{ node_id: string; channels: unknown[] }>;
      return g.some((x) => x.node_id === to.id && x.channels.length > 0);
    },
    30_000,
    `${to.id.slice(0, 8)} routable`,
  );
}

test('keyed payments, direct and routed, acknowledged by the killed primary, retried on the promoted backup, pay once', async () => {
  const [members, q, r] = await Promise.all([
    startCommittee(dir, chain, key, 'pidem-a', 30_000, PROMOTION),
    NodeProcess.start(join(dir, 'pidem-q'), chain, key),
    NodeProcess.start(join(dir, 'pidem-r'), chain, key),
  ]);
  const [p, b1, b2] = members as [NodeProcess, NodeProcess, NodeProcess];
  const [da, dq, dq2, dr] = await Promise.all([
    fundDeposit(p, 1_000_000),
    fundDeposit(q, 500_000),
    fundDeposit(q, 500_000),
    fundDeposit(r, 100_000),
  ]);
  const ch = await openChannel(p, q, [da], [dq]);
  const qr = await openChannel(q, r, [dq2], [dr]);
  await routable(p, r);

  // An unkeyed payment first, so that the keyed one's id is one the new primary would not give it by chance.
  assert.equal((await p.ok('POST', '/v1/payments', { channel_id: ch, amount_sat: 10 })).status, 'succeeded');
  const request = { channel_id: ch, amount_sat: 1_234, idempotency_key: 'promotion-retry-1' };
  const first = await p.ok('POST', '/v1/payments', request);
  assert.equal(first.status, 'succeeded');
  // A second keyed payment, acknowledged too: its ref travels in a later update than the first's.
  const request2 = { ...request, amount_sat: 66, idempotency_key: 'promotion-retry-2' };
  const second = await p.ok('POST', '/v1/payments', request2);
  assert.equal(second.status, 'succeeded');
  // And one routed through q to r: its ref travels with the round's updates, its outcome too.
  const routed = { dest: r.id, amount_sat: 2_000, idempotency_key: 'promotion-routed-1' };
  const third = await p.ok('POST', '/v1/payments', routed);
  assert.equal(third.status, 'succeeded');
  assert.deepEqual(third.route, [p.id, q.id, r.id]);
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
  // The routed retry answers the first payment too, and routes nothing again.
  const routedAgain = await b1.ok('POST', '/v1/payments', routed);
  assert.equal(routedAgain.payment_id, third.payment_id, 'the routed payment keeps its id');
  assert.equal(routedAgain.status, 'succeeded');
  assert.deepEqual(routedAgain.route, third.route);
  // Moved once, on both sides: 1,310 direct and the routed 2,000 with q's fee on p – q, 2,000 on q – r.
  const pq = (extra: number) => String(1_310 + extra + 2_000 + Number(third.fee_sat));
  await waitUntil(
    async () => (await totals(q, ch)).received === (await totals(b1, ch)).sent,
    15_000,
    'the peer has every payment the new primary sent',
  );
  assert.deepEqual(await totals(b1, ch), { sent: pq(0), received: '0' });
  assert.deepEqual(await totals(q, ch), { sent: '0', received: pq(0) });
  assert.deepEqual(await totals(r, qr), { sent: '0', received: '2000' });
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
  const once = await b1.ok('POST', '/v1/payments', request);
  assert.equal(once.payment_id, first.payment_id);
  assert.equal(once.status, 'succeeded');
  assert.equal((await b1.ok('POST', '/v1/payments', routed)).payment_id, third.payment_id);
  await waitUntil(async () => (await totals(p, ch)).sent === pq(7), 30_000, 'the old primary catches up');
  assert.deepEqual(await totals(b1, ch), { sent: pq(7), received: '0' });
  assert.deepEqual(await totals(q, ch), { sent: '0', received: pq(7) });
  assert.deepEqual(await totals(r, qr), { sent: '0', received: '2000' });
  for (const n of [p, b1, b2, q, r]) await n.kill('SIGTERM');
});
