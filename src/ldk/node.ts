/**
 * One LDK node: rust-lightning's ChannelManager, ChainMonitor and PeerManager (WASM), with every port LDK
 * asks its user to provide implemented here: fee estimator, broadcaster and block feed on our Bitcoin Core
 * JSON-RPC client (chain.ts), a durable KVStore under MonitorUpdatingPersister (persist.ts), a logger, a
 * KeysManager seeded from random bytes, TCP sockets (socket.ts), and a regtest funding wallet (funding.ts).
 *
 * LDK does no I/O and starts no threads: it returns events and messages. `pump()` is our event loop's
 * turn for it (what LDK's BackgroundProcessor does in Rust): handle events, run pending HTLC forwards,
 * flush peer messages, persist the ChannelManager when it asks. Anything that may give LDK work
 * (socket reads, blocks, API calls) calls `kick()`, which schedules one pump.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import * as ldk from 'lightningdevkit';
import { writeFileDurably } from '../../enclave-sim/durable-file.ts';
import { BitcoinRpcClient } from '../chain/rpc-client.ts';
import { Faucet } from '../chain/faucet.ts';
import { toHex, fromHex } from '../bitcoin/bytes.ts';
import { BlockFeed, FeeCache, RpcBroadcaster, chainTip, hashBytes } from './chain.ts';
import { FilesystemKvStore, writeFileDurablySync } from './persist.ts';
import { PeerSockets } from './socket.ts';
import { FundingWallet, txidOf } from './funding.ts';
import { initLdk } from './wasm.ts';

export interface LdkNodeOptions {
  /** A fresh directory: the node's seed, channel monitors, ChannelManager and log live here. */
  datadir: string;
  rpcUrl: string;
  rpcUser: string;
  rpcPassword: string;
  /** P2P port on 127.0.0.1 (0 = any free port). */
  port?: number;
  /** Block poll interval (default 500 ms; the harness also asks for a sync after it mines). */
  pollMs?: number;
  /** LDK log records at or above this level go to datadir/ldk.log (default Info). */
  logLevel?: 'trace' | 'debug' | 'info' | 'warn';
}

/** Thrown when a node cannot reach the chain at start: the one bad case a caller must see clearly. */
export class ChainUnreachableError extends Error {
  override readonly name = 'ChainUnreachableError';
}

/** What a node reports of its channel (amounts in satoshis; msat balances rounded down as LDK does on chain). */
export interface ChannelView {
  channelId: string;
  fundingTxid: string | null;
  capacitySat: bigint;
  ready: boolean;
  usable: boolean;
  outboundMsat: bigint;
  inboundMsat: bigint;
  pendingHtlcs: number;
}

interface Pending {
  start: number;
  resolve: (ms: number) => void;
  reject: (err: Error) => void;
}

const LEVELS = {
  trace: ldk.Level.LDKLevel_Trace,
  debug: ldk.Level.LDKLevel_Debug,
  info: ldk.Level.LDKLevel_Info,
  warn: ldk.Level.LDKLevel_Warn,
};
/** How many monitor updates MonitorUpdatingPersister stores one by one before it rewrites the full monitor. */
const MAX_PENDING_MONITOR_UPDATES = 100n;

export class LdkNode {
  readonly nodeId: string;
  /** Satoshis received by claimed payments (Event::PaymentClaimed), and how many. */
  claimedMsat = 0n;
  claimedCount = 0;
  private readonly pending = new Map<string, Pending>();
  private readonly waiters: Array<() => boolean> = [];
  private fundingTxid: string | null = null;
  private closed: string | null = null;
  private scheduled = false;
  private forwardsDue = false;
  private futureArmed = false;
  /** The future our wake-up callback is registered on (see pump()). */
  private armedFuture: ldk.Future | null = null;
  private managerWrite: Promise<void> | null = null;
  private managerDirty = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private stopped = false;

