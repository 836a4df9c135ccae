/**
 * A treasury node's untrusted host: it launches the treasury enclave, relays its frames over TCP,
 * answers its chain look-ups, broadcasts what it signs, keeps payment history, and batches payment
 * requests into few enclave calls. It holds no key and makes no decision about money.
 */
import { readFile, writeFile, rename } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Platform, SlotSealedStore, type AttestationService, type EnclaveHandle } from '../../enclave-sim/index.ts';
import { Transport, type PreAuthLimits } from '../network/transport.ts';
import {
  TreasuryInterface,
  type ChannelView,
  type DepositView,
  type TreasuryEventMsg,
} from '../enclave/treasury/interface.ts';
import { txidOf } from '../enclave/treasury/transactions.ts';
import type { ChainSource } from './chain-source.ts';
import { NodeError, fromEnclaveError } from './errors.ts';
import { PaymentLog } from './payment-log.ts';
import type { Payment } from './payment.ts';
import { PaymentJournal, type JournalRecord, type KeyRef } from './payment-journal.ts';
import { InFlight, outcomeAt } from './in-flight.ts';
import { loadOrCreatePayoutWallet } from './payout-wallet.ts';
import type { NodeObserver } from './observer.ts';
import { observeStore } from './observed-store.ts';
import { makePrivateDir, writeJoinTokens } from './secret-file.ts';

export const TREASURY_PROGRAM = join(dirname(fileURLToPath(import.meta.url)), '../enclave/treasury/program.ts');

export interface TreasuryNodeOptions {
  datadir: string;
  chain: ChainSource;
  attestation: AttestationService;
  /** Measurements accepted from peers; default: this node's own (peers run the same code). */
  allowedMeasurements?: string[];
  minConfirmations?: number;
  /** Where settlements pay this node's side; default: the node's payout wallet (payout-wallet.ts). */
  payoutAddress?: string;
  p2pHost?: string;
  p2pPort?: number;
  /** How often deposits reported funded but not yet confirmed are checked again (default 2 s). */
  depositPollMs?: number;
  /** A new treasury's committee (README "Committee chains"): n members in all, m to sign; ignored once sealed. */
  committee?: { size: number; threshold?: number };
  /** Start as a backup of the primary listening at host:port (it joins that primary's committee chain). */
  backupOf?: string;
  /** A backup's one-time join token from the primary's committee-join-tokens file (needed only to join the first time). */
  joinToken?: string;
  /** Told of payments, sealed writes and enclave events, for metrics and logs (src/node/observer.ts). */
  observer?: NodeObserver;
  /** What a P2P connection may send before its handshake completes (defaults: DEFAULT_PRE_AUTH in transport.ts). */
  preAuth?: Partial<PreAuthLimits>;
}

interface PendingPay {
  channelId: string;
  amount: number;
  resolve: (p: Payment) => void;
  reject: (e: NodeError) => void;
  payment: Payment;
  ref?: KeyRef;
}

/** Test-only: exit as if killed right after the enclave sealed a keyed debit, before the journal has it. */
const CRASH_AFTER_KEYED_PAY = process.env.TEECHAIN_TEST_CRASH_AFTER_KEYED_PAY === '1';

export class TreasuryNode {
  readonly payments: PaymentLog;
  private enclave!: EnclaveHandle<typeof TreasuryInterface>;
  private store?: SlotSealedStore;
  private transport!: Transport;
  private queue: PendingPay[] = [];
  private flushScheduled = false;
  /** Sent payments waiting for the peer's acknowledgement or the settlement's outcome (in-flight.ts). */
  private readonly inFlight = new InFlight<PendingPay>();
  private journal?: PaymentJournal;
  /** Refs journaled since the last pay call: the next one tells the enclave to drop them. */
  private journaledRefs: string[] = [];
  private readonly connectWaiters = new Map<
    string,
    { resolve: (peer: string) => void; reject: (e: NodeError) => void }
  >();
  private readonly peerAddresses = new Map<string, string>();
  private readonly connPeers = new Map<string, string>();
  /** Addresses of peers we dialled, kept in peers.json so a restarted node reconnects by itself. */
  private readonly savedPeers = new Set<string>();
  private readonly outgoing = new Map<string, string>();
  private readonly redialing = new Set<string>();
  private stopped = false;
  private polling = false;
  private pollTimer?: ReturnType<typeof setInterval>;
  private gossipTimer?: ReturnType<typeof setInterval>;
  nodeId = '';
  measurement = '';
  p2pPort = 0;
  payoutAddress = '';

