// run-tests lane: in-process
/**
 * An added member gets its share of every key a channel peer handed over before it joined
 * (docs/protocol/committees.md, "Re-splitting handed-over keys"), at the protocol level: in-process
 * committees with real shares, signatures and sealed states, a fake chain. A lone peer q funds a channel
 * with a committee, so its deposit key is held only as shares; then members are replaced, in both orders
 * a committee allows (a 2-of-3 must add before it removes: removing first would leave fewer than m + 1).
 * After each change the newcomer holds a share of the current split, its share with any one other
 * current member's rebuilds q's key, the removed member's old shares rebuild nothing with the current
 * ones, and a settlement signed by the newcomer and one other member (the others down) spends q's deposit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesToHex, hexToBytes } from '../enclave-sim/encoding.ts';
import { publicKeyOf } from '../src/crypto/secp256k1.ts';
import { pairs, rebuilds, resplitDone, sharesIn, spendsDeposit } from './helpers/reshare.ts';
import { Mesh, payAndWait, WAIT_MS, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';

/**
 * A committee of `names` (m = 2) and a lone peer q with a channel only q funds, q having paid once: the
 * committee holds q's key as shares only (its own deposits are not needed for the settlement below).
 */
async function scene(names: string[]) {
  const mesh = new Mesh({ replyTimeoutMs: 20_000, multihopTimeoutMs: 20_000, promotionTimeoutMs: 0 });
  const nodes = await mesh.committee(names, 2);
  const [p] = nodes as [MeshNode];
  const q = await mesh.add('q');
  await mesh.link('p', 'q');
  const ch = (await p.treasury.openChannel(q.treasury.nodeId, p.payoutAddress)).channel_id;
  await waitFor(() => q.treasury.channel(ch).status === 'open' && !!q.treasury.state.channels[ch]!.peerRoster, WAIT_MS);
  const depQ = await mesh.deposit('q', 50_000n);
  await q.treasury.addDeposit(ch, depQ);
  await waitFor(() => nodes.every((n) => n.treasury.state.channels[ch]?.peerDeposits.length === 1), WAIT_MS);
  await payAndWait(q, ch, [1_000]);
  await waitFor(() => nodes.every((n) => n.treasury.state.channels[ch]!.received === 1_000n), WAIT_MS);
  const qKey = q.treasury.state.deposits[depQ]!.privkeys[0]!;
  return { mesh, nodes, p, q, ch, depQ, qKey, qPub: bytesToHex(publicKeyOf(hexToBytes(qKey))) };
}

type Scene = Awaited<ReturnType<typeof scene>>;

/** A fresh node `name`, started to follow p (refused: the committee is formed), then added on p. */
async function addNewcomer({ mesh, p, ch }: Scene, name: string, members: MeshNode[]): Promise<MeshNode> {
  const n = await mesh.add(name, { role: 'backup' });
  for (const m of members) await mesh.link(name, m.name);
  n.treasury.joinCommittee(p.treasury.nodeId, `${name}:1`);
  await waitFor(() => n.events.some((e) => e.type === 'committee_join_refused'), WAIT_MS);
  const { epoch } = await p.treasury.addMember(n.treasury.nodeId, `${name}:1`);
  await waitFor(() => resplitDone([...members, n], ch, epoch), WAIT_MS);
  return n;
}

/** Crashes `name` and removes it on p, once p sees it gone; resolves when the re-split for the rest is done. */
async function removeDead({ mesh, p, ch }: Scene, gone: MeshNode, rest: MeshNode[]): Promise<number> {
  mesh.crash(gone.name);
  await waitFor(() => !p.treasury.info().committee!.members.find((m) => m.node_id === gone.treasury.nodeId)!.connected);
  const { epoch } = await p.treasury.removeMember(gone.treasury.nodeId);
  await waitFor(() => resplitDone(rest, ch, epoch), WAIT_MS);
  return epoch;
}

/**
 * The current members' shares of q's key: each holds one, of split `gen` only; `n`'s with any other
 * member's rebuilds the key (and so does every pair). Returns them by member name.
 */
