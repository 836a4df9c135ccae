// run-tests lane: light
/**
 * Reordered frames between two real node processes: a proxy on the TCP path between them (the host or
 * the network) swaps two authenticated frames. The receiver refuses them (the session closes with a
 * stable reason), credits neither payment, and once the session is back the payments are credited once,
 * in order, and a later payment succeeds with every balance exact.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fundDeposit, NodeProcess, waitUntil, type TestChain, startE2eFile } from './helpers/network.ts';
import { startTamperingProxy } from './helpers/proxy.ts';

let chain: TestChain;
let dir: string;
let key: string;

before(async () => ({ chain, dir, key } = await startE2eFile('teechain-reorder-')));
after(() => chain?.close());

type Channel = {
  local_balance_sat: string;
  remote_balance_sat: string;
  total_sent_sat: string;
  total_received_sat: string;
  total_acked_sat: string;
};
type Payment = { direction: 'incoming' | 'outgoing'; channel_id: string; amount_sat: number; status: string };

test(
  'two authenticated frames swapped on the wire: refused, nothing credited, credited once after reconnecting',
  { timeout: 180_000 },
  async () => {
    const logFile = join(dir, 'b.log');
    const [a, b] = await Promise.all([
      NodeProcess.start(join(dir, 'a'), chain, key),
      NodeProcess.start(join(dir, 'b'), chain, key, ['--log-file', logFile]),
    ]);
    const proxy = await startTamperingProxy(b.ready.p2p);
    try {
      const [da, db] = await Promise.all([fundDeposit(a, 400_000), fundDeposit(b, 300_000)]);
      await a.ok('POST', '/v1/peers', { address: proxy.address });
      const ch = (await a.ok('POST', '/v1/channels', { peer_id: b.id, deposit_ids: [da] })).channel_id as string;
      await waitUntil(
        async () => (await b.api('GET', `/v1/channels/${ch}`)).status === 200,
        15_000,
        'b knows the channel',
      );
      await b.ok('POST', `/v1/channels/${ch}/deposits`, { deposit_id: db });
      const chanOf = async (n: NodeProcess) => await n.ok<Channel>('GET', `/v1/channels/${ch}`);
      await waitUntil(async () => (await chanOf(a)).remote_balance_sat === '300000', 15_000, "a sees b's deposit");
      const first = await a.ok<{ status: string }>('POST', '/v1/payments', { channel_id: ch, amount_sat: 1_000 });
      assert.equal(first.status, 'succeeded');
      assert.equal((await chanOf(b)).total_received_sat, '1000');

      // The next a → b frame is held back and sent after the one that follows it; a's redial after b
      // drops the session is refused until the refusal has been checked.
      const swapped = proxy.swapNext('toTarget');
      proxy.refuseNew();
      // Answers are kept as values: an assertion failing meanwhile must not be masked by their rejection.
      const settled = (p: Promise<{ status: string }>) =>
        p.then(
          (r) => r,
          (e: unknown) => e as Error,
        );
      const p2 = settled(a.ok('POST', '/v1/payments', { channel_id: ch, amount_sat: 2_000 }));
      await waitUntil(() => proxy.holding('toTarget'), 15_000, "the 2 000 sat payment's frame held back");
      const p3 = settled(a.ok('POST', '/v1/payments', { channel_id: ch, amount_sat: 3_000 }));
      await swapped;
      await waitUntil(async () => (await b.ok('GET', '/v1/peers')).peers.length === 0, 15_000, 'b drops the session');
      await waitUntil(
        async () => (await readFile(logFile, 'utf8')).includes('"msg":"peer disconnected"'),
        15_000,
        'b logs the disconnection',
      );
      const disconnects = (await readFile(logFile, 'utf8'))
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { msg: string; reason?: string })
        .filter((l) => l.msg === 'peer disconnected');
      assert.equal(disconnects.length, 1, JSON.stringify(disconnects));
      assert.match(disconnects[0]!.reason ?? '', /reordered/, 'b names the refusal: reordered frames');
      // Neither swapped frame was credited: not the later one first, nor the earlier one after it.
      const refused = await chanOf(b);
      assert.equal(refused.total_received_sat, '1000', 'nothing of the swapped frames credited');
      assert.equal(refused.local_balance_sat, '301000');
      assert.equal((await chanOf(a)).total_acked_sat, '1000', 'a holds no acknowledgement for the swapped payments');

      // The session comes back: both payments are credited exactly once, and a later one succeeds.
      proxy.refuseNew(false);
      await waitUntil(async () => (await b.ok('GET', '/v1/peers')).peers.length === 1, 30_000, 'a reconnects');
      await waitUntil(
        async () => BigInt((await chanOf(b)).total_received_sat) >= 6_000n,
        30_000,
        'the swapped payments credited after the resync',
      );
      assert.equal((await chanOf(b)).total_received_sat, '6000', 'the swapped payments credited exactly once');
      await waitUntil(
        async () => (await chanOf(a)).total_acked_sat === '6000',
        30_000,
        'the swapped payments acknowledged after the resync',
      );
      // Both answered 201: succeeded, or in_flight if the session was down for their 10 s.
      for (const r of await Promise.all([p2, p3]))
        assert.ok(!(r instanceof Error) && ['succeeded', 'in_flight'].includes(r.status), String(r));
      const later = await a.ok<{ status: string }>('POST', '/v1/payments', { channel_id: ch, amount_sat: 4_000 });
      assert.equal(later.status, 'succeeded');

      const [ca, cb] = [await chanOf(a), await chanOf(b)];
      assert.deepEqual(
        [ca.local_balance_sat, ca.remote_balance_sat, ca.total_sent_sat, ca.total_acked_sat],
        ['390000', '310000', '10000', '10000'],
      );
      assert.deepEqual(
        [cb.local_balance_sat, cb.remote_balance_sat, cb.total_received_sat],
        ['310000', '390000', '10000'],
      );
      // b's incoming history: the 1 000, then the 5 000 of the two swapped payments (credited once, as
      // their total after the resync or one by one), then the 4 000; nothing twice, nothing out of order.
      const incoming = (await b.ok<{ payments: Payment[] }>('GET', '/v1/payments?limit=1000')).payments
        .filter((p) => p.direction === 'incoming' && p.channel_id === ch)
        .reverse()
        .map((p) => p.amount_sat);
      assert.equal(incoming[0], 1_000, JSON.stringify(incoming));
      assert.equal(incoming.at(-1), 4_000, JSON.stringify(incoming));
      assert.equal(
        incoming.slice(1, -1).reduce((s, x) => s + x, 0),
        5_000,
        JSON.stringify(incoming),
      );
      assert.ok(
        incoming.slice(1, -1).every((x) => x > 0),
        JSON.stringify(incoming),
      );
      const outgoing = (await a.ok<{ payments: Payment[] }>('GET', '/v1/payments?limit=1000')).payments.filter(
        (p) => p.direction === 'outgoing',
      );
      assert.deepEqual(outgoing.map((p) => [p.amount_sat, p.status]).reverse(), [
        [1_000, 'succeeded'],
        [2_000, 'succeeded'],
        [3_000, 'succeeded'],
        [4_000, 'succeeded'],
      ]);
    } finally {
      await proxy.close();
      await a.kill('SIGTERM');
      await b.kill('SIGTERM');
    }
  },
);
