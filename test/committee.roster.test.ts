// run-tests lane: in-process
/**
 * Members removed as a view change (docs/protocol/committees.md, "Roster change"), at the protocol level:
 * in-process committees with real signatures and a fake chain. The certificate rules (one member removed
 * or one added at the tail, the primary and m kept, q votes of the CURRENT roster), a dead member removed
 * by the primary with the votes of the others, refusals that change nothing, and a backup that votes for
 * no roster change the primary may not propose and adopts no certificate without a quorum.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { publicKeyOf, randomPrivateKey } from '../src/crypto/secp256k1.ts';
import { bytesToHex, hexToBytes } from '../enclave-sim/encoding.ts';
import type { CommitteeMessage } from '../src/enclave/protocol/messages.ts';
import { checkViewCert, followCerts, followPeerView } from '../src/enclave/committee/roster-change.ts';
import { signVote, type ViewCert, type ViewSpec } from '../src/enclave/committee/view.ts';
import { TreasuryError } from '../src/enclave/treasury/errors.ts';
import type { SessionMessage } from '../src/enclave/protocol/messages.ts';
import {
  Mesh,
  payAndWait,
  platformIdOf,
  removeLastThenLosePrimary,
  spy,
  WAIT_MS,
  type MeshNode,
} from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';

/** A member identity for certificate tests: its key and node id. */
function member() {
  const key = randomPrivateKey();
  return { key, id: bytesToHex(publicKeyOf(key)) };
}

function certOf(spec: ViewSpec, voters: Array<{ key: Uint8Array; id: string }>): ViewCert {
  return { ...spec, votes: voters.map((v) => ({ node_id: v.id, sig: signVote(spec, v.key) })) };
}

const [A, B, C, D, E] = [member(), member(), member(), member(), member()];
const roster4 = { members: [A.id, B.id, C.id, D.id], threshold: 2 };
const spec = (members: string[], extra: Partial<ViewSpec> = {}): ViewSpec => ({
  treasury_id: A.id,
  epoch: 1,
  members,
  chain: members.length,
  threshold: 2,
  ...extra,
});

test('certificate rules: one member removed or one added at the tail, with q votes of the current roster', () => {
  // q = max(2, 4/2 + 1) = 3 votes of the 4 current members.
  const removal = certOf(spec([A.id, B.id, C.id]), [A, B, C]);
  assert.deepEqual(checkViewCert(removal, roster4, A.id, 0).members, [A.id, B.id, C.id]);
  const addition = certOf(spec([A.id, B.id, C.id, D.id, E.id]), [A, B, C]);
  assert.equal(checkViewCert(addition, roster4, A.id, 0).members.length, 5);

  const refused = (cert: ViewCert, why: RegExp) => assert.throws(() => checkViewCert(cert, roster4, A.id, 0), why);
  // A swap (one out, one in) at once: it could hand the committee to outsiders one step at a time faster than q allows.
  refused(certOf(spec([A.id, B.id, C.id, E.id]), [A, B, C]), /removes one member or adds one/);
  refused(certOf(spec([A.id, B.id]), [A, B, C]), /removes one member or adds one/);
  refused(certOf(spec([A.id, B.id, E.id, C.id, D.id]), [A, B, C]), /removes one member or adds one/);
  refused(certOf(spec([B.id, C.id, D.id]), [A, B, C]), /keeps the primary/);
  refused(certOf(spec([A.id, B.id, C.id], { threshold: 3 }), [A, B, C]), /keeps the threshold/);
  refused(certOf(spec([A.id, B.id, C.id], { chain: 1 }), [A, B, C]), /cannot hold a quorum/);
  // Votes: too few of the current roster; the added member's vote does not count; nor do forged ones.
  refused(certOf(spec([A.id, B.id, C.id, D.id, E.id]), [A, B]), /2 valid votes, 3 needed/);
  refused(certOf(spec([A.id, B.id, C.id, D.id, E.id]), [A, B, E]), /2 valid votes, 3 needed/);
  const forged = certOf(spec([A.id, B.id, C.id]), [A, B, C]);
  forged.votes[2] = { node_id: C.id, sig: signVote(spec([A.id, B.id, D.id]), C.key) };
  refused(forged, /2 valid votes, 3 needed/);
  // A promotion's votes do not make a roster change (the threshold is in what voters sign), nor the reverse.
  const promo = certOf(spec([B.id, C.id, D.id, A.id], { threshold: undefined, chain: 3 }), [B, C, D]);
  assert.throws(() => checkViewCert({ ...promo, members: [A.id, B.id, C.id], threshold: 2 }, roster4, A.id, 0));
  const { threshold: _m, ...stripped } = removal;
  assert.throws(() => checkViewCert(stripped, roster4, A.id, 0));
  // Removing down to m members is refused (a 2-of-3 cannot lose one more and still sign with one down).
  const roster3 = { members: [A.id, B.id, C.id], threshold: 2 };
  assert.throws(() => checkViewCert(certOf(spec([A.id, B.id]), [A, B, C]), roster3, A.id, 0), /cannot sign/);
});

