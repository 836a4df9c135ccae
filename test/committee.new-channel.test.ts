// run-tests lane: in-process
/**
 * New channels to a committee whose view changed (docs/protocol/committees.md, "The channel peer"): after
 * a removal and a promotion the primary is no longer first in the roster proof (the formation order), so
 * its `roster` carries the certificate of its view and the roster changes before it. A lone node then
 * opens a channel to it, or is opened to by it, verifies that proof, splits its keys and pays; every
 * forgery of that proof (a vote, a missing or altered link, another primary, a removed member's vote, an
 * older view) is refused and no key goes out. In-process committees with real signatures and a fake chain.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hexToBytes } from '../enclave-sim/encoding.ts';
import type { ChannelMessage } from '../src/enclave/protocol/messages.ts';
import { signVote, type ViewCert } from '../src/enclave/committee/view.ts';
import type { RosterProof } from '../src/enclave/committee/roster.ts';
import type { TreasuryError } from '../src/enclave/treasury/errors.ts';
import { Mesh, payAndWait, removeLastThenLosePrimary, WAIT_MS, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';

type RosterMessage = Extract<ChannelMessage, { t: 'roster' }>;

/**
 * A 2-of-4 committee p, b1, b2, b3 that removed b3 (epoch 1) and then lost p, so b1 is primary at epoch 2:
 * first in none of the rosters a peer may have verified before.
 */
async function promotedAfterRemoval() {
  const mesh = new Mesh({ replyTimeoutMs: 20_000, multihopTimeoutMs: 20_000, promotionTimeoutMs: 1_500 });
  const [p, b1, b2, b3] = (await mesh.committee(['p', 'b1', 'b2', 'b3'], 2)) as [
    MeshNode,
    MeshNode,
    MeshNode,
    MeshNode,
  ];
  await removeLastThenLosePrimary(mesh, [p, b1, b2, b3]);
  assert.equal(b1.treasury.info().committee!.epoch, 2);
  return { mesh, p, b1, b2, b3 };
}

/** The `roster` message `node`, a committee primary, sends its channel peers. */
function rosterMessageOf(node: MeshNode, ch: string): RosterMessage {
  const c = (node.treasury as unknown as { committee: { rosterProof(): RosterProof | null } }).committee;
  return structuredClone({ t: 'roster', ch, ...c.rosterProof()! }) as RosterMessage;
}

/** Hands a channel message to `to` as if it came over its attested session with `fromId`. */
function deliver(to: MeshNode, fromId: string, msg: ChannelMessage): Promise<void> {
  return (to.treasury as unknown as { apply(p: string, m: ChannelMessage): Promise<void> }).apply(fromId, msg);
}

const refusals = (n: MeshNode) => n.events.filter((e) => e.type === 'roster_refused').length;
const lastRefusal = (n: MeshNode) => {
  const e = n.events.filter((ev) => ev.type === 'roster_refused').at(-1);
  return e && 'reason' in e ? e.reason : '';
};

