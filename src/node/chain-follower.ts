/**
 * What the host watches on the chain for its enclave: deposits funded but not yet deep enough, and the
 * deposits of channels, whose spend means a settlement (the peer's message about it may never come).
 * The enclave decides everything from what it is shown: it looks each output up on the chain itself
 * and checks the spending transaction's signatures; a lying host can only withhold.
 */
import { txidOf } from '../enclave/treasury/transactions.ts';
import type { ChannelView } from '../enclave/treasury/interface.ts';
import type { ReportFailure } from './failure-reporter.ts';
import type { ChainSource } from './chain-source.ts';
import type { EcallPort } from './enclave-client.ts';
import { NodeError } from './errors.ts';

export interface ChainFollowerOptions {
  enclave: EcallPort;
  chain: ChainSource;
  report: ReportFailure;
  stopping: () => boolean;
  /** How often pending deposits and channel deposits are checked again (default 2 s). */
  pollMs?: number;
}

export class ChainFollower {
  private timer?: ReturnType<typeof setInterval>;
  /** A tick still running: the next one is skipped rather than run alongside it. */
  private polling = false;
  /** The channel each watched deposit outpoint (`txid:vout`) belongs to. */
  private channelOfOutpoint = new Map<string, string>();
  /** The last transaction seen spending each channel's deposits (shown to the enclave again until it is deep enough). */
  private readonly spendOfChannel = new Map<string, string>();
  /** Depth at which each (channel, spend) was last shown to the enclave. */
  private readonly depthShown = new Map<string, number>();

  constructor(private readonly opts: ChainFollowerOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.followOnce(), this.opts.pollMs ?? 2_000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** One round: pending deposits shown again, channel deposits watched. Never rejects: failures are reported. */
  async followOnce(): Promise<void> {
    if (this.polling || this.opts.stopping()) return;
    this.polling = true;
    try {
      await this.confirmPendingDeposits();
      await this.watchChannelDeposits();
    } catch (err) {
      // The enclave busy or the chain unreachable: reported, and tried again at the next tick.
      this.opts.report('chain_watch', err);
    } finally {
      this.polling = false;
    }
  }

  /**
   * Deposits whose funding output was reported before it had enough confirmations stay pending; they are
   * reported to the enclave again until it counts them free (it checks the chain itself each time).
   */
  private async confirmPendingDeposits(): Promise<void> {
    const { deposits } = await this.opts.enclave.call('list_deposits', {});
    for (const d of deposits) {
      if (d.status !== 'pending' || !d.outpoint) continue;
      const [txid, vout] = d.outpoint.split(':') as [string, string];
      await this.opts.enclave
        .call('deposit_funded', { deposit_id: d.deposit_id, txid, vout: Number(vout) })
        .catch((err: unknown) => {
          // Not deep enough yet is the answer this loop waits out, not a failure.
          if (err instanceof NodeError && err.code === 'deposit_unconfirmed') return;
          this.opts.report('deposit_confirm', err, { deposit_id: d.deposit_id });
        });
    }
  }

  /**
   * Watches the deposits of open channels on chain: if one is spent, the peer settled (its message may
   * never come), and the enclave is shown the spending transaction, which it checks before closing.
   * Closed channels stay watched while the enclave awaits the chain (deposits whose fate the winning
   * settlement decides, keys it forgets once that is deep enough): each tick shows it the spends known,
   * and the enclave asks the chain for their depth itself.
   */
  private async watchChannelDeposits(): Promise<void> {
    const { enclave, chain, report } = this.opts;
    const { channels } = await enclave.call('list_channels', {});
    const waiting = channels.filter((c) => c.status === 'closed' && (c.awaiting_chain.length > 0 || c.keys_held));
    for (const c of waiting) await this.showSpends(c);
    if (!chain.watchSpends) return;
    const byOutpoint = new Map<string, string>();
    // Also channels we settled whose outcome is not known: the chain tells whose settlement won.
    const outcomeUnknown = (c: ChannelView) =>
      c.status === 'closed' &&
      c.settled_by === 'local' &&
      c.paid_total_sat === null &&
      c.settlement_txid !== '0'.repeat(64);
    for (const c of [...channels.filter((c) => c.status === 'open' || outcomeUnknown(c)), ...waiting]) {
      for (const d of [...c.local_deposits, ...c.remote_deposits]) byOutpoint.set(d.outpoint, c.channel_id);
    }
    if (waiting.some((c) => c.awaiting_chain.length > 0)) {
      // A deposit being added when the channel closed is not listed in the channel view.
      const { deposits } = await enclave.call('list_deposits', {});
      for (const d of deposits)
        if (d.awaiting_chain && d.outpoint && d.channel_id) byOutpoint.set(d.outpoint, d.channel_id);
    }
    this.channelOfOutpoint = byOutpoint;
    await chain.watchSpends([...byOutpoint.keys()], (outpoint, txHex) => {
      const channelId = this.channelOfOutpoint.get(outpoint);
      if (!channelId || this.opts.stopping()) return;
      this.spendOfChannel.set(channelId, txHex);
      void enclave
        .call('channel_spent', { channel_id: channelId, tx_hex: txHex })
        .catch((err: unknown) => report('channel_spent', err, { channel_id: channelId }));
    });
  }

  /** Shows the enclave the spends known of a closed channel's deposits, each again once its depth moved. */
  private async showSpends(c: ChannelView): Promise<void> {
    const { enclave, chain, report } = this.opts;
    const spends = new Map<string, string>();
    for (const hex of [this.spendOfChannel.get(c.channel_id), c.settlement_tx_hex]) {
      const txid = hex ? txidOf(hex) : null;
      if (txid) spends.set(txid, hex!);
    }
    for (const [txid, hex] of spends) {
      // The enclave asks the chain for the depth itself; showing it again is worth it only once that moved.
      const out = await chain.getTxOut(txid, 0).catch((err: unknown) => {
        report('chain_lookup', err, { channel_id: c.channel_id, txid });
        return null;
      });
      const depth = out?.confirmations ?? 0;
      const key = `${c.channel_id}:${txid}`;
      if (depth === 0 || this.depthShown.get(key) === depth) continue;
      await enclave.call('channel_spent', { channel_id: c.channel_id, tx_hex: hex }).then(
        () => this.depthShown.set(key, depth),
        (err: unknown) => report('channel_spent', err, { channel_id: c.channel_id }),
      );
    }
  }
}
