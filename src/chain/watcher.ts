/**
 * A polling chain watcher (bitcoind has no ZMQ here): reports confirmations of watched
 * transactions and spends of watched outpoints, in the mempool and in blocks. Index-free: it reads
 * new blocks (getblock verbosity 2) from a start height and the mempool, so it works against a
 * bitcoind without -txindex. Reorgs are noticed by block hash and rescanned.
 */
import { EventEmitter } from 'node:events';
import { RpcCode, RpcError } from './rpc-errors.ts';
import type { BitcoinRpcClient } from './rpc-client.ts';

/** An output reference. */
export interface OutPoint {
  txid: string;
  vout: number;
}

/** A watched transaction's confirmation count changed (0 = seen in the mempool). */
export interface ConfirmationEvent {
  txid: string;
  confirmations: number;
  blockHash: string | null;
  blockHeight: number | null;
}

/** A watched outpoint was spent (blockHash null while the spender is in the mempool). */
export interface SpendEvent {
  outpoint: OutPoint;
  spendingTxid: string;
  inputIndex: number;
  blockHash: string | null;
  blockHeight: number | null;
}

/** Events of {@link ChainWatcher}. */
export interface ChainWatcherEvents {
  confirmations: [ConfirmationEvent];
  spent: [SpendEvent];
  /** A block was disconnected: everything above `forkHeight` is being rescanned. */
  reorg: [{ forkHeight: number }];
  block: [{ height: number; hash: string }];
  error: [Error];
}

/** Options of {@link ChainWatcher}. */
export interface ChainWatcherOptions {
  pollIntervalMs?: number;
  /** First block height to scan (default: the tip when start() runs, so history is not scanned). */
  fromHeight?: number;
}

interface TxState {
  /** Whether getrawtransaction was asked once (finds confirmations from before the scan start, where indexed). */
  lookedUp: boolean;
  blockHash: string | null;
  blockHeight: number | null;
  inMempool: boolean;
  lastReported: number | null;
}

interface SpendState {
  outpoint: OutPoint;
  spend: SpendEvent | null;
}

const key = (o: OutPoint) => `${o.txid}:${o.vout}`;
const KEEP_BLOCK_HASHES = 200;

/** The watcher. */
export class ChainWatcher extends EventEmitter<ChainWatcherEvents> {
  private readonly txs = new Map<string, TxState>();
  private readonly outpoints = new Map<string, SpendState>();
  private readonly blockHashes = new Map<number, string>();
  private scannedHeight = -1;
  private mempoolSeen = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;
  private readonly pollIntervalMs: number;
  /** The last polling error (also emitted as 'error' when someone listens). */
  lastError: Error | null = null;

  constructor(
    private readonly rpc: BitcoinRpcClient,
    private readonly opts: ChainWatcherOptions = {},
  ) {
    super();
    this.pollIntervalMs = opts.pollIntervalMs ?? 500;
  }

  /** Watches a transaction's confirmations. */
  watchTx(txid: string): void {
    if (!this.txs.has(txid))
      this.txs.set(txid, { lookedUp: false, blockHash: null, blockHeight: null, inMempool: false, lastReported: null });
    this.mempoolSeen.delete(txid);
  }

  /** Watches for the spend of an output. */
  watchOutpoint(outpoint: OutPoint): void {
    if (!this.outpoints.has(key(outpoint)))
      this.outpoints.set(key(outpoint), { outpoint: { ...outpoint }, spend: null });
    this.mempoolSeen.clear();
  }

  unwatchTx(txid: string): void {
    this.txs.delete(txid);
  }

  unwatchOutpoint(outpoint: OutPoint): void {
    this.outpoints.delete(key(outpoint));
  }