  private constructor(
    readonly opts: LdkNodeOptions,
    readonly rpc: BitcoinRpcClient,
    readonly port: number,
    private readonly cm: ldk.ChannelManager,
    private readonly chainMonitor: ldk.ChainMonitor,
    private readonly peers: ldk.PeerManager,
    private readonly keys: ldk.KeysManager,
    private readonly sockets: PeerSockets,
    private readonly feed: BlockFeed,
    readonly store: FilesystemKvStore,
    readonly broadcaster: RpcBroadcaster,
    readonly wallet: FundingWallet,
    private readonly logFile: WriteStream,
  ) {
    this.nodeId = toHex(cm.get_our_node_id());
  }

  /** Builds the node at the chain's current tip and starts listening. @throws ChainUnreachableError. */
  static async start(opts: LdkNodeOptions): Promise<LdkNode> {
    await initLdk();
    mkdirSync(opts.datadir, { recursive: true });
    const rpc = new BitcoinRpcClient({
      url: opts.rpcUrl,
      user: opts.rpcUser,
      password: opts.rpcPassword,
      timeoutMs: 10_000,
    });
    const fees = new FeeCache(rpc);
    let tip;
    try {
      tip = await chainTip(rpc);
      await fees.refresh();
    } catch (err) {
      throw new ChainUnreachableError(
        `LDK node: the chain at ${opts.rpcUrl} is unreachable: ${(err as Error).message}`,
      );
    }
    const logFile = createWriteStream(join(opts.datadir, 'ldk.log'), { flags: 'a' });
    const minLevel = LEVELS[opts.logLevel ?? 'info'];
    const note = (msg: string) => logFile.write(`${new Date().toISOString()} node ${msg}\n`);
    const logger = ldk.Logger.new_impl({
      log(record) {
        const level = record.get_level();
        if (level < minLevel) return;
        const line = `${new Date().toISOString()} ${ldk.Level[level]?.replace('LDKLevel_', '')} ${record.get_module_path()}: ${record.get_args()}\n`;
        logFile.write(line);
        if (level >= ldk.Level.LDKLevel_Error) process.stderr.write(line);
      },
    });

    // The seed is the node's identity and every channel key: written durably before anything uses it.
    const seed = new Uint8Array(randomBytes(32));
    writeFileDurablySync(join(opts.datadir, 'keys_seed'), seed);
    const now = Date.now();
    const keys = ldk.KeysManager.constructor_new(seed, BigInt(Math.floor(now / 1000)), (now % 1000) * 1e6);

    const feeEstimator = fees.asFeeEstimator();
    const broadcaster = new RpcBroadcaster(rpc, note);
    const txBroadcaster = broadcaster.asBroadcaster();
    const store = new FilesystemKvStore(join(opts.datadir, 'store'));
    const persister = ldk.MonitorUpdatingPersister.constructor_new(
      store.asKVStore(note),
      logger,
      MAX_PENDING_MONITOR_UPDATES,
      keys.as_EntropySource(),
      keys.as_SignerProvider(),
      txBroadcaster,
      feeEstimator,
    );
    const chainMonitor = ldk.ChainMonitor.constructor_new(
      ldk.Option_FilterZ.constructor_none(),
      txBroadcaster,
      logger,
      feeEstimator,
      persister.as_Persist(),
    );

    const graph = ldk.NetworkGraph.constructor_new(ldk.Network.LDKNetwork_Regtest, logger);
    const scorer = ldk.ProbabilisticScorer.constructor_new(
      ldk.ProbabilisticScoringDecayParameters.constructor_default(),
      graph,
      logger,
    );
    const score = ldk.MultiThreadedLockableScore.constructor_new(scorer.as_Score());
    const router = ldk.DefaultRouter.constructor_new(
      graph,
      logger,
      keys.as_EntropySource(),
      score.as_LockableScore(),
      ldk.ProbabilisticScoringFeeParameters.constructor_default(),
    );
    const messageRouter = ldk.DefaultMessageRouter.constructor_new(graph, keys.as_EntropySource());

    const config = ldk.UserConfig.constructor_default();
    const handshake = config.get_channel_handshake_config();
    handshake.set_announce_for_forwarding(false); // a private channel between two peers: no gossip
    // Let the payee accept as many HTLCs and as much value in flight as BOLT 2 allows, so the pipelined
    // scenario is bounded by LDK's processing, not by the defaults (50 HTLCs, 10% of the channel).
    handshake.set_our_max_accepted_htlcs(483);
    handshake.set_max_inbound_htlc_value_in_flight_percent_of_channel(100);
    config.set_channel_handshake_config(handshake);
    // LDK counts an HTLC as "dust" for its exposure limit when it would be trimmed at a feerate buffered
    // by +2530 sat/kw (2,310 sat here, although at the real 253 sat/kw a 1,000-sat HTLC gets its own
    // output and signatures), and caps that exposure at 10,000 x the feerate (2,530 sat): two 1,000-sat
    // payments could not be in flight at once. A fixed cap of 1M sat lets the window fill.
    const channelConfig = config.get_channel_config();
    channelConfig.set_max_dust_htlc_exposure(ldk.MaxDustHTLCExposure.constructor_fixed_limit_msat(1_000_000_000n));
    config.set_channel_config(channelConfig);

    const params = ldk.ChainParameters.constructor_new(
      ldk.Network.LDKNetwork_Regtest,
      ldk.BestBlock.constructor_new(hashBytes(tip.hash), tip.height),
    );
    const cm = ldk.ChannelManager.constructor_new(
      feeEstimator,
      chainMonitor.as_Watch(),
      txBroadcaster,
      router.as_Router(),
      messageRouter.as_MessageRouter(),
      logger,
      keys.as_EntropySource(),
      keys.as_NodeSigner(),
      keys.as_SignerProvider(),
      config,
      params,
      Math.floor(now / 1000),
    );
    const ignorer = ldk.IgnoringMessageHandler.constructor_new();
    const peers = ldk.PeerManager.constructor_new(
      cm.as_ChannelMessageHandler(),
      ignorer.as_RoutingMessageHandler(),
      ignorer.as_OnionMessageHandler(),
      ignorer.as_CustomMessageHandler(),
      Math.floor(now / 1000),
      new Uint8Array(randomBytes(32)),
      logger,
      keys.as_NodeSigner(),
    );

    let node: LdkNode | null = null;
    const kick = () => node?.kick();
    const sockets = new PeerSockets(() => peers, kick, note);
    const port = await sockets.listen(opts.port ?? 0);
    const feed = new BlockFeed(rpc, [cm.as_Listen(), chainMonitor.as_Listen()], tip, kick, note);
    node = new LdkNode(
      opts,
      rpc,
      port,
      cm,
      chainMonitor,
      peers,
      keys,
      sockets,
      feed,
      store,
      broadcaster,
      new FundingWallet(),
      logFile,
    );
    node.startTimers(fees);
    node.kick();
    return node;
  }

