/**
 * Regtest faucet and miner. It uses only Core's standard regtest wallet RPCs (getbalance,
 * getnewaddress, sendtoaddress, generatetoaddress), so the same code works against the embedded
 * chain (whose façade has a one-key wallet) and a real `bitcoind -regtest` (whose wallet it loads or
 * creates on first use). Calls on one Faucet run one at a time, so concurrent fund() calls never
 * race each other's top-ups.
 */
import { addressToOutputScript } from '../bitcoin/network.ts';
import { toHex } from '../bitcoin/bytes.ts';
import { assertMoneyRange } from './amounts.ts';
import { RpcCode, RpcError } from './rpc-errors.ts';
import type { BitcoinRpcClient } from './rpc-client.ts';

/** Options of {@link Faucet}. */
export interface FaucetOptions {
  /** Fee rate of faucet payments (sat/vB, default 2). */
  feeRateSatPerVb?: number;
  /** Wallet to load or create when bitcoind has none loaded (default `teechain-faucet`). */
  walletName?: string;
}

/** The output a faucet payment created. */
export interface FundedOutput {
  txid: string;
  vout: number;
  valueSat: bigint;
  /** The whole funding transaction, serialized. */
  hex: string;
}

/** Options of {@link Faucet.waitForConfirmations}. */
export interface WaitOptions {
  timeoutMs?: number;
  pollMs?: number;
}

/** waitForConfirmations ran out of time. */
export class ConfirmationTimeoutError extends Error {
  override readonly name = 'ConfirmationTimeoutError';
  constructor(
    readonly txid: string,
    readonly wanted: number,
    readonly seen: number | null,
  ) {
    super(
      `transaction ${txid}: wanted ${wanted} confirmations, ${seen === null ? 'not found' : `saw ${seen}`} before the timeout`,
    );
  }
}

const COINBASE_MATURITY = 100;
const TOP_UP_ROUNDS = 5;
const FEE_MARGIN_SAT = 100_000n;

/** The faucet. */
export class Faucet {
  private queue: Promise<unknown> = Promise.resolve();
  private ownAddress: string | null = null;
  private walletReady = false;
  private readonly feeRateSatPerVb: number;
  private readonly walletName: string;

  constructor(
    readonly rpc: BitcoinRpcClient,
    opts: FaucetOptions = {},
  ) {
    this.feeRateSatPerVb = opts.feeRateSatPerVb ?? 2;
    this.walletName = opts.walletName ?? 'teechain-faucet';
    if (!(this.feeRateSatPerVb >= 1)) throw new RangeError('feeRateSatPerVb must be at least 1');
  }

  /** Pays `sats` to `address` from the node's wallet (mining for funds first if it has too little). */
  fund(address: string, sats: bigint): Promise<FundedOutput> {
    const script = toHex(addressToOutputScript(address));
    assertMoneyRange(sats, 'sats', 1n);
    return this.serial(async () => {
      await this.ensureBalance(sats + FEE_MARGIN_SAT);
      const txid = await this.rpc.sendToAddress(address, sats, { feeRateSatPerVb: this.feeRateSatPerVb });
      const tx = await this.rpc.getRawTransaction(txid);
      const out = tx.vout.find((o) => o.scriptPubKey.hex === script && o.valueSat === sats);
      if (!out) throw new Error(`faucet transaction ${txid} has no output of ${sats} sat to ${address}`);
      return { txid, vout: out.n, valueSat: out.valueSat, hex: tx.hex };
    });
  }

  /** Mines `n` blocks (to `address`, or to the faucet wallet); returns their hashes. */
  mine(n: number, address?: string): Promise<string[]> {
    if (!Number.isInteger(n) || n < 0) throw new RangeError('n must be a non-negative integer');
    return this.serial(async () => this.rpc.generateToAddress(n, address ?? (await this.address())));
  }

  /** Waits until `txid` has at least `n` confirmations; returns the count seen. Does not mine. */
  async waitForConfirmations(txid: string, n: number, opts: WaitOptions = {}): Promise<number> {
    const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
    const pollMs = opts.pollMs ?? 100;
    let seen: number | null = null;
    for (;;) {
      seen = (await this.confirmationsOf(txid)) ?? seen;
      if (seen !== null && seen >= n) return seen;
      if (Date.now() >= deadline) throw new ConfirmationTimeoutError(txid, n, seen);
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  /** The faucet wallet's own address (mining rewards go there). */
  async address(): Promise<string> {
    await this.ensureWallet();
    this.ownAddress ??= await this.rpc.getNewAddress();
    return this.ownAddress;
  }

  /** Confirmations of `txid`, or null if the node cannot find it (yet). */
  private async confirmationsOf(txid: string): Promise<number | null> {
    try {
      return (await this.rpc.getRawTransaction(txid)).confirmations;
    } catch (err) {
      if (!(err instanceof RpcError && err.code === RpcCode.INVALID_ADDRESS_OR_KEY)) throw err;
    }
    // bitcoind without -txindex finds confirmed transactions only through its wallet.
    try {
      const tx = await this.rpc.call<{ confirmations?: unknown }>('gettransaction', [txid]);
      return typeof tx.confirmations === 'number' ? Math.max(0, tx.confirmations) : null;
    } catch (err) {
      if (err instanceof RpcError) return null;
      throw err;
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    // The caller gets `run` and its failure; the queue only orders, so the next call runs either way.
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async ensureBalance(need: bigint): Promise<void> {
    await this.ensureWallet();
    if ((await this.rpc.getBalance()) >= need) return;
    // A fresh bitcoind chain: 101 blocks make the first coinbase spendable; later rounds add more.
    for (let round = 0; round < TOP_UP_ROUNDS; round++) {
      await this.rpc.generateToAddress(round === 0 ? COINBASE_MATURITY + 1 : 50, await this.address());
      if ((await this.rpc.getBalance()) >= need) return;
    }
    throw new Error(`faucet wallet holds less than ${need} sat even after mining`);
  }

  private async ensureWallet(): Promise<void> {
    if (this.walletReady) return;
    try {
      await this.rpc.getBalance();
    } catch (err) {
      if (!(err instanceof RpcError && err.code === RpcCode.WALLET_NOT_FOUND)) throw err;
      // bitcoind without a loaded wallet: load ours, or create it the first time.
      try {
        await this.rpc.call('loadwallet', [this.walletName]);
      } catch (loadErr) {
        if (!(loadErr instanceof RpcError)) throw loadErr;
        await this.rpc.call('createwallet', [this.walletName]);
      }
    }
    this.walletReady = true;
  }
}