test('a chain of certificates leads from a roster verified earlier to the current one, each link checked', () => {
  const promo = certOf(spec([B.id, C.id, D.id, A.id], { threshold: undefined, chain: 3 }), [B, C, D]);
  // After the promotion, B is primary: it removes A, then adds E.
  const removal = certOf(spec([B.id, C.id, D.id], { epoch: 2 }), [B, C, D]);
  const addition = certOf(spec([B.id, C.id, D.id, E.id], { epoch: 3 }), [B, C]);
  const end = followCerts([promo, removal, addition], roster4, A.id, 0);
  assert.deepEqual(end.roster.members, [B.id, C.id, D.id, E.id]);
  assert.equal(end.cert!.epoch, 3);
  // A link out of order, or one voted by members the previous link does not establish, breaks the chain.
  assert.throws(() => followCerts([promo, addition], roster4, A.id, 0));
  const byOutsider = certOf(spec([B.id, C.id, D.id, E.id], { epoch: 3 }), [B, E]);
  assert.throws(() => followCerts([promo, removal, byOutsider], roster4, A.id, 0), /votes/);
});

/** Hands `msg` to `to`'s committee coordinator as if it came over its session with `from`. */
function deliverCommittee(to: MeshNode, from: MeshNode, msg: CommitteeMessage): Promise<void> {
  const c = (to.treasury as unknown as { committee: { handle(p: string, m: CommitteeMessage): Promise<void> } })
    .committee;
  return c.handle(from.treasury.nodeId, msg);
}

async function fourMembers() {
  const mesh = new Mesh({ replyTimeoutMs: 20_000, promotionTimeoutMs: 0 });
  const nodes = (await mesh.committee(['p', 'b1', 'b2', 'b3'], 2)) as [MeshNode, MeshNode, MeshNode, MeshNode];
  return { mesh, nodes };
}

