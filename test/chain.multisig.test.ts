// run-tests lane: in-process
/**
 * Real transactions over real RPC: a mature coinbase funds 2-of-2 and 2-of-3 P2WSH multisig
 * outputs that are spent back with the right signatures; every kind of bad transaction is refused
 * with Core's error code and leaves the chain and mempool untouched. One shared body runs against
 * each backend (bitcoind only when BITCOIND_RPC_URL is set; otherwise it is reported as skipped).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RpcCode, type BitcoinRpcClient } from '../src/chain/rpc-client.ts';
import {
  buildSpend,
  finalizeMultisigInput,
  multisigP2wsh,
  signInput,
  signP2wpkhInput,
  type Spend,
  type SpendableInput,
} from '../src/bitcoin/index.ts';
import { chainBackends, expectRejected, newKey, snapshot, type ChainUnderTest } from './helpers/chain.ts';

const FEE = 2_000n;
const BTC = 100_000_000n;

/** The coinbase output paying `address` in block `blockHash` (index-free: read from the block). */
async function coinbaseOutput(rpc: BitcoinRpcClient, blockHash: string, address: string) {
  const block = await rpc.getBlockWithTxs(blockHash);
  const cb = block.txs[0];
  assert.ok(cb?.vin[0]?.coinbase !== undefined, 'first transaction is the coinbase');
  const out = cb.vout.find((o) => o.scriptPubKey.address === address);
  assert.ok(out, 'coinbase pays the test key');
  return { txid: cb.txid, vout: out.n, valueSat: out.valueSat };
}