test('after a removal and a promotion, a lone node opens a new channel to the committee, verifies its view and pays', async () => {
  const { mesh, p, b1, b2 } = await promotedAfterRemoval();
  const r = await mesh.add('r');
  await mesh.link('r', 'b1');
  const ch = (await r.treasury.openChannel(b1.treasury.nodeId, r.payoutAddress)).channel_id;
  await waitFor(() => !!r.treasury.state.channels[ch]?.peerRoster, WAIT_MS);
  assert.equal(refusals(r), 0);
  // What r keeps: the proof in the formation order (peers split in it), the view that makes b1 primary,
  // and the removal that leads there from the proof.
  const roster = r.treasury.state.channels[ch]!.peerRoster!;
  assert.equal(roster.members[0], p.treasury.nodeId);
  assert.equal(roster.view!.epoch, 2);
  assert.equal(roster.view!.members[0], b1.treasury.nodeId);
  assert.equal(roster.changes!.length, 1);
  assert.equal(roster.changes![0]!.epoch, 1);
  // Its deposit goes to the committee as shares, and it pays the committee on the new channel.
  await r.treasury.addDeposit(ch, await mesh.deposit('r', 60_000n));
  await waitFor(() => b1.treasury.channel(ch).status === 'open', WAIT_MS);
  assert.ok(r.treasury.state.deposits[Object.keys(r.treasury.state.deposits)[0]!]!.peerShares);
  await payAndWait(r, ch, [1_500]);
  await waitFor(() => b1.treasury.channel(ch).total_received_sat === '1500', WAIT_MS);
  await waitFor(() => b2.treasury.state.channels[ch]?.received === 1_500n, WAIT_MS);

  // The committee's primary opens a channel to another lone node: the same proof comes before `open`.
  const s = await mesh.add('s');
  await mesh.link('b1', 's');
  const ch2 = (await b1.treasury.openChannel(s.treasury.nodeId, b1.treasury.state.config.payoutAddress)).channel_id;
  await s.treasury.addDeposit(ch2, await mesh.deposit('s', 40_000n));
  await waitFor(() => s.treasury.channel(ch2).status === 'open', WAIT_MS);
  assert.equal(refusals(s), 0);
  assert.equal(s.treasury.state.channels[ch2]!.peerRoster!.view!.members[0], b1.treasury.nodeId);
  await payAndWait(s, ch2, [900]);
  await waitFor(() => b1.treasury.channel(ch2).total_received_sat === '900', WAIT_MS);
});

test("a forged proof of the committee's view is refused and no key goes out: votes, links, primary, a removed member, an older view", async () => {
  const { mesh, p, b1, b2, b3 } = await promotedAfterRemoval();
  const x = await mesh.add('x');
  await mesh.link('x', 'b1');
  const genuine = rosterMessageOf(b1, '00'.repeat(32));
  const cert = genuine.cert!;
  const removal = genuine.chain![0]!;
  assert.equal(cert.epoch, 2);
  assert.equal(removal.epoch, 1);
  const ids = [b1, b2, p].map((n) => n.treasury.nodeId);
  const keyOf = (n: MeshNode) => hexToBytes(n.treasury.state.identityKey);
  const votesOf = (c: ViewCert, voters: MeshNode[]) =>
    voters.map((n) => ({ node_id: n.treasury.nodeId, sig: signVote(c, keyOf(n)) }));
  const forgeries: Array<[string, Partial<RosterMessage>, RegExp]> = [
    // The proof alone, as before views were sent with it: its first member is not the session peer.
    ['no certificate', { cert: undefined, chain: undefined }, /first member is not the session peer/],
    [
      'a forged vote',
      { cert: { ...cert, votes: [cert.votes[0]!, { node_id: ids[1]!, sig: cert.votes[0]!.sig }] } },
      /1 valid votes, 2 needed/,
    ],
    ['the removal left out', { chain: undefined }, /does not list every member/],
    [
      'the removal altered',
      { chain: [{ ...removal, members: [...removal.members.slice(0, 2), b3.treasury.nodeId] }] },
      /0 valid votes, 3 needed/,
    ],
    // A removed member never counts: b3's vote for the promotion instead of b2's.
    ['a removed member voting', { cert: { ...cert, votes: votesOf(cert, [b1, b3]) } }, /1 valid votes, 2 needed/],
    // A view that makes another member primary than the one speaking (b2's view, sent by b1).
    [
      'another primary',
      (() => {
        const spec = { ...cert, members: [ids[1]!, ids[0]!, ids[2]!] };
        return { cert: { ...spec, votes: votesOf(spec, [b1, b2]) } };
      })(),
      /another member primary than the session peer/,
    ],
  ];
  const verified = () =>
    (x.treasury as unknown as { peerRosters: { verified(id: string): unknown } }).peerRosters.verified(
      b1.treasury.nodeId,
    );
  for (const [i, [what, change, why]] of forgeries.entries()) {
    const before = refusals(x);
    const msg = { ...genuine, ch: i.toString(16).padStart(64, '0'), ...change } as RosterMessage;
    for (const k of Object.keys(msg) as Array<keyof RosterMessage>) if (msg[k] === undefined) delete msg[k];
    await deliver(x, b1.treasury.nodeId, msg);
    assert.equal(refusals(x), before + 1, `${what}: refused`);
    assert.match(lastRefusal(x), why);
    assert.equal(verified(), undefined, `${what}: nothing taken`);
  }
  // An older view of the same committee once a newer one was verified: p's removal view, sent by p.
  await deliver(x, b1.treasury.nodeId, genuine);
  assert.ok(verified(), 'the genuine proof verifies');
  const before = refusals(x);
  const stale: RosterMessage = { ...genuine, ch: 'ee'.repeat(32), cert: removal };
  delete stale.chain;
  await deliver(x, p.treasury.nodeId, stale);
  assert.equal(refusals(x), before + 1, 'an older view: refused');
  assert.match(lastRefusal(x), /view 1 is older than view 2/);

  // A primary that sends a forged view with its roster at channel open gets no key, whole or shared.
  const y = await mesh.add('y');
  await mesh.link('y', 'b1');
  const coordinator = (b1.treasury as unknown as { committee: { rosterProof(): RosterProof | null } }).committee;
  coordinator.rosterProof = () => ({ ...structuredClone(genuine), cert: { ...cert, votes: votesOf(cert, [b1, b3]) } });
  const ch = (await y.treasury.openChannel(b1.treasury.nodeId, y.payoutAddress)).channel_id;
  await waitFor(() => refusals(y) > 0, WAIT_MS);
  assert.match(lastRefusal(y), /1 valid votes, 2 needed/);
  const dep = await mesh.deposit('y', 30_000n);
  await assert.rejects(y.treasury.addDeposit(ch, dep), (e: TreasuryError) => e.code === 'roster_unknown');
  assert.equal(y.treasury.state.deposits[dep]!.status, 'free');
  assert.equal(y.treasury.state.deposits[dep]!.peerShares, undefined);
});

