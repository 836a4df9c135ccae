/**
 * The Lightning-style baseline (src/lnmodel): its BOLT 3 building blocks against the spec's test vectors,
 * the channel state machine in one process, and two real party processes over TCP with durable state.
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { payments, script as bscript, Transaction } from 'bitcoinjs-lib';
import { sha256 } from '@noble/hashes/sha2.js';
import { ProtocolError } from '../src/lnmodel/channel.ts';
import { buildCommitmentWithKeys, type ChannelConfig } from '../src/lnmodel/commitment.ts';
import {
  basepointsOf,
  derivePubkey,
  deriveRevocationPubkey,
  generateChannelSecrets,
  publicKeyOf,
  verifyHash,
} from '../src/lnmodel/keys.ts';
import { openInMemoryPair } from '../src/lnmodel/memory-pair.ts';
import { FIRST_CHAIN_INDEX, RevocationStore, secretFromSeed } from '../src/lnmodel/revocation.ts';
import { LnPair, measureOnPair } from '../src/lnmodel/run.ts';
import { offeredHtlcScript, p2wshOutput, receivedHtlcScript, toLocalScript } from '../src/lnmodel/scripts.ts';
import type { LnMessage } from '../src/lnmodel/wire.ts';

const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'lnmodel-test-'));
  dirs.push(d);
  return d;
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('lnmodel: BOLT 3 building blocks match the spec test vectors', () => {
  test('per-commitment secret generation (Appendix D)', () => {
    const zero = new Uint8Array(32);
    const ff = new Uint8Array(32).fill(0xff);
    assert.equal(
      toHex(secretFromSeed(zero, FIRST_CHAIN_INDEX)),
      '02a40c85b6f28da08dfdbe0926c53fab2de6d28c10301f8f7c4073d5e42e3148',
    );
    assert.equal(
      toHex(secretFromSeed(ff, FIRST_CHAIN_INDEX)),
      '7cc854b54e3e0dcdb010d7a3fee464a9687be6e8db3be6854c475621e007a5dc',
    );
    assert.equal(
      toHex(secretFromSeed(ff, 0xaaaaaaaaaaa)),
      '56f4008fb007ca9acf0e15b054d5c9fd12ee06cea347914ddbaed70d1c13a528',
    );
    assert.equal(
      toHex(secretFromSeed(ff, 0x555555555555)),
      '9015daaeb06dba4ccc05b91b2f73bd54405f2be9f217fbacd3c5ac2e62327d31',
    );
    assert.equal(
      toHex(secretFromSeed(new Uint8Array(32).fill(1), 1)),
      '915c75942a26bb3a433a8ce2cb0427c29ec6c1775cfc78328b57f6ba7bfeaa9c',
    );
  });

  test('compact storage of revealed secrets (Appendix D storage tests)', () => {
    const correct = [
      '7cc854b54e3e0dcdb010d7a3fee464a9687be6e8db3be6854c475621e007a5dc',
      'c7518c8ae4660ed02894df8976fa1a3659c1a8b4b5bec0c4b872abeba4cb8964',
      '2273e227a5b7449b6e70f1fb4652864038b1cbf9cd7c043a7d6456b7fc275ad8',
      '27cddaa5624534cb6cb9d7da077cf2b22ab21e9b506fd4998a51d54502e99116',
      'c65716add7aa98ba7acb236352d665cab17345fe45b55fb879ff80e6bd0c41dd',
      '969660042a28f32d9be17344e09374b379962d03db1574df5a8a5a47e19ce3f2',
      'a5a64476122ca0925fb344bdc1854c1c0a59fc614298e50a33e331980a220f32',
      '05cde6323d949933f7f7b78776bcc1ea6d9b31447732e3802e1f7ac44b650e17',
    ];
    const store = new RevocationStore();
    correct.forEach((s, n) => assert.ok(store.insert(FIRST_CHAIN_INDEX - n, hex(s)), `secret ${n}`));
    // Older secrets are re-derived from the newest ones.
    correct.forEach((s, n) => assert.equal(toHex(store.secretFor(FIRST_CHAIN_INDEX - n)!), s));
    assert.equal(store.secretFor(FIRST_CHAIN_INDEX - 8), null);

    const first = new RevocationStore();
    assert.ok(first.insert(FIRST_CHAIN_INDEX, hex('02a40c85b6f28da08dfdbe0926c53fab2de6d28c10301f8f7c4073d5e42e3148')));
    assert.equal(first.insert(FIRST_CHAIN_INDEX - 1, hex(correct[1]!)), false, '#1 incorrect');

    const eighth = new RevocationStore();
    const wrong = [...correct.slice(0, 7), 'a7efbc61aac46d34f77778bac22c8a20c6a46ca460addc49009bda875ec88fa4'];
    wrong.slice(0, 7).forEach((s, n) => assert.ok(eighth.insert(FIRST_CHAIN_INDEX - n, hex(s))));
    assert.equal(eighth.insert(FIRST_CHAIN_INDEX - 7, hex(wrong[7]!)), false, '#8 incorrect');
  });

  test('key derivation (Appendix E)', () => {
    const basepoint = publicKeyOf(hex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'));
    const point = publicKeyOf(hex('1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100'));
    assert.equal(toHex(basepoint), '036d6caac248af96f6afa7f904f550253a0f3ef3f5aa2fe6838a95b216691468e2');
    assert.equal(toHex(point), '025f7117a78150fe2ef97db7cfc83bd57b2e2c0d0dd25eaf467a4a1c2a45ce1486');
    assert.equal(
      toHex(derivePubkey(basepoint, point)),
      '0235f2dbfaa89b57ec7b055afe29849ef7ddfeb1cefdb9ebdc43f5494984db29e5',
    );
    assert.equal(
      toHex(deriveRevocationPubkey(basepoint, point)),
      '02916e326636d19c33f13e8c0c3a03dd157f332f3e99c317c141dd865eb01f8ff0',
    );
  });

  test("scripts and a commitment transaction (Appendix C): same txid, and the spec's remote signature verifies over our sighash", () => {
    const revocation = hex('0212a140cd0c6539d07cd08dfe09984dec3251ea808b892efeac3ede9402bf2b19');
    const localDelayed = hex('03fd5960528dc152014952efdb702a88f71e3c1653b2314431701ec77e57fde83c');
    const localpubkey = hex('030d417a46946384f88d5f3337267c5e579765875dc4daca813e21734b140639e7');
    const remotepubkey = hex('0394854aa6eab5b2a8122cc726e9dded053a2184d88256816826d6231c068d4a5b');
    assert.equal(
      toHex(toLocalScript(revocation, 144, localDelayed)),
      '63210212a140cd0c6539d07cd08dfe09984dec3251ea808b892efeac3ede9402bf2b1967029000b2752103fd5960528dc152014952efdb702a88f71e3c1653b2314431701ec77e57fde83c68ac',
    );
    // In these vectors localpubkey/remotepubkey double as the HTLC keys.
    assert.equal(
      toHex(offeredHtlcScript(revocation, localpubkey, remotepubkey, sha256(new Uint8Array(32).fill(2)))),
      '76a91414011f7254d96b819c76986c277d115efce6f7b58763ac67210394854aa6eab5b2a8122cc726e9dded053a2184d88256816826d6231c068d4a5b7c820120876475527c21030d417a46946384f88d5f3337267c5e579765875dc4daca813e21734b140639e752ae67a914b43e1b38138a41b37f7cd9a1d274bc63e3a9b5d188ac6868',
    );
    assert.equal(
      toHex(receivedHtlcScript(revocation, localpubkey, remotepubkey, sha256(new Uint8Array(32)), 500)),
      '76a91414011f7254d96b819c76986c277d115efce6f7b58763ac67210394854aa6eab5b2a8122cc726e9dded053a2184d88256816826d6231c068d4a5b7c8201208763a914b8bcb07f6344b42ab04250c86a6e8b75d3fdbbc688527c21030d417a46946384f88d5f3337267c5e579765875dc4daca813e21734b140639e752ae677502f401b175ac6868',
    );

    const localFunding = hex('023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb');
    const remoteFunding = hex('030e9f7b623d2ccc7c9bd44d66d5ce21ce504c0acf6385a132cec6d3c39fa711c1');
    const fundingWitnessScript = payments.p2ms({ m: 2, pubkeys: [localFunding, remoteFunding] }).output!;
    const unused = basepointsOf(generateChannelSecrets());
    const cfg: ChannelConfig = {
      capacitySat: 10_000_000n,
      fundingTxHash: hex('8984484a580b825b9972d7adb15050b3ab624ccd731946b3eeddb92f4e7ef6be').reverse(),
      fundingVout: 0,
      fundingWitnessScript,
      basepoints: { opener: unused, acceptor: unused },
      toSelfDelay: 144,
      dustLimitSat: 546n,
      feeratePerKw: 15_000n,
      reserveSat: 0n,
      obscuringFactor: 0x2bb038521914n,
    };
    const built = buildCommitmentWithKeys(
      cfg,
      'opener',
      42,
      { revocation, localDelayed, remotePayment: remotepubkey },
      { openerSat: 7_000_000n, acceptorSat: 3_000_000n, htlcs: [] },
    );
    assert.equal(built.feeSat, 10_860n);
    const expected = Transaction.fromHex(
      '02000000000101bef67e4e2fb9ddeeb3461973cd4c62abb35050b1add772995b820b584a488489000000000038b02b8002c0c62d0000000000160014ccf1af2f2aabee14bb40fa3851ab2301de84311054a56a00000000002200204adb4e2f00643db396dd120d4e7dc17625f5f2c11a40d857accc862d6b7dd80e0400473044022051b75c73198c6deee1a875871c3961832909acd297c6b908d59e3319e5185a46022055c419379c5051a78d00dbbce11b5b664a0c22815fbcc6fcef6b1937c383693901483045022100f51d2e566a70ba740fc5d8c0f07b9b93d2ed741c3c0860c613173de7d39e7968022041376d520e9c0e1ad52248ddf4b22e12be8763007df977253ef45a4ca3bdb7c001475221023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb21030e9f7b623d2ccc7c9bd44d66d5ce21ce504c0acf6385a132cec6d3c39fa711c152ae3e195220',
    );
    assert.equal(built.txid, expected.getId());
    const remoteSig = bscript.signature.decode(
      hex(
        '3045022100f51d2e566a70ba740fc5d8c0f07b9b93d2ed741c3c0860c613173de7d39e7968022041376d520e9c0e1ad52248ddf4b22e12be8763007df977253ef45a4ca3bdb7c0' +
          '01',
      ),
    );
    assert.ok(verifyHash(built.sighash, remoteFunding, remoteSig.signature));
  });

  test('the direct P2WSH output equals bitcoinjs-lib payments.p2wsh', () => {
    const ws = toLocalScript(publicKeyOf(new Uint8Array(32).fill(3)), 144, publicKeyOf(new Uint8Array(32).fill(4)));
    assert.deepEqual(p2wshOutput(ws), payments.p2wsh({ redeem: { output: ws } }).output);
  });
});

describe('lnmodel: the channel state machine in one process', () => {
  for (const mode of ['balance', 'htlc'] as const) {
    test(`${mode} mode: rounds move exactly the amounts and both parties agree`, () => {
      const { payer, payee, pay } = openInMemoryPair(mode);
      const r1 = pay([1_000n]);
      const r2 = pay([1_000n, 2_000n, 3_000n]);
      assert.deepEqual([...r1.finalised, ...r2.finalised].sort(), [...r1.ids, ...r2.ids].sort());
      for (const ch of [payer, payee]) {
        assert.equal(ch.local.spec.openerSat, 10_000_000n - 7_000n);
        assert.equal(ch.local.spec.acceptorSat, 7_000n);
        assert.equal(ch.local.spec.htlcs.length, 0);
        assert.ok(ch.quiescent());
      }
      const rounds = mode === 'balance' ? 2 : 4; // htlc: each batch is an add round and a fulfill round
      assert.equal(payer.local.index, rounds);
      assert.equal(payee.remote.index, rounds);
      assert.equal(payer.remote.txid, payee.local.txid);
      assert.equal(payee.remote.txid, payer.local.txid);
      // Every replaced commitment of each side was revoked to the other: its secret can be re-derived.
      for (let n = 0; n < rounds; n++) {
        assert.ok(payer.revocationSecretOf(n), `payee's commitment ${n} revoked`);
        assert.ok(payee.revocationSecretOf(n), `payer's commitment ${n} revoked`);
      }
      assert.equal(payer.revocationSecretOf(rounds), null);
    });
  }

  test("a tampered commitment signature is refused and the receiver's commitment does not advance", () => {
    const { payee, pay } = openInMemoryPair('balance');
    pay([500n]);
    const before = { index: payee.local.index, txid: payee.local.txid, spec: payee.local.spec };
    assert.throws(
      () =>
        pay([700n], (m) => {
          if (m.type !== 'commitment_signed') return m;
          const signature = Uint8Array.from(m.signature);
          signature[10]! ^= 0x80;
          return { ...m, signature };
        }),
      (err: unknown) => err instanceof ProtocolError && /invalid commitment signature/.test(err.message),
    );
    assert.deepEqual({ index: payee.local.index, txid: payee.local.txid, spec: payee.local.spec }, before);
  });

  test('a wrong revocation secret is refused and nothing is recorded', () => {
    const { payer, payee, deliver } = openInMemoryPair('balance');
    const msgs: LnMessage[] = [];
    payer.proposePayments([900n], msgs);
    const reply = deliver(payee, msgs); // revoke_and_ack + commitment_signed
    const raa = reply.find((m) => m.type === 'revoke_and_ack')!;
    assert.ok(raa && raa.type === 'revoke_and_ack');
    const wrong = { ...raa, perCommitmentSecret: sha256(raa.perCommitmentSecret) };
    const before = { index: payer.local.index, spec: payer.local.spec };
    assert.throws(
      () => deliver(payer, [wrong, ...reply.filter((m) => m !== raa)]),
      (err: unknown) => err instanceof ProtocolError && /does not match its per-commitment point/.test(err.message),
    );
    assert.deepEqual({ index: payer.local.index, spec: payer.local.spec }, before);
    assert.equal(payer.revocationSecretOf(0), null);
    assert.ok(payer.awaitingRevocation);
  });
});

describe('lnmodel: payer and payee processes over TCP, durable state', { timeout: 120_000 }, () => {
  test("200 payments unbatched and in batches of 20: balances moved by exactly the sum, on both sides' disks", async () => {
    const pair = await LnPair.start({ dir: await tempDir(), mode: 'balance', capacitySat: 100_000_000n });
    try {
      const unbatched = await measureOnPair(pair, { payments: 200, batchSize: 1, amountSat: 1_000n, mode: 'balance' });
      assert.equal(unbatched.verified, true, unbatched.verificationError);
      assert.equal(unbatched.commitmentUpdates, 200);
      assert.equal(unbatched.latenciesMs.length, 200);
      assert.ok(unbatched.latenciesMs.every((x) => x > 0));
      assert.ok(unbatched.processes.payer.persists >= 200 && unbatched.processes.payee.persists >= 200);

      const batched = await measureOnPair(pair, { payments: 200, batchSize: 20, amountSat: 1_000n, mode: 'balance' });
      assert.equal(batched.verified, true, batched.verificationError);
      assert.equal(batched.commitmentUpdates, 10);
      const after = await pair.onDisk('payee');
      assert.equal(after.local.acceptorSat, 400_000n);
      assert.equal(after.local.openerSat, 100_000_000n - 400_000n);
    } finally {
      await pair.stop();
    }
  });

  test('htlc mode: an HTLC per payment, added and fulfilled, 60 payments in batches of 20', async () => {
    const pair = await LnPair.start({ dir: await tempDir(), mode: 'htlc', capacitySat: 100_000_000n });
    try {
      const r = await measureOnPair(pair, { payments: 60, batchSize: 20, amountSat: 1_000n, mode: 'htlc' });
      assert.equal(r.verified, true, r.verificationError);
      assert.equal(r.commitmentUpdates, 6);
    } finally {
      await pair.stop();
    }
  });

  test('a tampered commitment_signed is refused by the payee, whose durable state does not advance', async () => {
    const pair = await LnPair.start({ dir: await tempDir(), mode: 'balance', capacitySat: 10_000_000n });
    try {
      await measureOnPair(pair, { payments: 3, batchSize: 1, amountSat: 1_000n, mode: 'balance' });
      const before = await pair.onDisk('payee');
      await pair.inject('payer', 'bad_commitment_signature');
      await assert.rejects(pair.run({ payments: 1, batchSize: 1, amountSat: 5_000n }), /invalid commitment signature/);
      assert.deepEqual(await pair.onDisk('payee'), before);
    } finally {
      await pair.stop();
    }
  });

  test('a wrong revocation secret is refused by the payer, whose durable state does not advance', async () => {
    const pair = await LnPair.start({ dir: await tempDir(), mode: 'balance', capacitySat: 10_000_000n });
    try {
      await measureOnPair(pair, { payments: 3, batchSize: 1, amountSat: 1_000n, mode: 'balance' });
      const before = await pair.onDisk('payer');
      await pair.inject('payee', 'bad_revocation_secret');
      await assert.rejects(
        pair.run({ payments: 1, batchSize: 1, amountSat: 5_000n }),
        /does not match its per-commitment point/,
      );
      const afterFault = await pair.onDisk('payer');
      // The payer had signed the payee's next commitment (persisted before sending), but its own
      // commitment, its balances and the revocations it holds did not move.
      assert.equal(afterFault.localIndex, before.localIndex);
      assert.deepEqual(afterFault.local, before.local);
      assert.equal(afterFault.awaitingRevocation, true);
    } finally {
      await pair.stop();
    }
  });
});
