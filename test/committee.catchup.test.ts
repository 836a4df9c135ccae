// run-tests lane: in-process
/**
 * Committee catch-up and rollback at every position of the chain p → b1 → b2 (docs/protocol/committees.md).
 *
 * A member crashes (or is cut off) while the channel peer keeps paying the committee: the primary credits, seals and
 * issues updates that the crashed member (and everyone after it) misses, and nothing is acknowledged to
 * the peer until the whole chain has sealed the latest update. The member restarts from its sealed state
 * (or reconnects) and must end with the primary's sequence number and totals; the withheld acknowledgements go out, and
 * the committee keeps paying both ways. The mesh seals as the enclave runtime does (a protected seal
 * advances the platform counter): every member's update or acknowledgement leaves only once a
 * counter-protected seal covers it, and a restart from any older blob is a detected rollback.
 *
 * Random amounts and payment counts come from a seeded PRNG: TEST_SEED=<n> replays a run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Mesh, RollbackError, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { prng as rng, testSeed } from './helpers/seeded.ts';
import { decodeState, type TreasuryState } from '../src/enclave/treasury/state.ts';
import { openUpdate, wholeRecords, type ReplicaBody } from '../src/enclave/committee/update.ts';
import type { Collection, RecordOf } from '../src/enclave/committee/replicated.ts';

const SEED = testSeed('committee.catchup');
const rand = rng(SEED);
const pick = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));

const CHAIN = ['p', 'b1', 'b2'] as const;
type Name = (typeof CHAIN)[number];
/** Whom a restarted member redials: its neighbours in the chain, and the channel peer for the primary. */
const REDIAL: Record<Name, string[]> = { p: ['b1', 'b2', 'q'], b1: ['p', 'b2'], b2: ['p', 'b1'] };

/** Committee p, b1, b2 (2-of-3) with a channel funded both ways to lone q; every seal takes a tick to be durable. */
async function setup() {
  const mesh = new Mesh();
  mesh.sealLatency = () => new Promise((r) => setImmediate(r));
  const [p, b1, b2] = (await mesh.committee([...CHAIN])) as [MeshNode, MeshNode, MeshNode];
  const q = await mesh.add('q');
  await mesh.link('p', 'q');
  const ch = (await p.treasury.openChannel(q.treasury.nodeId, p.payoutAddress)).channel_id;
  await p.treasury.addDeposit(ch, await mesh.deposit('p', 100_000n));
  await q.treasury.addDeposit(ch, await mesh.deposit('q', 50_000n));
  await settled(mesh, p);
  return { mesh, p, b1, b2, q, ch };
}

/**
 * Quiet: the primary's last sealed state is issued and acknowledged by the whole chain, and every member
 * holds and has sealed the very same. (A primary takes the peer's acknowledgement of a payment in memory
 * and seals it with its next change: its own memory may be ahead on `acked`.)
 */
async function settled(mesh: Mesh, p: MeshNode): Promise<void> {
  await waitFor(() => {
    const c = p.treasury.info().committee!;
    const truth = JSON.stringify(sealedView(p), bigints);
    return (
      c.acked_seq === c.seq &&
      CHAIN.every((n) => {
        const node = mesh.get(n);
        return node.treasury.state.committee!.seq === c.seq && JSON.stringify(sealedView(node), bigints) === truth;
      })
    );
  }, 15_000).catch((err) => {
    // Say where the chain is stuck: each member's seq and last sealed state against the primary's.
    const c = p.treasury.info().committee!;
    const where = CHAIN.map(
      (n) =>
        `${n} seq ${mesh.get(n).treasury.state.committee!.seq} sealed ${JSON.stringify(sealedView(mesh.get(n)), bigints)}`,
    );
    throw new Error(`the chain did not settle (primary seq ${c.seq}, acked ${c.acked_seq}):\n${where.join('\n')}`, {
      cause: err,
    });
  });
}

const bigints = (_k: string, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v);

async function pay(from: MeshNode, ch: string, amounts: number[]): Promise<bigint> {
  const results = await from.treasury.pay(amounts.map((amount_sat) => ({ channel_id: ch, amount_sat })));
  assert.ok(
    results.every((r) => r.ok),
    JSON.stringify(results.find((r) => !r.ok)),
  );
  return BigInt((results[results.length - 1] as { position: string }).position);
}

