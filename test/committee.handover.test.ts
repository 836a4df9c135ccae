// run-tests lane: in-process
/**
 * Keys handed over to a committee are never whole at its primary (issue #15): a lone peer splits its
 * deposit key for the committee's attested roster and seals share i to member i itself, so the primary
 * (one TEE, perhaps compromised) receives, seals and can open only its own share.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Transaction } from 'bitcoinjs-lib';
import { Mesh, platformIdOf, type MeshNode } from './helpers/treasury-mesh.ts';
import { MEASUREMENT, waitFor } from './helpers/treasury-pair.ts';
import { openBox } from '../src/crypto/ecies.ts';
import { publicKeyOf, randomPrivateKey } from '../src/crypto/secp256k1.ts';
import { reportDataFor } from '../enclave-sim/attestation.ts';
import { bytesToHex, hexToBytes } from '../enclave-sim/encoding.ts';
import { MEMBER_QUOTE_NONCE } from '../src/enclave/committee/roster.ts';
import { verifyDepositSpend } from '../src/enclave/treasury/transactions.ts';
import type { SessionMessage } from '../src/enclave/protocol/messages.ts';

type Internals = {
  apply(peerId: string, msg: SessionMessage): Promise<void>;
  sendNow(peerId: string, msg: SessionMessage): void;
};

/** Records every message `node` applies, as its enclave decrypted it. */
function recordApplied(node: MeshNode): string[] {
  const seen: string[] = [];
  const t = node.treasury as unknown as Internals;
  const apply = t.apply.bind(t);
  t.apply = (peerId, msg) => {
    seen.push(JSON.stringify(msg));
    return apply(peerId, msg);
  };
  return seen;
}

/** Everything in `text` that `identityKey` can open as a sealed key or share (ecies boxes are long hex runs). */
function openableBy(identityKey: string, text: string): string[] {
  const out: string[] = [];
  for (const run of text.match(/[0-9a-f]{120,}/g) ?? []) {
    for (const aad of ['deposit-key', 'key-share']) {
      const opened = openBox(hexToBytes(identityKey), run, aad);
      if (opened) out.push(bytesToHex(opened));
    }
  }
  return out;
}

/** Committee p, b1, b2 (2-of-3) and lone q, with p's every received message and sealed state recorded. */
async function committeeAndLone() {
  const mesh = new Mesh();
  const sealedByP: string[] = [];
  mesh.onSeal = (name, bytes) => {
    if (name === 'p') sealedByP.push(new TextDecoder().decode(bytes));
  };
  const [p, b1, b2] = (await mesh.committee(['p', 'b1', 'b2'])) as [MeshNode, MeshNode, MeshNode];
  const q = await mesh.add('q');
  const framesAtP = recordApplied(p);
  await mesh.link('q', 'p');
  return { mesh, p, b1, b2, q, framesAtP, sealedByP };
}

function assertNeverAtP(pNode: MeshNode, qKey: string, framesAtP: string[], sealedByP: string[]) {
  const pKey = pNode.treasury.state.identityKey;
  for (const [what, texts] of [
    ['frame the primary received', framesAtP],
    ['state the primary sealed', sealedByP],
    ['primary state', [JSON.stringify(pNode.treasury.state, (_k, v) => (typeof v === 'bigint' ? String(v) : v))]],
  ] as const) {
    for (const text of texts) {
      assert.ok(!text.includes(qKey), `the handed-over private key appears in a ${what}`);
      assert.ok(
        !openableBy(pKey, text).includes(qKey),
        `the handed-over private key is sealed to the primary in a ${what}`,
      );
    }
  }
}

