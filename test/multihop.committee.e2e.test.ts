/**
 * Multi-hop through committees end to end: alice → bob → carol where every treasury is a 2-of-3 committee
 * of real node processes (nine in all), the embedded regtest chain. Payments name the destination's
 * treasury id only and are routed through bob. Then, on the same network, bob's primary is killed with
 * SIGKILL in the middle of a stream of routed payments: a backup is promoted, every payment in flight ends
 * all old or all new, routed payments resume through the new primary, and every channel is settled on
 * chain at exactly the balances the acknowledged payments leave.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { minedTwoOfThreeOutputs } from './helpers/mined.ts';
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

const DEPOSIT = 200_000;

/** The settlement's outputs by address, once mined (every input 2 of 3 signatures). */
const minedOutputs = (txid: string) => minedTwoOfThreeOutputs(chain, txid);

const local = async (n: NodeProcess, ch: string) => BigInt((await n.ok('GET', `/v1/channels/${ch}`)).local_balance_sat);

/**
 * Pays `dest` from `n`; an answer still in flight after the API's 10 s (nine processes on a loaded machine,
 * each step replicated) is followed in the history until the payment is over.
 */
async function payTo(n: NodeProcess, dest: string, amount: number): Promise<{ status: string; route?: string[] }> {
  const r = await n.ok('POST', '/v1/payments', { dest, amount_sat: amount });
  if (r.status !== 'in_flight') return r;
  let done: { payment_id: string; status: string; route?: string[] } | undefined;
  await waitUntil(
    async () => {
      const h = (await n.ok('GET', '/v1/payments?limit=1000')).payments as Array<NonNullable<typeof done>>;
      done = h.find((p) => p.payment_id === r.payment_id);
      return done !== undefined && done.status !== 'in_flight';
    },
    60_000,
    `payment ${r.payment_id} over`,
  );
  return done!;
}

/** bob's committee suspects a silent primary after this long (the default is 5 s). */
const PROMOTION = ['--promotion-timeout-ms', '3000'];

// The network both tests run on: three committees (primary first), and the channels alice–bob, bob–carol.
let a: NodeProcess[];
let b: NodeProcess[];
let c: NodeProcess[];
let ab: string;
let bc: string;
let aliceId: string;
let carolId: string;
/** Each committee's payout address, as its founding primary shows it (a backup's host shows its own). */
let payouts: { a: string; b: string; c: string };

test('alice → bob → carol, each a committee of 3: routed payments by treasury ids, every member holding the new balances', async () => {
  [a, b, c] = await Promise.all([
    startCommittee(dir, chain, key, 'alice', 90_000),
    startCommittee(dir, chain, key, 'bob', 90_000, PROMOTION),
    startCommittee(dir, chain, key, 'carol', 90_000),
  ]);
  const [alice, bob, carol] = [a[0]!, b[0]!, c[0]!];
  const [da, db1, db2, dc] = await Promise.all([
    fundDeposit(alice, DEPOSIT),
    fundDeposit(bob, DEPOSIT),
    fundDeposit(bob, DEPOSIT),
    fundDeposit(carol, DEPOSIT),
  ]);
  ab = await openChannel(alice, bob, [da], [db1]);
  bc = await openChannel(bob, carol, [db2], [dc]);
  carolId = (await carol.ok('GET', '/v1/getinfo')).treasury_id as string;
  aliceId = (await alice.ok('GET', '/v1/getinfo')).treasury_id as string;
  await waitUntil(
    async () => {
      const g = (await alice.ok('GET', '/v1/graph')).nodes as Array<{ node_id: string; channels: unknown[] }>;
      return g.some((x) => x.node_id === carolId && x.channels.length > 0) && g.length === 3;
    },
    60_000,
    "alice's graph knows a route to carol",
  );
  const paid: number[] = [];
  for (const amount of [1_000, 2_500, 700]) {
    const r = await payTo(alice, carolId, amount);
    assert.equal(r.status, 'succeeded');
    assert.deepEqual(r.route, [aliceId, bob.id, carolId], 'routed through bob, by treasury ids');
    paid.push(amount);
  }
  await waitUntil(
    async () => {
      const g = (await carol.ok('GET', '/v1/graph')).nodes as Array<{ node_id: string }>;
      return g.some((x) => x.node_id === aliceId);
    },
    60_000,
    "carol's graph knows alice",
  );
  const back = await payTo(carol, aliceId, 1_200);
  assert.equal(back.status, 'succeeded');
  assert.deepEqual(back.route, [carolId, bob.id, aliceId]);
  const net = BigInt(paid.reduce((s, x) => s + x, 0) - 1_200);
  // Every channel in its new state at both ends, and each committee's backups hold the same.
  assert.equal(await local(alice, ab), BigInt(DEPOSIT) - net);
  assert.equal(await local(bob, ab), BigInt(DEPOSIT) + net);
  assert.equal(await local(bob, bc), BigInt(DEPOSIT) - net);
  assert.equal(await local(carol, bc), BigInt(DEPOSIT) + net);
  await replicatedEverywhere();
  const payout = async (n: NodeProcess) => (await n.ok('GET', '/v1/getinfo')).payout_address as string;
  payouts = { a: await payout(alice), b: await payout(bob), c: await payout(carol) };
});