  /** Dials a peer. */
  async connect(host: string, port: number, nodeId: string): Promise<void> {
    await this.sockets.connect(host, port, fromHex(nodeId, 'nodeId'));
    await this.until(
      () => this.peers.list_peers().some((p) => toHex(p.get_counterparty_node_id()) === nodeId),
      10_000,
      `peer ${nodeId} did not complete the handshake`,
    );
  }

  /** Brings LDK up to the chain's tip now (after mining). */
  async sync(): Promise<void> {
    await this.feed.sync();
    this.kick();
  }

  /**
   * Opens a channel of `capacitySat` to `peer`, funded by this node: the faucet pays the funding wallet,
   * LDK negotiates, the wallet builds the funding transaction, LDK broadcasts it. Resolves to the funding
   * txid once it is broadcast (not yet confirmed: the caller mines).
   */
  async openChannel(peer: string, capacitySat: bigint, timeoutMs = 30_000): Promise<string> {
    await this.wallet.fund(new Faucet(this.rpc), capacitySat + 10_000n);
    const r = this.cm.create_channel(fromHex(peer, 'peer'), capacitySat, 0n, 0n, null, null);
    if (!(r instanceof ldk.Result_ChannelIdAPIErrorZ_OK))
      throw new Error(`LDK create_channel: ${apiErrorText((r as ldk.Result_ChannelIdAPIErrorZ_Err).err)}`);
    this.kick();
    await this.until(
      () => this.fundingTxid !== null && this.broadcaster.broadcast.includes(this.fundingTxid),
      timeoutMs,
      'the funding transaction was not negotiated and broadcast',
    );
    return this.fundingTxid!;
  }

