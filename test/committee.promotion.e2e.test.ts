/**
 * Promotion end to end (docs/protocol/committees.md, "View change"): a 2-of-3 committee of real node
 * processes and a lone channel peer, the embedded regtest chain. The primary is killed with SIGKILL in
 * the middle of a payment stream; a backup is promoted, the peer's host finds it, and payments resume on
 * the same channel through the new primary's REST API. The old primary, restarted, rejoins as a backup.
 * A settlement by the new view pays exactly the acknowledged balances on chain.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Transaction, address as baddress, networks } from 'bitcoinjs-lib';
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
const STEP = 10;

/** Pays STEP sat; true if acknowledged, false if refused, null if the answer is unknown (in flight, or the node died). */
async function payOnce(node: NodeProcess, ch: string): Promise<boolean | null> {
  const r = await node.api('POST', '/v1/payments', { channel_id: ch, amount_sat: STEP }).catch(() => null);
  if (!r) return null;
  if (r.status === 201 && r.body.status === 'succeeded') return true;
  if (r.status === 201) return null;
  return false;
}

test('kill -9 of the primary mid-stream: a backup is promoted, payments resume on the same channel, the old primary rejoins, the chain pays the acknowledged balances', async () => {
  // The lone peer starts while the committee forms.
  const [a, q] = await Promise.all([
    startCommittee(dir, chain, key, 'promo-a', 30_000, PROMOTION),
    NodeProcess.start(join(dir, 'promo-q'), chain, key),
  ]);
  const [p, b1, b2] = a as [NodeProcess, NodeProcess, NodeProcess];
  const [da, dq] = await Promise.all([fundDeposit(p, 1_000_000), fundDeposit(q, 500_000)]);
  const ch = await openChannel(p, q, [da], [dq]);
  const payoutA = (await p.ok('GET', '/v1/getinfo')).payout_address;
  const payoutQ = (await q.ok('GET', '/v1/getinfo')).payout_address;

  // A stream of payments from three clients; the primary dies after 30 acknowledged ones.
  let acked = 0;
  let unknown = 0;
  let killedAt = 0;
  const stream = async () => {
    while (killedAt === 0) {
      const r = await payOnce(p, ch);
      if (r === true) acked += STEP;
      else if (r === null) unknown += STEP;
      if (acked >= 30 * STEP && killedAt === 0) {
        killedAt = Date.now();
        await p.kill('SIGKILL');
      }
    }
  };
  await Promise.all([stream(), stream(), stream()]);
  const ackedByOld = acked;

  // The first backup takes over: epoch 1, itself first, the old primary at the tail.
  await waitUntil(async () => (await b1.ok('GET', '/v1/committee')).role === 'primary', 30_000, 'b1 promoted');
  const view = await b1.ok('GET', '/v1/committee');
  assert.equal(view.epoch, 1);
  assert.equal(view.treasury_id, p.id, 'the committee keeps its identity');
  assert.deepEqual(
    view.members.map((m: { node_id: string }) => m.node_id),
    [b1.id, b2.id, p.id],
  );
  await waitUntil(async () => (await b2.ok('GET', '/v1/committee')).epoch === 1, 15_000, 'b2 adopts the view');
  for (const m of [b1, b2])
    assert.equal((await m.ok('GET', '/v1/getinfo')).treasury_id, p.id, 'treasury_id unchanged on every member');

  // Payments resume on the same channel through the new primary's REST API, once the peer follows it.
  let firstAfter = 0;
  await waitUntil(
    async () => {
      const r = await payOnce(b1, ch);
      if (r === null) unknown += STEP;
      if (r !== true) return false;
      acked += STEP;
      firstAfter = Date.now();
      return true;
    },
    30_000,
    'a payment through the new primary',
  );
  console.log(`committee.promotion.e2e: payments flowed again ${firstAfter - killedAt} ms after the kill`);
  for (let i = 0; i < 20; i++) assert.equal(await payOnce(b1, ch), true, 'payment through the new primary');
  acked += 20 * STEP;
  const back = await q.api('POST', '/v1/payments', { channel_id: ch, amount_sat: 1_000 });
  assert.equal(back.body.status, 'succeeded', JSON.stringify(back.body));

  // The old primary comes back: it learns the view from the members and rejoins as a backup.
  await p.launch(PROMOTION);
  await waitUntil(
    async () => {
      const c = (await p.ok('GET', '/v1/committee')) as { epoch: number; role: string };
      return c.epoch === 1 && c.role === 'backup';
    },
    30_000,
    'the old primary rejoins as a backup',
  );
  const refused = await p.api('POST', '/v1/payments', { channel_id: ch, amount_sat: STEP });
  assert.equal(refused.status, 409);
  assert.equal(refused.body.error.code, 'not_primary');
  for (let i = 0; i < 5; i++) assert.equal(await payOnce(b1, ch), true);
  acked += 5 * STEP;
  const sentNow = (await b1.ok('GET', `/v1/channels/${ch}`)).total_sent_sat;
  await waitUntil(
    async () => (await p.ok('GET', `/v1/channels/${ch}`)).total_sent_sat === sentNow,
    30_000,
    'the old primary catches up',
  );

  // Both sides count every acknowledged payment once; unknown answers may or may not have gone through.
  const mine = await b1.ok('GET', `/v1/channels/${ch}`);
  const theirs = await q.ok('GET', `/v1/channels/${ch}`);
  const paid = Number(theirs.total_received_sat);
  assert.equal(mine.total_sent_sat, theirs.total_received_sat, 'both sides agree on what the committee paid');
  assert.equal(mine.total_received_sat, '1000');
  assert.ok(paid >= acked, `the peer got ${paid}, at least the ${acked} acknowledged (${ackedByOld} before the kill)`);
  assert.ok(paid <= acked + unknown, `the peer got ${paid}, at most ${acked} acknowledged + ${unknown} unknown`);
  assert.equal(paid % STEP, 0);

  // A settlement by the new view pays exactly those balances.
  const s = await b1.ok('POST', `/v1/channels/${ch}/settle`);
  await chain.mine(1);
  const raw = await chain.rpc.call<{ hex: string; confirmations: number }>('getrawtransaction', [s.txid, true]);
  assert.ok(raw.confirmations >= 1);
  const outs = new Map<string, bigint>();
  for (const o of Transaction.fromHex(raw.hex).outs)
    outs.set(baddress.fromOutputScript(o.script, networks.regtest), BigInt(o.value));
  assert.equal(outs.get(payoutQ), BigInt(500_000 + paid - 1_000), 'the peer gets exactly its balance');
  assert.equal(outs.get(payoutA), BigInt(1_000_000 - paid + 1_000) - BigInt(s.fee_sat), 'the committee gets its own');
  for (const n of [p, b1, b2, q]) await n.kill('SIGTERM');
});