test('the primary removes a dead member with the votes of the others; the committee goes on replicating', async () => {
  const { mesh, nodes } = await fourMembers();
  const [p, b1, b2, b3] = nodes;
  mesh.crash('b3');
  await waitFor(
    () => !p.treasury.info().committee!.members.find((m) => m.node_id === b3.treasury.nodeId)!.connected,
    WAIT_MS,
  );
  const res = await p.treasury.removeMember(b3.treasury.nodeId);
  assert.equal(res.epoch, 1);
  const three = [p, b1, b2].map((n) => n.treasury.nodeId);
  assert.deepEqual(res.members, three);
  for (const n of [b1, b2])
    await waitFor(() => {
      const v = n.treasury.info().committee!;
      return v.epoch === 1 && v.size === 3 && v.members.map((m) => m.node_id).join() === three.join();
    }, WAIT_MS);
  const cert = p.treasury.state.committee!.view!;
  assert.equal(cert.threshold, 2);
  assert.ok(cert.votes.length >= 3 && cert.votes.every((v) => v.node_id !== b3.treasury.nodeId));
  assert.equal(p.treasury.state.committee!.rosterViews!.length, 1);

  // A new deposit is 2-of-3 over the members left, and replicated to both of them.
  const dep = await p.treasury.newDeposit();
  assert.equal(p.treasury.state.deposits[dep.deposit_id]!.pubkeys.length, 3);
  for (const n of [b1, b2]) await waitFor(() => !!n.treasury.state.committee!.memberKeys[dep.deposit_id], WAIT_MS);

  // Removing one more would leave m members: refused, nothing changes.
  await assert.rejects(
    p.treasury.removeMember(b2.treasury.nodeId),
    (e: TreasuryError) => e.code === 'roster_too_small',
  );
  assert.equal(p.treasury.info().committee!.epoch, 1);
  assert.equal(p.treasury.info().committee!.size, 3);
});

test('refusals change nothing: a non-member, the primary itself, too few live members, a backup asked', async () => {
  const { mesh, nodes } = await fourMembers();
  const [p, b1, b2, b3] = nodes;
  const before = JSON.stringify(p.treasury.state.committee);
  const code = (e: unknown) => (e as TreasuryError).code;
  await assert.rejects(p.treasury.removeMember(E.id), (e) => code(e) === 'not_a_member');
  await assert.rejects(p.treasury.removeMember(p.treasury.nodeId), (e) => code(e) === 'invalid_argument');
  await assert.rejects(b1.treasury.removeMember(b2.treasury.nodeId), (e) => code(e) === 'not_primary');
  // b2 and b3 both down: removing b3 would leave p, b1 live and b2 dead, 2 live < m + 1 = 3.
  mesh.crash('b2');
  mesh.crash('b3');
  await waitFor(() => p.treasury.info().committee!.members.filter((m) => m.connected).length === 2, WAIT_MS);
  await assert.rejects(p.treasury.removeMember(b3.treasury.nodeId), (e) => code(e) === 'roster_too_small');
  assert.equal(JSON.stringify(p.treasury.state.committee), before);
});

test('a backup votes for no roster change the primary may not propose and adopts none without a quorum', async () => {
  const { nodes } = await fourMembers();
  const [p, b1, b2] = nodes;
  const ids = nodes.map((n) => n.treasury.nodeId);
  const out = spy(b1);
  const propose = (members: string[]) =>
    deliverCommittee(b1, p, { t: 'c_propose', epoch: 1, members, chain: 3, threshold: 2, seq: 0 });
  // Swapping b3 for an outsider, and removing two at once: no vote.
  await propose([ids[0]!, ids[1]!, ids[2]!, E.id]);
  await propose([ids[0]!, ids[1]!]);
  // The same removal proposed by a backup rather than the primary: no vote either.
  await deliverCommittee(b1, b2, {
    t: 'c_propose',
    epoch: 1,
    members: ids.slice(0, 3),
    chain: 3,
    threshold: 2,
    seq: 0,
  });
  assert.equal(out.filter((s) => s.msg.t === 'c_vote').length, 0);
  assert.equal(b1.treasury.state.committee!.vote, undefined, 'no vote recorded');

  // The primary adds a member with only its own vote (and the newcomer's): b1 does not adopt it.
  const added = spec([...ids, E.id], { treasury_id: ids[0]! });
  const cert: ViewCert = { ...added, votes: [{ node_id: E.id, sig: signVote(added, E.key) }] };
  await deliverCommittee(b1, p, { t: 'c_view', cert });
  assert.equal(b1.treasury.info().committee!.epoch, 0);
  assert.equal(b1.treasury.info().committee!.size, 4);

  // A proposal it may make gets exactly one vote, and a second one in the same epoch none.
  await propose(ids.slice(0, 3));
  await propose([ids[0]!, ids[1]!, ids[3]!]);
  const votes = out.filter((s) => s.msg.t === 'c_vote');
  assert.equal(votes.length, 1);
  assert.equal(votes[0]!.to, ids[0]);
});

