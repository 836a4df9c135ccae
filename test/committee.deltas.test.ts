// run-tests lane: in-process
/**
 * Replication by deltas (docs/protocol/committees.md, "Replication"): an update carries only the records
 * that changed since the update it names as its base, and a backup applies it only onto exactly that base.
 * Attacks on deltas are refused (a delta onto the wrong base, a forbidden change in a record the delta
 * carries alongside genuine ones, a record it drops, a replay); a member restarted mid-stream catches up
 * from one full snapshot; an update's size does not grow with the number of idle channels; and a backup's
 * own acknowledgement, which it sends straight to the primary, counts only for that backup.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { committeeWithPeer, payAndWait, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { openUpdate, signUpdate, type ReplicaBody, type SignedUpdate } from '../src/enclave/committee/update.ts';
import type { CommitteeMessage } from '../src/enclave/protocol/messages.ts';
import { signAck } from '../src/enclave/committee/acks.ts';
import { hexToBytes } from '../enclave-sim/encoding.ts';

type Internals = {
  sendNow(peer: string, msg: CommitteeMessage): void;
  committee: { handle(peer: string, msg: CommitteeMessage): Promise<void> };
};

/** Committee p, b1, b2 (2-of-3) with a channel funded both ways to lone q, quiet; records the refusals p receives. */
async function setup() {
  const { mesh, p, b1, b2, q, ch } = await committeeWithPeer();
  await payAndWait(p, ch, [2_000]);
  await payAndWait(q, ch, [700]);
  await quiet(p, [b1, b2]);
  // The refusals p receives, and b2's (an update b2 relays is refused back to b2).
  const refusals: Array<{ from: string; code: string; seq: number }> = [];
  for (const n of [p, b2]) {
    const coord = (n.treasury as unknown as Internals).committee;
    const handle = coord.handle.bind(coord);
    coord.handle = async (peer, msg) => {
      if (msg.t === 'c_refuse') refusals.push({ from: peer, code: msg.code, seq: msg.seq });
      return handle(peer, msg);
    };
  }
  return { mesh, p, b1, b2, q, ch, refusals };
}

/** Every update issued is acknowledged and every backup holds its sequence number. */
async function quiet(p: MeshNode, backups: MeshNode[]): Promise<void> {
  await waitFor(() => {
    const c = p.treasury.info().committee!;
    return c.acked_seq === c.seq && backups.every((b) => b.treasury.state.committee!.seq === c.seq);
  }, 15_000);
}

/** The bodies of the updates p sent to b1, in order. */
function issued(p: MeshNode): ReplicaBody[] {
  // Each update goes to every member: the copies to b1 count each once.
  return p.committeeSent
    .filter((m) => m.t === 'c_update' && m.update && m.to === 'b1')
    .map((m) => openUpdate(m.update!, p.treasury.nodeId)!);
}

/** The primary's own key signs `body` as an update (a compromised primary's enclave can). */
function signed(p: MeshNode, body: ReplicaBody): SignedUpdate {
  return signUpdate(body, p.treasury.state.identityKey);
}

/**
 * Sends `update` to b1 as p would (or as b2 relaying it would, `via`); resolves with b1's refusal code for
 * it (or null if b1 applied it).
 */
async function offer(
  s: Awaited<ReturnType<typeof setup>>,
  update: SignedUpdate,
  via: MeshNode = s.p,
): Promise<string | null> {
  const seen = s.refusals.length;
  const before = s.b1.treasury.state.committee!.seq;
  (via.treasury as unknown as Internals).sendNow(s.b1.treasury.nodeId, { t: 'c_update', update });
  await waitFor(
    () => s.refusals.slice(seen).some((r) => r.seq === update.seq) || s.b1.treasury.state.committee!.seq !== before,
  );
  return s.refusals.slice(seen).find((r) => r.seq === update.seq)?.code ?? null;
}

test('updates are deltas: a payment carries only its channel, named after the update it follows', async () => {
  const { p, b1, b2, ch } = await setup();
  const from = issued(p).length;
  await payAndWait(p, ch, [10]);
  await quiet(p, [b1, b2]);
  const deltas = issued(p).slice(from);
  assert.ok(deltas.length >= 1, 'the payment was replicated');
  for (const d of deltas) {
    assert.equal(d.base, d.seq - 1, 'each delta follows the update before it');
    assert.deepEqual(Object.keys(d.deposits), [], 'no deposit changed');
    assert.ok(
      Object.keys(d.channels).every((id) => id === ch),
      'only the paid channel travels',
    );
  }
  assert.equal(b1.treasury.channel(ch).total_sent_sat, p.treasury.channel(ch).total_sent_sat);
  assert.equal(b2.treasury.channel(ch).total_sent_sat, p.treasury.channel(ch).total_sent_sat);
});

