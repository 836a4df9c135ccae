// run-tests lane: in-process
/**
 * Re-splitting handed-over keys after a roster change (docs/protocol/committees.md, "Re-splitting
 * handed-over keys"), at the protocol level: in-process committees with real shares, signatures and
 * sealed states, a fake chain. After a member is removed, the shares of a lone peer's key are re-split
 * among the members left: m of them rebuild the key, the removed member's old share with their new ones
 * rebuilds nothing, and a settlement signed with the new shares spends the peer's deposit. A primary
 * that crashes in either step leaves the key rebuildable and finishes when it comes back. A backup
 * refuses shares replaced outside a re-split that is due (rule by rule, and over a real session).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesToHex, hexToBytes } from '../enclave-sim/encoding.ts';
import { publicKeyOf, randomPrivateKey } from '../src/crypto/secp256k1.ts';
import { shareKeys } from '../src/enclave/committee/key-boxes.ts';
import { splitSecret } from '../src/enclave/committee/shares.ts';
import { replicaOf, type ReplicaBody } from '../src/enclave/committee/update.ts';
import { checkUpdate } from '../src/enclave/committee/update-rules.ts';
import { decodeState, type PeerDeposit, type TreasuryState } from '../src/enclave/treasury/state.ts';
import type { CommitteeMessage } from '../src/enclave/protocol/messages.ts';
import { Mesh, spy, type MeshNode } from './helpers/treasury-mesh.ts';
import { peerDep, pairs, rebuilds, resplitDone, sharesIn, spendsDeposit } from './helpers/reshare.ts';
import { waitFor } from './helpers/treasury-pair.ts';

const WAIT_MS = 30_000;

/** A 2-of-4 committee p, b1, b2, b3 and a lone peer q with a channel funded both ways: q's key is shared 4 ways. */
async function scene() {
  const mesh = new Mesh({ replyTimeoutMs: 20_000, multihopTimeoutMs: 20_000, promotionTimeoutMs: 0 });
  const nodes = (await mesh.committee(['p', 'b1', 'b2', 'b3'], 2)) as [MeshNode, MeshNode, MeshNode, MeshNode];
  const q = await mesh.add('q');
  await mesh.link('p', 'q');
  const [p] = nodes;
  const ch = (await p.treasury.openChannel(q.treasury.nodeId, p.payoutAddress)).channel_id;
  const depP = await mesh.deposit('p', 100_000n);
  await p.treasury.addDeposit(ch, depP);
  const depQ = await mesh.deposit('q', 50_000n);
  await q.treasury.addDeposit(ch, depQ);
  const [r] = await q.treasury.pay([{ channel_id: ch, amount_sat: 1_000 }]);
  await waitFor(() => q.treasury.channel(ch).total_acked_sat === (r as { position: string }).position, WAIT_MS);
  await waitFor(() => nodes.every((n) => n.treasury.state.channels[ch]?.peerDeposits.length === 1), WAIT_MS);
  const qKey = q.treasury.state.deposits[depQ]!.privkeys[0]!;
  return { mesh, nodes, q, ch, depP, depQ, qKey, qPub: bytesToHex(publicKeyOf(hexToBytes(qKey))) };
}

