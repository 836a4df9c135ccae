// run-tests lane: in-process
/** Script/transaction templates (src/bitcoin) and exact amount conversion: pure code, no chain. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { build } from 'esbuild';
import { Transaction, networks, payments, script as bjsScript } from 'bitcoinjs-lib';
import {
  buildSpend,
  estimateVsize,
  finalizeMultisigInput,
  multisigP2wsh,
  multisigWitness,
  p2wpkh,
  signInput,
  signP2wpkhInput,
  spendFee,
  verifyInputSignature,
  fromHex,
  toHex,
  addressToOutputScript,
  outputScriptToAddress,
  parseMultisigScript,
  prevOutputScript,
  encodeScriptSignature,
} from '../src/bitcoin/index.ts';
import { btcToSats, satsToBtcNumber, satsToBtcString, MAX_MONEY_SATS } from '../src/chain/amounts.ts';
import { newKey } from './helpers/chain.ts';

test('p2wpkh gives Core regtest bech32 addresses (BIP173 test vector)', () => {
  const pub = fromHex('0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798');
  const out = p2wpkh(pub);
  assert.equal(out.address, 'bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080');
  assert.equal(toHex(out.outputScript), '0014751e76e8199196d454941c45d1b3a323f1433bd6');
  assert.throws(() => p2wpkh(pub.subarray(1)), /33-byte compressed/);
});

test('addresses ⇄ output scripts for every Core regtest address type', () => {
  const cases: Array<[string, string]> = [
    ['bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080', '0014751e76e8199196d454941c45d1b3a323f1433bd6'],
    ['mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r', '76a914751e76e8199196d454941c45d1b3a323f1433bd688ac'],
  ];
  const p2sh = payments.p2sh({ hash: fromHex('751e76e8199196d454941c45d1b3a323f1433bd6'), network: networks.regtest });
  cases.push([p2sh.address as string, 'a914751e76e8199196d454941c45d1b3a323f1433bd687']);
  for (const [addr, script] of cases) {
    assert.equal(toHex(addressToOutputScript(addr)), script);
    assert.equal(outputScriptToAddress(fromHex(script)), addr);
  }
  assert.match(p2sh.address as string, /^2/);
  const taproot = outputScriptToAddress(fromHex('5120' + '07'.repeat(32)));
  assert.match(taproot ?? '', /^bcrt1p/);
  assert.equal(toHex(addressToOutputScript(taproot as string)), '5120' + '07'.repeat(32));
  assert.equal(outputScriptToAddress(fromHex('6a0401020304')), null);
  assert.throws(
    () => addressToOutputScript('bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4'),
    /not a valid regtest address/,
  );
  assert.throws(
    () => addressToOutputScript('rb1qnd2r5t6ce4zeau2artlxu3j6mpdtq97hl89pjk'),
    /not a valid regtest address/,
  );
  assert.throws(() => addressToOutputScript('1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2'), /not regtest/);
});

test('multisigP2wsh sorts keys (BIP67), so key order does not change the address', () => {
  const keys = [newKey(), newKey(), newKey()].map((k) => k.pub);
  const a = multisigP2wsh(2, keys);
  const b = multisigP2wsh(2, [...keys].reverse());
  assert.equal(a.address, b.address);
  assert.deepEqual(a.witnessScript, b.witnessScript);
  assert.match(a.address, /^bcrt1q[0-9a-z]{58}$/);
  assert.equal(a.witnessScript[0], 0x52); // OP_2
  assert.equal(a.witnessScript[a.witnessScript.length - 1], 0xae); // OP_CHECKMULTISIG
  assert.throws(() => multisigP2wsh(3, keys.slice(0, 2)), /m must be/);
  assert.throws(() => multisigP2wsh(1, [keys[0]!, keys[0]!]), /duplicate/);
});

test('a parsed multisig script and its P2WSH output script are remembered, each caller getting its own copy', () => {
  const keys = [newKey(), newKey(), newKey()].map((k) => k.pub);
  const ms = multisigP2wsh(2, keys);
  const input = {
    kind: 'p2wsh-multisig' as const,
    txid: '11'.repeat(32),
    vout: 0,
    valueSat: 1_000n,
    witnessScript: ms.witnessScript,
  };
  for (let i = 0; i < 3; i++) {
    const parsed = parseMultisigScript(ms.witnessScript);
    assert.equal(parsed.m, 2);
    assert.deepEqual(parsed.pubkeys, ms.pubkeys);
    const out = prevOutputScript(input);
    assert.deepEqual(out, ms.outputScript);
    // what one caller does to its answer is not what the next one gets
    parsed.pubkeys[0]!.fill(0);
    parsed.pubkeys.pop();
    out.fill(0);
  }
  assert.equal(toHex(payments.p2wsh({ redeem: { output: ms.witnessScript } }).output!), toHex(ms.outputScript));
  assert.throws(() => parseMultisigScript(fromHex('51ae')), /not a multisig script/);
  assert.throws(
    () => parseMultisigScript(fromHex('51ae')),
    /not a multisig script/,
    'a script that failed is not kept',
  );
});

test("script signatures: our DER encoding is bitcoinjs-lib's, byte for byte, leading zeros and high bits included", () => {
  const cases: Uint8Array[] = [];
  for (let i = 0; i < 400; i++) {
    const sig = Uint8Array.from(randomBytes(64));
    // zero bytes and high bits at the front of r and of s, as some signatures have them
    if (i % 4 === 1) sig.fill(0, 0, 1 + (i % 5));
    if (i % 4 === 2) sig.fill(0, 32, 33 + (i % 7));
    if (i % 8 === 3) sig[0] = 0x80 | sig[0]!;
    if (i % 8 === 7) sig[32] = 0x80 | sig[32]!;
    cases.push(sig);
  }
  for (const sig of cases)
    for (const hashType of [0x01, 0x02, 0x03, 0x81, 0x83]) {
      const ours = encodeScriptSignature(sig, hashType);
      assert.equal(toHex(ours), toHex(bjsScript.signature.encode(sig, hashType)));
      assert.equal(toHex(bjsScript.signature.decode(ours).signature), toHex(sig));
    }
  assert.throws(() => encodeScriptSignature(new Uint8Array(63), 1), /64 bytes/);
  assert.throws(() => encodeScriptSignature(new Uint8Array(64).fill(1), 0x04), /hashType/);
  assert.throws(() => encodeScriptSignature(new Uint8Array(64).fill(1), 0x100), /hashType/);
});

test('signing: BIP143 signatures verify, foreign keys are refused, witnesses are assembled in script order', () => {
  const owner = newKey();
  const signers = [newKey(), newKey(), newKey()];
  const ms = multisigP2wsh(
    2,
    signers.map((s) => s.pub),
  );
  const spend = buildSpend({
    inputs: [
      { kind: 'p2wpkh', txid: '11'.repeat(32), vout: 0, valueSat: 100_000n, pubkey: owner.pub },
      { kind: 'p2wsh-multisig', txid: '22'.repeat(32), vout: 1, valueSat: 200_000n, witnessScript: ms.witnessScript },
    ],
    outputs: [{ address: owner.address, valueSat: 299_000n }],
  });
  assert.equal(spendFee(spend), 1_000n);
  assert.equal(spend.tx.version, 2);
  assert.equal(Transaction.fromHex(spend.tx.toHex()).ins[0]?.hash.length, 32);
  assert.throws(() => signInput(spend, 0, signers[0]!.priv), /does not belong/);
  signP2wpkhInput(spend, 0, owner.priv);
  const sigs = signers.map((s) => ({ pubkey: s.pub, signature: signInput(spend, 1, s.priv) }));
  for (const s of sigs) assert.ok(verifyInputSignature(spend, 1, s.pubkey, s.signature));
  assert.equal(verifyInputSignature(spend, 1, owner.pub, sigs[0]!.signature), false);
  const witness = multisigWitness(ms.witnessScript, [sigs[2]!, sigs[0]!]);
  assert.equal(witness.length, 4);
  assert.equal(witness[0]?.length, 0);
  const order = (sig: Uint8Array) =>
    ms.pubkeys.findIndex((pk) => toHex(pk) === toHex(sigs.find((s) => s.signature === sig)!.pubkey));
  assert.ok(order(witness[1]!) < order(witness[2]!), 'signatures follow the script key order');
  assert.throws(() => multisigWitness(ms.witnessScript, [sigs[0]!]), /2 signatures/);
  finalizeMultisigInput(spend, 1, sigs);
  assert.ok(
    spend.tx.virtualSize() <=
      estimateVsize(
        spend.inputs,
        spend.tx.outs.map((o) => o.script),
      ),
  );
});

test('buildSpend validates its fields and names the bad one', () => {
  const k = newKey();
  const input = { kind: 'p2wpkh' as const, txid: '11'.repeat(32), vout: 0, valueSat: 1000n, pubkey: k.pub };
  assert.throws(
    () => buildSpend({ inputs: [{ ...input, txid: 'xyz' }], outputs: [{ address: k.address, valueSat: 1n }] }),
    /inputs\[0\]\.txid/,
  );
  assert.throws(
    () => buildSpend({ inputs: [input], outputs: [{ address: k.address, valueSat: -1n }] }),
    /outputs\[0\]\.valueSat/,
  );
  assert.throws(
    () =>
      buildSpend({
        inputs: [input],
        outputs: [{ address: 'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4', valueSat: 1n }],
      }),
    /not a valid regtest address/,
  );
});

test('src/bitcoin bundles for a non-Node platform (no node: built-ins)', async () => {
  const result = await build({
    entryPoints: [join(import.meta.dirname, '../src/bitcoin/index.ts')],
    bundle: true,
    write: false,
    platform: 'neutral',
    format: 'esm',
    mainFields: ['module', 'main'],
    logLevel: 'silent',
  });
  assert.equal(result.errors.length, 0);
  assert.ok(result.outputFiles[0]!.text.length > 1000);
});

test('BTC ⇄ sats conversion is exact', () => {
  assert.equal(btcToSats(0.1), 10_000_000n);
  assert.equal(btcToSats(0.00000001), 1n);
  assert.equal(btcToSats(20999999.99999999), MAX_MONEY_SATS - 1n);
  assert.equal(btcToSats('1.5'), 150_000_000n);
  assert.equal(btcToSats(-0.0001), -10_000n);
  assert.equal(satsToBtcString(1_000n), '0.00001000');
  assert.equal(satsToBtcString(-150_000_000n), '-1.50000000');
  for (const sats of [0n, 1n, 99_999_999n, 123_456_789_012_345n, MAX_MONEY_SATS])
    assert.equal(btcToSats(satsToBtcNumber(sats)), sats);
  assert.throws(() => btcToSats(0.123456789), /more than 8 decimal places/);
  assert.throws(() => btcToSats('1e-8'), /decimal/);
  assert.throws(() => btcToSats(Number.NaN, 'fee'), /fee must be a finite/);
});
