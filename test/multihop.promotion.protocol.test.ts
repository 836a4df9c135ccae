/**
 * Multi-hop through a committee whose primary was promoted (docs/protocol/multihop.md, "Committee hops"),
 * in-process: lone → committee → lone, real signatures and shares, a fake chain. The committee's primary
 * crashes with a payment committed there; its first backup is promoted and finishes the payment from its
 * replica; routed payments go on through it under the committee's same treasury id. Then the attacks: an
 * announcement for the committee counts only from the primary of a certified view, and path messages from
 * the former primary's session count for nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { committeeLine, replicated } from './helpers/committee-line.ts';
import { balances, outcome, unlocked, watch } from './helpers/multihop-views.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { TIMEOUTS, WAIT_MS } from './helpers/two-committees.ts';
import { Mesh, type MeshNode } from './helpers/treasury-mesh.ts';
import type { SpeakerProof } from '../src/enclave/protocol/messages.ts';
import { sessionOf, treasuryOf } from '../src/enclave/treasury/multihop/identities.ts';
import { Speakers } from '../src/enclave/treasury/multihop/speakers.ts';
import { signAnnouncement } from '../src/enclave/treasury/routing.ts';
import { decodeState } from '../src/enclave/treasury/state.ts';

const mesh = new Mesh({ ...TIMEOUTS, promotionTimeoutMs: 1_500 });
const { hops, nodes, channels } = await committeeLine(['lone', 'committee', 'lone'], 100_000n, mesh);
const [q0, p, q2] = nodes as [MeshNode, MeshNode, MeshNode];
const [, b1, b2] = hops[1]!.members as [MeshNode, MeshNode, MeshNode];
const T = p.treasury.nodeId; // the committee's treasury id: its founding primary's node id
const records = (n: MeshNode) => Object.values(n.treasury.state.multihop ?? {});
const resolved = (ns: MeshNode[]) =>
  ns.every((n) => records(n).every((r) => r.phase === 'done' || r.phase === 'aborted'));
const after = () => [q0, b1, q2];
const line = () => [
  { node: q0, members: [q0] },
  { node: b1, members: [b1, b2] },
  { node: q2, members: [q2] },
];

test("the committee's primary dies with a payment committed there: its first backup is promoted and finishes it, all new", async () => {
  const before = balances(nodes, channels);
  // The destination releases; its release never reaches the primary, which dies committed (replicated).
  mesh.onSeal = (name, bytes) => {
    if (name === q2.name && Object.values(decodeState(bytes).multihop ?? {}).some((r) => r.phase === 'released'))
      mesh.hold(q2.name, p.name);
  };
  const paid = q0.treasury.payMultihop(q2.treasury.nodeId, 1_000, 1);
  const paying = watch(paid);
  await waitFor(() => mesh.holding(q2.name, p.name) > 0, WAIT_MS);
  mesh.onSeal = undefined;
  assert.equal(paying.ok, null);
  assert.equal(records(b1)[0]?.phase, 'committed', 'the backup holds the committed record');
  mesh.crash(p.name);
  await waitFor(() => b1.treasury.info().committee!.role === 'primary', WAIT_MS);
  // The new primary's host dials the committee's channel peers; they rebind on its certificate.
  await mesh.link(b1.name, q0.name);
  await mesh.link(b1.name, q2.name);
  const res = await paid;
  assert.deepEqual(res.route, [q0.treasury.nodeId, T, q2.treasury.nodeId], 'the committee still by its treasury id');
  await waitFor(() => unlocked([q0, b1, b2, q2]) && resolved(after()) && replicated(line()), WAIT_MS);
  assert.deepEqual(outcome(after(), channels, before), [1_000n, 1_000n], 'every channel in the new state');
  for (const ch of channels)
    assert.equal(b2.treasury.channel(ch).local_balance_sat, b1.treasury.channel(ch).local_balance_sat);
});

test('routed payments go on through the new primary, which announces for the committee with the proof of its view', async () => {
  b1.treasury.multihop.gossip();
  await waitFor(() => [q0, q2].every((n) => n.treasury.multihop.graph.get(T)?.epoch === 1), WAIT_MS);
  const before = balances(after(), channels);
  const res = await q0.treasury.payMultihop(q2.treasury.nodeId, 700, 1);
  assert.deepEqual(res.route, [q0.treasury.nodeId, T, q2.treasury.nodeId]);
  await waitFor(() => unlocked([q0, b1, q2]), WAIT_MS); // the unlock wave reaches the destination after the payer answers
  const back = await q2.treasury.payMultihop(q0.treasury.nodeId, 200, 1);
  assert.deepEqual(back.route, [q2.treasury.nodeId, T, q0.treasury.nodeId]);
  await waitFor(() => unlocked([q0, b1, b2, q2]) && resolved(after()) && replicated(line()), WAIT_MS);
  assert.deepEqual(outcome(after(), channels, before), [500n, 500n]);
  // The committee itself, by its treasury id: one channel, to the member it is bound to now.
  const direct = await q0.treasury.payMultihop(T, 100, 1);
  assert.deepEqual(direct.route, [q0.treasury.nodeId, T]);
  await waitFor(() => unlocked([q0, b1, b2, q2]) && resolved(after()) && replicated(line()), WAIT_MS);
  assert.deepEqual(outcome(after(), channels, before), [600n, 500n]);
  // Each neighbour maps the committee to the member its channel is bound to, and back.
  assert.equal(sessionOf(q0.treasury.state, T), b1.treasury.nodeId);
  assert.equal(treasuryOf(q0.treasury.state, b1.treasury.nodeId), T);
});

/** The committee's announcement as q0 holds it, re-signed with `key` and with `seq` raised, to q0 from `from`. */
function forge(key: string, by: SpeakerProof | undefined, from = b1): number {
  const known = q0.treasury.multihop.graph.get(T)!;
  const ann = {
    ...known.ann,
    seq: known.ann.seq + 1_000,
    channels: known.ann.channels.map((c) => ({ ...c, cap: '99999999' })),
  };
  void q0.treasury.multihop.handle(from.treasury.nodeId, {
    t: 'gossip',
    ann,
    sig: signAnnouncement(ann, key),
    ...(by ? { by } : {}),
  });
  return q0.treasury.multihop.graph.get(T)!.ann.seq;
}