  private constructor(readonly opts: TreasuryNodeOptions) {
    this.payments = new PaymentLog(undefined, opts.observer);
  }

  static async start(opts: TreasuryNodeOptions): Promise<TreasuryNode> {
    const node = new TreasuryNode(opts);
    await node.boot();
    return node;
  }

  private async boot(): Promise<void> {
    const { datadir } = this.opts;
    await makePrivateDir(datadir);
    const platform = await Platform.open({ dir: join(datadir, 'platform'), attestation: this.opts.attestation });
    this.enclave = await platform.launch({
      entry: TREASURY_PROGRAM,
      iface: TreasuryInterface,
      store: observeStore((this.store = new SlotSealedStore(join(datadir, 'treasury.sealed'))), this.opts.observer),
      onOcallError: (name, err) => this.opts.observer?.ocallFailed?.(name, err.message),
      ocalls: {
        net_send: ({ conn, frames }) => {
          this.transport.send(conn, frames);
          return null;
        },
        net_close: ({ conn }) => {
          this.transport.close(conn);
          return null;
        },
        event: ({ event }) => {
          this.onEvent(event);
          return null;
        },
        chain_get_txout: async ({ txid, vout }) => {
          const r = await this.opts.chain.getTxOut(txid, vout);
          return r ? { tx_hex: r.txHex, confirmations: r.confirmations, unspent: r.unspent } : null;
        },
      },
    });
    this.measurement = this.enclave.measurement;
    this.payoutAddress = this.opts.payoutAddress ?? (await loadOrCreatePayoutWallet(datadir)).address;
    this.transport = new Transport(
      {
        onOpen: (conn, outgoing) => {
          void this.call(outgoing ? 'peer_connect' : 'peer_accept', { conn }).catch(() => this.transport.close(conn));
        },
        // The promise lets the transport tell a handshake still being applied from a peer over its limits.
        onFrames: (conn, frames) => this.call('peer_recv', { conn, frames }).catch(() => this.transport.close(conn)),
        onClose: (conn) => {
          if (this.stopped) return;
          void this.call('peer_disconnected', { conn }).catch(() => undefined);
          const address = this.outgoing.get(conn);
          this.outgoing.delete(conn);
          if (address && this.savedPeers.has(address)) this.redial(address, 200);
          this.connectWaiters
            .get(conn)
            ?.reject(new NodeError('peer_unreachable', 'connection closed during the handshake'));
          this.connectWaiters.delete(conn);
        },
      },
      this.opts.preAuth ? { preAuth: this.opts.preAuth } : {},
    );
    this.p2pPort = await this.transport.listen(this.opts.p2pHost ?? '127.0.0.1', this.opts.p2pPort ?? 0);
    const { committee, backupOf } = this.opts;
    const init = await this.initEnclave({
      trust_anchor: this.opts.attestation.trustAnchor,
      allowed_measurements: this.opts.allowedMeasurements ?? [this.measurement],
      min_confirmations: this.opts.minConfirmations ?? 1,
      payout_address: this.payoutAddress,
      ...(backupOf
        ? { committee: { role: 'backup' } }
        : committee && committee.size > 1
          ? {
              committee: {
                role: 'primary',
                size: committee.size,
                ...(committee.threshold ? { threshold: committee.threshold } : {}),
                address: this.p2pAddress,
              },
            }
          : {}),
    });
    this.nodeId = init.node_id;
    if (init.join_tokens) await writeJoinTokens(datadir, init.join_tokens);
    await this.openJournal(join(datadir, 'payments.journal'));
    if (backupOf) this.joinPrimary(backupOf);
    for (const address of await this.loadPeers()) {
      this.savedPeers.add(address);
      this.redial(address, 0);
    }
    this.pollTimer = setInterval(() => void this.confirmPendingDeposits(), this.opts.depositPollMs ?? 2_000);
    this.pollTimer.unref();
    // Routing gossip: our channel announcement goes out whenever it changed (checked twice a second).
    this.gossipTimer = setInterval(() => {
      if (!this.stopped) void this.call('mh_gossip', {}).catch(() => undefined);
    }, 500);
    this.gossipTimer.unref();
  }