test("after a member is removed, m of the members left rebuild the peer's key and the removed member's share rebuilds nothing", async () => {
  const { mesh, nodes, q, ch, depP, depQ, qKey, qPub } = await scene();
  const [p, b1, b2, b3] = nodes;
  const oldShareOfB3 = sharesIn(b3.treasury.state, ch).get(0)!;
  assert.ok(oldShareOfB3, 'the member about to be removed holds a share of the granter split');
  mesh.crash('b3');
  await waitFor(() => !p.treasury.info().committee!.members.find((m) => m.node_id === b3.treasury.nodeId)!.connected);
  const { epoch } = await p.treasury.removeMember(b3.treasury.nodeId);
  const left = [p, b1, b2];
  await waitFor(() => resplitDone(left, ch, epoch), WAIT_MS);

  // The members left hold only shares of the new split: the old ones are gone from their states.
  const fresh = left.map((n) => {
    const held = sharesIn(n.treasury.state, ch);
    assert.deepEqual([...held.keys()], [epoch], `${n.name} holds a share of the new split only`);
    return held.get(epoch)!;
  });
  // (b) Any m = 2 of the members left rebuild q's key from their new shares.
  for (const [x, y] of pairs(fresh)) assert.ok(await rebuilds([x, y], qKey, qPub), 'two new shares rebuild the key');
  // (a) The removed member's old share with any of the new ones (or with all of them) rebuilds nothing.
  for (const s of fresh) assert.equal(await rebuilds([oldShareOfB3, s], qKey, qPub), false);
  assert.equal(await rebuilds([oldShareOfB3, ...fresh], qKey, qPub), false);
  // The public key and the deposit stay as the peer granted them.
  assert.equal(peerDep(p.treasury.state, ch).shares![0]!.pubkey, qPub);

  // q grants another deposit, split (as peers split) for the roster proof's four members: the committee
  // takes it and re-splits it for its three at once.
  const depQ2 = await mesh.deposit('q', 20_000n);
  await q.treasury.addDeposit(ch, depQ2);
  await waitFor(() => left.every((n) => n.treasury.state.channels[ch]!.peerDeposits.length === 2), WAIT_MS);
  await waitFor(() => resplitDone(left, ch, epoch), WAIT_MS);

  // A settlement after the removal, signed with the new shares (no member has another), spends q's deposits.
  const res = await p.treasury.settle(ch, 2);
  const spent = [depQ, depQ2].map((id) => q.treasury.state.deposits[id]!);
  for (const dep of [...spent, p.treasury.state.deposits[depP]!]) {
    assert.equal(spendsDeposit(res.tx_hex!, dep), res.txid, 'the settlement validly spends the deposit');
  }
});

test('a primary that crashes in either step of the re-split leaves the key rebuildable and finishes when it restarts', async () => {
  const { mesh, nodes, ch, qKey, qPub } = await scene();
  const [p, b1, b2, b3] = nodes;
  // Crash the primary right after it seals step 1 (the new split beside the old), then after it seals
  // step 2: nothing of that seal leaves it (its frames are dropped until the crash, made once it is linked).
  const steps: string[] = [];
  mesh.onSeal = (name, bytes) => {
    if (name !== 'p') return;
    const d = decodeState(bytes).channels[ch]?.peerDeposits[0];
    const step = d?.reshare ? 'split' : d?.gen ? 'swap' : undefined;
    if (!step || steps.includes(step)) return;
    steps.push(step);
    if (step === 'split') return mesh.crash('p');
    for (const b of ['b1', 'b2']) mesh.block('p', b);
  };
  mesh.crash('b3');
  await waitFor(() => !p.treasury.info().committee!.members.find((m) => m.node_id === b3.treasury.nodeId)!.connected);
  const removing = p.treasury.removeMember(b3.treasury.nodeId).catch(() => undefined);
  await waitFor(() => steps.length === 1, WAIT_MS);
  await removing;
  const backups = [b1, b2];
  /** The backups alone (the primary is down) rebuild q's key from one split they both hold. */
  const backupsRebuild = async () => {
    const held = backups.map((n) => sharesIn(n.treasury.state, ch));
    const gens = [...held[0]!.keys()].filter((g) => held[1]!.has(g));
    for (const g of gens) if (await rebuilds([held[0]!.get(g)!, held[1]!.get(g)!], qKey, qPub)) return true;
    return false;
  };
  assert.ok(await backupsRebuild(), 'after a crash in step 1 the backups still rebuild the key');

  const epoch = () => p.treasury.state.committee!.epoch!;
  await mesh.restart('p', ['b1', 'b2']);
  await waitFor(() => steps.length === 2, WAIT_MS);
  mesh.crash('p');
  for (const b of ['b1', 'b2']) mesh.unblock('p', b);
  assert.ok(await backupsRebuild(), 'after a crash in step 2 the backups still rebuild the key');
  for (const n of backups)
    assert.ok(peerDep(n.treasury.state, ch).reshare, `${n.name} sealed the new split before the old one went`);

  await mesh.restart('p', ['b1', 'b2']);
  await waitFor(() => resplitDone([p, b1, b2], ch, epoch()), WAIT_MS);
  const fresh = [p, b1, b2].map((n) => sharesIn(n.treasury.state, ch).get(epoch())!);
  for (const [x, y] of pairs(fresh)) assert.ok(await rebuilds([x, y], qKey, qPub));
});