test('a delta onto another base than the member holds is refused (base_mismatch), and a full snapshot catches it up', async () => {
  const s = await setup();
  const { p, b1, ch } = s;
  const seq = b1.treasury.state.committee!.seq;
  const latest = issued(p).at(-1)!;
  // A delta that names an older base: applied onto b1's newer state it would make a state p never had.
  // (Its deposit numbering, which the rules let rise, marks whether b1 adopted it.)
  const forged = p.treasury.state.nextDeposit + 5;
  const wrong: ReplicaBody = { ...structuredClone(latest), seq: seq + 1, base: seq - 1, nextDeposit: forged };
  assert.equal(await offer(s, signed(p, wrong)), 'base_mismatch');
  assert.notEqual(b1.treasury.state.nextDeposit, forged, 'b1 adopted nothing of it');
  // The refusal reached p, which issues one full snapshot: the chain is whole again and pays on.
  await waitFor(() => issued(p).some((b) => b.base === undefined && b.seq > seq));
  await payAndWait(p, ch, [25]);
  await quiet(p, [b1, s.b2]);
  assert.equal(b1.treasury.channel(ch).total_sent_sat, p.treasury.channel(ch).total_sent_sat);
  assert.equal(b1.treasury.state.nextDeposit, p.treasury.state.nextDeposit);
});

test('a delta carrying a forbidden change in a record beside genuine ones is refused', async () => {
  const s = await setup();
  const { p, b1, ch } = s;
  const seq = b1.treasury.state.committee!.seq;
  const view = () => {
    const c = structuredClone(p.treasury.state.channels[ch]!);
    c.peerDeposits = c.peerDeposits.map((d) => ({ ...d, privkeys: [] }));
    return c;
  };
  const genuine = issued(p).at(-1)!; // captured first: what p sends below is recorded too
  const base = (): ReplicaBody => ({
    ...structuredClone(genuine),
    seq: seq + 1,
    base: seq,
    patched: undefined,
    channels: {},
    deposits: {},
  });
  // A whole record with totals as before (it claims nothing moved), but the peer's payout swapped for the attacker's.
  const payout: ReplicaBody = base();
  payout.channels[ch] = { ...view(), peerPayout: p.treasury.state.channels[ch]!.myPayout };
  assert.equal(await offer(s, signed(p, payout)), 'channel_changed');
  // The paid total of a genuine-looking record lowered.
  const lowered: ReplicaBody = base();
  lowered.channels[ch] = { ...view(), sent: p.treasury.state.channels[ch]!.sent - 1_000n };
  assert.equal(await offer(s, signed(p, lowered)), 'total_decreased');
  // A patch (only changed fields) that removes the peer's payout from the channel.
  const unpaid: ReplicaBody = { ...base(), patched: { channels: { [ch]: ['peerPayout'] } } };
  unpaid.channels[ch] = { acked: p.treasury.state.channels[ch]!.acked } as never;
  assert.equal(await offer(s, signed(p, unpaid)), 'channel_changed');
  // A patch that removes what every channel has: no rule can pass it.
  const hollow: ReplicaBody = { ...base(), patched: { channels: { [ch]: ['myDeposits', 'peerDeposits'] } } };
  hollow.channels[ch] = { acked: p.treasury.state.channels[ch]!.acked } as never;
  assert.equal(await offer(s, signed(p, hollow)), 'malformed_record');
  // A deposit dropped from the replica by listing it as gone.
  const dropped: ReplicaBody = { ...base(), gone: { deposits: Object.keys(p.treasury.state.deposits) } };
  assert.equal(await offer(s, signed(p, dropped)), 'entry_missing');
  // A deposit carried alone, its script changed.
  const [depId, dep] = Object.entries(p.treasury.state.deposits)[0]!;
  const script: ReplicaBody = base();
  script.deposits[depId] = { ...structuredClone(dep), privkeys: [], witnessScript: '00' };
  assert.equal(await offer(s, signed(p, script)), 'deposit_changed');
  assert.equal(b1.treasury.state.committee!.seq, seq, 'b1 adopted none of them');
  assert.equal(b1.treasury.channel(ch).total_sent_sat, p.treasury.channel(ch).total_sent_sat);
  assert.equal(b1.treasury.state.channels[ch]!.peerPayout, p.treasury.state.channels[ch]!.peerPayout);
});