test('a channel peer follows the committee through a removal and a later promotion by the chain of certificates', async () => {
  const mesh = new Mesh({ replyTimeoutMs: 20_000, multihopTimeoutMs: 20_000, promotionTimeoutMs: 1_500 });
  const [p, b1, b2, b3] = (await mesh.committee(['p', 'b1', 'b2', 'b3'], 2)) as [
    MeshNode,
    MeshNode,
    MeshNode,
    MeshNode,
  ];
  const q = await mesh.add('q');
  await mesh.link('p', 'q');
  const ch = (await p.treasury.openChannel(q.treasury.nodeId, p.payoutAddress)).channel_id;
  await p.treasury.addDeposit(ch, await mesh.deposit('p', 100_000n));
  await waitFor(() => q.treasury.channel(ch).status === 'open' && !!q.treasury.state.channels[ch]!.peerRoster, WAIT_MS);
  assert.equal(q.treasury.state.channels[ch]!.peerRoster!.members.length, 4);
  const atOpen = structuredClone(q.treasury.state.channels[ch]!.peerRoster!);

  // q is cut off from p before the removal, so it never hears p announce it: it must follow the chain.
  // (Had p's announcement reached q, q would know the three-member roster and the promotion alone would
  // rightly verify against it: which one q holds must not depend on how fast p's seal was acknowledged.)
  mesh.unlink('p', 'q');
  await removeLastThenLosePrimary(mesh, [p, b1, b2, b3]);
  const promo = b1.treasury.state.committee!.view!;
  assert.equal(promo.epoch, 2);
  assert.equal(promo.threshold, undefined);
  assert.equal(q.treasury.state.channels[ch]!.peerRoster!.view, undefined, 'q missed the removal');

  // The promotion's certificate alone does not verify against the four members q verified; with the
  // removal's certificate before it, it does (and a chain whose link was tampered with does not).
  assert.throws(() => followPeerView(atOpen, promo), /does not list every member/);
  const removal = b1.treasury.state.committee!.rosterViews![0]!;
  assert.equal(followPeerView(atOpen, promo, [removal]).cert.epoch, 2);
  const tampered = { ...removal, members: removal.members.slice(0, 2).concat(b3.treasury.nodeId) };
  assert.throws(() => followPeerView(atOpen, promo, [tampered]), /valid votes/);
  // A peer that did adopt the removal holds the three-member roster: the promotion's 2 votes of it (q = 2)
  // are proof enough, but the removed member never counts, not even standing in for a member that voted.
  const knowsRemoval = { ...atOpen, view: followPeerView(atOpen, removal).cert };
  assert.equal(followPeerView(knowsRemoval, promo).cert.epoch, 2);
  const b3Vote = { node_id: b3.treasury.nodeId, sig: signVote(promo, hexToBytes(b3.treasury.state.identityKey)) };
  const withRemoved = { ...promo, votes: [promo.votes.find((v) => v.node_id === b1.treasury.nodeId)!, b3Vote] };
  assert.throws(() => followPeerView(knowsRemoval, withRemoved), /1 valid votes, 2 needed/);
  assert.throws(() => followPeerView(atOpen, withRemoved, [removal]), /1 valid votes, 2 needed/);
  await mesh.link('b1', 'q');
  // With the removal's certificate before it (what b1 announces), q rebinds the channel and pays on.
  await waitFor(() => q.treasury.state.channels[ch]!.peerId === b1.treasury.nodeId, WAIT_MS);
  const stored = q.treasury.state.channels[ch]!.peerRoster!;
  assert.equal(stored.changes!.length, 1);
  assert.deepEqual(stored.view!.members.slice().sort(), [b1, b2, p].map((n) => n.treasury.nodeId).sort());
  await payAndWait(b1, ch, [500]);
  await waitFor(() => q.treasury.channel(ch).total_received_sat === '500', WAIT_MS);
});