test("a lone peer's deposit key never reaches a committee primary whole; two backups still settle it", async () => {
  const { mesh, p, b1, b2, q, framesAtP, sealedByP } = await committeeAndLone();
  const depP = await mesh.deposit('p', 80_000n);
  const depQ = await mesh.deposit('q', 50_000n);
  const qKey = q.treasury.state.deposits[depQ]!.privkeys[0]!;
  const ch = await p.treasury.openChannel(q.treasury.nodeId, p.payoutAddress);
  assert.ok(q.treasury.state.channels[ch.channel_id]!.peerRoster, 'the roster came with the channel');
  await p.treasury.addDeposit(ch.channel_id, depP);
  await q.treasury.addDeposit(ch.channel_id, depQ);
  assert.equal(p.treasury.channel(ch.channel_id).remote_deposits.length, 1, "the committee credited q's deposit");
  assert.ok(
    framesAtP.some((f) => f.includes('"t":"add_deposit"')),
    'the grant was among the frames recorded',
  );
  assertNeverAtP(p, qKey, framesAtP, sealedByP);
  // What p holds is one share per key for each member: its own box opens to a share, not to the key.
  const held = p.treasury.state.channels[ch.channel_id]!.peerDeposits[0]!;
  assert.deepEqual(held.privkeys, []);
  assert.equal(held.shares!.length, 1);
  assert.equal(held.shares![0]!.boxes.length, 3);
  const pay = await q.treasury.pay([{ channel_id: ch.channel_id, amount_sat: 1_000 }]);
  assert.ok(pay[0]!.ok);
  await waitFor(() => q.treasury.channel(ch.channel_id).total_acked_sat === '1000');
  await waitFor(() => b2.treasury.channel(ch.channel_id).total_received_sat === '1000');
  // The primary is gone: two backups rebuild q's key from their shares and settle.
  mesh.kill('p');
  const r = await b1.treasury.settle(ch.channel_id, 2);
  const dq = q.treasury.state.deposits[depQ]!;
  const spendable = {
    outpoint: dq.outpoint!,
    value: dq.value!,
    m: dq.m,
    pubkeys: dq.pubkeys,
    privkeys: [],
    witnessScript: dq.witnessScript,
  };
  assert.equal(verifyDepositSpend(r.tx_hex!, spendable), r.txid, "the settlement validly spends q's deposit");
  const dp = p.treasury.state.deposits[depP]!;
  assert.equal(
    verifyDepositSpend(r.tx_hex!, {
      outpoint: dp.outpoint!,
      value: dp.value!,
      m: dp.m,
      pubkeys: dp.pubkeys,
      privkeys: [],
      witnessScript: dp.witnessScript,
    }),
    r.txid,
  );
  const toQ = Transaction.fromHex(r.tx_hex!).outs.find(
    (o) => bytesToHex(o.script) === q.treasury.state.channels[ch.channel_id]!.myPayout,
  );
  assert.equal(toQ?.value, 49_000n, 'q is paid its balance');
});

test('a lone peer that opens the channel also hands over shares only; a committee refuses whole keys', async () => {
  const { mesh, p, q, framesAtP, sealedByP } = await committeeAndLone();
  const depQ = await mesh.deposit('q', 30_000n);
  const qKey = q.treasury.state.deposits[depQ]!.privkeys[0]!;
  const ch = await q.treasury.openChannel(p.treasury.nodeId, q.payoutAddress);
  assert.ok(q.treasury.state.channels[ch.channel_id]!.peerRoster, 'the roster came before the channel opened');
  await q.treasury.addDeposit(ch.channel_id, depQ);
  assert.equal(q.treasury.state.deposits[depQ]!.peerShares!.length, 1);
  assertNeverAtP(p, qKey, framesAtP, sealedByP);
  // A grant with a whole key (as an old or forged granter would send) is refused by the committee.
  const dep2 = await mesh.deposit('q', 20_000n);
  const d = q.treasury.state.deposits[dep2]!;
  const atQ = recordApplied(q);
  (q.treasury as unknown as Internals).sendNow(p.treasury.nodeId, {
    t: 'add_deposit',
    ch: ch.channel_id,
    deposit: { outpoint: d.outpoint!, value: d.value!.toString(), m: 1, pubkeys: d.pubkeys, privkeys: d.privkeys },
  });
  await waitFor(() => atQ.some((f) => f.includes('"t":"add_deposit_nack"')));
  assert.ok(atQ.some((f) => f.includes('"code":"funding_mismatch"')));
  assert.equal(p.treasury.channel(ch.channel_id).remote_deposits.length, 1, 'the whole-key grant changed nothing');
});

