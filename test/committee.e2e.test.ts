/**
 * Committee chains end to end: 2-of-3 committees of real node processes (each member its own enclave,
 * sealed state, TCP sessions) on both sides of a channel, the embedded regtest chain, kill -9.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { minedTwoOfThreeOutputs } from './helpers/mined.ts';
import { join } from 'node:path';

import {
  fundDeposit,
  joinTokenEnv,
  NodeProcess,
  openChannel,
  startCommittee,
  waitUntil,
  type TestChain,
  startE2eFile,
} from './helpers/network.ts';
import { readJoinTokens } from '../src/node/secret-file.ts';
import { openUpdate, replicaOf, signUpdate, type SignedUpdate } from '../src/enclave/committee/update.ts';
import type { CommitteeMessage, SessionMessage } from '../src/enclave/protocol/messages.ts';
import { prng as rng, testSeed } from './helpers/seeded.ts';
import { tcpTreasury } from './helpers/tcp-treasury.ts';

let chain: TestChain;
let dir: string;
let key: string;

before(async () => ({ chain, dir, key } = await startE2eFile()));
after(() => chain?.close());

/** A 2-of-3 committee of processes, formed and connected (startCommittee). */
function committee(name: string): Promise<NodeProcess[]> {
  return startCommittee(dir, chain, key, name, 20_000);
}

async function channelPair(name: string) {
  const [a, b] = await Promise.all([committee(`${name}-a`), committee(`${name}-b`)]);
  const [da, db] = await Promise.all([fundDeposit(a[0]!, 1_000_000), fundDeposit(b[0]!, 500_000)]);
  const ch = await openChannel(a[0]!, b[0]!, [da], [db]);
  return { a, b, ch };
}

/**
 * The pair the restart test and the primary-kill test share, in that order: the first leaves every member
 * up and the balances as funded, the second kills and settles. One set-up of six processes instead of two.
 */
let shared: ReturnType<typeof channelPair> | undefined;
const sharedPair = () => (shared ??= channelPair('shared'));

/** The settlement's outputs by address, once mined (every input 2 of 3 signatures). */
const minedOutputs = (txid: string) => minedTwoOfThreeOutputs(chain, txid);