/** A 2-of-3 committee p, b1, b2 with a lone channel peer q (a funded channel), and a fresh backup n linked to all. */
async function committeeWithNewcomer(replyTimeoutMs = 20_000) {
  const mesh = new Mesh({ replyTimeoutMs, promotionTimeoutMs: 0 });
  const [p, b1, b2] = (await mesh.committee(['p', 'b1', 'b2'], 2)) as [MeshNode, MeshNode, MeshNode];
  const q = await mesh.add('q');
  await mesh.link('p', 'q');
  const ch = (await p.treasury.openChannel(q.treasury.nodeId, p.payoutAddress)).channel_id;
  await p.treasury.addDeposit(ch, await mesh.deposit('p', 100_000n));
  await waitFor(() => q.treasury.channel(ch).status === 'open' && !!q.treasury.state.channels[ch]!.peerRoster, WAIT_MS);
  await payAndWait(p, ch, [700]);
  const n = await mesh.add('n', { role: 'backup' });
  for (const m of ['p', 'b1', 'b2']) await mesh.link('n', m);
  return { mesh, p, b1, b2, q, n, ch };
}

test('a node admitted by the primary attests, is voted in at the tail, catches up and replicates; new deposits and channel peers include it', async () => {
  const { p, b1, b2, q, n, ch } = await committeeWithNewcomer();
  const rosterAtOpen = structuredClone(q.treasury.state.channels[ch]!.peerRoster!);
  // Started as a backup of p without a join token: a formed committee refuses it...
  n.treasury.joinCommittee(p.treasury.nodeId, 'n:1');
  await waitFor(() => n.events.some((e) => e.type === 'committee_join_refused'), WAIT_MS);
  assert.equal(p.treasury.info().committee!.size, 3);
  // ...until the operator adds it on the primary.
  const res = await p.treasury.addMember(n.treasury.nodeId, 'n:1');
  const four = [p, b1, b2, n].map((x) => x.treasury.nodeId);
  assert.deepEqual(res, { epoch: 1, members: four });
  for (const x of [p, b1, b2, n])
    await waitFor(() => {
      const v = x.treasury.info().committee!;
      return v.epoch === 1 && v.size === 4 && v.members.map((m) => m.node_id).join() === four.join();
    }, WAIT_MS);
  const nv = n.treasury.info().committee!;
  assert.equal(nv.role, 'backup');
  assert.equal(nv.index, 3);
  assert.equal(nv.chain, 4, 'the newcomer is in the replicating chain');
  // Caught up from the snapshot: the channel with its totals, and the newcomer's address in every replica.
  assert.equal(n.treasury.state.channels[ch]!.sent, 700n);
  for (const x of [b1, b2]) assert.equal(x.treasury.state.committee!.members[3]!.address, 'n:1');
  assert.equal(p.treasury.state.committee!.admission, undefined, 'the admission is used up');

  // Payments go on, each acknowledged by every member of the chain, the newcomer included.
  await payAndWait(p, ch, [300]);
  await waitFor(() => n.treasury.state.channels[ch]!.sent === 1_000n, WAIT_MS);

  // A new deposit is 2-of-4 over the new roster: the newcomer made one of its keys.
  const dep = await p.treasury.newDeposit();
  const d = p.treasury.state.deposits[dep.deposit_id]!;
  assert.equal(d.pubkeys.length, 4);
  assert.equal(d.m, 2);
  await waitFor(() => !!n.treasury.state.committee!.memberKeys[dep.deposit_id], WAIT_MS);
  const nKey = n.treasury.state.committee!.memberKeys[dep.deposit_id]!;
  assert.ok(d.pubkeys.includes(bytesToHex(publicKeyOf(Buffer.from(nKey, 'hex')))));

  // The channel peer followed the addition with the newcomer's quote (kept beside the proof verified at open).
  await waitFor(() => q.treasury.state.channels[ch]!.peerRoster!.view?.epoch === 1, WAIT_MS);
  const roster = q.treasury.state.channels[ch]!.peerRoster!;
  assert.deepEqual(roster.view!.members, four);
  assert.deepEqual(
    roster.added!.map((m) => m.node_id),
    [n.treasury.nodeId],
  );
  assert.equal(roster.proof.length, 3, 'the proof verified at open is kept: peers split in its order');
  // Without the newcomer's quote, or with another member's quote under its id, the same view is refused.
  const cert = p.treasury.state.committee!.view!;
  const trust = q.treasury.state.config;
  assert.throws(() => followPeerView(rosterAtOpen, cert), /no attested quote/);
  assert.throws(() => followPeerView(rosterAtOpen, cert, [], { quotes: {}, trust }), /no attested quote/);
  const b1Quote = rosterAtOpen.proof[1]!.quote;
  assert.throws(
    () => followPeerView(rosterAtOpen, cert, [], { quotes: { [n.treasury.nodeId]: b1Quote }, trust }),
    /does not verify/,
  );
  assert.equal(
    followPeerView(rosterAtOpen, cert, [], { quotes: { [n.treasury.nodeId]: roster.added![0]!.quote }, trust }).added
      .length,
    1,
  );
});

