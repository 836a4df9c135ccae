/**
 * What a treasury node needs from the chain, as a port (LDK-style): look up an output for the enclave,
 * broadcast, fee rate, height. The real adapter speaks Bitcoin Core JSON-RPC
 * (embedded façade or a user's bitcoind); tests can pass their own.
 */
import { BitcoinRpcClient, RpcCode, RpcError } from '../chain/rpc-client.ts';
import { ChainWatcher } from '../chain/watcher.ts';
import type { ReportFailure } from './failure-reporter.ts';

export interface TxOutLookup {
  txHex: string;
  confirmations: number;
  unspent: boolean;
}

export interface ChainSource {
  getTxOut(txid: string, vout: number): Promise<TxOutLookup | null>;
  /** Broadcasts; rejects with the node's reason when the transaction is refused. */
  broadcast(txHex: string): Promise<string>;
  /** Fee rate for settlements, in sat/vB (integer, at least 1). */
  feeRate(): Promise<number>;
  blockHeight(): Promise<number>;
  /**
   * Reports spends of these outpoints (`txid:vout`), in the mempool or in blocks, with the spending
   * transaction. Optional: without it, a node learns of its peer's settlement only by message.
   */
  watchSpends?(outpoints: string[], onSpend: (outpoint: string, txHex: string) => void): Promise<void>;
  close?(): Promise<void>;
}

/** Blocks scanned back from the tip when spend watching starts: settlements made while the node was down. */
const SPEND_HISTORY_BLOCKS = 144;

export interface RpcChainSourceOptions {
  /** Told when following the chain fails (a poll, fetching a spending transaction); the next poll tries again. */
  report?: ReportFailure;
}

export class RpcChainSource implements ChainSource {
  constructor(
    readonly rpc: BitcoinRpcClient,
    private readonly opts: RpcChainSourceOptions = {},
  ) {}

  async getTxOut(txid: string, vout: number): Promise<TxOutLookup | null> {
    let raw;
    try {
      raw = await this.rpc.getRawTransaction(txid);
    } catch (err) {
      if (err instanceof RpcError && err.code === RpcCode.INVALID_ADDRESS_OR_KEY) return null; // no such transaction
      throw err;
    }
    const out = await this.rpc.getTxOut(txid, vout, true);
    return { txHex: raw.hex, confirmations: raw.confirmations, unspent: out !== null };
  }

  broadcast(txHex: string): Promise<string> {
    return this.rpc.sendRawTransaction(txHex);
  }

  async feeRate(): Promise<number> {
    try {
      const { feeRateSatPerKvb } = await this.rpc.estimateSmartFee(6);
      // sat/kvB → sat/vB, rounded up; never below 1.
      if (feeRateSatPerKvb !== null && feeRateSatPerKvb > 0n)
        return Math.max(1, Number((feeRateSatPerKvb + 999n) / 1000n));
    } catch {
      // No estimate (regtest has too few blocks for one, or the chain is unreachable): the floor below. A
      // request answer, not background work: an unreachable chain fails the broadcast that follows.
    }
    return 1;
  }

  blockHeight(): Promise<number> {
    return this.rpc.getBlockCount();
  }

  private watcher?: ChainWatcher;
  private readonly watched = new Set<string>();

  async watchSpends(outpoints: string[], onSpend: (outpoint: string, txHex: string) => void): Promise<void> {
    const fresh = outpoints.filter((o) => !this.watched.has(o));
    if (fresh.length === 0) return;
    if (!this.watcher) {
      const tip = await this.blockHeight();
      const w = new ChainWatcher(this.rpc, {
        pollIntervalMs: 1_000,
        fromHeight: Math.max(1, tip - SPEND_HISTORY_BLOCKS),
      });
      const report: ReportFailure = (task, err, detail) => this.opts.report?.(task, err, detail);
      w.on('spent', (e) => {
        const outpoint = `${e.outpoint.txid}:${e.outpoint.vout}`;
        void this.rpc.getRawTransactionHex(e.spendingTxid).then(
          (hex) => onSpend(outpoint, hex),
          (err: unknown) => report('chain_watch', err, { outpoint, spending_txid: e.spendingTxid }),
        );
      });
      w.on('error', (err: unknown) => report('chain_watch', err)); // the next poll tries again
      this.watcher = w;
    }
    for (const o of fresh) {
      const [txid, vout] = o.split(':') as [string, string];
      this.watched.add(o);
      this.watcher.watchOutpoint({ txid, vout: Number(vout) });
    }
    // Started after the first outpoints are watched, so its scan of recent history can find their spends.
    await this.watcher.start();
  }

  async close(): Promise<void> {
    await this.watcher?.stop();
  }
}
