// run-tests lane: in-process
/**
 * Multi-hop payments through committee hops (docs/protocol/multihop.md, "Committee hops"), in-process:
 * 2-of-3 committees in every position of a path, alone and mixed with lone treasuries; every phase
 * replicated before its message leaves; τ signed by m members where a committee's own deposits are in it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { payments } from 'bitcoinjs-lib';
import { checkTau, committeeLine, replicated, type Kind } from './helpers/committee-line.ts';
import { balances, committed, outcome, unlocked } from './helpers/multihop-views.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { TIMEOUTS, WAIT_MS } from './helpers/two-committees.ts';
import { crashAfterSealing, Mesh, type MeshNode } from './helpers/treasury-mesh.ts';
import { hexToBytes } from '../enclave-sim/encoding.ts';
import { signCommitted, type CommittedProof } from '../src/enclave/committee/committed-proof.ts';
import { paidSig } from '../src/enclave/treasury/channel-wire.ts';
import { replicaOf } from '../src/enclave/committee/update.ts';
import { checkUpdate } from '../src/enclave/committee/update-rules.ts';
import { isFrozen } from '../src/enclave/treasury/multihop/records.ts';
import { decodeState } from '../src/enclave/treasury/state.ts';
import { NETWORK } from '../src/enclave/treasury/transactions.ts';

const PATHS: Kind[][] = [
  ['committee', 'lone', 'lone'],
  ['lone', 'committee', 'lone'],
  ['lone', 'lone', 'committee'],
  ['committee', 'committee', 'committee'],
  ['lone', 'committee', 'committee', 'lone'],
];

for (const kinds of PATHS) {
  test(`a routed payment through ${kinds.join(' → ')}: every channel new, every member agrees, τ valid`, async () => {
    const { mesh, hops, nodes, channels } = await committeeLine(kinds);
    const payer = nodes[0]!;
    const dest = nodes[nodes.length - 1]!;
    // τ as the payer committed it: complete, for the check below.
    let tau: string | undefined;
    mesh.onSeal = (name, bytes) => {
      if (name !== payer.name) return;
      for (const r of Object.values(decodeState(bytes).multihop ?? {})) if (r.phase === 'committed') tau = r.tx;
    };
    const before = balances(nodes, channels);
    const res = await payer.treasury.payMultihop(dest.treasury.nodeId, 1_000, 1);
    assert.deepEqual(
      res.route,
      nodes.map((n) => n.treasury.info().treasury_id),
      'routed by treasury ids',
    );
    await waitFor(() => unlocked(hops.flatMap((h) => h.members)) && replicated(hops), WAIT_MS);
    assert.deepEqual(
      outcome(nodes, channels, before),
      channels.map(() => 1_000n),
      'every channel in the new state',
    );
    // Each committee signed τ with at least m members, each of which recorded it.
    for (const h of hops.filter((x) => x.members.length > 1)) {
      const signers = h.members.filter((m) => m.treasury.state.committee!.signed[`tau:${res.payment_id}`]);
      assert.ok(signers.length >= 2, `${h.node.name}: ${signers.length} members recorded signing τ`);
    }
    // τ: every deposit of the path, each validly signed; each side of each channel paid its new balance.
    assert.ok(tau, 'the payer committed a τ');
    const tx = checkTau(mesh, tau);
    assert.equal(tx.ins.length, channels.length * 2);
    for (const [i, ch] of channels.entries()) {
      for (const [n, side] of [
        [nodes[i]!, 'from'],
        [nodes[i + 1]!, 'to'],
      ] as const) {
        const script = payments.p2wpkh({ address: n.payoutAddress, network: NETWORK }).output!;
        const paid = tx.outs.filter((o) => Buffer.from(o.script).equals(script)).reduce((s, o) => s + o.value, 0n);
        const v = n.treasury.channel(ch);
        // Outputs to one script are merged: an intermediary's two channels pay it once.
        const want = channels
          .filter((c) => n.treasury.state.channels[c])
          .reduce((s, c) => s + BigInt(n.treasury.channel(c).local_balance_sat), 0n);
        if (n === payer) assert.ok(paid < want && paid > want - 1_000n, `payer ${side}: its balance less τ's fee`);
        else assert.equal(paid, want, `${n.name} (${side} of ${v.channel_id.slice(0, 8)}): its new balances`);
      }
    }
    mesh.onSeal = undefined;
  });
}

/** A committee primary crashed right after sealing each phase at each position, restarted from that seal. */
const CRASHES: Array<[Kind[], number, 'locked' | 'signed' | 'committed' | 'released' | 'done']> = [
  [['lone', 'committee', 'lone'], 1, 'locked'],
  [['lone', 'committee', 'lone'], 1, 'signed'],
  [['lone', 'committee', 'lone'], 1, 'committed'],
  [['lone', 'committee', 'lone'], 1, 'released'],
  [['lone', 'committee', 'lone'], 1, 'done'],
  [['committee', 'lone', 'lone'], 0, 'locked'],
  [['committee', 'lone', 'lone'], 0, 'signed'],
  [['committee', 'lone', 'lone'], 0, 'committed'],
  [['committee', 'lone', 'lone'], 0, 'done'],
  [['lone', 'lone', 'committee'], 2, 'signed'],
  [['lone', 'lone', 'committee'], 2, 'released'],
  [['lone', 'lone', 'committee'], 2, 'done'],
];