  /**
   * Deposits whose funding output was reported before it had enough confirmations stay pending; they are
   * reported to the enclave again until it counts them free (it checks the chain itself each time).
   */
  private async confirmPendingDeposits(): Promise<void> {
    if (this.polling || this.stopped) return;
    this.polling = true;
    try {
      for (const d of await this.deposits()) {
        if (d.status !== 'pending' || !d.outpoint) continue;
        const [txid, vout] = d.outpoint.split(':') as [string, string];
        await this.depositFunded(d.deposit_id, txid, Number(vout)).catch(() => undefined);
      }
      await this.watchChannelDeposits();
    } catch {
      // enclave busy or stopping: try again at the next tick
    } finally {
      this.polling = false;
    }
  }

  get p2pAddress(): string {
    return `${this.opts.p2pHost ?? '127.0.0.1'}:${this.p2pPort}`;
  }

  /**
   * A backup dials its primary and asks to join (again after every restart: the primary answers a known
   * member with the latest update, so joining twice is harmless). Retried until it succeeds.
   */
  private joinPrimary(address: string, delayMs = 0): void {
    setTimeout(() => {
      if (this.stopped) return;
      this.connect(address, 5_000)
        .then((primaryId) =>
          this.call('committee_join', {
            primary_id: primaryId,
            address: this.p2pAddress,
            ...(this.opts.joinToken ? { token: this.opts.joinToken } : {}),
          }),
        )
        .catch(() => this.joinPrimary(address, Math.min(5_000, Math.max(200, delayMs * 2))));
    }, delayMs).unref();
  }

  /** Re-dials a saved peer until a session is up again (backoff up to 5 s); one loop per address. */
  private redial(address: string, delayMs: number): void {
    if (this.stopped || this.redialing.has(address)) return;
    this.redialing.add(address);
    setTimeout(() => {
      this.connect(address, 5_000).then(
        () => {
          this.redialing.delete(address);
        },
        () => {
          this.redialing.delete(address);
          this.redial(address, Math.min(5_000, Math.max(200, delayMs * 2)));
        },
      );
    }, delayMs).unref();
  }

  private async loadPeers(): Promise<string[]> {
    try {
      const list = JSON.parse(await readFile(join(this.opts.datadir, 'peers.json'), 'utf8')) as unknown;
      return Array.isArray(list) ? list.filter((a): a is string => typeof a === 'string') : [];
    } catch {
      return [];
    }
  }

  private async savePeers(): Promise<void> {
    const file = join(this.opts.datadir, 'peers.json');
    await writeFile(`${file}.tmp`, JSON.stringify([...this.savedPeers]));
    await rename(`${file}.tmp`, file);
  }