/** Every backup of every committee holds its primary's balance on each of its channels. */
async function replicatedEverywhere(bobNow = b[0]!): Promise<void> {
  for (const [members, primary, ch] of [
    [a, a[0]!, ab],
    [b, bobNow, ab],
    [b, bobNow, bc],
    [c, c[0]!, bc],
  ] as const) {
    const want = await local(primary, ch);
    await waitUntil(
      async () => {
        for (const m of members) if (m !== primary && m !== b[0] && (await local(m, ch)) !== want) return false;
        return true;
      },
      30_000,
      `backups replicate channel ${ch.slice(0, 8)}`,
    );
  }
}

/** One routed payment alice → carol: true if it succeeded, false if it failed (nothing moved), null if unknown. */
async function routed(amount: number): Promise<boolean | null> {
  const r = await a[0]!.api('POST', '/v1/payments', { dest: carolId, amount_sat: amount }).catch(() => null);
  if (!r) return null;
  if (r.status === 201) return r.body.status === 'succeeded' ? true : null;
  return false;
}

const STEP = 100;

test("the same with bob's primary killed mid-stream: a backup promoted, every channel ends all old or all new and settles on chain at those balances", async () => {
  const [alice, bobP, bob1, bob2] = [a[0]!, b[0]!, b[1]!, b[2]!];
  const carol = c[0]!;
  const bobId = bobP.id; // the committee's treasury id: its founding primary's node id
  const start = { ab: await local(alice, ab), bc: await local(carol, bc) };

  // Two clients pay alice → carol through bob; bob's primary dies after 6 acknowledged payments, others in flight.
  let acked = 0;
  let unknown = 0;
  let failed = 0;
  let killed = false;
  let killedAt = 0;
  const stream = async () => {
    while (!killed) {
      const r = await routed(STEP);
      if (r === true) acked += STEP;
      else if (r === null) unknown += STEP;
      else failed += 1;
      if (acked >= 6 * STEP && !killed) {
        killed = true;
        killedAt = Date.now();
        await bobP.kill('SIGKILL');
      }
    }
  };
  await Promise.all([stream(), stream()]);

  // bob's first backup takes over under the committee's same identity.
  await waitUntil(async () => (await bob1.ok('GET', '/v1/committee')).role === 'primary', 30_000, 'bob-b1 promoted');
  assert.equal((await bob1.ok('GET', '/v1/committee')).treasury_id, bobId);

  // Routed payments resume through the new primary, both ways, the path still naming bob's treasury id.
  await waitUntil(
    async () => {
      const r = await routed(STEP);
      if (r === null) unknown += STEP;
      if (r === true) acked += STEP;
      return r === true;
    },
    30_000,
    'a routed payment through the new primary',
  );
  console.log(`multihop.committee.e2e: routed payments flowed again ${Date.now() - killedAt} ms after the kill`);
  for (let i = 0; i < 3; i++) {
    const r = await payTo(alice, carolId, STEP);
    assert.equal(r.status, 'succeeded');
    assert.deepEqual(r.route, [aliceId, bobId, carolId], 'routed through bob by its treasury id');
    acked += STEP;
  }
  const back = await payTo(carol, aliceId, 50);
  assert.equal(back.status, 'succeeded');
  assert.deepEqual(back.route, [carolId, bobId, aliceId]);

  // Every payment is over at every hop, nothing left locked.
  await waitUntil(
    async () => {
      for (const n of [alice, bob1, carol]) {
        const ps = (await n.ok('GET', '/v1/multihop')).rounds as Array<{ phase: string }>;
        if (ps.some((p) => p.phase !== 'done' && p.phase !== 'aborted')) return false;
      }
      return true;
    },
    30_000,
    'every multi-hop payment resolved',
  );
  // bob named by its treasury id is paid directly on the channel, now bound to the new primary (once the
  // last routed payment's unlock has reached alice: a held channel refuses direct payments).
  const direct = await payTo(alice, bobId, 30);
  assert.equal(direct.status, 'succeeded');
  assert.equal((direct as { channel_id?: string }).channel_id, ab);
  assert.equal(direct.route, undefined, 'a direct payment, not a routed one');
  // All old or all new on every channel: what alice paid on ab is exactly what carol was paid on bc.
  const onAB = start.ab - (await local(alice, ab)) + 50n - 30n;
  const onBC = (await local(carol, bc)) - start.bc + 50n;
  assert.equal(onAB, onBC, 'each payment moved both channels or neither');
  assert.equal(await local(bob1, ab), 2n * BigInt(DEPOSIT) - (await local(alice, ab)), 'alice and bob agree on ab');
  assert.equal(await local(bob1, bc), 2n * BigInt(DEPOSIT) - (await local(carol, bc)), 'bob and carol agree on bc');
  const paid = Number(onAB);
  assert.ok(paid >= acked, `${paid} paid, at least the ${acked} acknowledged`);
  assert.ok(paid <= acked + unknown, `${paid} paid, at most ${acked} acknowledged + ${unknown} unknown`);
  assert.equal(paid % STEP, 0);
  console.log(
    `multihop.committee.e2e: ${paid} sat routed, ${acked} acknowledged, ${unknown} unanswered, ${failed} failed around the kill`,
  );
  await replicatedEverywhere(bob1);
  assert.equal(await local(bob2, bc), await local(bob1, bc));

  // Every channel settled on chain at those balances: ab by alice, bc by bob's new primary.
  const { a: pa, b: pb, c: pc } = payouts;
  const [aliceAB, bobBC] = [await local(alice, ab), await local(bob1, bc)];
  const sab = await alice.ok('POST', `/v1/channels/${ab}/settle`);
  const outsAB = await minedOutputs(sab.txid);
  assert.equal(outsAB.get(pb), 2n * BigInt(DEPOSIT) - aliceAB, 'bob is paid his ab balance');
  assert.equal(outsAB.get(pa), aliceAB - BigInt(sab.fee_sat), 'alice gets hers less the fee');
  const sbc = await bob1.ok('POST', `/v1/channels/${bc}/settle`);
  const outsBC = await minedOutputs(sbc.txid);
  assert.equal(outsBC.get(pc), 2n * BigInt(DEPOSIT) - bobBC, 'carol is paid her bc balance');
  assert.equal(outsBC.get(pb), bobBC - BigInt(sbc.fee_sat), 'bob gets his bc balance less the fee');
  for (const n of [...a, bob1, bob2, ...c]) await n.kill('SIGTERM');
});
