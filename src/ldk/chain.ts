/**
 * LDK's chain ports on our Bitcoin Core JSON-RPC client: a fee estimator, a broadcaster, and the block
 * feed that hands every new block (the full serialized block, as Core returns it) to LDK's `Listen`
 * implementations (the ChannelManager and the ChainMonitor).
 *
 * LDK calls the fee estimator and the broadcaster synchronously from inside WASM, so fees come from a
 * cache refreshed in the background, and broadcasts are sent without waiting (a failure is logged: LDK
 * rebroadcasts what matters itself). No callback into LDK's WASM may throw.
 */
import { Transaction } from 'bitcoinjs-lib';
import * as ldk from 'lightningdevkit';
import type { BitcoinRpcClient } from '../chain/rpc-client.ts';
import { fromHex, toHex } from '../bitcoin/bytes.ts';

/** The floor of every LDK fee rate (sat per 1000 weight): Core's 1 sat/vB relay minimum, rounded up as LDK does. */
export const MIN_FEERATE_SAT_PER_KW = 253;

/** Block target per LDK confirmation target: what a Core-backed LDK node asks estimatesmartfee for. */
function confTarget(t: ldk.ConfirmationTarget): number {
  switch (t) {
    case ldk.ConfirmationTarget.LDKConfirmationTarget_MaximumFeeEstimate:
    case ldk.ConfirmationTarget.LDKConfirmationTarget_UrgentOnChainSweep:
      return 1;
    case ldk.ConfirmationTarget.LDKConfirmationTarget_MinAllowedAnchorChannelRemoteFee:
    case ldk.ConfirmationTarget.LDKConfirmationTarget_AnchorChannelFee:
      return 1008;
    case ldk.ConfirmationTarget.LDKConfirmationTarget_MinAllowedNonAnchorChannelRemoteFee:
    case ldk.ConfirmationTarget.LDKConfirmationTarget_ChannelCloseMinimum:
      return 144;
    default:
      return 6;
  }
}

const TARGETS = [1, 6, 144, 1008];

/** Fee rates from estimatesmartfee, cached per block target (sat/kvB ÷ 4 = sat/kw). */
export class FeeCache {
  private readonly rates = new Map<number, number>();

  constructor(private readonly rpc: BitcoinRpcClient) {}

  /** Asks the node for every target once. @throws the RPC error (the chain is unreachable, …). */
  async refresh(): Promise<void> {
    for (const target of TARGETS) {
      const e = await this.rpc.estimateSmartFee(target);
      const perKw = e.feeRateSatPerKvb === null ? MIN_FEERATE_SAT_PER_KW : Number(e.feeRateSatPerKvb / 4n);
      this.rates.set(target, Math.max(MIN_FEERATE_SAT_PER_KW, perKw));
    }
  }

  satPerKw(t: ldk.ConfirmationTarget): number {
    return this.rates.get(confTarget(t)) ?? MIN_FEERATE_SAT_PER_KW;
  }

  asFeeEstimator(): ldk.FeeEstimator {
    return ldk.FeeEstimator.new_impl({ get_est_sat_per_1000_weight: (t) => this.satPerKw(t) });
  }
}

/** sendrawtransaction for every transaction LDK broadcasts; remembers their txids. */
export class RpcBroadcaster {
  /** Txids of every transaction LDK asked us to broadcast, in order. */
  readonly broadcast: string[] = [];

  constructor(
    private readonly rpc: BitcoinRpcClient,
    private readonly log: (msg: string) => void,
  ) {}

  send(tx: Uint8Array): void {
    const hex = toHex(tx);
    let txid: string;
    try {
      txid = Transaction.fromHex(hex).getId();
    } catch (err) {
      this.log(`broadcast: LDK gave an unparsable transaction: ${(err as Error).message}`);
      return;
    }
    if (!this.broadcast.includes(txid)) this.broadcast.push(txid);
    this.rpc.sendRawTransaction(hex).then(
      () => this.log(`broadcast ${txid}`),
      (err: Error) => this.log(`broadcast ${txid} refused: ${err.message}`),
    );
  }

  asBroadcaster(): ldk.BroadcasterInterface {
    return ldk.BroadcasterInterface.new_impl({
      broadcast_transactions: (txs) => {
        for (const tx of txs) this.send(tx);
      },
    });
  }
}

/** A block as LDK identifies it: display-order hash, and the 32 bytes LDK wants (internal order, reversed). */
export interface ChainTip {
  hash: string;
  height: number;
}

export function hashBytes(displayHash: string): Uint8Array {
  return fromHex(displayHash, 'block hash').reverse();
}

export async function chainTip(rpc: BitcoinRpcClient): Promise<ChainTip> {
  const info = await rpc.getBlockchainInfo();
  return { hash: info.bestBlockHash, height: info.blocks };
}

/**
 * Feeds blocks to LDK: from the last block it saw up to the node's tip, one `block_connected` per block in
 * height order; on a reorg, `block_disconnected` back to the fork first. Runs one sync at a time.
 */
export class BlockFeed {
  /** Hashes and headers of the blocks LDK has seen, newest last (kept short: regtest reorgs are shallow). */
  private readonly seen: Array<{ hash: string; height: number; header: Uint8Array }> = [];
  private running: Promise<boolean> | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly rpc: BitcoinRpcClient,
    private readonly listeners: ldk.Listen[],
    start: ChainTip,
    private readonly onBlocks: () => void,
    private readonly log: (msg: string) => void,
  ) {
    this.seen.push({ hash: start.hash, height: start.height, header: new Uint8Array(0) });
  }

  get tip(): ChainTip {
    const t = this.seen[this.seen.length - 1]!;
    return { hash: t.hash, height: t.height };
  }

  /** Brings LDK up to the node's tip; true when any block was connected. Concurrent calls share one run. */
  sync(): Promise<boolean> {
    this.running ??= this.catchUp().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Polls the node every `ms` (errors are logged, and the next poll tries again). */
  poll(ms: number): void {
    const tick = () => {
      this.sync()
        .catch((err: Error) => this.log(`block feed: ${err.message}`))
        .finally(() => {
          if (this.timer) this.timer = setTimeout(tick, ms);
        });
    };
    this.timer = setTimeout(tick, ms);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async catchUp(): Promise<boolean> {
    let connected = false;
    for (;;) {
      const best = await this.rpc.getBlockCount();
      const ours = this.seen[this.seen.length - 1]!;
      if (best < ours.height) return connected;
      // Our tip must still be on the best chain; if not, disconnect back to where it forks.
      if ((await this.rpc.getBlockHash(ours.height)) !== ours.hash) {
        if (this.seen.length === 1) throw new Error(`block feed: reorg deeper than the ${ours.height} blocks kept`);
        this.seen.pop();
        for (const l of this.listeners) l.block_disconnected(ours.header, ours.height);
        this.log(`block ${ours.height} ${ours.hash} disconnected`);
        continue;
      }
      if (best === ours.height) return connected;
      const height = ours.height + 1;
      const hash = await this.rpc.getBlockHash(height);
      const block = fromHex(await this.rpc.getBlockHex(hash), 'block');
      for (const l of this.listeners) l.block_connected(block, height);
      this.seen.push({ hash, height, header: block.subarray(0, 80) });
      if (this.seen.length > 144) this.seen.shift();
      connected = true;
      this.onBlocks();
    }
  }
}