test('a replayed delta is refused (stale_update) or, the very latest, acknowledged again without being re-applied', async () => {
  const s = await setup();
  const { p, b1, b2, ch } = s;
  await payAndWait(p, ch, [40]);
  await payAndWait(p, ch, [50]);
  await quiet(p, [b1, b2]);
  const updates = p.committeeSent.filter((m) => m.t === 'c_update' && m.to === b1.name).map((m) => m.update!);
  const old = updates.find((u) => openUpdate(u, p.treasury.nodeId)!.base !== undefined)!;
  const sent = b1.treasury.channel(ch).total_sent_sat;
  assert.equal(await offer(s, old), 'stale_update');
  const seals = b1.seals;
  (p.treasury as unknown as Internals).sendNow(b1.treasury.nodeId, { t: 'c_update', update: updates.at(-1)! });
  await payAndWait(p, ch, [5]);
  await quiet(p, [b1, b2]);
  assert.equal(BigInt(b1.treasury.channel(ch).total_sent_sat), BigInt(sent) + 5n, 'nothing was applied twice');
  assert.ok(b1.seals > seals);
});

test('a member restarted mid-stream catches up from one full snapshot, and the committee pays on', async () => {
  const s = await setup();
  const { mesh, p, b1, q, ch } = s;
  mesh.crash('b2');
  // The peer keeps paying: the primary issues deltas b2 misses.
  for (let i = 0; i < 3; i++) await q.treasury.pay([{ channel_id: ch, amount_sat: 100 + i }]);
  await waitFor(() => p.treasury.state.channels[ch]!.received === 700n + 303n);
  const missed = p.treasury.state.committee!.seq;
  const from = issued(p).length;
  const b2 = await mesh.restart('b2', ['p', 'b1']);
  await quiet(p, [b1, b2]);
  assert.ok(
    s.refusals.some((r) => r.code === 'base_mismatch'),
    "b2's refusal of a delta from a base it does not hold reached the primary",
  );
  const fulls = issued(p)
    .slice(from)
    .filter((b) => b.base === undefined);
  assert.equal(fulls.length, 1, 'exactly one full snapshot caught b2 up');
  assert.ok(fulls[0]!.seq > missed);
  assert.equal(b2.treasury.channel(ch).total_received_sat, p.treasury.channel(ch).total_received_sat);
  await payAndWait(p, ch, [30]);
  await payAndWait(q, ch, [20]);
  await quiet(p, [b1, b2]);
  assert.equal(b2.treasury.channel(ch).total_sent_sat, p.treasury.channel(ch).total_sent_sat);
  assert.equal(b2.treasury.channel(ch).total_received_sat, p.treasury.channel(ch).total_received_sat);
});

test("an update's size does not grow with idle channels: a payment's delta with 100 channels is that with 1", async () => {
  const s = await setup();
  const { p, b1, b2, q, ch } = s;
  const bytesOfPayment = async (): Promise<number> => {
    const from = p.committeeSent.length;
    await payAndWait(p, ch, [1]);
    await quiet(p, [b1, b2]);
    const sizes = p.committeeSent
      .slice(from)
      .filter((m) => m.t === 'c_update' && m.to === b1.name)
      .map((m) => m.update!.body.length);
    return Math.max(...sizes);
  };
  const one = await bytesOfPayment();
  for (let i = 0; i < 99; i++) await p.treasury.openChannel(q.treasury.nodeId, p.payoutAddress);
  await waitFor(() => Object.values(p.treasury.state.channels).every((c) => c.status === 'open'), 30_000);
  await quiet(p, [b1, b2]);
  assert.equal(Object.keys(b2.treasury.state.channels).length, 100, 'the backups hold the 100 channels');
  const hundred = await bytesOfPayment();
  assert.ok(Math.abs(hundred - one) <= 8, `a payment's update is ${one} bytes with 1 channel, ${hundred} with 100`);
});

test("a backup's own acknowledgement, sent straight to the primary, counts only for that backup", async () => {
  const { mesh, p, b1, b2, ch } = await setup();
  const seq = p.treasury.info().committee!.seq;
  // The host holds b1's frames to p: the primary hears only the tail's own word.
  mesh.hold('b1', 'p');
  const paid = p.treasury.pay([{ channel_id: ch, amount_sat: 77 }]);
  await waitFor(() => b2.committeeSent.some((m) => m.t === 'c_ack' && m.to === 'p' && m.seq > seq));
  await waitFor(() => b1.treasury.state.committee!.seq > seq);
  assert.equal(p.treasury.info().committee!.acked_seq, seq, "the tail's acknowledgement alone acknowledges nothing");
  // b2 sends, as its own, a signature of the new update made with b1's key: it counts for no one.
  const forged = signAck(p.treasury.nodeId, seq + 1, hexToBytes(b1.treasury.state.identityKey));
  (b2.treasury as unknown as Internals).sendNow(p.treasury.nodeId, { t: 'c_ack', seq: seq + 1, sigs: [forged] });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(p.treasury.info().committee!.acked_seq, seq, 'a signature counts only for the member whose key made it');
  mesh.deliver('b1', 'p');
  const [result] = await paid;
  assert.ok(result!.ok);
  await quiet(p, [b1, b2]);
});

