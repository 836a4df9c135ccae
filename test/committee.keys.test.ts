// run-tests lane: in-process
/**
 * Committee keys at the protocol level: one member's key alone cannot move a 2-of-3 deposit (the embedded
 * regtest chain refuses it), keys a channel peer hands over are held only as secret shares, and the Shamir
 * thresholds those rely on. Formation, replication and settlement are committee.protocol.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Mesh, type MeshNode } from './helpers/treasury-mesh.ts';
import { combineShares, splitSecret } from '../src/enclave/committee/shares.ts';
import { bytesToHex } from '../enclave-sim/encoding.ts';
import { buildSpend, finalizeMultisigInput, signInput, type Spend } from '../src/bitcoin/index.ts';
import { publicKeyOf } from '../src/crypto/secp256k1.ts';
import { hexToBytes } from '../enclave-sim/encoding.ts';
import { RpcCode } from '../src/chain/rpc-client.ts';
import { expectRejected, newKey, startTestChain } from './helpers/chain.ts';
import { openBox } from '../src/crypto/ecies.ts';
import { prng, randBytes, testSeed } from './helpers/seeded.ts';
import { TIMEOUTS, twoCommittees, memberPubkeys } from './helpers/two-committees.ts';

test("one compromised member's key cannot move a 2-of-3 deposit: the regtest chain refuses it, two keys spend it", async () => {
  const chain = await startTestChain();
  try {
    const mesh = new Mesh(TIMEOUTS);
    const [p, b1, b2] = await mesh.committee(['p', 'b1', 'b2']);
    const dep = await p!.treasury.newDeposit();
    const funded = await chain.faucet.fund(dep.address, 60_000n);
    await chain.faucet.mine(1);
    // The test-only hook: read the member's key out of its in-process state, as an attacker of one TEE would.
    const stolen = b1!.treasury.state.committee!.memberKeys[dep.deposit_id]!;
    const second = b2!.treasury.state.committee!.memberKeys[dep.deposit_id]!;
    const thief = newKey();
    const spend = (): Spend =>
      buildSpend({
        inputs: [
          {
            kind: 'p2wsh-multisig',
            txid: funded.txid,
            vout: funded.vout,
            valueSat: 60_000n,
            witnessScript: hexToBytes(dep.witness_script),
          },
        ],
        outputs: [{ address: thief.address, valueSat: 58_000n }],
      });
    const one = spend();
    one.tx.setWitness(0, [new Uint8Array(0), signInput(one, 0, hexToBytes(stolen)), hexToBytes(dep.witness_script)]);
    await expectRejected(chain.rpc, one.tx.toHex(), RpcCode.VERIFY_REJECTED, /script|signature|verify/i, [
      { txid: funded.txid, vout: funded.vout },
    ]);
    // The same key twice is still one signer.
    const twice = spend();
    const sig = signInput(twice, 0, hexToBytes(stolen));
    twice.tx.setWitness(0, [new Uint8Array(0), sig, sig, hexToBytes(dep.witness_script)]);
    await expectRejected(chain.rpc, twice.tx.toHex(), RpcCode.VERIFY_REJECTED, /script|signature|verify/i);
    // Two members' keys (m = 2) do spend it: the deposit really is 2-of-3 over those keys.
    const two = spend();
    finalizeMultisigInput(
      two,
      0,
      [stolen, second].map((k) => ({
        pubkey: publicKeyOf(hexToBytes(k)),
        signature: signInput(two, 0, hexToBytes(k)),
      })),
    );
    assert.equal(await chain.rpc.sendRawTransaction(two.tx.toHex()), two.tx.getId());
  } finally {
    await chain.close();
  }
});

test('handed-over keys are kept as 2-of-3 secret shares: no member holds one whole', async () => {
  const { a, b, channelId, depA, depB } = await twoCommittees();
  for (const m of [...a, ...b]) {
    const ch = m.treasury.state.channels[channelId]!;
    assert.equal(ch.peerDeposits.length, 1, `${m.name} holds the peer's one deposit`);
    for (const d of ch.peerDeposits) {
      assert.deepEqual(d.privkeys, [], `${m.name} holds no whole key of the peer's deposit`);
      assert.equal(d.shares!.length, 3);
      for (const s of d.shares!) assert.equal(s.boxes.length, 3);
    }
  }
  // The shares are real: each member opens only its own box, and any two members' shares rebuild each of
  // the peer committee's keys of that deposit (the keys its members hold).
  for (const [mine, peers, dep] of [
    [a, b, depB],
    [b, a, depA],
  ] as const) {
    const d = mine[0]!.treasury.state.channels[channelId]!.peerDeposits[0]!;
    assert.equal(d.outpoint, `${dep.txid}:${dep.vout}`);
    assert.deepEqual(d.shares!.map((s) => s.pubkey).sort(), memberPubkeys([...peers], dep).sort());
    for (const s of d.shares!) {
      const open = (m: MeshNode, box: string): Uint8Array | null =>
        openBox(hexToBytes(m.treasury.state.identityKey), box, 'key-share'); // key-boxes.ts AAD_SHARE
      const shares = mine.map((m, i) => open(m, s.boxes[i]!));
      assert.ok(
        shares.every((x) => x !== null),
        'each member opens its own share',
      );
      assert.equal(open(mine[0]!, s.boxes[1]!), null, "and not another member's");
      for (const pair of [
        [0, 1],
        [1, 2],
        [0, 2],
      ]) {
        assert.equal(
          bytesToHex(publicKeyOf(await combineShares(pair.map((i): Uint8Array => shares[i]!)))),
          s.pubkey,
          `members ${pair} rebuild the key`,
        );
      }
    }
  }
  // The grant carried each member's key split for the peer's roster, never whole keys, plain or sealed.
  const grant = b[0]!.treasury.state.deposits[Object.keys(b[0]!.treasury.state.deposits)[0]!]!;
  assert.equal(grant.sealedKeys, undefined);
  assert.equal(grant.peerShares!.length, 3);
  for (const s of grant.peerShares!) assert.equal(s.boxes.length, 3);
});

test('Shamir sharing: fewer than m shares reconstruct nothing, any m reconstruct the secret', async () => {
  const seed = testSeed('committee.protocol Shamir');
  const secret = randBytes(prng(seed), 32);
  const shares = await splitSecret(secret, 5, 3);
  assert.equal(shares.length, 5);
  for (const pick of [
    [0, 1, 2],
    [1, 3, 4],
    [0, 2, 4],
  ]) {
    assert.deepEqual(await combineShares(pick.map((i) => shares[i]!)), secret);
  }
  for (const pick of [
    [0, 1],
    [2, 4],
    [3, 1],
  ]) {
    assert.notDeepEqual(
      await combineShares(pick.map((i) => shares[i]!)),
      secret,
      'two of a 3-of-5 rebuild something else',
    );
  }
  await assert.rejects(combineShares([shares[0]!]), /at least two/);
  await assert.rejects(splitSecret(secret, 3, 1), /2 ≤ m ≤ n/);
  // Each split draws fresh randomness: a second split of the same secret shares no value with the first,
  // and no share is the secret (committee.shares.test.ts tests the share bytes' distribution).
  const again = await splitSecret(secret, 5, 3);
  const values = new Set([...shares, ...again].map((s) => bytesToHex(s.subarray(0, 32))));
  assert.equal(values.size, 10, `two splits of one secret give ten distinct shares (seed ${seed})`);
  assert.ok(!values.has(bytesToHex(secret)), `no share is the secret (seed ${seed})`);
});