async function payMany(from: NodeProcess, ch: string, n: number, amount: number): Promise<void> {
  const r = await from.api('POST', '/v1/payments/batch', {
    payments: Array.from({ length: n }, () => ({ channel_id: ch, amount_sat: amount })),
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body.succeeded, n, JSON.stringify(r.body).slice(0, 300));
}

/**
 * A committee member whose enclave the attacker controls: a Treasury in this process (attested with the
 * test's attestation key, on a platform of its own) behind a real TCP transport, joined as the tail of
 * a real primary's chain with one of its join tokens. It replicates honestly; the test makes it send
 * what it likes to its predecessor over their real, authenticated session.
 */
async function compromisedTail(p: NodeProcess, token: string) {
  const updates: SignedUpdate[] = [];
  const received: CommitteeMessage[] = [];
  const peers = new Map<string, string>(); // node id → conn
  const { treasury, transport, address, stop } = await tcpTreasury({
    key,
    accepts: p.ready.measurement,
    replyTimeoutMs: 20_000,
    onEvent: (e, transport) => {
      if (e.type === 'peer_connected') peers.set(e.peer_id, e.conn);
      // As a node's host does: dial the members before it in the chain.
      if (e.type === 'committee_roster') {
        for (const m of e.members.slice(1, e.index)) {
          if (!peers.has(m.node_id)) {
            const [h, port] = m.address.split(':') as [string, string];
            void transport.dial(h, Number(port));
          }
        }
      }
    },
  });
  // Every committee message its enclave takes in, as the attacker sees it (the updates it will replay).
  const t = treasury as unknown as {
    apply(peerId: string, msg: SessionMessage): Promise<void>;
    sendNow(peerId: string, msg: SessionMessage): void;
  };
  const apply = t.apply.bind(treasury);
  t.apply = (peerId, msg) => {
    if (msg.t === 'c_update') updates.push(structuredClone(msg.update));
    if (msg.t.startsWith('c_')) received.push(msg as CommitteeMessage);
    return apply(peerId, msg);
  };
  const [host, port] = p.ready.p2p.split(':') as [string, string];
  await transport.dial(host, Number(port));
  await waitUntil(() => peers.has(p.id), 15_000, "the compromised member's session with the primary");
  treasury.joinCommittee(p.id, address, token);
  return {
    treasury,
    updates,
    received,
    /** Sends `msg` to `peerId` over the real session, as this member's enclave. */
    send: (peerId: string, msg: CommitteeMessage) => t.sendNow(peerId, msg),
    stop,
  };
}

describe('committee chains end to end', () => {
  test('a backup killed freezes payments; restarted, it catches up from its sealed state and payments resume', async () => {
    const { a, b, ch } = await sharedPair();
    await payMany(a[0]!, ch, 50, 10);
    await a[2]!.kill('SIGKILL');
    await waitUntil(
      async () => (await a[0]!.ok('GET', '/v1/committee')).members[2].connected === false,
      10_000,
      'primary sees the tail down',
    );
    const frozen = await a[0]!.api('POST', '/v1/payments', { channel_id: ch, amount_sat: 10 });
    assert.equal(frozen.status, 503);
    assert.equal(frozen.body.error.code, 'committee_unavailable');
    // The peer keeps paying: a's primary credits it and issues updates that the middle member seals and the
    // dead tail misses; the peer's payments are not acknowledged until the tail has them (answered when they are).
    const incoming = [];
    for (const [amount, total] of [
      [700, '700'],
      [300, '1000'],
    ] as const) {
      incoming.push(b[0]!.api('POST', '/v1/payments', { channel_id: ch, amount_sat: amount }));
      await waitUntil(
        async () => (await a[1]!.ok('GET', `/v1/channels/${ch}`)).total_received_sat === total,
        15_000,
        `the middle member holds the credit of ${amount}`,
      );
    }
    const c = await a[0]!.ok('GET', '/v1/committee');
    assert.ok(
      c.acked_seq < c.seq,
      `the credits' updates are not acknowledged by the chain (acked ${c.acked_seq} < ${c.seq})`,
    );
    assert.equal(
      (await b[0]!.ok('GET', `/v1/channels/${ch}`)).total_acked_sat,
      '0',
      'the peer has no acknowledgement yet',
    );
    await a[2]!.launch();
    await waitUntil(
      async () => {
        const c = await a[0]!.ok('GET', '/v1/committee');
        return c.members.every((m: { connected: boolean }) => m.connected) && c.acked_seq === c.seq;
      },
      20_000,
      'the restarted tail rejoins and acknowledges the latest update',
    );
    await waitUntil(
      async () => (await b[0]!.ok('GET', `/v1/channels/${ch}`)).total_acked_sat === '1000',
      20_000,
      "the peer's payments are acknowledged once the tail caught up",
    );
    for (const answered of await Promise.all(incoming))
      assert.ok(answered.status === 201 || answered.status === 202, JSON.stringify(answered.body));
    await payMany(a[0]!, ch, 50, 10);
    const tail = await a[2]!.ok('GET', `/v1/channels/${ch}`);
    assert.equal(tail.total_sent_sat, '1000', 'the tail holds every acknowledged payment');
    assert.equal(tail.total_received_sat, '1000', 'the tail holds the credits it missed while down');
    // The committees stay up for the next test: a→b 1,000 and b→a 1,000, so both balances are as funded.
  });

  test('2-of-3 on both sides: deposits are 2-of-3, payments replicate, the primary is killed, two backups settle the last balances', async () => {
    // On the pair the test before left, every member up and both balances as funded.
    const { a, b, ch } = await sharedPair();
    assert.equal((await a[0]!.ok('GET', `/v1/channels/${ch}`)).local_balance_sat, '1000000');
    const metrics = await fetch(`${a[0]!.ready.rest_url}/metrics`, {
      headers: { authorization: `Bearer ${a[0]!.readonlyToken}` },
    }).then((r) => r.text());
    assert.match(metrics, /^teechain_committee_members_connected\{role="primary"\} 3$/m);
    // One identity on every member: the founding primary's node id, in view 0.
    for (const m of a) {
      assert.equal((await m.ok('GET', '/v1/getinfo')).treasury_id, a[0]!.id, 'treasury_id on every member');
      const view = await m.ok('GET', '/v1/committee');
      assert.deepEqual([view.treasury_id, view.epoch], [a[0]!.id, 0], 'committee view: identity and epoch');
    }
    const deps = (await a[0]!.ok('GET', '/v1/deposits')).deposits;
    assert.equal(deps[0].m, 2);
    assert.equal(deps[0].pubkeys.length, 3);
    await payMany(a[0]!, ch, 300, 100);
    await payMany(b[0]!, ch, 20, 1_000);
    const expectA = 1_000_000 - 30_000 + 20_000;
    const expectB = 500_000 + 30_000 - 20_000;
    // Backups hold the acknowledged state before the primary dies.
    const seen = await a[1]!.ok('GET', `/v1/channels/${ch}`);
    assert.equal(seen.local_balance_sat, String(expectA));
    const payoutA = (await a[0]!.ok('GET', '/v1/getinfo')).payout_address;
    const payoutB = (await b[0]!.ok('GET', '/v1/getinfo')).payout_address;
    await a[0]!.kill('SIGKILL');
    // A backup cannot pay, but it settles with the other backup's signatures and shares.
    const refused = await a[1]!.api('POST', '/v1/payments', { channel_id: ch, amount_sat: 5 });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'not_primary');
    const s = await a[1]!.ok('POST', `/v1/channels/${ch}/settle`);
    const outs = await minedOutputs(s.txid);
    assert.equal(outs.get(payoutB), BigInt(expectB), 'the peer gets exactly its last acknowledged balance');
    assert.equal(outs.get(payoutA), BigInt(expectA) - BigInt(s.fee_sat), 'we get ours less the fee');
    // The peer's committee learns of it from the chain.
    await waitUntil(
      async () => (await b[0]!.ok('GET', `/v1/channels/${ch}`)).status === 'closed',
      15_000,
      'peer sees the settlement',
    );
    for (const n of [...a.slice(1), ...b]) await n.kill('SIGTERM');
  });

  test('a compromised member sends its predecessor stale and forged updates over their real session: refused, state unchanged, the committee pays on', async () => {
    const seed = testSeed('committee.e2e forged updates');
    const rand = rng(seed);
    const amount = () => 100 + Math.floor(rand() * 900);
    const p = await NodeProcess.start(join(dir, 'forged0'), chain, key, ['--committee', '3']);
    const b1 = await NodeProcess.start(
      join(dir, 'forged1'),
      chain,
      key,
      ['--backup-of', p.ready.p2p],
      await joinTokenEnv(p, 0),
    );
    // b1 joins first, so that the compromised member, joining after it, is the tail: a backup joins in its
    // own time after it started (under load the second could otherwise overtake it).
    await waitUntil(
      async () => ((await p.api('GET', '/v1/committee')).body.members as unknown[]).length >= 2,
      30_000,
      'b1 joined',
    );
    const x = await compromisedTail(p, (await readJoinTokens(p.datadir))[1]!);
    const q = await NodeProcess.start(join(dir, 'forged-q'), chain, key);
    try {
      await waitUntil(
        async () => {
          const c = (await p.api('GET', '/v1/committee')).body;
          return c.formed && c.members.every((m: { connected: boolean }) => m.connected) && c.acked_seq === c.seq;
        },
        30_000,
        'committee with the compromised tail formed',
      );
      assert.equal(x.treasury.info().committee!.index, 2, 'the compromised member is the tail');
      const [dp, dq] = await Promise.all([fundDeposit(p, 200_000), fundDeposit(q, 100_000)]);
      const ch = await openChannel(p, q, [dp], [dq]);
      // What p has paid q and q has paid p so far.
      let pSent = 0;
      let qSent = 0;
      const payBothWays = async (rounds: number) => {
        for (let i = 0; i < rounds; i++) {
          const a = amount();
          pSent += a;
          await p.ok('POST', '/v1/payments', { channel_id: ch, amount_sat: a });
          const b = amount();
          qSent += b;
          await q.ok('POST', '/v1/payments', { channel_id: ch, amount_sat: b });
        }
      };
      await payBothWays(3);
      const quiet = async () => {
        const c = await p.ok('GET', '/v1/committee');
        const mine = await b1.ok('GET', `/v1/channels/${ch}`);
        return (
          c.acked_seq === c.seq &&
          (await b1.ok('GET', '/v1/committee')).seq === c.seq &&
          mine.total_sent_sat === String(pSent) &&
          mine.total_received_sat === String(qSent)
        );
      };
      await waitUntil(quiet, 20_000, 'every payment replicated to b1');
      const before = {
        committee: (await b1.ok('GET', '/v1/committee')).seq as number,
        channel: await b1.ok('GET', `/v1/channels/${ch}`),
      };
      const view = (c: Record<string, unknown>) => ({
        sent: c.total_sent_sat,
        received: c.total_received_sat,
        acked: c.total_acked_sat,
        status: c.status,
        local: c.local_balance_sat,
      });

      const latest = x.updates.at(-1)!;
      assert.equal(latest.seq, before.committee, 'the compromised member holds the latest update');
      const stale = x.updates.find(
        (u) =>
          u.seq < latest.seq &&
          openUpdate(u, p.id)!.channels[ch] !== undefined &&
          openUpdate(u, p.id)!.channels[ch]!.sent < BigInt(pSent),
      )!;
      assert.ok(stale, 'an older genuine update, with less sent, to replay');
      // The primary's genuine update with its body edited: q's received total raised, the signature kept.
      const body = JSON.parse(latest.body) as { seq: number; channels: Record<string, { received: string }> };
      body.seq = latest.seq + 1;
      body.channels[ch]!.received = `${BigInt(qSent) + 50_000n}n`;
      const edited: SignedUpdate = { seq: latest.seq + 1, body: JSON.stringify(body), sig: latest.sig };
      // The same state signed by the compromised member's own key.
      const selfSigned = signUpdate(replicaOf(x.treasury.state, latest.seq + 1), x.treasury.state.identityKey);
      const cases: Array<[string, SignedUpdate, string]> = [
        ['an older genuine update replayed', stale, 'stale_update'],
        ['the latest update with its body edited', edited, 'forged_update'],
        ['an update signed by another member', selfSigned, 'forged_update'],
      ];
      const b1Id = b1.id;
      for (const [what, update, code] of cases) {
        const seen = x.received.length;
        x.send(b1Id, { t: 'c_update', update });
        // b1's refusal comes back on the same session: a definite answer to this very update.
        await waitUntil(
          () => x.received.slice(seen).some((m) => m.t === 'c_refuse' && m.seq === update.seq),
          15_000,
          `b1 answers ${what}`,
        );
        const refusal = x.received.slice(seen).find((m) => m.t === 'c_refuse' && m.seq === update.seq) as Extract<
          CommitteeMessage,
          { t: 'c_refuse' }
        >;
        assert.equal(refusal.code, code, `${what}: refused as ${code}`);
        assert.equal(
          (await b1.ok('GET', '/v1/committee')).seq,
          before.committee,
          `${what}: b1's sequence number is unchanged`,
        );
        assert.deepEqual(
          view(await b1.ok('GET', `/v1/channels/${ch}`)),
          view(before.channel),
          `${what}: b1's channel is unchanged`,
        );
      }
      assert.ok(
        (await b1.ok('GET', '/v1/peers')).peers.some((peer: { peer_id?: string; node_id?: string } | string) =>
          JSON.stringify(peer).includes(x.treasury.nodeId),
        ),
        'the session survives',
      );

      // The committee keeps working: both ways, acknowledged, replicated to b1 and the compromised tail.
      await payBothWays(1);
      await waitUntil(quiet, 20_000, 'payments after the refusals replicated to b1');
      await waitUntil(
        async () => (await q.ok('GET', `/v1/channels/${ch}`)).total_acked_sat === String(qSent),
        20_000,
        "q's last payment acknowledged",
      );
      const tail = x.treasury.state.channels[ch]!;
      assert.deepEqual([tail.sent, tail.received], [BigInt(pSent), BigInt(qSent)], 'the tail holds the latest totals');
    } finally {
      for (const n of [p, b1, q]) await n.kill('SIGTERM');
      await x.stop();
    }
  });

  test('a random member killed mid-stream: no acknowledged payment is lost, nothing is paid twice', async () => {
    const { a, b, ch } = await channelPair('kill-random');
    const seed = testSeed('committee.e2e random kill');
    const rand = rng(seed);
    const victim = Math.floor(rand() * 3);
    const killAfter = 20 + Math.floor(rand() * 60);
    console.log(`committee.e2e random kill: TEST_SEED=${seed} (victim ${victim}, after ${killAfter} payments)`);
    let acked = 0;
    let attempted = 0;
    let killed = false;
    const worker = async () => {
      while (!killed || attempted < killAfter) {
        if (killed) break;
        attempted += 10;
        const r = await a[0]!.api('POST', '/v1/payments', { channel_id: ch, amount_sat: 10 }).catch(() => null);
        if (r?.status === 201 && r.body.status === 'succeeded') {
          acked += 10;
          if (acked / 10 >= killAfter && !killed) {
            killed = true;
            await a[victim]!.kill('SIGKILL');
          }
        }
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    const payoutB = (await b[0]!.ok('GET', '/v1/getinfo')).payout_address;
    const settler = victim === 0 ? a[1]! : a[0]!;
    const s = await settler.ok('POST', `/v1/channels/${ch}/settle`);
    const outs = await minedOutputs(s.txid);
    const toB = outs.get(payoutB)! - 500_000n;
    assert.ok(toB >= BigInt(acked), `peer got ${toB}, at least the ${acked} acknowledged (victim ${victim})`);
    assert.ok(toB <= BigInt(attempted), `peer got ${toB}, at most the ${attempted} attempted`);
    for (const n of [...a, ...b]) await n.kill('SIGTERM');
  });
});
