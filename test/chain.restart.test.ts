// run-tests lane: in-process
/** The on-disk embedded chain survives a restart: height, tip, UTXO set, wallet, mempool. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { startEmbeddedChain } from '../src/chain/embedded/index.ts';
import { BitcoinRpcClient } from '../src/chain/rpc-client.ts';
import { Faucet } from '../src/chain/faucet.ts';
import { newKey, tempDir } from './helpers/chain.ts';

test('restarting the on-disk node keeps the chain, the UTXO set, the wallet and the mempool', async () => {
  const dir = tempDir('chain-restart-');
  try {
    const first = await startEmbeddedChain({ datadir: dir.dir });
    assert.ok(first.activationBlocksMined >= 432);
    let rpc = new BitcoinRpcClient({ url: first.rpcUrl, user: first.rpcUser, password: first.rpcPassword });
    const faucet = new Faucet(rpc);
    const k = newKey();
    const confirmed = await faucet.fund(k.address, 70_000n);
    await faucet.mine(1);
    const pending = await faucet.fund(k.address, 30_000n);
    const before = {
      height: await rpc.getBlockCount(),
      best: await rpc.getBestBlockHash(),
      utxo: await rpc.getTxOut(confirmed.txid, confirmed.vout),
      balance: await rpc.getBalance(),
      walletAddress: first.walletAddress,
    };
    assert.equal(before.utxo?.valueSat, 70_000n);
    await first.close();
    assert.equal(existsSync(first.cookieFile as string), false, 'cookie removed on shutdown');

    const second = await startEmbeddedChain({ datadir: dir.dir });
    try {
      assert.equal(second.activationBlocksMined, 0, 'an existing chain is not re-mined');
      rpc = await BitcoinRpcClient.fromCookie(second.rpcUrl, second.cookieFile as string);
      assert.equal(await rpc.getBlockCount(), before.height);
      assert.equal(await rpc.getBestBlockHash(), before.best);
      assert.deepEqual(await rpc.getTxOut(confirmed.txid, confirmed.vout), before.utxo);
      assert.equal(second.walletAddress, before.walletAddress, 'the wallet key is kept in the datadir');
      assert.deepEqual(
        await rpc.getRawMempool(),
        [pending.txid],
        'the mempool is kept, like bitcoind with mempool.dat',
      );
      assert.equal(await rpc.getBalance(), before.balance);
      const [hash] = await rpc.generateToAddress(1, k.address);
      assert.equal((await rpc.getRawTransaction(pending.txid, hash)).confirmations, 1);
      assert.equal((await rpc.scanTxOutSet([`addr(${k.address})`])).unspents.length, 3);
    } finally {
      await second.close();
    }
  } finally {
    dir.cleanup();
  }
});