test('a forged roster is refused and the granter sends no key, whole or shared, to its announcer', async () => {
  const mesh = new Mesh();
  const x = await mesh.add('x');
  const q = await mesh.add('q');
  await mesh.link('x', 'q');
  const ch = await x.treasury.openChannel(q.treasury.nodeId, x.payoutAddress);
  const depQ = await mesh.deposit('q', 10_000n);
  const atX = recordApplied(x);
  const xId = x.treasury.nodeId;
  const quoteOf = (id: string, platform: string) =>
    mesh.service.issueQuote({
      measurement: MEASUREMENT,
      reportData: reportDataFor(hexToBytes(id)),
      nonce: MEMBER_QUOTE_NONCE,
      debug: false,
      platformId: platform,
    });
  const xQuote = await x.treasury.attest(MEMBER_QUOTE_NONCE);
  const y = bytesToHex(publicKeyOf(randomPrivateKey()));
  const z = bytesToHex(publicKeyOf(randomPrivateKey()));
  const send = (threshold: number, members: Array<{ node_id: string; quote: unknown }>) =>
    (x.treasury as unknown as Internals).sendNow(q.treasury.nodeId, {
      t: 'roster',
      ch: ch.channel_id,
      threshold,
      members,
    } as unknown as SessionMessage);
  const forged: Array<[string, number, Array<{ node_id: string; quote: unknown }>]> = [
    [
      'a quote for a non-member',
      2,
      [
        { node_id: xId, quote: xQuote },
        { node_id: y, quote: quoteOf(z, platformIdOf('y')) },
      ],
    ],
    [
      'two members on one platform',
      2,
      [
        { node_id: xId, quote: xQuote },
        { node_id: y, quote: quoteOf(y, platformIdOf('x')) },
      ],
    ],
    [
      'threshold 1',
      1,
      [
        { node_id: xId, quote: xQuote },
        { node_id: y, quote: quoteOf(y, platformIdOf('y')) },
      ],
    ],
    [
      'a first member other than the peer',
      2,
      [
        { node_id: y, quote: quoteOf(y, platformIdOf('y')) },
        { node_id: xId, quote: xQuote },
      ],
    ],
  ];
  for (const [what, threshold, members] of forged) {
    const before = q.events.filter((e) => e.type === 'roster_refused').length;
    send(threshold, members);
    await waitFor(() => q.events.filter((e) => e.type === 'roster_refused').length > before);
    assert.equal(q.treasury.state.channels[ch.channel_id]!.peerRoster, undefined, what);
    await assert.rejects(q.treasury.addDeposit(ch.channel_id, depQ), { code: 'roster_unknown' }, what);
    assert.equal(q.treasury.state.deposits[depQ]!.status, 'free', `${what}: the deposit is unchanged`);
  }
  assert.ok(!atX.some((f) => f.includes('"t":"add_deposit"')), 'no grant was sent to the announcer of a forged roster');
  assert.ok(q.treasury.info().peers.includes(xId), 'the session survives a refused roster');
  // The same roster done right (each member its own quote, own platform, 2 ≤ m ≤ n, the peer first) is taken.
  send(2, [
    { node_id: xId, quote: xQuote },
    { node_id: y, quote: quoteOf(y, platformIdOf('y')) },
  ]);
  await waitFor(() => q.treasury.state.channels[ch.channel_id]!.peerRoster !== undefined);
  assert.deepEqual(q.treasury.state.channels[ch.channel_id]!.peerRoster!.members, [xId, y]);
});