  /** Waits until the channel is usable (channel_ready both ways, peer connected). */
  async waitChannelReady(timeoutMs: number): Promise<void> {
    await this.until(
      () => this.cm.list_usable_channels().length > 0,
      timeoutMs,
      `the channel did not become ready within ${timeoutMs} ms (funding confirmed? peer connected?)`,
    );
  }

  channel(): ChannelView | null {
    const c = this.cm.list_channels()[0];
    if (!c) return null;
    const txo = c.get_funding_txo();
    return {
      channelId: toHex(c.get_channel_id().get_a()),
      fundingTxid: txo ? toHex(txo.get_txid().slice().reverse()) : null,
      capacitySat: c.get_channel_value_satoshis(),
      ready: c.get_is_channel_ready(),
      usable: c.get_is_usable(),
      outboundMsat: c.get_outbound_capacity_msat(),
      inboundMsat: c.get_inbound_capacity_msat(),
      pendingHtlcs: c.get_pending_inbound_htlcs().length + c.get_pending_outbound_htlcs().length,
    };
  }

  /** What this node could claim on chain if its channels closed now (sat), from its ChannelMonitors. */
  claimableOnCloseSat(): bigint {
    let sum = 0n;
    for (const b of this.chainMonitor.get_claimable_balances([])) {
      if (b instanceof ldk.Balance_ClaimableOnChannelClose) sum += b.amount_satoshis;
    }
    return sum;
  }

  /** BOLT 11 invoices for `amountMsat` each, one payment hash and secret per invoice. */
  createInvoices(count: number, amountMsat: bigint): string[] {
    const desc = ldk.Description.constructor_new('teechain-ts bench');
    if (!(desc instanceof ldk.Result_DescriptionCreationErrorZ_OK)) throw new Error('LDK: invoice description refused');
    const out: string[] = [];
    for (let i = 0; i < count; i++) {
      const r = this.cm.create_bolt11_invoice(
        ldk.Option_u64Z.constructor_some(amountMsat),
        ldk.Bolt11InvoiceDescription.constructor_direct(desc.res),
        ldk.Option_u32Z.constructor_some(3600),
        ldk.Option_u16Z.constructor_none(),
        ldk.Option_ThirtyTwoBytesZ.constructor_none(),
      );
      if (!(r instanceof ldk.Result_Bolt11InvoiceSignOrCreationErrorZ_OK))
        throw new Error('LDK create_bolt11_invoice failed');
      out.push(r.res.to_str());
    }
    return out;
  }

  /** Pays a BOLT 11 invoice; resolves to the latency (ms) from send to Event::PaymentSent. */
  pay(invoice: string): Promise<number> {
    const parsed = ldk.Bolt11Invoice.constructor_from_str(invoice);
    if (!(parsed instanceof ldk.Result_Bolt11InvoiceParseOrSemanticErrorZ_OK))
      return Promise.reject(new Error('not a valid BOLT 11 invoice'));
    const p = ldk.UtilMethods.constructor_payment_parameters_from_invoice(parsed.res);
    if (!(p instanceof ldk.Result_C3Tuple_ThirtyTwoBytesRecipientOnionFieldsRouteParametersZNoneZ_OK)) {
      return Promise.reject(new Error('invoice has no amount'));
    }
    const hash = p.res.get_a();
    const id = toHex(hash);
    return new Promise<number>((resolve, reject) => {
      const start = performance.now();
      this.pending.set(id, { start, resolve, reject });
      // The payment id is the payment hash: LDK then refuses to pay the same invoice twice.
      const r = this.cm.send_payment(hash, p.res.get_b(), hash, p.res.get_c(), ldk.Retry.constructor_attempts(3));
      if (!(r instanceof ldk.Result_NoneRetryableSendFailureZ_OK)) {
        this.pending.delete(id);
        reject(
          new Error(
            `LDK send_payment: ${ldk.RetryableSendFailure[(r as ldk.Result_NoneRetryableSendFailureZ_Err).err]}`,
          ),
        );
        return;
      }
      this.kick();
    });
  }