for (const [kinds, at, phase] of CRASHES) {
  test(`${kinds.join(' → ')}: the committee's primary crashed right after sealing "${phase}", restarted: all old or all new, members agree`, async () => {
    // A shorter wait for LOCK and SIGN: a payer restarted at its signing step gives up after it (all old).
    const { mesh, hops, nodes, channels } = await committeeLine(
      kinds,
      100_000n,
      new Mesh({ ...TIMEOUTS, multihopTimeoutMs: 3_000 }),
    );
    const victim = nodes[at]!.name;
    const before = balances(nodes, channels);
    const fired = crashAfterSealing(mesh, victim, phase);
    const paying = nodes[0]!.treasury.payMultihop(nodes[nodes.length - 1]!.treasury.nodeId, 1_000, 1);
    paying.catch(() => undefined);
    await waitFor(fired, WAIT_MS);
    mesh.onSeal = undefined;
    await new Promise((r) => setTimeout(r, 20)); // frames the old instance sent before the crash land on its old sessions
    const neighbours = [nodes[at - 1], nodes[at + 1]].filter((n) => n !== undefined).map((n) => n.name);
    await mesh.restart(victim, [...hops[at]!.members.slice(1).map((m) => m.name), ...neighbours]);
    const live = () => nodes.map((n) => mesh.get(n.name));
    const everyone = () => hops.flatMap((h) => h.members.map((m) => mesh.get(m.name)));
    const resolved = () =>
      live().every((n) =>
        Object.values(n.treasury.state.multihop ?? {}).every((r) => r.phase === 'done' || r.phase === 'aborted'),
      );
    const liveHops = () =>
      hops.map((h) => ({ node: mesh.get(h.node.name), members: h.members.map((m) => mesh.get(m.name)) }));
    await waitFor(() => unlocked(everyone()) && resolved() && replicated(liveHops()), WAIT_MS);
    const moved = outcome(live(), channels, before);
    assert.ok(moved.every((m) => m === 0n) || moved.every((m) => m === 1_000n), `all old or all new: ${moved}`);
    if (phase === 'committed' || phase === 'released' || phase === 'done')
      assert.ok(
        moved.every((m) => m === 1_000n),
        'after a commit the payment completes',
      );
  });
}

test("a committed committee hop's primary dies: two backups settle with τ from their replicas, which stay frozen", async () => {
  const { mesh, hops, nodes, channels } = await committeeLine(['lone', 'committee', 'lone']);
  const [q0, p, q2] = nodes as [MeshNode, MeshNode, MeshNode];
  const [, b1, b2] = hops[1]!.members as [MeshNode, MeshNode, MeshNode];
  // The committee's COMMIT to the destination never arrives: it stays committed, τ complete in every replica.
  mesh.onSeal = (name, bytes) => {
    if (name === p.name && Object.values(decodeState(bytes).multihop ?? {}).some((r) => r.phase === 'committed'))
      mesh.block(p.name, q2.name);
  };
  const paying = q0.treasury.payMultihop(q2.treasury.nodeId, 1_000, 1);
  paying.catch(() => undefined);
  const pid = () => Object.keys(p.treasury.state.multihop ?? {})[0]!;
  await waitFor(() => [b1, b2].every((b) => b.treasury.state.multihop?.[pid()]?.phase === 'committed'), WAIT_MS);
  mesh.onSeal = undefined;
  const rec = committed(structuredClone(p.treasury.state.multihop![pid()]!));
  mesh.crash(p.name);
  const s = await b1.treasury.settle(channels[0]!, 1);
  assert.equal(s.txid, rec.txid, 'the backups hand out τ');
  checkTau(mesh, s.tx_hex!);
  assert.equal(s.local_balance_sat, '101000', 'τ pays the committee the new state on the channel settled');
  assert.ok(isFrozen(b1.treasury.state.multihop![pid()]!), 'the freeze is sealed where τ was handed out');
  // The primary, were it to come back and release without the freeze, is refused by that member.
  const body = replicaOf(p.treasury.state, b1.treasury.state.committee!.seq + 1);
  const released = { ...body.multihop![pid()]!, phase: 'released', tauOut: false } as never;
  body.multihop![pid()] = released;
  assert.equal(checkUpdate(b1.treasury.state, body)?.code, 'multihop_regressed');
  // τ on chain: every channel of the path closes in the new state.
  mesh.chain.spend(s.tx_hex!);
  for (const n of [q0, b1, q2])
    for (const ch of channels) if (n.treasury.state.channels[ch]) await n.treasury.spentOnChain(ch, s.tx_hex!);
  assert.equal(q2.treasury.channel(channels[1]!).local_balance_sat, '101000', 'the destination is paid by τ');
  assert.equal(q0.treasury.channel(channels[0]!).local_balance_sat, '99000');
});

