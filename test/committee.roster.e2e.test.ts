/**
 * Members removed end to end (docs/protocol/committees.md, "Roster change"): a 2-of-4 committee of real
 * node processes on the embedded regtest chain. A backup is killed with SIGKILL and removed through the
 * primary's REST API; the three left are in epoch 1, a new deposit is 2-of-3 over their keys, and a
 * deposit made before the removal (2-of-4, the removed member's key simply missing) is released by the
 * members left, accepted by the chain. Refusals (below m + 1 members, a non-member) change nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { OpenApiChecker } from './helpers/openapi.ts';
import { fundDeposit, startCommittee, startE2eFile, waitUntil, type TestChain } from './helpers/network.ts';

let chain: TestChain;
let dir: string;
let key: string;

before(async () => ({ chain, dir, key } = await startE2eFile()));
after(() => chain?.close());

test('kill -9 of a backup, removed by the primary: the three left sign alone, old deposits stay spendable', async () => {
  const [p, b1, b2, b3] = await startCommittee(dir, chain, key, 'roster-a', 60_000, [], { size: 4, threshold: 2 });
  const old = await fundDeposit(p!, 200_000);
  const statusOn = async (n: typeof p, id: string) =>
    (await n!.ok('GET', '/v1/deposits')).deposits.find((d: { deposit_id: string }) => d.deposit_id === id)?.status;
  await waitUntil(
    async () => (await statusOn(b1, old)) === 'free' && (await statusOn(b2, old)) === 'free',
    30_000,
    'the backups hold the free deposit',
  );
  const b3Id = (await b3!.ok('GET', '/v1/getinfo')).node_id as string;
  await b3!.kill('SIGKILL');
  await waitUntil(
    async () => {
      const c = (await p!.api('GET', '/v1/committee')).body;
      return c.members.some((m: { node_id: string; connected: boolean }) => m.node_id === b3Id && !m.connected);
    },
    30_000,
    'the primary sees the backup gone',
  );

  const removed = await p!.api('DELETE', `/v1/committee/members/${b3Id}`);
  assert.equal(removed.status, 200, JSON.stringify(removed.body));
  // The success answer is as the OpenAPI document the node serves says (api.test sees only lone treasuries).
  const checker = new OpenApiChecker(await p!.ok('GET', '/v1/openapi.json'));
  const exchange = {
    method: 'DELETE',
    path: `/v1/committee/members/${b3Id}`,
    body: undefined,
    authorized: true,
    status: removed.status,
    contentType: 'application/json',
    text: JSON.stringify(removed.body),
  };
  assert.deepEqual(checker.responseProblems(exchange), [], 'the removal answer is as documented');
  assert.equal(removed.body.epoch, 1);
  assert.equal(removed.body.members.length, 3);
  assert.ok(!removed.body.members.includes(b3Id));
  for (const b of [b1!, b2!])
    await waitUntil(
      async () => {
        const c = (await b.api('GET', '/v1/committee')).body;
        return c.epoch === 1 && c.size === 3;
      },
      30_000,
      'a backup in the new view',
    );

  // A new deposit is m-of-n over the current members' keys.
  const fresh = await fundDeposit(p!, 100_000);
  const { deposits } = await p!.ok('GET', '/v1/deposits');
  const view = deposits.find((d: { deposit_id: string }) => d.deposit_id === fresh);
  assert.equal(view.m, 2);
  assert.equal(view.pubkeys.length, 3);

  for (const b of [b1, b2])
    await waitUntil(async () => (await statusOn(b, fresh)) === 'free', 30_000, 'the new deposit replicated');
  // The deposit of the old roster is released by two members that hold its keys (here a backup asks, as
  // members do on their own); the chain accepts it.
  const released = await b1!.api('POST', `/v1/deposits/${old}/release`, {});
  assert.equal(released.status, 200, JSON.stringify(released.body));
  const tx = await chain.rpc.call<{ txid: string }>('getrawtransaction', [released.body.txid, true]);
  assert.equal(tx.txid, released.body.txid);

  // Refusals: below m + 1 members, and a non-member; nothing changes.
  const tooFew = await p!.api('DELETE', `/v1/committee/members/${(await b2!.ok('GET', '/v1/getinfo')).node_id}`);
  assert.equal(tooFew.status, 409);
  assert.equal(tooFew.body.error.code, 'roster_too_small');
  const stranger = await p!.api('DELETE', `/v1/committee/members/02${'11'.repeat(32)}`);
  assert.equal(stranger.status, 404);
  const c = (await p!.api('GET', '/v1/committee')).body;
  assert.equal(c.epoch, 1);
  assert.equal(c.size, 3);
});