test("a committee opens a new channel to a promoted committee: its backups take the other's view with the roster, and it pays", async () => {
  const mesh = new Mesh({ replyTimeoutMs: 20_000, multihopTimeoutMs: 20_000, promotionTimeoutMs: 1_500 });
  const [, a1, a2] = (await mesh.committee(['a0', 'a1', 'a2'])) as [MeshNode, MeshNode, MeshNode];
  const [b0, b1, b2] = (await mesh.committee(['b0', 'b1', 'b2'])) as [MeshNode, MeshNode, MeshNode];
  mesh.crash('a0');
  await waitFor(() => a1.treasury.info().committee!.role === 'primary', WAIT_MS);
  await waitFor(() => a2.treasury.info().committee!.epoch === 1, WAIT_MS);
  await mesh.link('b0', 'a1');
  const ch = (await b0.treasury.openChannel(a1.treasury.nodeId, b0.treasury.state.config.payoutAddress)).channel_id;
  await b0.treasury.addDeposit(ch, await mesh.deposit('b0', 80_000n));
  await waitFor(() => a1.treasury.channel(ch).status === 'open', WAIT_MS);
  assert.equal(refusals(b0), 0);
  // b's backups hold the same proof of a's view (update rules: checked again, from the proof alone).
  for (const m of [b0, b1, b2])
    await waitFor(() => m.treasury.state.channels[ch]?.peerRoster?.view?.members[0] === a1.treasury.nodeId, WAIT_MS);
  await payAndWait(b0, ch, [2_500]);
  await waitFor(() => a1.treasury.channel(ch).total_received_sat === '2500', WAIT_MS);
  await waitFor(() => a2.treasury.state.channels[ch]?.received === 2_500n, WAIT_MS);
});