test("announcements for the committee count only from its certified primary, never on a member's word", () => {
  const known = q0.treasury.multihop.graph.get(T)!;
  const proof = known.by!;
  const seq = known.ann.seq;
  assert.ok(proof, 'the new primary says why it speaks for the committee');
  assert.equal(forge(b1.treasury.state.identityKey, undefined), seq, "the new primary's key without the proof");
  assert.equal(forge(b2.treasury.state.identityKey, proof), seq, "another member with the primary's proof");
  assert.equal(forge(p.treasury.state.identityKey, undefined), seq, 'the former primary, in the founding view');
  // The proof itself, to a treasury that has not seen this committee yet.
  const fresh = () => new Speakers(() => q0.treasury.state.config);
  assert.deepEqual(fresh().check(T, proof), { signer: b1.treasury.nodeId, epoch: 1 });
  const tampered: Array<[string, SpeakerProof]> = [
    ['one vote', { ...proof, cert: { ...proof.cert, votes: proof.cert.votes.slice(0, 1) } }],
    ['a vote twice', { ...proof, cert: { ...proof.cert, votes: [proof.cert.votes[0]!, proof.cert.votes[0]!] } }],
    ['another member first', { ...proof, cert: { ...proof.cert, members: [...proof.cert.members].reverse() } }],
    [
      'a roster without its quotes',
      { ...proof, members: proof.members.map((m, i) => ({ ...m, quote: proof.members[(i + 1) % 3]!.quote })) },
    ],
    ['a roster led by another', { ...proof, members: [...proof.members].reverse() }],
  ];
  for (const [what, by] of tampered) assert.equal(fresh().check(T, by), null, what);
  assert.equal(fresh().check(q0.treasury.nodeId, proof), null, "another treasury's name on the committee's view");
  // Once the view is known, the founding view is over for good.
  const s = fresh();
  s.check(T, proof);
  assert.equal(s.check(T, undefined), null);
  // And the genuine proof, re-signed by the primary with a newer announcement, is taken.
  assert.equal(forge(b1.treasury.state.identityKey, proof), seq + 1_000);
});

test("path messages from the committee's former primary count for nothing", async () => {
  assert.equal(treasuryOf(q0.treasury.state, p.treasury.nodeId), null, 'the founding primary speaks for nobody now');
  // A payment held at LOCK: the destination's SIGN is kept from the committee.
  mesh.hold(q2.name, b1.name);
  const before = balances(after(), channels);
  const paying = watch(q0.treasury.payMultihop(q2.treasury.nodeId, 300, 1));
  await waitFor(() => mesh.holding(q2.name, b1.name) > 0, WAIT_MS);
  const pid = records(q0).find((r) => r.phase === 'locked')!.pid;
  await q0.treasury.multihop.handle(p.treasury.nodeId, { t: 'mh_abort', pid, code: 'peer_refused' });
  await q0.treasury.multihop.handle(p.treasury.nodeId, { t: 'mh_release', pid });
  assert.equal(q0.treasury.state.multihop![pid]!.phase, 'locked', "the former primary's word is not heard");
  assert.equal(paying.ok, null);
  mesh.deliver(q2.name, b1.name);
  await waitFor(() => paying.ok !== null && unlocked([q0, b1, b2, q2]) && resolved(after()), WAIT_MS);
  assert.equal(paying.ok, true);
  assert.deepEqual(outcome(after(), channels, before), [300n, 300n], 'the payment went on, all new');
});