/** What every member must agree on: the sequence number and every channel's and deposit's public state. */
function replicaView(s: TreasuryState) {
  return {
    seq: s.committee!.seq,
    channels: Object.values(s.channels).map((c) => ({
      id: c.id,
      status: c.status,
      sent: c.sent,
      received: c.received,
      acked: c.acked,
    })),
    deposits: Object.values(s.deposits).map((d) => ({
      id: d.id,
      status: d.status,
      outpoint: d.outpoint,
      value: d.value,
      channelId: d.channelId,
    })),
  };
}

const sealedView = (node: MeshNode) => replicaView(decodeState(node.blobs.at(-1)!.bytes));

/** Each backup, in memory and in its last sealed blob, holds the primary's last sealed state. */
function assertSameAsPrimary(mesh: Mesh, what: string): void {
  const truth = sealedView(mesh.get('p'));
  for (const n of CHAIN.slice(1)) {
    const node = mesh.get(n);
    assert.deepEqual(replicaView(node.treasury.state), truth, `${what}: ${n} holds the primary's state`);
    assert.deepEqual(sealedView(node), truth, `${what}: ${n}'s last sealed state is the primary's`);
  }
}

/**
 * Every state a backup ever sealed is the one the primary issued under that sequence number: a member
 * that catches up jumps to the latest update, but never seals a state the primary did not sign.
 */
function assertSameSequence(mesh: Mesh): void {
  const p = mesh.get('p');
  const issued = new Map<number, ReturnType<typeof replicaView>>();
  // A delta carries only what changed since its base: the state it issues is the base's with those records.
  const states = new Map<number, Pick<ReplicaBody, 'channels' | 'deposits'>>();
  const bodies = p.committeeSent
    .filter((m) => m.t === 'c_update')
    .map((m) => openUpdate(m.update!, p.treasury.nodeId)!)
    .sort((a, b) => a.seq - b.seq);
  for (const body of bodies) {
    if (states.has(body.seq)) continue;
    const base = body.base === undefined ? { channels: {}, deposits: {} } : states.get(body.base);
    if (!base) continue; // a delta from a base this primary issued before the test looked (a restart)
    const whole = wholeRecords(body, <K extends Collection>(k: K, id: string) => base[k][id] as RecordOf<K>)!;
    const state = {
      channels: { ...base.channels, ...whole.channels },
      deposits: { ...base.deposits, ...whole.deposits },
    };
    states.set(body.seq, state);
    issued.set(body.seq, replicaView({ committee: { seq: body.seq }, ...state } as unknown as TreasuryState));
  }
  for (const n of CHAIN.slice(1)) {
    const seqs = new Set<number>();
    for (const b of mesh.get(n).blobs) {
      if (b.seq === 0) continue;
      seqs.add(b.seq);
      const truth = issued.get(b.seq);
      assert.ok(truth, `${n} sealed seq ${b.seq}, which the primary never issued`);
      assert.deepEqual(
        replicaView(decodeState(b.bytes)),
        truth,
        `${n}'s sealed state at seq ${b.seq} is the primary's update ${b.seq}`,
      );
    }
    assert.ok(seqs.size > 1, `${n} sealed several updates`);
  }
}

/**
 * No member sent an acknowledgement for a sequence number its counter-protected state did not hold, and
 * the primary sent no update it had not sealed so. A backup that forwards an update (when the chain carries
 * it: docs/protocol/committees.md, "Replication") does so as soon as it has adopted it, before its own seal:
 * what it forwards must be one the primary issued, hence sealed, and what it acknowledges only what it
 * sealed itself.
 */
function assertSealedBeforeSent(mesh: Mesh): void {
  const issued = new Set(
    mesh
      .get('p')
      .committeeSent.filter((m) => m.t === 'c_update')
      .map((m) => m.seq),
  );
  for (const n of CHAIN) {
    const sent = mesh.get(n).committeeSent;
    assert.ok(sent.length > 0, `${n} sent committee messages`);
    for (const m of sent) {
      if (m.t === 'c_update' && n !== 'p') {
        assert.ok(issued.has(m.seq), `${n} forwarded update ${m.seq} to ${m.to}, which the primary never sent`);
        continue;
      }
      assert.ok(
        m.protectedSeq >= m.seq,
        `${n} sent ${m.t} ${m.seq} to ${m.to} while its counter-protected state was at seq ${m.protectedSeq}`,
      );
    }
  }
}