test("between two committees, no member's deposit key reaches the peer primary in a form it can open", async () => {
  const mesh = new Mesh();
  const sealedByA0: string[] = [];
  mesh.onSeal = (name, bytes) => {
    if (name === 'a0') sealedByA0.push(new TextDecoder().decode(bytes));
  };
  const a = await mesh.committee(['a0', 'a1', 'a2']);
  const b = await mesh.committee(['b0', 'b1', 'b2']);
  const framesAtA0 = recordApplied(a[0]!);
  await mesh.link('a0', 'b0');
  const depB = await mesh.deposit('b0', 50_000n);
  const ch = await a[0]!.treasury.openChannel(b[0]!.treasury.nodeId, a[0]!.payoutAddress);
  await b[0]!.treasury.addDeposit(ch.channel_id, depB);
  const keys = [
    b[0]!.treasury.state.deposits[depB]!.privkeys[0]!,
    ...b.slice(1).map((m) => m.treasury.state.committee!.memberKeys[depB]!),
  ];
  assert.equal(new Set(keys).size, 3);
  for (const k of keys) assertNeverAtP(a[0]!, k, framesAtA0, sealedByA0);
  assert.equal(a[0]!.treasury.channel(ch.channel_id).remote_deposits.length, 1);
  const paid = await b[0]!.treasury.pay([{ channel_id: ch.channel_id, amount_sat: 5_000 }]);
  assert.ok(paid[0]!.ok);
  await waitFor(() => b[0]!.treasury.channel(ch.channel_id).total_acked_sat === '5000');
  await waitFor(() => a[2]!.treasury.channel(ch.channel_id).total_received_sat === '5000');
  // a1 and a2 settle without a0: two of b's three keys are rebuilt from their shares.
  mesh.kill('a0');
  const r = await a[1]!.treasury.settle(ch.channel_id, 2);
  const d = b[0]!.treasury.state.deposits[depB]!;
  assert.equal(
    verifyDepositSpend(r.tx_hex!, {
      outpoint: d.outpoint!,
      value: d.value!,
      m: d.m,
      pubkeys: d.pubkeys,
      privkeys: [],
      witnessScript: d.witnessScript,
    }),
    r.txid,
  );
});

test("members re-verify the peer roster from their own replica: a primary's forged roster gets no shares", async () => {
  const mesh = new Mesh();
  const [a0, a1, a2] = (await mesh.committee(['a0', 'a1', 'a2'])) as [MeshNode, MeshNode, MeshNode];
  const x = await mesh.add('x');
  await mesh.link('a0', 'x');
  const ch = await a0.treasury.openChannel(x.treasury.nodeId, a0.payoutAddress);
  const depA = await mesh.deposit('a0', 20_000n);
  const atA0 = recordApplied(a0);
  // A compromised primary writes a roster of its choosing into the channel (y's quote is over z) and
  // replicates it with the deposit marked as joining, as addDeposit would, then asks for the keys.
  const y = bytesToHex(publicKeyOf(randomPrivateKey()));
  const z = bytesToHex(publicKeyOf(randomPrivateKey()));
  const xQuote = await x.treasury.attest(MEMBER_QUOTE_NONCE);
  const zQuote = mesh.service.issueQuote({
    measurement: MEASUREMENT,
    reportData: reportDataFor(hexToBytes(z)),
    nonce: MEMBER_QUOTE_NONCE,
    debug: false,
    platformId: platformIdOf('y'),
  });
  const s = a0.treasury.state;
  s.channels[ch.channel_id]!.peerRoster = {
    threshold: 2,
    members: [x.treasury.nodeId, y],
    proof: [
      { node_id: x.treasury.nodeId, quote: xQuote },
      { node_id: y, quote: zQuote },
    ],
  };
  const dep = s.deposits[depA]!;
  dep.status = 'in_channel';
  dep.channelId = ch.channel_id;
  await a0.treasury.commit();
  await waitFor(
    () =>
      a1.treasury.state.channels[ch.channel_id]?.peerRoster !== undefined &&
      a2.treasury.state.deposits[depA]?.status === 'in_channel',
  );
  const coordinator = (
    a0.treasury as unknown as {
      committee: { handover(d: string, p: string[], own: { pubkey: string; boxes: string[] }): Promise<unknown> };
    }
  ).committee;
  await assert.rejects(coordinator.handover(depA, dep.pubkeys, { pubkey: dep.pubkeys[0]!, boxes: ['00', '00'] }), {
    code: 'roster_unknown',
  });
  assert.ok(
    !atA0.some((f) => f.includes('"t":"c_handover_shares"') || f.includes('"t":"c_handover_res"')),
    'no member handed over its key',
  );
});
