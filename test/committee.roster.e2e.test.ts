/**
 * Members removed end to end (docs/protocol/committees.md, "Roster change"): a 2-of-4 committee of real
 * node processes on the embedded regtest chain. A backup is killed with SIGKILL and removed through the
 * primary's REST API; the three left are in epoch 1, a new deposit is 2-of-3 over their keys, and a
 * deposit made before the removal (2-of-4, the removed member's key simply missing) is released by the
 * members left, accepted by the chain. Refusals (below m + 1 members, a non-member) change nothing.
 * Then the dead member is replaced: a fresh node started with --backup-of the primary (no join token) is
 * added through POST /v1/committee/members; it attests, is voted in, catches up and acknowledges payments
 * on a channel opened before; a new deposit is 2-of-4 over the new roster, and the newcomer releasing it
 * (its own signature among the two) is accepted by the chain. Adding a node of other code, a member, an
 * address that does not answer or a malformed one is refused and changes nothing; the CLI says so in one line;
 * so is an addition no quorum can vote for (both backups killed: `roster_change_refused`), after which the
 * next one succeeds, and one on a committee not formed yet (`committee_incomplete`). Every member's getinfo
 * shows the committee's payout address, which a backup's release pays. A key the lone peer handed over
 * before the addition is re-split for the new roster: the primary and the newcomer alone (both old backups
 * killed) settle the peer's channel and the chain takes the spend of the peer's deposit.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { script } from 'bitcoinjs-lib';
import { cliRun } from './helpers/launcher.ts';
import { OpenApiChecker } from './helpers/openapi.ts';
import { tcpTreasury } from './helpers/tcp-treasury.ts';
import {
  fundDeposit,
  joinTokenEnv,
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

/** The committee the first test leaves (2-of-3 in epoch 1, b3 removed), which the second one replaces b3 in. */
let left: { p: NodeProcess; b1: NodeProcess; b2: NodeProcess; fresh: string } | undefined;

test('kill -9 of a backup, removed by the primary: the three left sign alone, old deposits stay spendable', async () => {
  const [p, b1, b2, b3] = await startCommittee(dir, chain, key, 'roster-a', 60_000, [], { size: 4, threshold: 2 });
  // Every member shows the committee's identity and the payout address its settlements and releases pay
  // (the primary's, replicated), not the address its own host was started with.
  const infos = await Promise.all([p!, b1!, b2!, b3!].map((x) => x.ok('GET', '/v1/getinfo')));
  for (const i of infos) {
    assert.equal(i.treasury_id, p!.id);
    assert.equal(i.payout_address, infos[0].payout_address, `${i.node_id}: the committee's payout address`);
  }
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
  const tx = await chain.rpc.call<{ txid: string; vout: Array<{ scriptPubKey: { address?: string } }> }>(
    'getrawtransaction',
    [released.body.txid, true],
  );
  assert.equal(tx.txid, released.body.txid);
  // It pays the address the releasing backup's getinfo shows.
  const b1Payout = (await b1!.ok('GET', '/v1/getinfo')).payout_address;
  assert.deepEqual(
    tx.vout.map((o) => o.scriptPubKey.address),
    [b1Payout],
  );

  // Refusals: below m + 1 members, and a non-member; nothing changes.
  const tooFew = await p!.api('DELETE', `/v1/committee/members/${(await b2!.ok('GET', '/v1/getinfo')).node_id}`);
  assert.equal(tooFew.status, 409);
  assert.equal(tooFew.body.error.code, 'roster_too_small');
  const stranger = await p!.api('DELETE', `/v1/committee/members/02${'11'.repeat(32)}`);
  assert.equal(stranger.status, 404);
  const c = (await p!.api('GET', '/v1/committee')).body;
  assert.equal(c.epoch, 1);
  assert.equal(c.size, 3);
  left = { p: p!, b1: b1!, b2: b2!, fresh };
});

/**
 * A node of other code: an enclave core in this process behind a real TCP listener, whose quotes carry
 * another measurement (it accepts ours, as an attacker's node would). The primary's dial must refuse it.
 */