/**
 * The primary pays `fromPrimary`, then the peer pays `fromPeer`, each acknowledged; then every member holds
 * exactly the primary's updates, in sequence, each sent only once sealed.
 */
async function paysOnBothWays(
  mesh: Mesh,
  primary: MeshNode,
  peer: MeshNode,
  ch: string,
  fromPrimary: number[],
  fromPeer: number[],
): Promise<void> {
  const sent = await pay(primary, ch, fromPrimary);
  await waitFor(() => primary.treasury.state.channels[ch]!.acked === sent, 15_000);
  const received = await pay(peer, ch, fromPeer);
  await waitFor(() => peer.treasury.state.channels[ch]!.acked === received, 15_000);
  await settled(mesh, primary);
  assertSameAsPrimary(mesh, 'after more payments');
  assertSameSequence(mesh);
  assertSealedBeforeSent(mesh);
}

for (const [victim, mode] of [
  ['b1', 'crash'],
  ['b2', 'crash'],
  ['b1', 'partition'],
  ['b2', 'partition'],
] as const) {
  const where = victim === 'b1' ? 'middle' : 'tail';
  const how =
    mode === 'crash'
      ? 'crashed while the peer keeps paying: restarted from its sealed state'
      : 'cut off while the peer keeps paying: reconnected';
  test(`the ${where} member (${victim}) ${how}, it catches up and every payment is acknowledged`, async () => {
    const { mesh, p, q, ch } = await setup();
    const qSent = await pay(q, ch, [pick(100, 900)]);
    const pSent = await pay(p, ch, [pick(100, 900)]);
    await waitFor(
      () => q.treasury.state.channels[ch]!.acked === qSent && p.treasury.state.channels[ch]!.acked === pSent,
    );
    await settled(mesh, p);
    const before = { seq: p.treasury.state.committee!.seq, acked: q.treasury.state.channels[ch]!.acked };

    if (mode === 'crash') mesh.crash(victim);
    else mesh.partition(victim); // its sessions drop; the instance runs on with what it holds
    await assert.rejects(
      p.treasury.pay([{ channel_id: ch, amount_sat: 10 }]),
      { code: 'committee_unavailable' },
      'the primary does not pay with a member missing',
    );
    // The peer keeps paying: the primary credits and seals each payment, and issues updates the victim misses.
    const rounds = pick(2, 4);
    let total = 0n;
    for (let i = 0; i < rounds; i++)
      total = await pay(
        q,
        ch,
        Array.from({ length: pick(1, 3) }, () => pick(50, 700)),
      );
    await waitFor(() => p.treasury.state.channels[ch]!.received === total);
    const issued = p.treasury.state.committee!.seq;
    assert.ok(issued > before.seq, 'the primary issued updates while the member was down');
    // The victim misses them; every other member has them, those after it too: the primary sends each
    // update to every member, not only down the chain.
    for (const n of CHAIN.slice(1).filter((x) => x !== victim))
      await waitFor(() => mesh.get(n).treasury.state.committee!.seq === issued);
    assert.ok(mesh.get(victim).treasury.state.committee!.seq < issued, `${victim} missed the updates`);
    assert.ok(p.treasury.info().committee!.acked_seq < issued, 'nothing past the crash is acknowledged by the chain');
    assert.equal(
      q.treasury.state.channels[ch]!.acked,
      before.acked,
      'the peer has no acknowledgement of the payments the victim missed',
    );

    if (mode === 'crash') await mesh.restart(victim, REDIAL[victim]);
    else await mesh.heal(victim, REDIAL[victim]);
    await waitFor(() => q.treasury.state.channels[ch]!.acked === total, 15_000);
    await settled(mesh, p);
    assertSameAsPrimary(mesh, `after ${victim} caught up`);

    // The committee keeps paying both ways.
    await paysOnBothWays(mesh, p, q, ch, [pick(100, 900), pick(100, 900)], [pick(100, 900)]);
  });
}