test('with every member in reach an update is one frame to each backup and one acknowledgement from each: the chain forwards and relays nothing', async () => {
  const { p, b1, b2, ch } = await setup();
  const from = { p: p.committeeSent.length, b1: b1.committeeSent.length, b2: b2.committeeSent.length };
  await payAndWait(p, ch, [7]);
  await quiet(p, [b1, b2]);
  const seq = p.treasury.info().committee!.seq;
  assert.equal(b2.treasury.channel(ch).total_sent_sat, p.treasury.channel(ch).total_sent_sat, 'the tail holds it');
  const sent = (n: MeshNode, since: number, t: 'c_update' | 'c_ack') =>
    n.committeeSent
      .slice(since)
      .filter((m) => m.t === t)
      .map((m) => `${m.to}:${m.seq}${m.relay ? ' relay' : ''}`);
  assert.deepEqual(
    sent(p, from.p, 'c_update').sort(),
    [`b1:${seq}`, `b2:${seq}`],
    'one copy to each backup, from the primary',
  );
  assert.deepEqual(sent(b1, from.b1, 'c_update'), [], 'the middle backup forwards nothing');
  assert.deepEqual(sent(b2, from.b2, 'c_update'), []);
  assert.deepEqual(
    sent(b1, from.b1, 'c_ack'),
    [`p:${seq}`],
    "the middle backup's own word, straight to the primary, once",
  );
  assert.deepEqual(sent(b2, from.b2, 'c_ack'), [`p:${seq}`], "the tail's, likewise: nothing up the chain");
});

test('a member cut off from the primary while an update waits: the update and its acknowledgement go by the chain', async () => {
  const { mesh, p, b1, b2, ch } = await setup();
  const seq = p.treasury.info().committee!.seq;
  const from = { p: p.committeeSent.length, b1: b1.committeeSent.length, b2: b2.committeeSent.length };
  // The tail's word to the primary is held back, then their session drops: the held frame never arrives.
  mesh.hold('b2', 'p');
  const paid = p.treasury.pay([{ channel_id: ch, amount_sat: 9 }]);
  await waitFor(() => b2.committeeSent.some((m) => m.t === 'c_ack' && m.to === 'p' && m.seq > seq));
  assert.equal(p.treasury.info().committee!.acked_seq, seq, 'without the tail, nothing is acknowledged');
  mesh.unlink('p', 'b2');
  const [result] = await paid;
  assert.ok(result!.ok, 'the payment is acknowledged through the chain');
  assert.equal(p.treasury.info().committee!.acked_seq, seq + 1);
  const relayed = (n: MeshNode, since: number, t: 'c_update' | 'c_ack', to: string) =>
    n.committeeSent
      .slice(since)
      .some((m) => m.t === t && m.to === to && m.seq === seq + 1 && (t === 'c_ack' || m.relay));
  assert.ok(
    relayed(p, from.p, 'c_update', 'b1'),
    'the primary sends the update again, marked relay, to the member it reaches',
  );
  assert.ok(relayed(b1, from.b1, 'c_update', 'b2'), 'the middle backup passes it on to the tail');
  assert.ok(relayed(b2, from.b2, 'c_ack', 'b1'), 'the tail acknowledges up the chain');
  assert.ok(relayed(b1, from.b1, 'c_ack', 'p'), 'and the middle backup relays it to the primary');
  assert.equal(
    b2.treasury.channel(ch).total_sent_sat,
    p.treasury.channel(ch).total_sent_sat,
    'the tail holds the payment',
  );
});

test('a copy of the latest update under its number, relayed, but not byte for byte the same is checked as any update', async () => {
  const s = await setup();
  await payAndWait(s.p, s.ch, [5]);
  await quiet(s.p, [s.b1, s.b2]);
  const latest = s.b1.treasury.state.committee!.lastUpdate!;
  const stranger = signUpdate(openUpdate(latest, s.p.treasury.nodeId)!, s.q.treasury.state.identityKey);
  // Relayed by b2: the primary's own session would vouch for what comes over it, another member's does not.
  assert.equal(await offer(s, { ...latest, sig: stranger.sig }, s.b2), 'forged_update', 'another signer, same bytes');
  const edited = latest.body.replace(/"seq":(\d+)/, (_m, n: string) => `"seq":${n} `);
  assert.notEqual(edited, latest.body);
  assert.equal(await offer(s, { ...latest, body: edited }, s.b2), 'forged_update', 'the signature, other bytes');
  assert.equal(s.b1.treasury.state.committee!.lastUpdate!.sig, latest.sig, 'b1 still holds the primary’s update');
});