test('a backup refuses shares of a peer key replaced outside a re-split that is due, rule by rule', async () => {
  const { nodes, ch, qKey } = await scene();
  const [p, b1, , b3] = nodes;
  const replica = (): TreasuryState => structuredClone(b1.treasury.state);
  const next = (): ReplicaBody => structuredClone(replicaOf(p.treasury.state, p.treasury.state.committee!.seq + 1));
  const code = (edit: (d: PeerDeposit, b: ReplicaBody) => void | Promise<void>, r = replica()) =>
    (async () => {
      const b = next();
      await edit(b.channels[ch]!.peerDeposits[0]!, b);
      return checkUpdate(r, b)?.code ?? null;
    })();
  const roster = nodes.map((n) => ({ node_id: n.treasury.nodeId, address: '' }));
  const otherKey = bytesToHex(randomPrivateKey());
  const splitOf = (members: typeof roster) => shareKeys([otherKey], members, 2, splitSecret);

  assert.equal(await code(() => undefined), null, "the primary's genuine update passes");
  // No roster change: the shares may not change at all, nor may a re-split appear.
  assert.equal(
    await code(async (d) => {
      d.shares = await splitOf(roster);
    }),
    'shares_changed',
  );
  assert.equal(
    await code(async (d, b) => {
      d.reshare = { epoch: b.epoch ?? 0, holders: roster.map((m) => m.node_id), shares: await splitOf(roster) };
    }),
    'shares_changed',
  );
  assert.equal(
    await code((d) => {
      d.pubkeys = [...d.pubkeys].reverse().concat(d.pubkeys[0]!);
    }),
    'deposit_changed',
  );
  // Nor may the formation order (whom a peer's boxes are for) change, as a newcomer would learn it.
  assert.equal(
    await code((_d, b) => {
      b.shareOrder = roster.map((m) => m.node_id).reverse();
    }),
    'roster_changed',
  );

  // Once b3 is removed (b1's replica as it is when it has adopted the removal: the re-split is due), a
  // re-split is taken only as the rules say.
  const due = replica();
  due.committee!.members = due.committee!.members.filter((m) => m.node_id !== b3.treasury.nodeId);
  due.committee!.size = 3;
  due.committee!.epoch = 1;
  due.committee!.shareOrder = roster.map((m) => m.node_id);
  const left = roster.filter((m) => m.node_id !== b3.treasury.nodeId);
  const atEpoch1 = async (d: PeerDeposit, b: ReplicaBody, r: PeerDeposit['reshare']) => {
    b.epoch = 1;
    b.size = 3;
    b.members = b.members.filter((m) => m.node_id !== b3.treasury.nodeId);
    delete d.reshare;
    delete d.holders;
    delete d.gen;
    const o = peerDep(due, ch);
    d.shares = o.shares;
    if (r) d.reshare = r;
  };
  const genuine = async () => ({
    epoch: 1,
    holders: left.map((m) => m.node_id),
    shares: await shareKeys([qKey], left, 2, splitSecret),
  });
  assert.equal(await code(async (d, b) => atEpoch1(d, b, await genuine()), due), null, 'a due re-split passes');
  const refusedSplit = async (edit: (r: NonNullable<PeerDeposit['reshare']>) => void | Promise<void>) => {
    const r = await genuine();
    await edit(r);
    return code(async (d, b) => atEpoch1(d, b, r), due);
  };
  // For the removed member too, for an outsider, for a roster with a member twice, in another view.
  assert.equal(
    await refusedSplit(async (r) => {
      r.holders = roster.map((m) => m.node_id);
      r.shares = await splitOf(roster);
    }),
    'shares_changed',
  );
  assert.equal(
    await refusedSplit((r) => {
      r.holders[2] = bytesToHex(publicKeyOf(randomPrivateKey()));
    }),
    'shares_changed',
  );
  assert.equal(
    await refusedSplit((r) => {
      r.holders[2] = r.holders[1]!;
    }),
    'shares_changed',
  );
  assert.equal(
    await refusedSplit((r) => {
      r.epoch = 0;
    }),
    'shares_changed',
  );
  assert.equal(
    await refusedSplit((r) => {
      r.epoch = 2;
    }),
    'shares_changed',
  );
  // Of another key's public key, or with this member's box not opening (sealed to someone else).
  assert.equal(
    await refusedSplit((r) => {
      r.shares[0]!.pubkey = bytesToHex(publicKeyOf(hexToBytes(otherKey)));
    }),
    'shares_changed',
  );
  assert.equal(
    await refusedSplit((r) => {
      const i = r.holders.indexOf(b1.treasury.nodeId);
      r.shares[0]!.boxes[i] = r.shares[0]!.boxes[(i + 1) % r.holders.length]!;
    }),
    'shares_changed',
  );
  // A member that missed step 1 (down, or standing by) may see the split taken at once: checked as step 1.
  const jump = (edit: (r: NonNullable<PeerDeposit['reshare']>) => void | Promise<void>) =>
    code(async (d, b) => {
      await atEpoch1(d, b, undefined);
      const r = await genuine();
      await edit(r);
      d.shares = r.shares;
      d.holders = r.holders;
      d.gen = r.epoch;
    }, due);
  assert.equal(await jump(() => undefined), null, 'the genuine split taken at once passes');
  assert.equal(
    await jump(async (r) => {
      r.holders = roster.map((m) => m.node_id);
      r.shares = await shareKeys([qKey], roster, 2, splitSecret);
    }),
    'shares_changed',
  );
  assert.equal(
    await jump((r) => {
      r.epoch = 2;
    }),
    'shares_changed',
  );
});