  /** Shutdown script this node's coins go to on a cooperative close (hex). */
  shutdownScript(): string {
    const r = this.keys.as_SignerProvider().get_shutdown_scriptpubkey();
    if (!(r instanceof ldk.Result_ShutdownScriptNoneZ_OK)) throw new Error('LDK: no shutdown script');
    return toHex(r.res.into_inner());
  }

  /** Cooperatively closes the channel; resolves once LDK reports it closed (the closing transaction is broadcast). */
  async closeChannel(timeoutMs = 30_000): Promise<void> {
    const c = this.cm.list_channels()[0];
    if (!c) throw new Error('no channel to close');
    const r = this.cm.close_channel(c.get_channel_id(), c.get_counterparty().get_node_id());
    if (!(r instanceof ldk.Result_NoneAPIErrorZ_OK))
      throw new Error(`LDK close_channel: ${apiErrorText((r as ldk.Result_NoneAPIErrorZ_Err).err)}`);
    this.kick();
    await this.waitClosed(timeoutMs);
  }

  async waitClosed(timeoutMs: number): Promise<string> {
    await this.until(() => this.closed !== null, timeoutMs, 'the channel did not close');
    return this.closed!;
  }

  /** Stops timers, sockets and the block feed; waits for the last ChannelManager write. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.feed.stop();
    this.sockets.close();
    this.peers.disconnect_all_peers();
    await this.managerWrite;
    await new Promise((r) => this.logFile.end(r));
  }

  /** Schedules one pump (coalesced: many kicks in one tick make one pump). */
  kick(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    if (this.stopped) return;
    let handled = 0;
    const handler = ldk.EventHandler.new_impl({
      handle_event: (e) => {
        handled++;
        try {
          this.onEvent(e);
        } catch (err) {
          this.note(`event ${e.constructor.name} handler failed: ${(err as Error).stack}`);
        }
        return ldk.Result_NoneReplayEventZ.constructor_ok();
      },
    });
    this.cm.as_EventsProvider().process_pending_events(handler);
    this.chainMonitor.as_EventsProvider().process_pending_events(handler);
    if (this.forwardsDue) {
      // Forwarding right away, where a routing node would wait a random delay for privacy: this node is
      // the payment's final hop, and the benchmark measures LDK's own processing.
      this.forwardsDue = false;
      this.cm.process_pending_htlc_forwards();
      handled++;
    }
    this.sockets.corked(() => this.peers.process_events());
    if (this.cm.get_and_clear_needs_persistence()) this.persistManager();
    for (let i = this.waiters.length - 1; i >= 0; i--) if (this.waiters[i]!()) this.waiters.splice(i, 1);
    if (handled > 0) this.kick();
    if (!this.futureArmed) {
      this.futureArmed = true;
      const cb = ldk.FutureCallback.new_impl({
        call: () => {
          this.futureArmed = false;
          this.kick();
        },
      });
      // The JS Future wrapper holds the only JS reference to `cb`, and LDK keeps calling it after the
      // wrapper is dropped: without this field both are collected and LDK calls into a dead object.
      this.armedFuture = this.cm.get_event_or_persistence_needed_future();
      this.armedFuture.register_callback_fn(cb);
    }
  }