test('the primary crashed right after sealing a credit its backups never got: restarted, it brings them up and the credit is acknowledged', async () => {
  const { mesh, p, q, ch } = await setup();
  await pay(p, ch, [pick(100, 900)]);
  await settled(mesh, p);
  const amount = pick(50, 700);
  const expected = p.treasury.state.channels[ch]!.received + BigInt(amount);
  // The crash falls right after the seal that credits the payment: its update never leaves the primary.
  let crashedAt = -1;
  mesh.onSeal = (name, bytes) => {
    if (name !== 'p' || crashedAt >= 0 || decodeState(bytes).channels[ch]!.received !== expected) return;
    crashedAt = decodeState(bytes).committee!.seq;
    mesh.crash('p');
  };
  const total = await pay(q, ch, [amount]);
  assert.equal(total, expected);
  await waitFor(() => crashedAt >= 0);
  mesh.onSeal = undefined;
  for (const n of ['b1', 'b2'] as const) {
    assert.ok(mesh.get(n).treasury.state.committee!.seq < crashedAt, `${n} never got the update of the credit`);
    assert.ok(mesh.get(n).treasury.state.channels[ch]!.received < expected, `${n} has not the credit`);
  }

  await mesh.restart('p', REDIAL.p);
  const p2 = mesh.get('p');
  assert.equal(p2.treasury.state.channels[ch]!.received, expected, 'the restarted primary has the credit it sealed');
  await waitFor(() => q.treasury.state.channels[ch]!.acked === total, 15_000);
  await settled(mesh, p2);
  assert.ok(p2.treasury.state.committee!.seq >= crashedAt);
  assertSameAsPrimary(mesh, "after the primary's restart");

  await paysOnBothWays(mesh, p2, q, ch, [pick(100, 900)], [pick(100, 900), pick(100, 900)]);
});

test('a member never skips the counter: each update it acknowledged is counter-protected, and a restart from any older blob is a rollback', async () => {
  const { mesh, p, q, ch } = await setup();
  for (let i = pick(2, 4); i > 0; i--) {
    await pay(p, ch, [pick(100, 900)]);
    await pay(q, ch, [pick(100, 900)]);
  }
  await settled(mesh, p);
  assertSealedBeforeSent(mesh);
  const victim = CHAIN[pick(0, 2)]!;
  console.log(`committee.catchup: rollback victim ${victim}`);
  const node = mesh.get(victim);
  const latest = node.blobs.at(-1)!;
  const acked = p.treasury.info().committee!.acked_seq;
  assert.equal(latest.seq, acked, `${victim}'s last blob holds the acknowledged update`);
  assert.ok(latest.protect, `${victim} sealed the acknowledged update with the counter advanced`);
  mesh.crash(victim);
  // The host offers each older state it kept, newest first: every one that lacks the acknowledged update is refused.
  const older = node.blobs.filter((b) => b.seq < acked).reverse();
  assert.ok(older.length >= 2, `${victim} sealed earlier states`);
  for (const b of older) {
    await assert.rejects(
      mesh.restart(victim, REDIAL[victim], b),
      RollbackError,
      `${victim} restarted from its seal of seq ${b.seq} (acknowledged ${acked})`,
    );
  }
  await mesh.restart(victim, REDIAL[victim]);
  const sent = await waitPay(mesh, ch);
  await settled(mesh, mesh.get('p'));
  assert.equal(mesh.get('p').treasury.state.channels[ch]!.acked, sent);
  assertSameAsPrimary(mesh, `after ${victim}'s restart from its latest blob`);
  assertSameSequence(mesh);
});

/** The (maybe restarted) primary pays once the chain is whole again; resolves with the acknowledged total. */
async function waitPay(mesh: Mesh, ch: string): Promise<bigint> {
  const p = mesh.get('p');
  await waitFor(
    () =>
      p.treasury.info().committee!.members.every((m) => m.connected) &&
      p.treasury.info().peers.includes(mesh.get('q').treasury.nodeId),
    15_000,
  );
  const sent = await pay(p, ch, [pick(100, 900)]);
  await waitFor(() => p.treasury.state.channels[ch]!.acked === sent, 15_000);
  return sent;
}