  /** The first ecall: restores the sealed state. A refused blob (rollback, tampering) stops the node here. */
  private async initEnclave(args: Parameters<EnclaveHandle<typeof TreasuryInterface>['ecall']>[1] & object) {
    try {
      return await this.enclave.ecall('init', args as never);
    } catch (err) {
      await this.enclave.terminate();
      const code = (err as { code?: string }).code ?? 'unknown';
      throw new NodeError(
        'enclave_failed',
        `the enclave refused its sealed state (${code}): ${(err as Error).message}`,
      );
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
    const channels = await this.channels();
    const waiting = channels.filter((c) => c.status === 'closed' && (c.awaiting_chain.length > 0 || c.keys_held));
    for (const c of waiting) {
      const spends = new Map<string, string>();
      for (const hex of [this.spendOfChannel.get(c.channel_id), c.settlement_tx_hex]) {
        const txid = hex ? txidOf(hex) : null;
        if (txid) spends.set(txid, hex!);
      }
      for (const [txid, hex] of spends) {
        // The enclave asks the chain for the depth itself; showing it again is worth it only once that moved.
        const depth = (await this.opts.chain.getTxOut(txid, 0).catch(() => null))?.confirmations ?? 0;
        const key = `${c.channel_id}:${txid}`;
        if (depth === 0 || this.depthShown.get(key) === depth) continue;
        await this.call('channel_spent', { channel_id: c.channel_id, tx_hex: hex }).then(
          () => this.depthShown.set(key, depth),
          () => undefined,
        );
      }
    }
    if (!this.opts.chain.watchSpends) return;
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
      for (const d of await this.deposits())
        if (d.awaiting_chain && d.outpoint && d.channel_id) byOutpoint.set(d.outpoint, d.channel_id);
    }
    this.channelOfOutpoint = byOutpoint;
    await this.opts.chain.watchSpends([...byOutpoint.keys()], (outpoint, txHex) => {
      const channelId = this.channelOfOutpoint.get(outpoint);
      if (!channelId || this.stopped) return;
      this.spendOfChannel.set(channelId, txHex);
      void this.call('channel_spent', { channel_id: channelId, tx_hex: txHex }).catch(() => undefined);
    });
  }

  private channelOfOutpoint = new Map<string, string>();
  /** The last transaction seen spending each channel's deposits (shown to the enclave again until it is deep enough). */
  private readonly spendOfChannel = new Map<string, string>();
  /** Depth at which each (channel, spend) was last shown to the enclave. */
  private readonly depthShown = new Map<string, number>();

  /** Calls the enclave, turning its error answers into NodeErrors with the same code. */
  private async call<K extends keyof (typeof TreasuryInterface)['ecalls'] & string>(
    name: K,
    args: Parameters<EnclaveHandle<typeof TreasuryInterface>['ecall']>[1] & object,
  ) {
    try {
      return await this.enclave.ecall(name, args as never);
    } catch (err) {
      throw fromEnclaveError(err);
    }
  }

  // ───────────────────────────── peers ─────────────────────────────