for (const backend of chainBackends()) {
  describe(`chain: multisig and rejections [${backend.name}]`, () => {
    let chain: ChainUnderTest;
    let rpc: BitcoinRpcClient;
    let burn: string;
    const a = newKey();
    const k = [newKey(), newKey(), newKey(), newKey(), newKey()] as const;
    const ms22 = multisigP2wsh(2, [k[0].pub, k[1].pub]);
    const ms23 = multisigP2wsh(2, [k[2].pub, k[3].pub, k[4].pub]);
    let coinbase: SpendableInput;
    let fundingTxid = '';
    let spendBack: Spend;
    let spendBackTxid = '';

    const p2wpkhIn = (txid: string, vout: number, valueSat: bigint): SpendableInput => ({
      kind: 'p2wpkh',
      txid,
      vout,
      valueSat,
      pubkey: a.pub,
    });
    const payA = (input: SpendableInput, valueSat: bigint, to = a.address) => {
      const spend = buildSpend({ inputs: [input], outputs: [{ address: to, valueSat }] });
      signP2wpkhInput(spend, 0, a.priv);
      return spend;
    };

    // Each case carries the backend's skip reason, so an unavailable backend shows every case as skipped.
    // The runner tracks the test's promise itself, as it does for a bare test() call.
    const it = (name: string, fn: () => Promise<void>): void => void test(name, { skip: backend.skip }, fn);

    before(async () => {
      if (backend.skip) return;
      chain = await backend.start();
      rpc = chain.rpc;
      burn = await chain.faucet.address();
    });
    after(async () => chain?.close());

    it('an immature coinbase spend is refused (-26 premature spend), nothing changes', async () => {
      const [blockHash] = await rpc.generateToAddress(1, a.address);
      const cb = await coinbaseOutput(rpc, blockHash as string, a.address);
      coinbase = p2wpkhIn(cb.txid, cb.vout, cb.valueSat);
      const spend = payA(coinbase, cb.valueSat - FEE);
      await expectRejected(rpc, spend.tx.toHex(), RpcCode.VERIFY_REJECTED, /bad-txns-premature-spend-of-coinbase/, [
        cb,
      ]);
    });

    it('a mature coinbase, found with scantxoutset, funds a 2-of-2 and a 2-of-3 P2WSH multisig', async () => {
      await rpc.generateToAddress(100, burn);
      const scan = await rpc.scanTxOutSet([`addr(${a.address})`]);
      assert.equal(scan.success, true);
      const found = scan.unspents.find((u) => u.txid === coinbase.txid && u.vout === coinbase.vout);
      assert.ok(found, 'scantxoutset finds the coinbase output');
      assert.equal(found.valueSat, coinbase.valueSat);
      assert.equal(
        scan.totalSat,
        scan.unspents.reduce((s, u) => s + u.valueSat, 0n),
      );

      const change = coinbase.valueSat - 2n * BTC - FEE;
      const spend = buildSpend({
        inputs: [coinbase],
        outputs: [
          { address: ms22.address, valueSat: BTC },
          { address: ms23.address, valueSat: BTC },
          { address: a.address, valueSat: change },
        ],
      });
      signP2wpkhInput(spend, 0, a.priv);
      const accepted = await rpc.testMempoolAccept(spend.tx.toHex());
      assert.equal(accepted.allowed, true, accepted.rejectReason);
      assert.equal(accepted.feeSat, FEE);

      fundingTxid = await rpc.sendRawTransaction(spend.tx.toHex());
      assert.equal(fundingTxid, spend.tx.getId());
      assert.ok((await rpc.getRawMempool()).includes(fundingTxid));
      assert.equal((await rpc.getMempoolEntry(fundingTxid)).feeSat, FEE);
      assert.equal(
        await rpc.getTxOut(coinbase.txid, coinbase.vout, true),
        null,
        'mempool spend hides the coinbase output',
      );
      assert.ok(await rpc.getTxOut(coinbase.txid, coinbase.vout, false), 'without the mempool it is still unspent');

      const [blockHash] = await rpc.generateToAddress(1, burn);
      const tx = await rpc.getRawTransaction(fundingTxid, blockHash);
      assert.ok(tx.confirmations >= 1);
      assert.equal(tx.blockHash, blockHash);
      const out22 = await rpc.getTxOut(fundingTxid, 0);
      assert.equal(out22?.valueSat, BTC);
      assert.equal(out22?.scriptPubKey.address, ms22.address);
      assert.equal(out22?.scriptPubKey.type, 'witness_v0_scripthash');
      assert.equal((await rpc.getTxOut(fundingTxid, 1))?.confirmations, 1);
      assert.equal(await rpc.getTxOut(coinbase.txid, coinbase.vout), null);
    });

    it('multisig spends with a tampered or a missing signature are refused (-26), nothing changes', async () => {
      const in22: SpendableInput = {
        kind: 'p2wsh-multisig',
        txid: fundingTxid,
        vout: 0,
        valueSat: BTC,
        witnessScript: ms22.witnessScript,
      };
      const in23: SpendableInput = {
        kind: 'p2wsh-multisig',
        txid: fundingTxid,
        vout: 1,
        valueSat: BTC,
        witnessScript: ms23.witnessScript,
      };
      spendBack = buildSpend({ inputs: [in22, in23], outputs: [{ address: a.address, valueSat: 2n * BTC - FEE }] });
      const s0 = signInput(spendBack, 0, k[0].priv);
      const s1 = signInput(spendBack, 0, k[1].priv);
      finalizeMultisigInput(spendBack, 1, [
        { pubkey: k[4].pub, signature: signInput(spendBack, 1, k[4].priv) },
        { pubkey: k[2].pub, signature: signInput(spendBack, 1, k[2].priv) },
      ]);
      const outs = [
        { txid: fundingTxid, vout: 0 },
        { txid: fundingTxid, vout: 1 },
      ];

      const tampered = Uint8Array.from(s1);
      tampered[10] = (tampered[10] as number) ^ 0x01; // inside r: still DER, no longer a valid signature
      finalizeMultisigInput(spendBack, 0, [
        { pubkey: k[0].pub, signature: s0 },
        { pubkey: k[1].pub, signature: tampered },
      ]);
      await expectRejected(rpc, spendBack.tx.toHex(), RpcCode.VERIFY_REJECTED, /script-verify-flag/, outs);

      const order = ms22.pubkeys.findIndex((pk) => Buffer.from(pk).equals(Buffer.from(k[0].pub)));
      assert.ok(order >= 0);
      spendBack.tx.setWitness(0, [new Uint8Array(0), s0, ms22.witnessScript]); // 1 of the 2 signatures
      await expectRejected(rpc, spendBack.tx.toHex(), RpcCode.VERIFY_REJECTED, /script-verify-flag/, outs);
    });

    it('2-of-2 and 2-of-3 outputs are spent back with the right signatures: accepted, mined, confirmed', async () => {
      finalizeMultisigInput(spendBack, 0, [
        { pubkey: k[1].pub, signature: signInput(spendBack, 0, k[1].priv) },
        { pubkey: k[0].pub, signature: signInput(spendBack, 0, k[0].priv) },
      ]);
      spendBackTxid = await rpc.sendRawTransaction(spendBack.tx.toHex());
      const [blockHash] = await rpc.generateToAddress(1, burn);
      const tx = await rpc.getRawTransaction(spendBackTxid, blockHash);
      assert.ok(tx.confirmations >= 1);
      assert.equal(tx.vin.length, 2);
      assert.equal(tx.vin[0]?.witness.length, 4, 'dummy, 2 signatures, witness script');
      const out = await rpc.getTxOut(spendBackTxid, 0);
      assert.equal(out?.valueSat, 2n * BTC - FEE);
      assert.equal(out?.scriptPubKey.address, a.address);
      assert.equal(await rpc.getTxOut(fundingTxid, 0), null);
      assert.equal(await rpc.getTxOut(fundingTxid, 1), null);
    });

    it('a double spend of a confirmed-spent output is refused (-25), nothing changes', async () => {
      const again = payA(coinbase, coinbase.valueSat - 3n * FEE, burn);
      await expectRejected(rpc, again.tx.toHex(), RpcCode.VERIFY_ERROR, /bad-txns-inputs-missingorspent/, [coinbase]);
    });

    it('a double spend of an output spent in the mempool is refused (-26), nothing changes', async () => {
      const change = p2wpkhIn(fundingTxid, 2, coinbase.valueSat - 2n * BTC - FEE);
      const first = payA(change, change.valueSat - FEE, burn);
      const firstTxid = await rpc.sendRawTransaction(first.tx.toHex());
      const second = payA(change, change.valueSat - FEE); // same fee: not a replacement even with full RBF
      await expectRejected(
        rpc,
        second.tx.toHex(),
        RpcCode.VERIFY_REJECTED,
        /txn-mempool-conflict|rejecting replacement/,
        [
          { txid: fundingTxid, vout: 2 },
          { txid: firstTxid, vout: 0 },
        ],
      );
      assert.ok((await rpc.getRawMempool()).includes(firstTxid));
      assert.equal(await rpc.getTxOut(fundingTxid, 2, true), null);
    });

    it('outputs worth more than the inputs are refused (-26 in-belowout), nothing changes', async () => {
      const input = p2wpkhIn(spendBackTxid, 0, 2n * BTC - FEE);
      const over = payA(input, input.valueSat + 1n);
      await expectRejected(rpc, over.tx.toHex(), RpcCode.VERIFY_REJECTED, /bad-txns-in-belowout/, [
        { txid: spendBackTxid, vout: 0 },
      ]);
    });

    it('garbage hex is refused (-22), nothing changes', async () => {
      for (const hex of ['', 'zz', 'deadbeef', '0100000001', spendBack.tx.toHex() + '00']) {
        await expectRejected(rpc, hex, RpcCode.DESERIALIZATION_ERROR, /TX decode failed/);
      }
    });

    it('resending a mined transaction whose outputs are unspent answers -27', async () => {
      await expectRejected(
        rpc,
        spendBack.tx.toHex(),
        RpcCode.VERIFY_ALREADY_IN_CHAIN,
        /already in (utxo set|block chain)/,
      );
    });

    it('testmempoolaccept reports the reject reason without changing anything', async () => {
      const input = p2wpkhIn(spendBackTxid, 0, 2n * BTC - FEE);
      const over = payA(input, input.valueSat + 1n);
      const before = await snapshot(rpc);
      const result = await rpc.testMempoolAccept(over.tx.toHex());
      assert.equal(result.allowed, false);
      assert.equal(result.rejectReason, 'bad-txns-in-belowout');
      assert.equal(result.txid, over.tx.getId());
      assert.deepEqual(await snapshot(rpc), before);
    });
  });
}