test('over a real session: a primary that swaps a peer key for shares it made up outside a roster change is refused', async () => {
  const { nodes, ch } = await scene();
  const [p, b1] = nodes;
  const before = JSON.stringify(peerDep(b1.treasury.state, ch).shares);
  const refusals = spy(b1);
  // The compromised primary replaces q's key's shares by a split of a key of its own (it could then
  // later settle with a key it knows instead of q's... or just lose q's), and replicates it.
  const roster = nodes.map((n) => ({ node_id: n.treasury.nodeId, address: '' }));
  const dep = peerDep(p.treasury.state, ch);
  dep.shares = await shareKeys([bytesToHex(randomPrivateKey())], roster, 2, splitSecret);
  void p.treasury.commit().catch(() => undefined);
  await waitFor(() => refusals.some((s) => s.msg.t === 'c_refuse' && s.msg.code === 'shares_changed'), WAIT_MS);
  assert.equal(JSON.stringify(peerDep(b1.treasury.state, ch).shares), before, "b1's shares are unchanged");
  assert.notEqual(p.treasury.info().committee!.acked_seq, p.treasury.info().committee!.seq, 'never acknowledged');
});

test('a member gives its share of a peer key for a re-split only to its primary, and only while its replica shows one due', async () => {
  const { nodes, ch } = await scene();
  const [p, b1, b2] = nodes;
  const out = spy(b1);
  const ask = (from: MeshNode, epoch: number) =>
    (
      b1.treasury as unknown as { committee: { handle(p: string, m: CommitteeMessage): Promise<void> } }
    ).committee.handle(from.treasury.nodeId, { t: 'c_reshare', req: 7, ch, epoch });
  // The primary asks with no roster change behind it (it would rebuild q's key from the answers): refused.
  await ask(p, 0);
  assert.deepEqual(
    out.map((s) => [s.msg.t, (s.msg as { code?: string }).code]),
    [['c_error', 'state_mismatch']],
  );
  // Another backup, or the primary of an older or unseen view, gets nothing either.
  out.length = 0;
  await ask(b2, 0);
  assert.equal(out.length, 0, 'a backup is not answered');
  await ask(p, 3);
  assert.deepEqual(
    out.map((s) => (s.msg as { code?: string }).code),
    ['view_unknown'],
  );
  assert.ok(!out.some((s) => s.msg.t === 'c_reshare_res'), 'no share left the member');
});