  /** Dials a peer at host:port and runs mutual attestation; resolves with its node id. */
  async connect(address: string, timeoutMs = 10_000): Promise<string> {
    if (this.stopped) throw new NodeError('node_stopping');
    const m = /^([^:]+):(\d{1,5})$/.exec(address);
    if (!m) throw new NodeError('invalid_argument', 'address must be host:port');
    let conn: string;
    try {
      conn = await this.transport.dial(m[1]!, Number(m[2]), timeoutMs);
    } catch (err) {
      throw new NodeError('peer_unreachable', `cannot reach ${address}: ${(err as Error).message}`);
    }
    this.outgoing.set(conn, address);
    const peerId = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.connectWaiters.delete(conn);
        this.transport.close(conn);
        reject(new NodeError('timeout', 'handshake timed out'));
      }, timeoutMs);
      this.connectWaiters.set(conn, {
        resolve: (p) => {
          clearTimeout(timer);
          resolve(p);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
    this.peerAddresses.set(peerId, address);
    if (!this.savedPeers.has(address)) {
      this.savedPeers.add(address);
      await this.savePeers();
    }
    return peerId;
  }

  async info() {
    const i = await this.call('get_info', {});
    let height: number | null = null;
    try {
      height = await this.opts.chain.blockHeight();
    } catch {
      /* chain unreachable: reported as null */
    }
    return {
      ...i,
      measurement: this.measurement,
      p2p_port: this.p2pPort,
      block_height: height,
      payout_address: this.payoutAddress,
    };
  }

  /** A fresh quote over this node's identity for the caller's nonce (hex). */
  async attest(nonceHex: string) {
    const r = await this.call('attest', { nonce: nonceHex });
    return { node_id: r.node_id, quote: r.quote, trust_anchor: this.opts.attestation.trustAnchor };
  }

  peers() {
    return [...this.connPeers.entries()].map(([conn, peer_id]) => ({
      peer_id,
      conn,
      address: this.peerAddresses.get(peer_id) ?? null,
    }));
  }

  // ───────────────────────────── deposits ─────────────────────────────

  newDeposit(): Promise<DepositView> {
    return this.call('deposit_new', {});
  }

  depositFunded(depositId: string, txid: string, vout: number): Promise<DepositView> {
    return this.call('deposit_funded', { deposit_id: depositId, txid, vout });
  }

  async deposits(): Promise<DepositView[]> {
    return (await this.call('list_deposits', {})).deposits;
  }

  /** Signs (in the enclave) and broadcasts the release of a free deposit to `address`. */
  async releaseDeposit(depositId: string, address?: string) {
    const feeRate = await this.opts.chain.feeRate();
    const r = await this.call('deposit_release', {
      deposit_id: depositId,
      ...(address ? { address } : {}),
      fee_rate: feeRate,
    });
    await this.broadcast(r.tx_hex, `GET /v1/deposits shows it as release_tx_hex of ${depositId}`);
    return r;
  }

  // ───────────────────────────── channels ─────────────────────────────

  openChannel(peerId: string, payoutAddress?: string): Promise<ChannelView> {
    return this.call('channel_open', { peer_id: peerId, payout_address: payoutAddress ?? this.payoutAddress });
  }

  addDeposit(channelId: string, depositId: string): Promise<ChannelView> {
    return this.call('channel_add_deposit', { channel_id: channelId, deposit_id: depositId });
  }

  removeDeposit(channelId: string, depositId: string): Promise<ChannelView> {
    return this.call('channel_remove_deposit', { channel_id: channelId, deposit_id: depositId });
  }

  async channels(): Promise<ChannelView[]> {
    return (await this.call('list_channels', {})).channels;
  }

  channel(channelId: string): Promise<ChannelView> {
    return this.call('get_channel', { channel_id: channelId });
  }

  /** Settles alone: the enclave signs the latest state, the host broadcasts it. */
  async settle(channelId: string) {
    const feeRate = await this.opts.chain.feeRate();
    const r = await this.call('channel_settle', { channel_id: channelId, fee_rate: feeRate });
    // Unacknowledged payments stay in flight: a peer's settlement may still win on chain (in-flight.ts).
    if (r.tx_hex) await this.broadcast(r.tx_hex, `GET /v1/channels/${channelId} shows it as settlement_tx_hex`);
    return r;
  }

  /** Broadcasts what the enclave signed; on failure the user is told where the signed transaction is kept. */
  private async broadcast(hex: string, whereKept: string): Promise<void> {
    try {
      await this.opts.chain.broadcast(hex);
    } catch (err) {
      throw new NodeError(
        'broadcast_failed',
        `the chain refused the signed transaction (${(err as Error).message}); ${whereKept}, to broadcast it again`,
      );
    }
  }

  // ───────────────────────────── payments ─────────────────────────────

  /**
   * Pays `amount` sat on a channel. Requests made in the same tick go to the enclave in one call (and
   * one sealed state, one message); the promise resolves when the peer's enclave has durably credited it.
   */
  pay(channelId: string, amount: number): Promise<Payment> {
    return this.submit(channelId, amount).done;
  }

  /**
   * Like pay(), but answers after at most `waitMs`: with the succeeded payment, or with it still
   * `in_flight` (its acknowledgement arrives later, e.g. once a dropped peer reconnects and resyncs).
   * Payments the enclave refuses reject with their NodeError.
   */
  async payWithin(channelId: string, amount: number, waitMs: number, ref?: KeyRef): Promise<Payment> {
    const { payment, done } = this.submit(channelId, amount, ref);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), waitMs);
    });
    const first = await Promise.race([done, late]).finally(() => clearTimeout(timer));
    if (first === null) done.catch(() => undefined);
    // The live record: a keyed retry answers its status as it is then, not as it was at the first answer.
    return first ?? payment;
  }

  /**
   * Pays `dest` through a path of channels (README "Multi-hop payments"). A payment that meets a channel
   * held by another multi-hop payment (`channel_busy`) is retried after a random pause, for up to 8 s:
   * contention is abort-and-retry. Answers after at most `waitMs`, `in_flight` if it is not over by then.
   * `maxFeeSat` bounds what the intermediaries may take in all (the enclave applies a default without it).
   */
  async payMultihop(dest: string, amount: number, waitMs: number, maxFeeSat?: number, ref?: KeyRef): Promise<Payment> {
    const payment = this.payments.begin('', amount);
    payment.dest = dest;
    // A keyed multi-hop payment's start is durable before the enclave moves anything (payment-journal.ts).
    if (ref && this.journal)
      await this.journal.append([
        { t: 'mh', kh: ref.key, fh: ref.fp, id: payment.payment_id, dest, amt: amount, at: payment.created_at },
      ]);
    const end = (r: Omit<Extract<JournalRecord, { t: 'mh_end' }>, 't' | 'kh' | 'at'>) => {
      if (ref && this.journal)
        void this.journal.append([{ t: 'mh_end', kh: ref.key, at: Date.now(), ...r }]).catch(() => undefined);
    };
    const done = (async () => {
      const deadline = Date.now() + 8_000;
      for (let attempt = 0; ; attempt++) {
        try {
          if (this.stopped) throw new NodeError('node_stopping', 'the node is shutting down');
          const feeRate = await this.opts.chain.feeRate();
          const r = await this.call('mh_pay', {
            dest,
            amount_sat: amount,
            fee_rate: feeRate,
            ...(maxFeeSat !== undefined ? { max_fee_sat: maxFeeSat } : {}),
          });
          payment.channel_id = r.channel_id;
          payment.route = r.route;
          payment.fee_sat = Number(r.fee_sat);
          this.payments.succeeded(payment);
          end({ ok: true, ch: r.channel_id, route: r.route, fee: payment.fee_sat });
          return payment;
        } catch (err) {
          const e = err instanceof NodeError ? err : new NodeError('internal', String(err));
          if (e.code === 'channel_busy' && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, Math.min(400, 10 + Math.random() * 40 * (attempt + 1))));
            continue;
          }
          this.payments.failed(payment, e.code);
          end({ ok: false, code: e.code });
          throw e;
        }
      }
    })();
    payment.status = 'in_flight';
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), waitMs);
    });
    const first = await Promise.race([done, late]).finally(() => clearTimeout(timer));
    if (first === null) done.catch(() => undefined);
    return first ?? payment;
  }

  /** The channel graph this node's enclave knows, and the multi-hop payments it takes part in. */
  multihopView() {
    return this.call('mh_view', {});
  }

  setFees(baseSat: number, ppm: number) {
    return this.call('set_fees', { base_sat: baseSat, ppm });
  }

  private submit(channelId: string, amount: number, ref?: KeyRef): { payment: Payment; done: Promise<Payment> } {
    const payment = this.payments.begin(channelId, amount);
    if (this.stopped) {
      this.payments.failed(payment, 'node_stopping');
      return { payment, done: Promise.reject(new NodeError('node_stopping', 'the node is shutting down')) };
    }
    const done = new Promise<Payment>((resolve, reject) => {
      this.queue.push({ channelId, amount, resolve, reject, payment, ...(ref ? { ref } : {}) });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => void this.flush());
      }
    });
    return { payment, done };
  }

  private async flush(): Promise<void> {
    this.flushScheduled = false;
    const batch = this.queue.splice(0, 50_000);
    if (this.queue.length > 0) {
      this.flushScheduled = true;
      setImmediate(() => void this.flush());
    }
    if (batch.length === 0) return;
    let results;
    const journaled = this.journaledRefs.splice(0);
    try {
      results = (
        await this.call('pay', {
          payments: batch.map((p) => ({
            channel_id: p.channelId,
            amount_sat: p.amount,
            ...(p.ref ? { ref: p.ref } : {}),
          })),
          ...(journaled.length ? { journaled } : {}),
        })
      ).results;
    } catch (err) {
      const e = err instanceof NodeError ? err : new NodeError('internal', String(err));
      this.journalBatch(
        batch,
        batch.map(() => ({ ok: false as const, code: e.code })),
      );
      for (const p of batch) this.fail(p, e);
      return;
    }
    if (CRASH_AFTER_KEYED_PAY && batch.some((p) => p.ref)) process.exit(137);
    this.journalBatch(batch, results);
    results.forEach((r, i) => {
      const p = batch[i]!;
      if (!r.ok) return this.fail(p, new NodeError(r.code, r.message));
      this.inFlight.add(r.channel_id, BigInt(r.position), p);
      this.payments.sent(p.payment);
    });
  }

  /** Journals a batch's keyed payments in one group write; once durable, the enclave may drop their refs. */
  private journalBatch(
    batch: PendingPay[],
    results: Array<{ ok: true; channel_id: string; position: string } | { ok: false; code: string }>,
  ): void {
    if (!this.journal) return;
    const records: JournalRecord[] = [];
    const refs: string[] = [];
    batch.forEach((p, i) => {
      const r = results[i]!;
      if (!p.ref) return;
      const base = { kh: p.ref.key, fh: p.ref.fp, id: p.payment.payment_id, amt: p.amount, at: p.payment.created_at };
      if (r.ok) {
        records.push({ t: 'pay', ...base, ch: r.channel_id, pos: r.position });
        refs.push(p.ref.key);
      } else {
        records.push({ t: 'refused', ...base, code: r.code });
      }
    });
    // If the write fails the refs stay sealed in the enclave and are recovered at the next start.
    if (records.length)
      void this.journal.append(records).then(
        () => {
          this.journaledRefs.push(...refs);
        },
        () => undefined,
      );
  }

  /**
   * Replays the journal of keyed payments and recovers, from the refs the enclave sealed with its
   * debits, those whose journal record a crash lost (payment-journal.ts); then keys are answered durably.
   */
  private async openJournal(file: string): Promise<void> {
    const journal = await PaymentJournal.open(file);
    this.payments.reserveIds(journal.maxPaymentNumber());
    const { refs } = await this.call('pay_refs', {});
    const lost: JournalRecord[] = [];
    for (const r of refs) {
      const known = journal.get(r.key);
      // The enclave's ref proves a debit: it wins over a missing record and over a recorded refusal.
      if (known && known.pos !== undefined) continue;
      lost.push({
        t: 'pay',
        kh: r.key,
        fh: r.fp,
        id: known?.id ?? this.payments.newId(),
        ch: r.channel_id,
        amt: r.amount_sat,
        pos: r.position,
        at: known?.at ?? Date.now(),
      });
    }
    await journal.append(lost);
    if (refs.length) await this.call('pay_refs', { drop: refs.map((r) => r.key) });
    this.journal = journal;
    this.payments.useDurableKeys({ answer: (ref) => this.answerKey(ref) });
  }

  /** A retried key's first outcome, from the journal and the channel's totals as the enclave shows them now. */
  private answerKey(ref: KeyRef): Promise<Payment> | null {
    const e = this.journal?.get(ref.key);
    if (!e) return null;
    if (e.fh !== ref.fp)
      throw new NodeError('idempotency_conflict', 'this idempotency key was used for a different payment');
    const base: Payment = {
      payment_id: e.id,
      direction: 'outgoing',
      channel_id: e.ch ?? e.mh?.ch ?? '',
      amount_sat: e.amt,
      status: 'in_flight',
      failure_code: null,
      created_at: e.at,
      resolved_at: null,
    };
    if (e.code !== undefined)
      return Promise.reject(
        new NodeError(e.code as never, `the first request with this idempotency key was refused (${e.code})`),
      );
    if (e.mh) {
      if (!e.mh.done) return Promise.resolve({ ...base, dest: e.mh.dest });
      if (!e.mh.ok)
        return Promise.reject(
          new NodeError(
            (e.mh.code ?? 'internal') as never,
            `the first request with this idempotency key failed (${e.mh.code})`,
          ),
        );
      return Promise.resolve({
        ...base,
        dest: e.mh.dest,
        status: 'succeeded',
        route: e.mh.route ?? [],
        fee_sat: e.mh.fee ?? 0,
      });
    }
    return this.channel(e.ch!).then((view) => {
      const status = outcomeAt(view, e.pos!);
      return { ...base, status, failure_code: status === 'failed' ? 'channel_closed' : null };
    });
  }

  private fail(p: PendingPay, err: NodeError): void {
    this.payments.failed(p.payment, err.code);
    p.reject(err);
  }

  /** The settlement that closed the channel pays `paid` of our sent total: each in-flight payment is decided. */
  private settleInFlight(channelId: string, paid: bigint): void {
    const { succeeded, failed } = this.inFlight.settled(channelId, paid);
    for (const pay of succeeded) {
      this.payments.succeeded(pay.payment);
      pay.resolve(pay.payment);
    }
    for (const pay of failed)
      this.fail(
        pay,
        new NodeError('channel_closed', 'the settlement that closed the channel does not pay this payment'),
      );
  }

  private onEvent(e: TreasuryEventMsg): void {
    this.opts.observer?.enclaveEvent?.(e);
    switch (e.type) {
      case 'pay_acked':
        for (const pay of this.inFlight.acked(e.channel_id, BigInt(e.total))) {
          this.payments.succeeded(pay.payment);
          pay.resolve(pay.payment);
        }
        return;
      case 'pay_received':
        this.payments.received(e.channel_id, e.amounts);
        return;
      case 'peer_connected':
        this.transport.authenticated(e.conn);
        if (!this.stopped) void this.call('mh_gossip', { peer_id: e.peer_id }).catch(() => undefined);
        this.connPeers.set(e.conn, e.peer_id);
        this.connectWaiters.get(e.conn)?.resolve(e.peer_id);
        this.connectWaiters.delete(e.conn);
        return;
      case 'peer_disconnected':
        this.connPeers.delete(e.conn);
        this.connectWaiters.get(e.conn)?.reject(new NodeError('attestation_failed', e.reason));
        this.connectWaiters.delete(e.conn);
        return;
      case 'channel_settled':
        // Known when the peer's enclave said what it received, or when committee members closed the channel
        // at the totals they signed; otherwise they stay in flight until the chain shows the settlement.
        if (e.paid_total !== undefined) this.settleInFlight(e.channel_id, BigInt(e.paid_total));
        return;
      case 'settlement_paid':
        this.settleInFlight(e.channel_id, BigInt(e.paid_total));
        return;
      case 'channel_updated':
        // A deposit joined or left, or the channel opened: announce it now rather than at the next tick,
        // so a multi-hop payment made right after funding a channel does not meet its old capacity of 0.
        if (!this.stopped) void this.call('mh_gossip', {}).catch(() => undefined);
        return;
      case 'committee_roster':
        // Each member dials the members before it in the chain, so every pair of members has a session.
        for (const m of e.members.slice(0, Math.max(0, e.index))) {
          if (m.node_id !== this.nodeId && !this.peerAddresses.has(m.node_id)) this.redial(m.address, 0);
        }
        return;
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.gossipTimer) clearInterval(this.gossipTimer);
    await this.opts.chain.close?.();
    await this.transport?.stop();
    await this.enclave?.terminate();
    await this.store?.close();
    await this.journal?.close();
  }
}
