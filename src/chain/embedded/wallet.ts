/**
 * The façade's minimal wallet: one P2WPKH key, just enough for Core's regtest wallet calls a
 * faucet needs (getnewaddress, getbalance, sendtoaddress). The key is kept in the data directory
 * (`wallet.json`, mode 0600) or in memory. Coins are its mature coinbase outputs and its own
 * unconfirmed change; sends run under the façade lock so concurrent calls never pick the same coin.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { publicKeyOf, randomPrivateKey } from '../../crypto/secp256k1.ts';
import { p2wpkh } from '../../bitcoin/p2wpkh.ts';
import { bcoin, type BcoinCoin, type BcoinFullNode, type BcoinKeyRing } from './bcoin.ts';
import { readUtxoSet, type Utxo } from './utxo-set.ts';
import type { MempoolPolicy } from './mempool-accept.ts';

/** File name of the wallet key inside the data directory. */
export const WALLET_FILE = 'wallet.json';

/** The wallet's default fee rate: 2 sat/vB (above Core's 1 sat/vB relay minimum even with size-estimate slack). */
export const WALLET_FEE_RATE_SAT_PER_KVB = 2000n;

/** Not enough spendable coins. */
export class InsufficientFundsError extends Error {}

function loadOrCreateKey(datadir: string | null): Uint8Array {
  if (!datadir) return randomPrivateKey();
  const file = join(datadir, WALLET_FILE);
  if (existsSync(file)) {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { privateKeyHex?: unknown };
    if (typeof parsed.privateKeyHex !== 'string' || !/^[0-9a-f]{64}$/.test(parsed.privateKeyHex)) {
      throw new Error(`${file}: privateKeyHex must be 64 hex characters`);
    }
    return Buffer.from(parsed.privateKeyHex, 'hex');
  }
  const key = randomPrivateKey();
  writeFileSync(file, JSON.stringify({ privateKeyHex: Buffer.from(key).toString('hex') }) + '\n', { mode: 0o600 });
  return key;
}

/** The single-key wallet. */
export class SingleKeyWallet {
  readonly address: string;
  readonly script: Buffer;
  private readonly ring: BcoinKeyRing;
  private cache: { tip: string; utxos: Utxo[] } | null = null;

  private constructor(
    private readonly node: BcoinFullNode,
    private readonly policy: MempoolPolicy,
    privateKey: Uint8Array,
  ) {
    const out = p2wpkh(publicKeyOf(privateKey));
    this.address = out.address;
    this.script = Buffer.from(out.outputScript);
    this.ring = bcoin.KeyRing.fromPrivate(Buffer.from(privateKey), true);
    this.ring.witness = true;
  }

  /** Loads the key from `datadir` (creating it on first use), or makes a throwaway key when datadir is null. */
  static open(node: BcoinFullNode, policy: MempoolPolicy, datadir: string | null): SingleKeyWallet {
    return new SingleKeyWallet(node, policy, loadOrCreateKey(datadir));
  }

  /** Coins the wallet can spend now: mature confirmed outputs and own unconfirmed outputs, none spent in the mempool. */
  async spendableCoins(): Promise<BcoinCoin[]> {
    const { chain, mempool } = this.node;
    const tip = chain.tip.hash;
    if (this.cache?.tip !== tip) {
      const { utxos } = await readUtxoSet(this.node, (s) => s.equals(this.script));
      this.cache = { tip, utxos };
    }
    const maturity = bcoin.consensus.COINBASE_MATURITY;
    const coins: BcoinCoin[] = [];
    for (const u of this.cache.utxos) {
      if (u.coinbase && chain.height + 1 - u.height < maturity) continue;
      if (mempool.isSpent(u.hash, u.index)) continue;
      coins.push(this.coin(u.hash, u.index, u.value, u.height, u.coinbase));
    }
    for (const entry of mempool.map.values()) {
      const hash = entry.tx.hash('hex');
      entry.tx.outputs.forEach((out, index) => {
        if (out.script.toRaw().equals(this.script) && !mempool.isSpent(hash, index)) {
          coins.push(this.coin(hash, index, out.value, -1, false));
        }
      });
    }
    return coins;
  }

  /** Sum of spendable coins, in satoshis. */
  async balanceSats(): Promise<bigint> {
    return (await this.spendableCoins()).reduce((s, c) => s + BigInt(c.value), 0n);
  }

  /**
   * Pays `sats` to `outputScript` (fee on top, or taken from the amount with `subtractFee`), change
   * back to the wallet; submits through Core's acceptance rules. Returns the txid (display order).
   * Caller must hold the façade lock.
   */
  async send(
    outputScript: Buffer,
    sats: bigint,
    opts: { feeRateSatPerKvb?: bigint; subtractFee?: boolean } = {},
  ): Promise<string> {
    if (sats <= 0n || sats > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('amount must be positive');
    const coins = await this.spendableCoins();
    const mtx = new bcoin.MTX();
    mtx.addOutput(bcoin.Script.fromRaw(outputScript), Number(sats));
    try {
      await mtx.fund(coins, {
        rate: Number(opts.feeRateSatPerKvb ?? WALLET_FEE_RATE_SAT_PER_KVB),
        changeAddress: this.ring.getAddress(),
        subtractFee: opts.subtractFee ?? false,
        height: this.node.chain.height,
        selection: 'value',
      });
    } catch (err) {
      if ((err as Error).name === 'FundingError' || /funds/i.test((err as Error).message)) {
        throw new InsufficientFundsError('Insufficient funds');
      }
      throw err;
    }
    mtx.sign(this.ring);
    const tx = mtx.toTX();
    await this.policy.submit(tx, null);
    return tx.txid();
  }

  private coin(hash: string, index: number, value: number, height: number, coinbase: boolean): BcoinCoin {
    return bcoin.Coin.fromOptions({
      version: 1,
      height,
      value,
      script: bcoin.Script.fromRaw(this.script),
      hash,
      index,
      coinbase,
    });
  }
}
