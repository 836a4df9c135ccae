// run-tests lane: in-process
/**
 * Multi-hop payments at the protocol level, settling while a payment holds the path: the path settlement τ
 * itself, each hop crashed right after sealing each phase, a committed hop settling with τ or learning the
 * outcome from the chain, τ on a validating regtest chain, and the payer's last check on τ. Same set-up as
 * multihop.protocol.test.ts (lines of in-process treasuries, wires that can be cut). The tests of τ and of
 * the crashes run with a lone payment and with a round of many (ROUND_SIZES): one τ covers the round.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Transaction } from 'bitcoinjs-lib';
import { crashAfterSealing, line, payUntilMiddleCommitted, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import {
  ROUND_SIZES,
  balances,
  committed,
  outcome,
  payInRound,
  tauIn,
  unlocked,
  watch,
} from './helpers/multihop-views.ts';
import {
  buildDepositScript,
  completePathAsPayer,
  pathFullySigned,
  planPathSettlement,
  signPathInputs,
  verifyDepositSpend,
} from '../src/enclave/treasury/transactions.ts';
import { publicKeyOf, randomPrivateKey } from '../src/crypto/secp256k1.ts';
import { bytesToHex, hexToBytes } from '../enclave-sim/encoding.ts';
import { decodeState } from '../src/enclave/treasury/state.ts';
import type { MhCommitted } from '../src/enclave/treasury/multihop/records.ts';
import { startTestChain } from './helpers/chain.ts';

for (const size of ROUND_SIZES)
  test(`the path settlement τ of a round of ${size} spends every deposit of the path with valid signatures and pays the new state`, async () => {
    const { mesh, nodes, channels } = await line(3);
    const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
    let rec: MhCommitted | undefined;
    mesh.onSeal = (name, bytes) => {
      const r = Object.values(decodeState(bytes).multihop ?? {})[0];
      if (name === 'n1' && r?.phase === 'committed') rec = r;
    };
    await payInRound(a, c.treasury.nodeId, 5_000, size);
    assert.ok(rec, 'bob sealed τ when he committed');
    assert.ok(['released', 'done'].includes(Object.values(b.treasury.state.multihop!)[0]!.phase));
    assert.equal(
      tauIn(Object.values(b.treasury.state.multihop!)[0]!),
      undefined,
      'a released payment keeps no τ in the sealed state',
    );
    const tx = Transaction.fromHex(rec!.tx);
    const inputs = rec!.hops.flatMap((h) => h.inputs);
    assert.equal(tx.ins.length, 4);
    for (const d of inputs) {
      const { m, pubkeys } = { m: 1, pubkeys: [] as string[] };
      assert.ok(verifyDepositSpend(rec!.tx, { ...d, m, pubkeys, privkeys: [] }), `input ${d.outpoint} validly signed`);
    }
    const paid = (script: string) =>
      tx.outs.filter((o) => Buffer.from(o.script).toString('hex') === script).reduce((s, o) => s + o.value, 0n);
    const chAB = b.treasury.state.channels[channels[0]!]!;
    const chBC = b.treasury.state.channels[channels[1]!]!;
    assert.equal(chBC.myPayout, chAB.myPayout, "bob's two channels pay the same script");
    assert.equal(paid(chAB.myPayout), 105_000n + 95_000n, 'bob: +5,000 on ab, −5,000 on bc');
    assert.equal(paid(c.treasury.state.channels[channels[1]!]!.myPayout), 105_000n);
    const fee = 400_000n - tx.outs.reduce((s, o) => s + o.value, 0n);
    assert.equal(paid(a.treasury.state.channels[channels[0]!]!.myPayout), 95_000n - fee, 'alice pays the fee');
  });

const CRASHES: Array<[string, string, 'locked' | 'signed' | 'committed' | 'released' | 'done']> = [
  ['bob (intermediary)', 'n1', 'locked'],
  ['bob (intermediary)', 'n1', 'signed'],
  ['bob (intermediary)', 'n1', 'committed'],
  ['bob (intermediary)', 'n1', 'released'],
  ['bob (intermediary)', 'n1', 'done'],
  ['alice (payer)', 'n0', 'locked'],
  ['alice (payer)', 'n0', 'committed'],
  ['alice (payer)', 'n0', 'done'],
  ['carol (destination)', 'n2', 'signed'],
  ['carol (destination)', 'n2', 'released'],
  ['carol (destination)', 'n2', 'done'],
];

for (const size of ROUND_SIZES)
  for (const [who, victim, phase] of CRASHES) {
    test(`round of ${size}: crash of ${who} right after sealing "${phase}", restart from the sealed state: every channel ends all old or all new`, async () => {
      const { mesh, nodes, channels } = await line(3);
      const before = balances(nodes, channels);
      const fired = crashAfterSealing(mesh, victim, phase);
      const paid = watch(payInRound(nodes[0]!, nodes[2]!.treasury.nodeId, 1_000, size));
      await waitFor(fired);
      mesh.onSeal = undefined;
      await mesh.restart(victim, victim === 'n1' ? ['n0', 'n2'] : ['n1']);
      const live = () => nodes.map((n) => mesh.get(n.name));
      await waitFor(
        () =>
          unlocked(live()) &&
          live().every((n) =>
            Object.values(n.treasury.state.multihop ?? {}).every((r) => r.phase === 'done' || r.phase === 'aborted'),
          ),
        8_000,
      );
      const moved = outcome(live(), channels, before);
      assert.ok(
        (moved[0] === 0n && moved[1] === 0n) || (moved[0] === 1_000n && moved[1] === 1_000n),
        `all old or all new: ${moved}`,
      );
      if (victim !== 'n0') {
        await waitFor(() => paid.ok !== null);
        assert.equal(paid.ok, moved[0] === 1_000n, 'the payer was told the outcome');
      }
      if (phase === 'committed' || phase === 'released' || phase === 'done')
        assert.equal(moved[0], 1_000n, 'after a commit the payment completes');
    });
  }

for (const size of ROUND_SIZES)
  test(`round of ${size}: bob committed, carol never hears of it: bob settles with τ, which pays every channel of the path in the new state`, async () => {
    const { mesh, nodes, channels } = await line(3);
    const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
    const { paying } = await payUntilMiddleCommitted(mesh, [a, b, c], 2_000, 'onward', (p, dest, amount) =>
      payInRound(p, dest, amount, size),
    );
    // a direct payment or a deposit change meets the lock
    const [busy] = await b.treasury.pay([{ channel_id: channels[0]!, amount_sat: 1 }]);
    assert.equal(busy!.ok ? null : busy!.code, 'channel_busy');
    const rec = committed(structuredClone(Object.values(b.treasury.state.multihop!)[0]!));
    const s = await b.treasury.settle(channels[0]!, 1);
    assert.equal(s.txid, rec.txid, 'bob settles with τ');
    assert.equal(s.local_balance_sat, '102000', 'bob is paid the new state on the channel he settles');
    assert.equal(rec.hops.flatMap((h) => h.inputs).length, 4);
    assert.ok(
      pathFullySigned(
        s.tx_hex!,
        rec.hops.flatMap((h) => h.inputs),
      ),
    );
    // nothing closes until τ is seen on chain (should an old settlement win the race instead, it decides)
    assert.equal(b.treasury.channel(channels[1]!).status, 'open');
    await b.treasury.spentOnChain(channels[0]!, s.tx_hex!); // bob's host sees τ in the mempool
    assert.equal(b.treasury.channel(channels[1]!).status, 'closed', "τ closes both of bob's channels");
    assert.equal(b.treasury.channel(channels[1]!).settlement_txid, s.txid);
    await a.treasury.spentOnChain(channels[0]!, s.tx_hex!); // so does alice's
    await paying; // the new state
    // carol, who never got the commit, sees τ spend her channel's deposits on chain
    await c.treasury.spentOnChain(channels[1]!, s.tx_hex!);
    assert.equal(c.treasury.channel(channels[1]!).settlement_txid, s.txid);
    assert.ok(unlocked(nodes));
    assert.deepEqual(balances(nodes, channels), [
      { [channels[0]!]: 98_000n },
      { [channels[0]!]: 102_000n, [channels[1]!]: 98_000n },
      { [channels[1]!]: 102_000n },
    ]);
    // and the transaction pays exactly that (alice pays the fee)
    const tx = Transaction.fromHex(s.tx_hex!);
    const paid = (n: MeshNode, ch: string) =>
      tx.outs
        .filter((o) => Buffer.from(o.script).toString('hex') === n.treasury.state.channels[ch]!.myPayout)
        .reduce((x, o) => x + o.value, 0n);
    assert.equal(paid(b, channels[0]!), 200_000n);
    assert.equal(paid(c, channels[1]!), 102_000n);
  });

test('bob committed, carol (not committed) settles the old state: τ can never confirm, bob and then alice fall back to the old state', async () => {
  const { mesh, nodes, channels } = await line(3);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  const before = balances(nodes, channels);
  mesh.onSeal = (name, bytes) => {
    if (name === 'n1' && Object.values(decodeState(bytes).multihop ?? {}).some((r) => r.phase === 'committed'))
      mesh.block('n1', 'n2');
  };
  const paid = watch(a.treasury.payMultihop(c.treasury.nodeId, 2_000, 1));
  await waitFor(() => Object.values(b.treasury.state.multihop ?? {}).some((r) => r.phase === 'committed'));
  mesh.onSeal = undefined;
  const sc = await c.treasury.settle(channels[1]!, 1);
  assert.equal(sc.local_balance_sat, '100000', 'carol settles what she had');
  await waitFor(() => b.treasury.channel(channels[1]!).status === 'closed');
  assert.ok(!b.treasury.state.channels[channels[0]!]!.lockedBy, 'bob knows the old state won');
  assert.equal(Object.values(b.treasury.state.multihop!)[0]!.phase, 'aborted');
  // bob settles his other channel in the old state; alice, committed, learns from bob's totals that it is the old one
  const sb = await b.treasury.settle(channels[0]!, 1);
  assert.equal(sb.local_balance_sat, '100000');
  await waitFor(() => paid.ok !== null);
  assert.equal(paid.ok, false);
  assert.ok(unlocked(nodes));
  assert.deepEqual(balances(nodes, channels), before);
});

test('a committed hop that learns only from the chain: an old-state spend means old, a new-state one new', async () => {
  for (const carolState of ['old', 'new'] as const) {
    const { mesh, nodes, channels } = await line(3);
    const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
    const before = balances(nodes, channels);
    // old: carol never gets the commit; new: carol commits and releases, but her release never reaches bob
    mesh.onSeal = (name, bytes) => {
      const phase = Object.values(decodeState(bytes).multihop ?? {})[0]?.phase;
      if (carolState === 'old' && name === 'n1' && phase === 'committed') {
        mesh.block('n1', 'n2');
        mesh.block('n2', 'n1');
      }
      if (carolState === 'new' && name === 'n2' && phase === 'released') {
        mesh.block('n1', 'n2');
        mesh.block('n2', 'n1');
      }
    };
    const paid = watch(a.treasury.payMultihop(c.treasury.nodeId, 3_000, 1));
    await waitFor(
      () =>
        Object.values(b.treasury.state.multihop ?? {}).some((r) => r.phase === 'committed') &&
        (carolState === 'old' || Object.values(c.treasury.state.multihop ?? {}).some((r) => r.phase === 'released')),
    );
    mesh.onSeal = undefined;
    const sc = await c.treasury.settle(channels[1]!, 1);
    assert.equal(sc.local_balance_sat, carolState === 'old' ? '100000' : '103000');
    await b.treasury.spentOnChain(channels[1]!, sc.tx_hex!);
    assert.equal(Object.values(b.treasury.state.multihop!)[0]!.phase, carolState === 'old' ? 'aborted' : 'released');
    if (carolState === 'new') {
      await waitFor(() => paid.ok !== null);
      assert.equal(paid.ok, true, 'bob released, and told alice');
    } else {
      await b.treasury.settle(channels[0]!, 1);
      await waitFor(() => paid.ok !== null);
      assert.equal(paid.ok, false);
    }
    await waitFor(() => unlocked(nodes));
    const moved = before[0]![channels[0]!]! - balances(nodes, channels)[0]![channels[0]!]!;
    assert.equal(moved, carolState === 'old' ? 0n : 3_000n);
    const bobNow = balances(nodes, channels)[1]!;
    assert.equal(bobNow[channels[0]!]! + bobNow[channels[1]!]!, 200_000n, 'bob neither gains nor loses');
  }
});

for (const size of ROUND_SIZES)
  test(`τ of a round of ${size} on a validating regtest chain: accepted, mined, paying every channel of the path its new state`, async () => {
    const chain = await startTestChain();
    try {
      // deposits funded for real on the embedded chain; the treasuries' chain look-ups see those transactions
      const { mesh, nodes, channels } = await line(3, 100_000n, async (mesh, name, value) => {
        const t = mesh.get(name).treasury;
        const dep = await t.newDeposit();
        const f = await chain.faucet.fund(dep.address, value);
        await chain.faucet.mine(1);
        mesh.chain.txs.set(f.txid, { hex: f.hex, confirmations: 1, spent: new Set() });
        await t.depositFunded(dep.deposit_id, f.txid, f.vout);
        return dep.deposit_id;
      });
      const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
      const { paying } = await payUntilMiddleCommitted(mesh, [a, b, c], 2_000, 'onward', (p, dest, amount) =>
        payInRound(p, dest, amount, size),
      );
      const s = await b.treasury.settle(channels[0]!, 1);
      assert.equal(await chain.rpc.sendRawTransaction(s.tx_hex!), s.txid);
      await chain.faucet.mine(1);
      const raw = await chain.rpc.call<{ hex: string; confirmations: number }>('getrawtransaction', [s.txid, true]);
      assert.ok(raw.confirmations >= 1, 'τ is mined');
      // each host's watcher shows its enclave the spend of its channels' deposits
      await b.treasury.spentOnChain(channels[0]!, raw.hex);
      await a.treasury.spentOnChain(channels[0]!, raw.hex);
      await paying;
      assert.ok(unlocked([a, b]));
      const tx = Transaction.fromHex(raw.hex);
      assert.equal(tx.ins.length, 4, 'every deposit of both channels');
      const paid = (n: MeshNode, ch: string) =>
        tx.outs
          .filter((o) => Buffer.from(o.script).toString('hex') === n.treasury.state.channels[ch]!.myPayout)
          .reduce((x, o) => x + o.value, 0n);
      assert.equal(paid(b, channels[0]!), 102_000n + 98_000n, 'bob: +2,000 from alice, −2,000 to carol, in one output');
      assert.equal(paid(c, channels[1]!), 102_000n);
      const fee = 400_000n - tx.outs.reduce((x, o) => x + o.value, 0n);
      assert.ok(fee > 0n);
      assert.equal(paid(a, channels[0]!), 98_000n - fee, 'alice, the payer, pays the fee');
      // carol, who never got the commit, closes her channel when her host shows her τ on chain
      await c.treasury.spentOnChain(channels[1]!, raw.hex);
      assert.equal(c.treasury.channel(channels[1]!).settlement_txid, s.txid);
      assert.equal(c.treasury.channel(channels[1]!).local_balance_sat, '102000');
    } finally {
      await chain.close();
    }
  });

for (const size of ROUND_SIZES)
  test(`round of ${size}: a committed hop settles with τ while an old-state settlement wins the race to the chain: the old state decides, nothing is stuck`, async () => {
    const { mesh, nodes, channels } = await line(3);
    const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
    const before = balances(nodes, channels);
    const { outcome: paid } = await payUntilMiddleCommitted(mesh, [a, b, c], 2_000, 'both', (p, dest, amount) =>
      payInRound(p, dest, amount, size),
    );
    const old = await c.treasury.settle(channels[1]!, 1); // carol, not committed: the old state
    const tau = await b.treasury.settle(channels[0]!, 1); // bob, committed, whose host has not seen carol's yet
    assert.notEqual(tau.txid, old.txid);
    assert.equal(b.treasury.channel(channels[0]!).status, 'open', 'τ is only broadcast: nothing closed yet');
    // carol's settlement is the one the chain took; bob's host shows it to his enclave
    await b.treasury.spentOnChain(channels[1]!, old.tx_hex!);
    assert.equal(Object.values(b.treasury.state.multihop!)[0]!.phase, 'aborted');
    await waitFor(() => paid() !== null); // alice, committed, follows bob's abort from downstream
    assert.equal(paid(), false);
    const sb = await b.treasury.settle(channels[0]!, 1); // and bob's other channel settles in the old state
    assert.equal(sb.local_balance_sat, '100000');
    assert.ok(unlocked(nodes));
    assert.deepEqual(balances(nodes, channels), before);
  });

test("the payer's last check: it signs the inputs it holds keys for itself and verifies only the others", () => {
  const key = () => bytesToHex(randomPrivateKey());
  const deposit = (priv: string, n: number) => {
    const { witnessScript } = buildDepositScript(1, [bytesToHex(publicKeyOf(hexToBytes(priv)))]);
    return { priv, input: { outpoint: `${String(n).repeat(64).slice(0, 64)}:0`, value: 100_000n, witnessScript } };
  };
  // Channel 0: the payer's deposit and the hop's (whose key the payer was handed); channel 1: two it has no key for.
  const [d0, d1, d2, d3] = [deposit(key(), 1), deposit(key(), 2), deposit(key(), 3), deposit(key(), 4)];
  const inputs = [d0, d1, d2, d3].map((d) => d.input);
  const script = (n: number) => `0014${String(n).repeat(40).slice(0, 40)}`;
  const plan = planPathSettlement({
    inputs,
    outputs: [
      { script: script(1), value: 190_000n },
      { script: script(2), value: 210_000n },
    ],
    payerScript: script(1),
    feeRate: 1,
  });
  const keysOf = (ds: Array<{ priv: string; input: { outpoint: string } }>) => (o: string) => {
    const d = ds.find((x) => x.input.outpoint === o);
    return d ? { m: 1, privkeys: [d.priv] } : null;
  };
  /** `txHex` with one byte of input `i`'s signature flipped. */
  const corrupt = (txHex: string, i: number) => {
    const tx = Transaction.fromHex(txHex);
    const w = tx.ins[i]!.witness.map((x) => Uint8Array.from(x));
    const sig = w.find((x) => x.length >= 70 && x.length <= 73)!;
    sig[10]! ^= 1;
    tx.setWitness(i, w);
    return tx.toHex();
  };
  const allSigned = signPathInputs(plan.spend.tx.toHex(), inputs, keysOf([d0, d1, d2, d3]));
  assert.ok(pathFullySigned(allSigned, inputs));
  // A hop put a bad signature on a channel-0 input: the payer's own signature replaces it.
  const badOwn = corrupt(allSigned, 0);
  assert.equal(pathFullySigned(badOwn, inputs), false);
  const complete = completePathAsPayer(badOwn, inputs, keysOf([d0, d1]));
  assert.ok(complete && pathFullySigned(complete, inputs), 'complete and valid');
  assert.equal(Transaction.fromHex(complete).getId(), plan.txid, 'same τ (witnesses are not in the txid)');
  // A bad signature on an input the payer cannot sign: refused.
  assert.equal(completePathAsPayer(corrupt(allSigned, 3), inputs, keysOf([d0, d1])), null);
  // Missing witnesses downstream: refused too.
  assert.equal(completePathAsPayer(plan.spend.tx.toHex(), inputs, keysOf([d0, d1])), null);
});