  /** Starts polling (first poll immediately). */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    if (this.scannedHeight < 0) {
      const tip = await this.rpc.getBlockCount();
      this.scannedHeight = (this.opts.fromHeight ?? tip + 1) - 1;
    }
    await this.pollNow();
  }

  /** Stops polling; resolves once an in-flight poll has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /** Runs one poll now (also used by start()); errors are reported, not thrown. */
  pollNow(): Promise<void> {
    this.running ??= this.poll()
      .catch((err: Error) => {
        this.lastError = err;
        if (this.listenerCount('error') > 0) this.emit('error', err);
      })
      .finally(() => {
        this.running = null;
        if (!this.stopped) {
          if (this.timer) clearTimeout(this.timer);
          this.timer = setTimeout(() => void this.pollNow(), this.pollIntervalMs);
        }
      });
    return this.running;
  }

  /** Resolves with the first confirmation event of `txid` reaching `n`. */
  waitForConfirmations(txid: string, n: number, timeoutMs = 30_000): Promise<ConfirmationEvent> {
    this.watchTx(txid);
    return this.waitFor(
      'confirmations',
      (e) => e.txid === txid && e.confirmations >= n,
      timeoutMs,
      `${txid} to reach ${n} confirmations`,
    );
  }

  /** Resolves with the spend of `outpoint` (in a block when `confirmed`). */
  waitForSpend(outpoint: OutPoint, opts: { confirmed?: boolean; timeoutMs?: number } = {}): Promise<SpendEvent> {
    this.watchOutpoint(outpoint);
    const existing = this.outpoints.get(key(outpoint))?.spend;
    if (existing && (!opts.confirmed || existing.blockHash)) return Promise.resolve(existing);
    return this.waitFor(
      'spent',
      (e) => key(e.outpoint) === key(outpoint) && (!opts.confirmed || e.blockHash !== null),
      opts.timeoutMs ?? 30_000,
      `a spend of ${key(outpoint)}`,
    );
  }

  private waitFor<E extends 'confirmations' | 'spent'>(
    event: E,
    match: (e: ChainWatcherEvents[E][0]) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<ChainWatcherEvents[E][0]> {
    return new Promise((resolve, reject) => {
      const listener = (e: ChainWatcherEvents[E][0]) => {
        if (!match(e)) return;
        cleanup();
        resolve(e);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`watcher: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.off(event, listener as never);
      };
      this.on(event, listener as never);
    });
  }

  private async poll(): Promise<void> {
    const tip = await this.rpc.getBlockCount();
    if (this.scannedHeight < 0) this.scannedHeight = (this.opts.fromHeight ?? tip + 1) - 1;
    await this.detectReorg();
    await this.lookUpOlderTxs();
    for (let h = this.scannedHeight + 1; h <= tip; h++) {
      const hash = await this.rpc.getBlockHash(h);
      const block = await this.rpc.getBlockWithTxs(hash);
      if (
        block.previousBlockHash &&
        this.blockHashes.has(h - 1) &&
        this.blockHashes.get(h - 1) !== block.previousBlockHash
      ) {
        // The chain moved under us mid-scan; the next poll's reorg check will sort it out.
        break;
      }
      for (const tx of block.txs) {
        const watched = this.txs.get(tx.txid);
        if (watched) Object.assign(watched, { blockHash: hash, blockHeight: h, inMempool: false });
        tx.vin.forEach((input, inputIndex) => this.noteSpend(input.txid, input.vout, tx.txid, inputIndex, hash, h));
      }
      this.blockHashes.set(h, hash);
      this.blockHashes.delete(h - KEEP_BLOCK_HASHES);
      this.scannedHeight = h;
      this.emit('block', { height: h, hash });
    }
    await this.scanMempool();
    for (const [txid, state] of this.txs) {
      const confirmations =
        state.blockHeight !== null ? this.scannedHeight - state.blockHeight + 1 : state.inMempool ? 0 : null;
      if (confirmations === null || confirmations === state.lastReported) continue;
      state.lastReported = confirmations;
      this.emit('confirmations', { txid, confirmations, blockHash: state.blockHash, blockHeight: state.blockHeight });
    }
  }

  private async lookUpOlderTxs(): Promise<void> {
    for (const [txid, state] of this.txs) {
      if (state.lookedUp || state.blockHeight !== null) continue;
      state.lookedUp = true;
      try {
        const tx = await this.rpc.getRawTransaction(txid);
        if (!tx.blockHash) continue;
        const header = await this.rpc.getBlockHeader(tx.blockHash);
        if (header.confirmations > 0 && header.height <= this.scannedHeight) {
          Object.assign(state, { blockHash: tx.blockHash, blockHeight: header.height });
        }
      } catch (err) {
        if (!(err instanceof RpcError)) throw err; // unknown to a node without -txindex: the block scan finds it
      }
    }
  }

  private noteSpend(
    txid: string | undefined,
    vout: number | undefined,
    spendingTxid: string,
    inputIndex: number,
    blockHash: string | null,
    blockHeight: number | null,
  ): void {
    if (txid === undefined || vout === undefined) return;
    const state = this.outpoints.get(`${txid}:${vout}`);
    if (!state) return;
    const prev = state.spend;
    if (prev && prev.spendingTxid === spendingTxid && prev.blockHash === blockHash) return;
    if (prev?.blockHash && blockHash === null) return; // already confirmed; a mempool sighting adds nothing
    state.spend = { outpoint: state.outpoint, spendingTxid, inputIndex, blockHash, blockHeight };
    this.emit('spent', state.spend);
  }

  private async scanMempool(): Promise<void> {
    const unresolved = [...this.outpoints.values()].some((s) => !s.spend?.blockHash);
    const wantedTxs = [...this.txs.values()].some((s) => s.blockHeight === null);
    if (!unresolved && !wantedTxs) return;
    const pool = new Set(await this.rpc.getRawMempool());
    for (const [txid, state] of this.txs) if (state.blockHeight === null) state.inMempool = pool.has(txid);
    if (!unresolved) return;
    for (const txid of pool) {
      if (this.mempoolSeen.has(txid)) continue;
      let tx;
      try {
        tx = await this.rpc.getRawTransaction(txid);
      } catch (err) {
        if (err instanceof RpcError) continue; // left the mempool meanwhile
        throw err;
      }
      this.mempoolSeen.add(txid);
      tx.vin.forEach((input, i) => this.noteSpend(input.txid, input.vout, txid, i, null, null));
    }
    // Forget mempool txids that left, so a re-entering one is looked at again.
    for (const txid of this.mempoolSeen) if (!pool.has(txid)) this.mempoolSeen.delete(txid);
  }

  /**
   * The hash of the block at height `h`, or null when the chain is now shorter than that (Core answers
   * -8, "Block height out of range"). Any other failure is thrown: the poll fails and is retried, instead
   * of an unreachable node looking like a reorg that drops every confirmation.
   */
  private async blockHashAt(h: number): Promise<string | null> {
    try {
      return await this.rpc.getBlockHash(h);
    } catch (err) {
      if (err instanceof RpcError && err.code === RpcCode.INVALID_PARAMETER) return null;
      throw err;
    }
  }

  private async detectReorg(): Promise<void> {
    let h = this.scannedHeight;
    while (h >= 0 && this.blockHashes.has(h)) {
      if ((await this.blockHashAt(h)) === this.blockHashes.get(h)) break;
      h--;
    }
    if (h === this.scannedHeight) return;
    for (let x = h + 1; x <= this.scannedHeight; x++) this.blockHashes.delete(x);
    for (const state of this.txs.values()) {
      if (state.blockHeight !== null && state.blockHeight > h)
        Object.assign(state, { blockHash: null, blockHeight: null });
    }
    for (const state of this.outpoints.values()) {
      if (state.spend?.blockHeight != null && state.spend.blockHeight > h) state.spend = null;
    }
    this.mempoolSeen.clear();
    this.scannedHeight = h;
    this.emit('reorg', { forkHeight: h });
  }
}