async function otherCodeNode(acceptMeasurement: string) {
  const node = await tcpTreasury({
    key,
    accepts: acceptMeasurement,
    measurement: 'cd'.repeat(32),
    replyTimeoutMs: 5_000,
  });
  return { address: node.address, stop: node.stop };
}

test('replace a dead member: a fresh node added on the primary catches up, signs a 2-of-4 spend the chain accepts, payments go on', async () => {
  assert.ok(left, 'the removal test left a committee');
  const { p, b1, b2, fresh } = left;
  const pId = p.id;
  // A lone channel peer, with a channel on the deposit made after the removal: payments before and after.
  // Started with the newcomer (a node started as a backup of the primary, without a join token), which
  // stays outside the committee until it is added below.
  const [q, n] = await Promise.all([
    NodeProcess.start(join(dir, 'roster-q'), chain, key),
    NodeProcess.start(join(dir, 'roster-new'), chain, key, ['--backup-of', p.ready.p2p]),
  ]);
  const ch = await openChannel(p, q, [fresh], []);
  // And one q opens and alone funds: its deposit key is handed over, held by the committee as shares only.
  const chQ = await openChannel(q, p, [await fundDeposit(q, 80_000)], []);
  const paidByQ = await q.api('POST', '/v1/payments', { channel_id: chQ, amount_sat: 5_000 });
  assert.equal(paidByQ.body.status, 'succeeded', JSON.stringify(paidByQ.body)); // the settler's side pays the fee
  const pay = async (amount: number) => {
    const r = await p.api('POST', '/v1/payments', { channel_id: ch, amount_sat: amount });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.status, 'succeeded');
  };
  await pay(1_000);

  // The newcomer, started as a backup of the primary without a join token: the formed committee refuses it.
  const committeeOf = async (x: NodeProcess) => (await x.api('GET', '/v1/committee')).body;
  assert.equal((await committeeOf(n)).size, 0, 'not a member yet');

  // Refusals first, each changing nothing: a node of other code, a member, nobody listening, no port, a backup asked.
  const other = await otherCodeNode(p.ready.measurement);
  const refusals: Array<[NodeProcess, string, number, string]> = [
    [p, other.address, 403, 'wrong_measurement'],
    [p, b1.ready.p2p, 409, 'already_a_member'],
    [p, '127.0.0.1:1', 502, 'peer_unreachable'],
    [p, 'no-port', 400, 'invalid_argument'],
    [b1, n.ready.p2p, 409, 'not_primary'],
  ];
  for (const [to, address, status, code] of refusals) {
    const r = await to.api('POST', '/v1/committee/members', { address });
    assert.equal(r.status, status, `${address}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, code);
  }
  await other.stop();
  const before = await committeeOf(p);
  assert.equal(before.epoch, 1);
  assert.equal(before.size, 3);

  // With both backups killed no quorum can vote (p alone, 2 needed): refused once the wait is over, nothing
  // changed, and a vote that arrives later adopts nothing (the proposal is withdrawn).
  await Promise.all([b1.kill('SIGKILL'), b2.kill('SIGKILL')]);
  await waitUntil(
    async () => (await committeeOf(p)).members.filter((m: { connected: boolean }) => m.connected).length === 1,
    30_000,
    'the primary sees both backups gone',
  );
  const noQuorum = await p.api('POST', '/v1/committee/members', { address: n.ready.p2p });
  assert.equal(noQuorum.status, 409, JSON.stringify(noQuorum.body));
  assert.equal(noQuorum.body.error.code, 'roster_change_refused');
  await Promise.all([b1.launch(), b2.launch()]);
  await waitUntil(
    async () => {
      const c = await committeeOf(p);
      return c.members.every((m: { connected: boolean }) => m.connected) && c.acked_seq === c.seq;
    },
    60_000,
    'the backups back and caught up',
  );
  for (const x of [p, b1, b2]) {
    const c = await committeeOf(x);
    assert.equal(c.epoch, 1, 'the refused view was not adopted');
    assert.deepEqual(
      c.members.map((m: { node_id: string }) => m.node_id),
      [pId, b1.id, b2.id],
    );
  }
  assert.equal((await committeeOf(n)).size, 0, 'still not a member');
  // The CLI: one line, no stack trace, exit code 1.
  const cliDir = join(dir, 'roster-cli');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(cliDir, { recursive: true });
  const tokenFile = join(cliDir, 'p.token');
  await writeFile(tokenFile, p.token, { mode: 0o600 });
  const entry = { name: 'p', nodeId: pId, restUrl: p.ready.rest_url, tokenFile, p2p: p.ready.p2p };
  await writeFile(
    join(cliDir, 'network.json'),
    JSON.stringify({ chain: { rpcUrl: chain.rpcUrl, rpcUser: 'x', rpcPassword: 'x' }, nodes: [entry] }),
    { mode: 0o600 },
  );
  for (const [args, line] of [
    [['committee', 'add', b1.ready.p2p], /^teechain: already_a_member: /],
    [['committee', 'add'], /^teechain: usage: teechain committee add HOST:PORT/],
  ] as const) {
    const failed = await cliRun(cliDir, ...args).then(
      () => assert.fail('the CLI succeeded'),
      (e: { code: number; stderr: string; stdout: string }) => e,
    );
    assert.notEqual(failed.code, 0);
    assert.match(failed.stderr.trim().split('\n')[0]!, line);
    assert.doesNotMatch(failed.stderr, /\n\s+at /, 'no stack trace');
  }

  // Added on the primary: answered once the new view is adopted and the newcomer holds its snapshot.
  const added = await p.api('POST', '/v1/committee/members', { address: n.ready.p2p });
  assert.equal(added.status, 200, JSON.stringify(added.body));
  const checker = new OpenApiChecker(await p.ok('GET', '/v1/openapi.json'));
  const exchange = {
    method: 'POST',
    path: '/v1/committee/members',
    body: { address: n.ready.p2p },
    authorized: true,
    status: added.status,
    contentType: 'application/json',
    text: JSON.stringify(added.body),
  };
  assert.deepEqual(checker.responseProblems(exchange), [], 'the addition answer is as documented');
  // Epoch 3: the refused proposal spent epoch 2 (the primary sealed its vote for it).
  assert.equal(added.body.epoch, 3);
  assert.deepEqual(added.body.members, [pId, b1.id, b2.id, n.id]);
  for (const x of [b1, b2, n])
    await waitUntil(
      async () => {
        const c = await committeeOf(x);
        return c.epoch === 3 && c.size === 4;
      },
      30_000,
      'every member in the new view',
    );
  const nc = await committeeOf(n);
  assert.equal(nc.role, 'backup');
  assert.equal(nc.index, 3);
  assert.equal(nc.chain, 4, 'the newcomer replicates and acknowledges');
  // Caught up: it holds the channel and the deposit made before it joined.
  const chOn = async (x: NodeProcess) =>
    (await x.ok('GET', '/v1/channels')).channels.find((c: { channel_id: string }) => c.channel_id === ch);
  assert.equal((await chOn(n))?.total_sent_sat, '1000');
  const nInfo = await n.ok('GET', '/v1/getinfo');
  assert.equal(nInfo.treasury_id, pId);
  assert.equal(nInfo.payout_address, (await p.ok('GET', '/v1/getinfo')).payout_address, "the committee's address");

  // Payments keep flowing, each acknowledged by every member of the chain, the newcomer included.
  await pay(2_000);
  await pay(500);
  await waitUntil(async () => (await chOn(n))?.total_sent_sat === '3500', 30_000, 'the newcomer holds the payments');

  // A new deposit is 2-of-4 over the new roster; the newcomer releases it, so its signature is one of the two.
  const dep = await fundDeposit(p, 60_000);
  const view = (await p.ok('GET', '/v1/deposits')).deposits.find((d: { deposit_id: string }) => d.deposit_id === dep);
  assert.equal(view.m, 2);
  assert.equal(view.pubkeys.length, 4);
  const statusOn = async (x: NodeProcess) =>
    (await x.ok('GET', '/v1/deposits')).deposits.find((d: { deposit_id: string }) => d.deposit_id === dep)?.status;
  await waitUntil(async () => (await statusOn(n)) === 'free', 30_000, 'the newcomer holds the new deposit');
  const released = await n.api('POST', `/v1/deposits/${dep}/release`, {});
  assert.equal(released.status, 200, JSON.stringify(released.body));
  const tx = await chain.rpc.call<{ vin: Array<{ txinwitness: string[] }> }>('getrawtransaction', [
    released.body.txid,
    true,
  ]);
  // On chain: the spent P2WSH is OP_2 <the four keys> OP_4 OP_CHECKMULTISIG, with two signatures.
  const witness = tx.vin[0]!.txinwitness;
  const ops = script.toASM(Buffer.from(witness.at(-1)!, 'hex')).split(' ');
  assert.deepEqual(ops, ['OP_2', ...[...view.pubkeys].sort(), 'OP_4', 'OP_CHECKMULTISIG'], 'BIP 67 order');
  assert.equal(witness.filter((w) => w.length > 0).length - 1, 2, 'two signatures');

  // q's key, handed over before the newcomer joined, was re-split for the new roster: with both old
  // backups killed, the primary and the newcomer alone settle q's channel, and the chain takes the spend
  // of q's deposit (signed with the key rebuilt from their two shares). Settle is retried while a member's
  // share is missing (503 committee_unavailable): it signs the same transaction.
  await Promise.all([b1.kill('SIGKILL'), b2.kill('SIGKILL')]);
  await waitUntil(
    async () => (await committeeOf(p)).members.filter((m: { connected: boolean }) => m.connected).length === 2,
    30_000,
    'the primary sees only the newcomer',
  );
  let settled: { status: number; body: { txid?: string } } = { status: 0, body: {} };
  await waitUntil(
    async () => {
      settled = await p.api('POST', `/v1/channels/${chQ}/settle`);
      if (settled.status !== 200 && settled.status !== 503) assert.fail(JSON.stringify(settled.body));
      return settled.status === 200;
    },
    30_000,
    'the primary and the newcomer settle',
  );
  const spend = await chain.rpc.call<{ txid: string }>('getrawtransaction', [settled.body.txid, true]);
  assert.equal(spend.txid, settled.body.txid, 'the chain accepted the settlement');
  await q.kill('SIGTERM');
});

test('adding to a committee that is not formed is refused, nothing changes, and its last join token still forms it', async () => {
  const p = await NodeProcess.start(join(dir, 'incomplete0'), chain, key, ['--committee', '3']);
  // One backup with a join token, and a node started to follow p without one (started together): the
  // operator tries to add the second before the committee formed.
  const [b1, n] = await Promise.all([
    NodeProcess.start(join(dir, 'incomplete1'), chain, key, ['--backup-of', p.ready.p2p], {
      ...(await joinTokenEnv(p, 0)),
    }),
    NodeProcess.start(join(dir, 'incomplete-new'), chain, key, ['--backup-of', p.ready.p2p]),
  ]);
  const committeeOf = async (x: NodeProcess) => (await x.api('GET', '/v1/committee')).body;
  await waitUntil(async () => (await committeeOf(p)).members.length === 2, 30_000, 'one backup joined');
  const before = await committeeOf(p);
  assert.equal(before.formed, false);
  const r = await p.api('POST', '/v1/committee/members', { address: n.ready.p2p });
  assert.equal(r.status, 409, JSON.stringify(r.body));
  assert.equal(r.body.error.code, 'committee_incomplete');
  const after = await committeeOf(p);
  for (const k of ['formed', 'size', 'epoch', 'threshold'] as const) assert.equal(after[k], before[k], k);
  assert.deepEqual(
    after.members.map((m: { node_id: string }) => m.node_id),
    [p.id, b1.id],
  );
  assert.equal((await committeeOf(n)).size, 0, 'not a member');
  // The committee forms as it would have, with the unused join token.
  const b2 = await NodeProcess.start(join(dir, 'incomplete2'), chain, key, ['--backup-of', p.ready.p2p], {
    ...(await joinTokenEnv(p, 1)),
  });
  await waitUntil(async () => (await committeeOf(p)).formed, 30_000, 'the committee formed');
  assert.deepEqual(
    (await committeeOf(p)).members.map((m: { node_id: string }) => m.node_id),
    [p.id, b1.id, b2.id],
  );
  await Promise.all([p, b1, b2, n].map((x) => x.kill('SIGTERM')));
});
