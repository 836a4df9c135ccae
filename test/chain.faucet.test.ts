// run-tests lane: in-process
/**
 * Faucet and watcher, one shared body per backend (bitcoind only when BITCOIND_RPC_URL is set;
 * otherwise every case is reported as skipped).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ChainWatcher, type ConfirmationEvent, type SpendEvent } from '../src/chain/watcher.ts';
import { RpcTransportError } from '../src/chain/rpc-errors.ts';
import { ConfirmationTimeoutError, Faucet } from '../src/chain/faucet.ts';
import { buildSpend, signP2wpkhInput } from '../src/bitcoin/index.ts';
import { chainBackends, newKey, type ChainUnderTest } from './helpers/chain.ts';

for (const backend of chainBackends()) {
  describe(`chain: faucet and watcher [${backend.name}]`, () => {
    // The runner tracks the test's promise itself, as it does for a bare test() call.
    const it = (name: string, fn: () => Promise<void>): void => void test(name, { skip: backend.skip }, fn);
    let chain: ChainUnderTest;
    before(async () => {
      if (!backend.skip) chain = await backend.start();
    });
    after(async () => chain?.close());

    it('fund() pays an address, mine() confirms it, waitForConfirmations() sees it', async () => {
      const k = newKey();
      const out = await chain.faucet.fund(k.address, 123_456n);
      assert.equal(out.valueSat, 123_456n);
      const decoded = await chain.rpc.decodeRawTransaction(out.hex);
      assert.equal(decoded.txid, out.txid);
      assert.equal(decoded.vout[out.vout]?.scriptPubKey.address, k.address);
      await assert.rejects(
        chain.faucet.waitForConfirmations(out.txid, 1, { timeoutMs: 150 }),
        ConfirmationTimeoutError,
      );
      const hashes = await chain.faucet.mine(2);
      assert.equal(hashes.length, 2);
      assert.ok((await chain.faucet.waitForConfirmations(out.txid, 2, { timeoutMs: 30_000 })) >= 2);
      assert.equal((await chain.rpc.getTxOut(out.txid, out.vout))?.valueSat, 123_456n);
    });

    it('concurrent fund() calls do not conflict', async () => {
      const keys = Array.from({ length: 6 }, () => newKey());
      // Two faucets (each serializes only its own calls) racing: the node's wallet must keep them apart.
      const other = new Faucet(chain.rpc);
      const outs = await Promise.all(
        keys.map((k, i) => (i % 2 ? other : chain.faucet).fund(k.address, 10_000n + BigInt(i))),
      );
      assert.equal(new Set(outs.map((o) => o.txid)).size, outs.length);
      const pool = await chain.rpc.getRawMempool();
      for (const o of outs) assert.ok(pool.includes(o.txid), `${o.txid} in the mempool`);
      await chain.faucet.mine(1);
      for (const [i, o] of outs.entries()) {
        const utxo = await chain.rpc.getTxOut(o.txid, o.vout);
        assert.equal(utxo?.confirmations, 1);
        assert.equal(utxo?.valueSat, 10_000n + BigInt(i));
      }
    });

    it('the watcher reports confirmations of a transaction and the spend of an outpoint (mempool, then block)', async () => {
      const k = newKey();
      const watcher = new ChainWatcher(chain.rpc, { pollIntervalMs: 50 });
      const confirmations: ConfirmationEvent[] = [];
      const spends: SpendEvent[] = [];
      watcher.on('confirmations', (e) => confirmations.push(e));
      watcher.on('spent', (e) => spends.push(e));
      await watcher.start();
      try {
        const funded = await chain.faucet.fund(k.address, 50_000n);
        const outpoint = { txid: funded.txid, vout: funded.vout };
        watcher.watchTx(funded.txid);
        watcher.watchOutpoint(outpoint);
        await chain.faucet.mine(1);
        const conf = await watcher.waitForConfirmations(funded.txid, 1, 10_000);
        assert.equal(conf.blockHeight, await chain.rpc.getBlockCount());

        const spend = buildSpend({
          inputs: [{ kind: 'p2wpkh', txid: funded.txid, vout: funded.vout, valueSat: 50_000n, pubkey: k.pub }],
          outputs: [{ address: k.address, valueSat: 48_000n }],
        });
        signP2wpkhInput(spend, 0, k.priv);
        const spendTxid = await chain.rpc.sendRawTransaction(spend.tx.toHex());
        const inPool = await watcher.waitForSpend(outpoint, { timeoutMs: 10_000 });
        assert.equal(inPool.spendingTxid, spendTxid);
        assert.equal(inPool.inputIndex, 0);
        const [blockHash] = await chain.faucet.mine(1);
        const mined = await watcher.waitForSpend(outpoint, { confirmed: true, timeoutMs: 10_000 });
        assert.equal(mined.blockHash, blockHash);
        assert.ok(spends.length >= 1);
        await watcher.waitForConfirmations(funded.txid, 2, 10_000);
        assert.deepEqual(
          confirmations
            .filter((e) => e.txid === funded.txid)
            .map((e) => e.confirmations)
            .slice(-2),
          [1, 2],
        );
      } finally {
        await watcher.stop();
      }
      assert.equal(watcher.lastError, null);
    });

    it('a chain RPC that fails for a moment is an error of that poll, not a reorg', async () => {
      // getblockhash fails while `failing` is set, as a node restarting or a dropped connection would.
      let failing = false;
      const flaky = new Proxy(chain.rpc, {
        get(target, key, receiver) {
          if (key === 'getBlockHash' && failing)
            return () => Promise.reject(new RpcTransportError('connection refused', 'getblockhash'));
          const value: unknown = Reflect.get(target, key, receiver);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      const watcher = new ChainWatcher(flaky, { pollIntervalMs: 60_000 });
      const reorgs: unknown[] = [];
      watcher.on('reorg', (e) => reorgs.push(e));
      watcher.on('error', () => undefined); // reported through lastError, checked below
      await watcher.start();
      try {
        await chain.faucet.mine(1);
        await watcher.pollNow();
        const tip = await chain.rpc.getBlockCount();
        failing = true;
        await watcher.pollNow();
        assert.ok(watcher.lastError instanceof RpcTransportError, `the poll failed: ${String(watcher.lastError)}`);
        failing = false;
        await watcher.pollNow();
        assert.deepEqual(reorgs, [], 'no reorg was reported');
        assert.equal((await chain.rpc.getBlockCount()) >= tip, true);
      } finally {
        await watcher.stop();
      }
    });
  });
}