async function checkCurrentSplit(s: Scene, members: MeshNode[], n: MeshNode, gen: number) {
  const fresh = new Map<string, Uint8Array>();
  for (const x of members) {
    const held = sharesIn(x.treasury.state, s.ch);
    assert.deepEqual([...held.keys()], [gen], `${x.name} holds a share of the current split only`);
    fresh.set(x.name, held.get(gen)!);
  }
  const mine = fresh.get(n.name)!;
  for (const x of members.filter((x) => x !== n))
    assert.ok(await rebuilds([mine, fresh.get(x.name)!], s.qKey, s.qPub), `${n.name}'s share with ${x.name}'s`);
  for (const [a, b] of pairs([...fresh.values()])) assert.ok(await rebuilds([a, b], s.qKey, s.qPub));
  assert.equal(await rebuilds([mine], s.qKey, s.qPub), false, 'one share alone rebuilds nothing');
  return fresh;
}

/** Every share `old` held (of any split) with any current one, or with all of them, rebuilds nothing. */
async function worthless(s: Scene, old: Uint8Array[], fresh: Iterable<Uint8Array>) {
  const current = [...fresh];
  for (const o of old) {
    for (const f of current) assert.equal(await rebuilds([o, f], s.qKey, s.qPub), false);
    assert.equal(await rebuilds([o, ...current], s.qKey, s.qPub), false);
  }
}

/** With the members `down` crashed, the primary settles: the transaction validly spends q's deposit. */
async function settleWith(s: Scene, down: MeshNode[]) {
  for (const d of down) s.mesh.crash(d.name);
  await waitFor(() =>
    down.every((d) => !s.p.treasury.info().committee!.members.find((m) => m.node_id === d.treasury.nodeId)!.connected),
  );
  const res = await s.p.treasury.settle(s.ch, 2);
  const dep = s.q.treasury.state.deposits[s.depQ]!;
  assert.equal(spendsDeposit(res.tx_hex!, dep), res.txid, "the settlement validly spends q's deposit");
}

test("2-of-3, a member replaced (added, then the dead one removed): the newcomer's share rebuilds q's key, the removed one's rebuild nothing", async () => {
  const s = await scene(['p', 'b1', 'b2']);
  const [p, b1, b2] = s.nodes as [MeshNode, MeshNode, MeshNode];
  const b2Formation = sharesIn(b2.treasury.state, s.ch).get(0)!;
  assert.ok(b2Formation, "b2 holds a share of q's split");

  const n = await addNewcomer(s, 'n', [p, b1, b2]);
  const afterAdd = p.treasury.state.committee!.epoch!;
  // (a) + (b) right after the addition: 2-of-4 over p, b1, b2, n.
  await checkCurrentSplit(s, [p, b1, b2, n], n, afterAdd);
  const b2Added = sharesIn(b2.treasury.state, s.ch).get(afterAdd)!;

  const epoch = await removeDead(s, b2, [p, b1, n]);
  assert.ok(epoch > afterAdd);
  // (a) + (b) over the current roster p, b1, n; (c) every share b2 ever held is worthless with theirs.
  const fresh = await checkCurrentSplit(s, [p, b1, n], n, epoch);
  await worthless(s, [b2Formation, b2Added], fresh.values());
  // The funds: p and the newcomer alone (b1 down) sign a settlement that spends q's deposit.
  await settleWith(s, [b1]);
});

test("2-of-4, a dead member removed, then a fresh one added: the newcomer's share rebuilds q's key, the removed one's rebuilds nothing", async () => {
  const s = await scene(['p', 'b1', 'b2', 'b3']);
  const [p, b1, b2, b3] = s.nodes as [MeshNode, MeshNode, MeshNode, MeshNode];
  const b3Formation = sharesIn(b3.treasury.state, s.ch).get(0)!;
  assert.ok(b3Formation);

  await removeDead(s, b3, [p, b1, b2]);
  const n = await addNewcomer(s, 'n', [p, b1, b2]);
  const epoch = p.treasury.state.committee!.epoch!;
  const fresh = await checkCurrentSplit(s, [p, b1, b2, n], n, epoch);
  await worthless(s, [b3Formation], fresh.values());
  // p and the newcomer alone (b1, b2 down) sign a settlement that spends q's deposit.
  await settleWith(s, [b1, b2]);
});