  private onEvent(e: ldk.Event): void {
    if (e instanceof ldk.Event_FundingGenerationReady) {
      const tx = this.wallet.fundingTransaction(e.output_script, e.channel_value_satoshis);
      this.fundingTxid = txidOf(tx);
      const r = this.cm.funding_transaction_generated(e.temporary_channel_id, e.counterparty_node_id, tx);
      if (!(r instanceof ldk.Result_NoneAPIErrorZ_OK))
        this.note(`funding_transaction_generated: ${apiErrorText((r as ldk.Result_NoneAPIErrorZ_Err).err)}`);
    } else if (e instanceof ldk.Event_PaymentClaimable) {
      const preimage = e.purpose.preimage();
      if (preimage instanceof ldk.Option_ThirtyTwoBytesZ_Some) this.cm.claim_funds(preimage.some);
      else this.cm.fail_htlc_backwards(e.payment_hash);
    } else if (e instanceof ldk.Event_PaymentClaimed) {
      this.claimedMsat += e.amount_msat;
      this.claimedCount++;
    } else if (e instanceof ldk.Event_PaymentSent) {
      const p = this.pending.get(toHex(e.payment_hash));
      if (p) {
        this.pending.delete(toHex(e.payment_hash));
        p.resolve(performance.now() - p.start);
      }
    } else if (e instanceof ldk.Event_PaymentFailed) {
      const id = toHex(e.payment_id);
      const p = this.pending.get(id);
      if (p) {
        this.pending.delete(id);
        const reason =
          e.reason instanceof ldk.Option_PaymentFailureReasonZ_Some
            ? ldk.PaymentFailureReason[e.reason.some]
            : 'unknown';
        p.reject(new Error(`payment failed: ${reason}`));
      }
    } else if (e instanceof ldk.Event_PendingHTLCsForwardable) {
      this.forwardsDue = true;
    } else if (e instanceof ldk.Event_ChannelClosed) {
      this.closed = e.reason.to_str();
      this.note(`channel closed: ${this.closed}`);
    } else if (e instanceof ldk.Event_ChannelReady) {
      this.note('channel ready');
    } else if (e instanceof ldk.Event_SpendableOutputs) {
      // A cooperative close pays straight to our shutdown script; anything else (force close outputs) would
      // be swept by an OutputSweeper in a long-lived node. Logged only: the benchmark never force-closes.
      this.note(`spendable outputs: ${e.outputs.length}`);
    }
  }

  /** ChannelManager persistence in the background, as LDK's BackgroundProcessor does: not on the payment path. */
  private persistManager(): void {
    if (this.managerWrite) {
      this.managerDirty = true;
      return;
    }
    const bytes = this.cm.write();
    this.managerWrite = writeFileDurably(join(this.opts.datadir, 'manager'), bytes)
      .catch((err: Error) => this.note(`ChannelManager write failed: ${err.message}`))
      .finally(() => {
        this.managerWrite = null;
        if (this.managerDirty && !this.stopped) {
          this.managerDirty = false;
          this.persistManager();
        }
      });
  }

  private startTimers(fees: FeeCache): void {
    this.feed.poll(this.opts.pollMs ?? 500);
    this.timers.push(
      setInterval(() => {
        this.peers.timer_tick_occurred();
        this.kick();
      }, 10_000),
      setInterval(() => {
        this.cm.timer_tick_occurred();
        this.kick();
      }, 60_000),
      setInterval(() => void fees.refresh().catch((err: Error) => this.note(`fee refresh: ${err.message}`)), 60_000),
    );
    for (const t of this.timers) t.unref();
  }

  /** Resolves when `cond` holds after a pump; rejects with `what` after `timeoutMs`. */
  private until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(check);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`LDK node: ${what} (waited ${timeoutMs} ms)`));
      }, timeoutMs);
      const check = () => {
        if (!cond()) return false;
        clearTimeout(timer);
        resolve();
        return true;
      };
      this.waiters.push(check);
      this.kick();
    });
  }

  private note(msg: string): void {
    this.logFile.write(`${new Date().toISOString()} node ${msg}\n`);
  }
}

function apiErrorText(e: ldk.APIError): string {
  const err = (e as unknown as { err?: unknown }).err;
  return `${e.constructor.name.replace('APIError_', '')}${typeof err === 'string' ? `: ${err}` : ''}`;
}