/**
 * The committee's primary is the attacker's: it gathers τ, seals `committed`, but never replicates that
 * seal (its frames to its backups are dropped), and sends the next hop COMMIT itself, with its own
 * signature of the paid total and each proof below. The backups' replicas show the payment `signed`:
 * asked to settle they would sign the old state. The next hop must commit nothing on that word.
 */
const COMMIT_ATTACKS: Array<[Kind[], number]> = [
  [['lone', 'committee', 'lone'], 1],
  [['committee', 'lone', 'lone'], 0],
];

for (const [kinds, at] of COMMIT_ATTACKS) {
  test(`${kinds.join(' → ')}: a compromised primary's COMMIT its backups do not hold is refused, with any proof`, async () => {
    const { mesh, hops, nodes, channels } = await committeeLine(kinds);
    const p = nodes[at]!;
    const next = nodes[at + 1]!;
    const [, b1, b2] = hops[at]!.members as [MeshNode, MeshNode, MeshNode];
    const dest = nodes[nodes.length - 1]!;
    // An honest payment first: its COMMIT carries a genuine proof, of another payment, to replay.
    const first = await nodes[0]!.treasury.payMultihop(dest.treasury.nodeId, 500, 1);
    await waitFor(() => unlocked(hops.flatMap((h) => h.members)) && replicated(hops), WAIT_MS);
    assert.ok(next.treasury.state.channels[channels[at]!]!.peerRoster, 'the next hop verified the committee');
    const internals = p.treasury as unknown as { committee: { committedProof(pid: string): CommittedProof } };
    const genuine = internals.committee.committedProof(first.payment_id);
    assert.equal(genuine?.sigs.length, 2, "the honest COMMIT had both backups' proof");
    mesh.onSeal = (name, bytes) => {
      if (name !== p.name || !Object.values(decodeState(bytes).multihop ?? {}).some((r) => r.phase === 'committed'))
        return;
      mesh.block(p.name, b1.name);
      mesh.block(p.name, b2.name);
      mesh.block(p.name, next.name); // the honest code's own COMMIT (it would wait for the backups anyway)
    };
    const before = balances(nodes, channels);
    nodes[0]!.treasury.payMultihop(dest.treasury.nodeId, 1_000, 1).catch(() => undefined);
    const pid = () =>
      Object.values(p.treasury.state.multihop ?? {}).find((r) => r.phase === 'committed' && r.amounts[0] === 1_000n)
        ?.pid;
    await waitFor(() => pid() !== undefined, WAIT_MS);
    mesh.onSeal = undefined;
    await new Promise((r) => setTimeout(r, 50));
    const id = pid()!;
    for (const b of [b1, b2])
      assert.equal(b.treasury.state.multihop?.[id]?.phase, 'signed', 'the backups hold it signed');
    const rec = committed(structuredClone(p.treasury.state.multihop![id]!));
    const out = p.treasury.state.channels[rec.hops[at]!.ch]!;
    const epoch = p.treasury.info().committee!.epoch ?? 0;
    const key = hexToBytes(p.treasury.state.identityKey);
    const own = signCommitted(p.treasury.nodeId, epoch, id, key).sig;
    const proofs: Array<[string, CommittedProof | undefined]> = [
      ['no proof', undefined],
      ["the primary's own signatures in the backups' places", { epoch, sigs: [own, own] }],
      ["the backups' genuine proof of another payment", genuine],
      ['that proof claimed for another view', { ...genuine, epoch: genuine.epoch + 1 }],
      ['one backup only', { epoch, sigs: [genuine.sigs[0]!] }],
    ];
    const refusals = () => next.events.filter((e) => e.type === 'multihop_commit_unproven').length;
    for (const [what, proof] of proofs) {
      mesh.unblock(p.name, next.name);
      mesh.unlink(p.name, next.name);
      await mesh.link(p.name, next.name);
      mesh.block(p.name, next.name);
      const msg = {
        t: 'mh_commit',
        pid: id,
        tx: rec.tx,
        ...paidSig(p.treasury.state, out, out.sent + rec.amounts[at]!),
      };
      mesh.unblock(p.name, next.name);
      const seen = refusals();
      (p.treasury as unknown as { sendNow(peer: string, m: unknown): void }).sendNow(next.treasury.nodeId, {
        ...msg,
        ...(proof ? { proof } : {}),
      });
      // Refused: an event with the reason, the session kept; taken: the next hop moves on.
      await waitFor(() => refusals() > seen || next.treasury.state.multihop?.[id]?.phase !== 'signed', WAIT_MS);
      mesh.block(p.name, next.name);
      assert.equal(next.treasury.state.multihop?.[id]?.phase, 'signed', `${what}: the next hop did not commit`);
      assert.ok(next.treasury.info().peers.includes(p.treasury.nodeId), `${what}: the session stays up`);
      assert.deepEqual(
        outcome(nodes, channels, before),
        channels.map(() => 0n),
        `${what}: nothing credited anywhere`,
      );
    }
  });
}