test('adding refusals change nothing: a member, no session, a backup asked, one at a time, a node that never asked to join, a quote of other code', async () => {
  const { mesh, p, b1, n } = await committeeWithNewcomer(1_500);
  const code = (e: unknown) => (e as TreasuryError).code;
  // The committee as it stands (the sequence number moves with every seal, the roster must not).
  const roster = () => {
    const { members, size, epoch, view, rosterViews, vote, quotes, admission, shareOrder } =
      p.treasury.state.committee!;
    return JSON.stringify({ members, size, epoch, view, rosterViews, vote, quotes, admission, shareOrder });
  };
  const before = roster();
  await assert.rejects(p.treasury.addMember(b1.treasury.nodeId, 'b1:1'), (e) => code(e) === 'already_a_member');
  await assert.rejects(p.treasury.addMember(E.id, 'e:1'), (e) => code(e) === 'peer_not_connected');
  await assert.rejects(b1.treasury.addMember(n.treasury.nodeId, 'n:1'), (e) => code(e) === 'not_primary');
  // n was never started to follow p (it did not ask to join): it ignores the admission. Meanwhile another
  // addition (of q, connected too) waits its turn.
  const q = mesh.get('q');
  const first = p.treasury.addMember(n.treasury.nodeId, 'n:1');
  await assert.rejects(p.treasury.addMember(q.treasury.nodeId, 'q:1'), (e) => code(e) === 'roster_change_busy');
  await assert.rejects(first, (e) => code(e) === 'join_not_requested');
  assert.equal(roster(), before);

  // n asks to join, but its quote over its node id is of another measurement: refused, nothing changes.
  n.treasury.joinCommittee(p.treasury.nodeId, 'n:1');
  const t = n.treasury as unknown as { sendNow(peerId: string, msg: SessionMessage): void };
  const send = t.sendNow.bind(n.treasury);
  t.sendNow = (peerId, msg) => {
    if (msg.t === 'c_quote')
      msg = {
        ...msg,
        quote: mesh.service.issueQuote({
          measurement: 'cd'.repeat(32),
          reportData: Buffer.from(msg.quote.reportData, 'hex'),
          nonce: Buffer.from(msg.quote.nonce, 'hex'),
          debug: false,
          platformId: platformIdOf('n'),
        }),
      };
    send(peerId, msg);
  };
  await assert.rejects(p.treasury.addMember(n.treasury.nodeId, 'n:1'), (e) => code(e) === 'attestation_failed');
  assert.equal(roster(), before);
  assert.equal(b1.treasury.info().committee!.size, 3);
});
