// run-tests lane: in-process
/**
 * A compromised primary signs updates the rules of a payment do not allow (hole 6): backups check each
 * update against their replica and refuse it (c_refuse with the rule's code), changing nothing, and a
 * settlement they sign afterwards still pays the peer its true balance.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Transaction, payments } from 'bitcoinjs-lib';
import { committeeWithPeer, payAndWait } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { bytesToHex } from '../enclave-sim/encoding.ts';
import { replicaOf, signUpdate } from '../src/enclave/committee/update.ts';
import { NETWORK, payoutScriptFor } from '../src/enclave/treasury/transactions.ts';
import type { CommitteeMessage } from '../src/enclave/protocol/messages.ts';
import type { TreasuryState } from '../src/enclave/treasury/state.ts';

type Internals = {
  sendNow(peer: string, msg: CommitteeMessage): void;
  committee: { handle(peer: string, msg: CommitteeMessage): Promise<void> };
};

/** Committee p, b1, b2 (2-of-3) with a channel funded both ways to lone q; records the refusals p receives. */
async function setup() {
  const { mesh, p, b1, b2, q, ch } = await committeeWithPeer();
  await payAndWait(p, ch, [2_000]);
  await payAndWait(q, ch, [700]);
  await waitFor(() => b2.treasury.channel(ch).total_received_sat === '700');
  const refusals: Array<{ from: string; code: string }> = [];
  const coord = (p.treasury as unknown as Internals).committee;
  const handle = coord.handle.bind(coord);
  coord.handle = async (peer, msg) => {
    if (msg.t === 'c_refuse') refusals.push({ from: peer, code: msg.code });
    return handle(peer, msg);
  };
  /** Signs `forged` as the primary's next update, with the primary's own key, and sends it to b1 as p would. */
  const forge = (edit: (s: TreasuryState) => void) => {
    const forged = structuredClone(p.treasury.state);
    edit(forged);
    const update = signUpdate(replicaOf(forged, p.treasury.state.committee!.seq + 1), p.treasury.state.identityKey);
    (p.treasury as unknown as Internals).sendNow(b1.treasury.nodeId, { t: 'c_update', update });
  };
  return { mesh, p, b1, b2, q, ch, refusals, forge };
}

/** After a forged update: b1 refuses it (the refusal reaches p), and the primary's genuine next update goes through. */
async function refusedThenGenuine(s: Awaited<ReturnType<typeof setup>>, code: string): Promise<void> {
  // b1 takes frames in order: the forged update before the genuine one, its refusal before its acknowledgement.
  await payAndWait(s.p, s.ch, [10]);
  for (const m of [s.b1, s.b2]) {
    const mine = m.treasury.channel(s.ch);
    const truth = s.p.treasury.channel(s.ch);
    assert.equal(mine.total_sent_sat, truth.total_sent_sat, `${m.name}'s replica has the true sent total`);
    assert.equal(mine.total_received_sat, truth.total_received_sat, `${m.name}'s replica has the true received total`);
    assert.equal(
      m.treasury.state.config.payoutAddress,
      s.p.treasury.state.config.payoutAddress,
      `${m.name} keeps the committee's payout address`,
    );
    assert.equal(m.treasury.state.channels[s.ch]!.myPayout, s.p.treasury.state.channels[s.ch]!.myPayout);
  }
  assert.deepEqual(
    s.refusals.map((r) => r.code),
    [code],
    "b1 refused the forged update with the rule's code",
  );
}

/** The primary is gone; b1 and b2 settle from their replicas: q is paid exactly what its enclave counts. */
async function settleWithoutPrimary(s: Awaited<ReturnType<typeof setup>>): Promise<void> {
  s.mesh.kill('p');
  const r = await s.b1.treasury.settle(s.ch, 2);
  const outs = Transaction.fromHex(r.tx_hex!).outs;
  const toQ = outs
    .filter((o) => bytesToHex(o.script) === s.q.treasury.state.channels[s.ch]!.myPayout)
    .reduce((a, o) => a + o.value, 0n);
  assert.equal(toQ, BigInt(s.q.treasury.channel(s.ch).local_balance_sat), 'q is paid its true balance');
  const toUs = outs
    .filter((o) => bytesToHex(o.script) === bytesToHex(payoutScriptFor(s.p.payoutAddress)))
    .reduce((a, o) => a + o.value, 0n);
  assert.equal(toUs + toQ + BigInt(r.fee_sat), 150_000n, "the rest goes to the committee's own payout address");
}

test("a forged update raising `received` without the peer's signature is refused", async () => {
  const s = await setup();
  s.forge((st) => {
    st.channels[s.ch]!.received += 20_000n;
  });
  await refusedThenGenuine(s, 'unsigned_received');
  await settleWithoutPrimary(s);
});

test('a forged update changing the payout address is refused', async () => {
  const s = await setup();
  const thief = payments.p2wpkh({ hash: randomBytes(20), network: NETWORK }).address!;
  s.forge((st) => {
    st.config.payoutAddress = thief;
    for (const c of Object.values(st.channels)) c.myPayout = bytesToHex(payoutScriptFor(thief));
  });
  await refusedThenGenuine(s, 'payout_changed');
  await settleWithoutPrimary(s);
});

test('a forged update lowering `sent` is refused', async () => {
  const s = await setup();
  s.forge((st) => {
    st.channels[s.ch]!.sent -= 1_500n;
  });
  await refusedThenGenuine(s, 'total_decreased');
  await settleWithoutPrimary(s);
});
