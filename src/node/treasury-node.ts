/**
 * A treasury node's untrusted host: it launches the treasury enclave and wires the parts that serve it,
 * each in its own module:
 *   - enclave-client.ts   the typed ecalls (and the launch);
 *   - peer-directory.ts   the P2P transport, dialling and redialling peers, the peers file;
 *   - payment-pipeline.ts channel payments batched into few ecalls, matched to their acknowledgements;
 *   - multihop-payer.ts   multi-hop payments, retried while their channels are busy;
 *   - direct-channels.ts  whether a payment to a destination goes directly or is routed;
 *   - keyed-payments.ts   idempotency keys answered across crashes (keyed-routed.ts: routed ones);
 *   - chain-follower.ts   deposit confirmations and spends of channel deposits;
 *   - route-gossip.ts     when the enclave announces its channels for routing;
 *   - primary-gate.ts     `not_primary` for writes sent to a committee backup, naming the primary.
 * The methods below are what the REST API, the CLI and the dashboard call. The host holds no key and
 * makes no decision about money; what it does on its own and fails at is reported (failure-reporter.ts).
 */
import { join } from 'node:path';
import type { AttestationService } from '../../enclave-sim/index.ts';
import type { PreAuthLimits } from '../network/transport.ts';
import type { ChannelView, DepositView, TreasuryEventMsg } from '../enclave/treasury/interface.ts';
import { failureReporter, type ReportFailure } from './failure-reporter.ts';
import { ChainFollower } from './chain-follower.ts';
import type { ChainSource } from './chain-source.ts';
import { DirectChannels } from './direct-channels.ts';
import { EnclaveClient, type EcallArgs } from './enclave-client.ts';
import { NodeError } from './errors.ts';
import { openJournal, journalKeys, RefJournaling } from './keyed-payments.ts';
import { RoutedKeys } from './keyed-routed.ts';
import { MultihopPayer } from './multihop-payer.ts';
import { RoundLog } from './multihop-rounds.ts';
import { PaymentLog } from './payment-log.ts';
import type { KeyRef, PaymentJournal } from './payment-journal.ts';
import { PaymentPipeline, answerWithin } from './payment-pipeline.ts';
import type { Payment } from './payment.ts';
import { loadOrCreatePayoutWallet } from './payout-wallet.ts';
import { PeerDirectory, nextBackoff, type PeerInfo } from './peer-directory.ts';
import { PrimaryGate } from './primary-gate.ts';
import type { NodeObserver } from './observer.ts';
import { RouteGossip } from './route-gossip.ts';
import { makePrivateDir, writeJoinTokens } from './secret-file.ts';

/** The promotion timeout when none is given: a primary silent this long is replaced. */
export const DEFAULT_PROMOTION_TIMEOUT_MS = 5_000;

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
  /** The host named in this node's P2P address (committee rosters, the ready line), if not p2pHost. */
  advertiseHost?: string;
  p2pPort?: number;
  /** How often deposits reported funded but not yet confirmed are checked again (default 2 s). */
  depositPollMs?: number;
  /** A new treasury's committee (docs/protocol/committees.md): n members in all, m to sign; ignored once sealed. */
  committee?: { size: number; threshold?: number };
  /** Start as a backup of the primary listening at host:port (it joins that primary's committee chain). */
  backupOf?: string;
  /** A backup's one-time join token from the primary's committee-join-tokens file (needed only to join the first time). */
  joinToken?: string;
  /**
   * Silence from its primary after which a committee backup suspects it and a view change starts
   * (docs/protocol/committees.md, "View change"); 0 never. Passed to the enclave at every launch.
   */
  promotionTimeoutMs?: number;
  /** Told of payments, sealed writes, enclave events and background failures, for metrics and logs (observer.ts). */
  observer?: NodeObserver;
  /** What a P2P connection may send before its handshake completes (defaults: DEFAULT_PRE_AUTH in transport.ts). */
  preAuth?: Partial<PreAuthLimits>;
  /** Where clients reach this node's REST API: a committee member lists it in the roster (a hint for `not_primary`). */
  restUrl?: string;
}

export class TreasuryNode {
  readonly payments: PaymentLog;
  /** The path rounds this node takes part in (GET /v1/multihop), newest last. */
  private readonly rounds = new RoundLog();
  private enclave!: EnclaveClient;
  private peerDirectory!: PeerDirectory;
  private pipeline!: PaymentPipeline;
  private multihop!: MultihopPayer;
  private follower!: ChainFollower;
  private gossip!: RouteGossip;
  private readonly direct = new DirectChannels(() => this.channels());
  private journal?: PaymentJournal;
  /** Keyed routed payments a crash cut off, whose rounds resolve after the restart (keyed-routed.ts). */
  private routedKeys?: RoutedKeys;
  /** Journals the refs of its primary's keyed payments that a committee member's enclave adopted. */
  private refJournaling?: RefJournaling;
  private readonly gate = new PrimaryGate(async () => (await this.enclave.call('get_info', {})).committee);
  private stopped = false;
  /** Each committee channel peer's members and their addresses (its enclave's peer_roster events). */
  private readonly committeePeers = new Map<string, Array<{ node_id: string; address: string }>>();
  private readonly report: ReportFailure;
  nodeId = '';
  measurement = '';
  p2pPort = 0;
  payoutAddress = '';

  private constructor(readonly opts: TreasuryNodeOptions) {
    this.payments = new PaymentLog(undefined, opts.observer);
    this.report = failureReporter(opts.observer, () => this.stopped);
  }

  static async start(opts: TreasuryNodeOptions): Promise<TreasuryNode> {
    const node = new TreasuryNode(opts);
    await node.boot();
    return node;
  }

  private async boot(): Promise<void> {
    const { datadir, chain, observer } = this.opts;
    await makePrivateDir(datadir);
    this.enclave = await EnclaveClient.launch({
      datadir,
      attestation: this.opts.attestation,
      ...(observer ? { observer } : {}),
      ocalls: {
        net_send: ({ conn, frames }) => {
          this.peerDirectory.send(conn, frames);
          return null;
        },
        net_close: ({ conn }) => {
          this.peerDirectory.close(conn);
          return null;
        },
        event: ({ event }) => {
          this.onEvent(event);
          return null;
        },
        chain_get_txout: async ({ txid, vout }) => {
          const r = await chain.getTxOut(txid, vout);
          return r ? { tx_hex: r.txHex, confirmations: r.confirmations, unspent: r.unspent } : null;
        },
      },
    });
    const parts = { enclave: this.enclave, report: this.report, stopping: () => this.stopped };
    this.peerDirectory = new PeerDirectory({
      ...parts,
      datadir,
      ...(this.opts.preAuth ? { preAuth: this.opts.preAuth } : {}),
    });
    this.pipeline = new PaymentPipeline({ ...parts, payments: this.payments });
    this.multihop = new MultihopPayer({ ...parts, chain, payments: this.payments, journal: () => this.journal });
    this.follower = new ChainFollower({
      ...parts,
      chain,
      ...(this.opts.depositPollMs !== undefined ? { pollMs: this.opts.depositPollMs } : {}),
    });
    this.gossip = new RouteGossip(parts);
    this.measurement = this.enclave.measurement;
    this.payoutAddress = this.opts.payoutAddress ?? (await loadOrCreatePayoutWallet(datadir)).address;
    this.p2pPort = await this.peerDirectory.listen(this.opts.p2pHost ?? '127.0.0.1', this.opts.p2pPort ?? 0);
    const init = await this.enclave.init(this.initArgs());
    this.nodeId = init.node_id;
    this.gate.started((await this.enclave.call('get_info', {})).committee);
    if (init.join_tokens) await writeJoinTokens(datadir, init.join_tokens);
    this.journal = await openJournal(join(datadir, 'payments.journal'), this.enclave, this.payments);
    this.routedKeys = await RoutedKeys.recover(this.journal, this.enclave, this.report, this.payments);
    // A round that ended while the journal was being recovered sent its event before anyone listened.
    void this.routedKeys.roundEnded();
    this.pipeline.useJournal(this.journal);
    const routedKeys = this.routedKeys;
    this.refJournaling = new RefJournaling(
      this.journal,
      this.enclave,
      this.payments,
      (err) => this.report('payment_journal', err),
      () => routedKeys.sync(this.payments).then(() => undefined),
    );
    // Refs adopted while the journal was being recovered sent their event before anyone listened.
    this.refJournaling.request();
    this.payments.useDurableKeys(journalKeys(this.journal, this.enclave));
    if (this.opts.backupOf) this.joinPrimary(this.opts.backupOf);
    await this.peerDirectory.redialSaved();
    this.follower.start();
    this.gossip.start();
  }

  /** The first ecall's arguments: trust, confirmations, payout, and a new treasury's committee role. */
  private initArgs(): EcallArgs<'init'> {
    const { committee, backupOf } = this.opts;
    return {
      trust_anchor: this.opts.attestation.trustAnchor,
      allowed_measurements: this.opts.allowedMeasurements ?? [this.measurement],
      min_confirmations: this.opts.minConfirmations ?? 1,
      payout_address: this.payoutAddress,
      ...(this.opts.restUrl ? { rest_url: this.opts.restUrl } : {}),
      promotion_timeout_ms: this.opts.promotionTimeoutMs ?? DEFAULT_PROMOTION_TIMEOUT_MS,
      ...(backupOf
        ? { committee: { role: 'backup' as const } }
        : committee && committee.size > 1
          ? {
              committee: {
                role: 'primary' as const,
                size: committee.size,
                ...(committee.threshold ? { threshold: committee.threshold } : {}),
                address: this.p2pAddress,
              },
            }
          : {}),
    };
  }

  get p2pAddress(): string {
    return `${this.opts.advertiseHost ?? this.opts.p2pHost ?? '127.0.0.1'}:${this.p2pPort}`;
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
          this.enclave.call('committee_join', {
            primary_id: primaryId,
            address: this.p2pAddress,
            ...(this.opts.joinToken ? { token: this.opts.joinToken } : {}),
            ...(this.opts.restUrl ? { rest_url: this.opts.restUrl } : {}),
          }),
        )
        .catch((err: unknown) => {
          const retryMs = nextBackoff(delayMs);
          this.report('committee_join', err, { address, retry_ms: retryMs });
          this.joinPrimary(address, retryMs);
        });
    }, delayMs).unref();
  }

  // ───────────────────────────── peers ─────────────────────────────

  /** Dials a peer at host:port and runs mutual attestation; resolves with its node id. */
  connect(address: string, timeoutMs = 10_000): Promise<string> {
    return this.peerDirectory.connect(address, timeoutMs);
  }

  peers(): PeerInfo[] {
    return this.peerDirectory.peers();
  }

  async info() {
    const i = await this.enclave.call('get_info', {});
    let height: number | null = null;
    try {
      height = await this.opts.chain.blockHeight();
    } catch {
      // Chain unreachable: the answer says so with a null height (the caller sees it; nothing is lost).
    }
    return {
      ...i,
      measurement: this.measurement,
      p2p_port: this.p2pPort,
      block_height: height,
    };
  }

  /** A fresh quote over this node's identity for the caller's nonce (hex). */
  async attest(nonceHex: string) {
    const r = await this.enclave.call('attest', { nonce: nonceHex });
    return { node_id: r.node_id, quote: r.quote, trust_anchor: this.opts.attestation.trustAnchor };
  }

  // ───────────────────────────── deposits ─────────────────────────────

  newDeposit(): Promise<DepositView> {
    return this.gate.refusal() ?? this.enclave.call('deposit_new', {});
  }

  depositFunded(depositId: string, txid: string, vout: number): Promise<DepositView> {
    return this.gate.refusal() ?? this.enclave.call('deposit_funded', { deposit_id: depositId, txid, vout });
  }

  async deposits(): Promise<DepositView[]> {
    return (await this.enclave.call('list_deposits', {})).deposits;
  }

  /** Signs (in the enclave) and broadcasts the release of a free deposit to `address`. */
  async releaseDeposit(depositId: string, address?: string) {
    const feeRate = await this.opts.chain.feeRate();
    const r = await this.enclave.call('deposit_release', {
      deposit_id: depositId,
      ...(address ? { address } : {}),
      fee_rate: feeRate,
    });
    await this.broadcast(r.tx_hex, `GET /v1/deposits shows it as release_tx_hex of ${depositId}`);
    return r;
  }

  // ───────────────────────────── channels ─────────────────────────────

  openChannel(peerId: string, payoutAddress?: string): Promise<ChannelView> {
    return (
      this.gate.refusal() ??
      this.enclave.call('channel_open', { peer_id: peerId, payout_address: payoutAddress ?? this.payoutAddress })
    );
  }

  addDeposit(channelId: string, depositId: string): Promise<ChannelView> {
    return (
      this.gate.refusal() ?? this.enclave.call('channel_add_deposit', { channel_id: channelId, deposit_id: depositId })
    );
  }

  removeDeposit(channelId: string, depositId: string): Promise<ChannelView> {
    return (
      this.gate.refusal() ??
      this.enclave.call('channel_remove_deposit', { channel_id: channelId, deposit_id: depositId })
    );
  }

  async channels(): Promise<ChannelView[]> {
    return (await this.enclave.call('list_channels', {})).channels;
  }

  channel(channelId: string): Promise<ChannelView> {
    return this.enclave.call('get_channel', { channel_id: channelId });
  }

  /** Settles alone: the enclave signs the latest state, the host broadcasts it. */
  async settle(channelId: string) {
    const feeRate = await this.opts.chain.feeRate();
    const r = await this.enclave.call('channel_settle', { channel_id: channelId, fee_rate: feeRate });
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
    return this.gate.refusal() ?? this.pipeline.submit(channelId, amount).done;
  }

  /**
   * Like pay(), but answers after at most `waitMs`: with the succeeded payment, or with it still
   * `in_flight` (its acknowledgement arrives later, e.g. once a dropped peer reconnects and resyncs).
   * Payments the enclave refuses reject with their NodeError.
   */
  payWithin(channelId: string, amount: number, waitMs: number, ref?: KeyRef): Promise<Payment> {
    const refused = this.gate.refusal();
    if (refused) return refused;
    const { payment, done } = this.pipeline.submit(channelId, amount, ref);
    return answerWithin(payment, done, waitMs);
  }

  /**
   * Pays `dest` through a path of channels (docs/protocol/multihop.md); multihop-payer.ts retries it
   * while it meets channels held by other multi-hop payments. Answers after at most `waitMs`, `in_flight`
   * if it is not over by then. `maxFeeSat` bounds what the intermediaries may take in all.
   */
  payMultihop(dest: string, amount: number, waitMs: number, maxFeeSat?: number, ref?: KeyRef): Promise<Payment> {
    return this.gate.refusal() ?? this.multihop.pay(dest, amount, waitMs, maxFeeSat, ref);
  }

  /**
   * A payment started for a batch entry: `payment` is its record, in the history at once, `done` settles
   * with its outcome. `channelId`: on that channel; else routed to `dest`. `ref`: the entry's idempotency
   * key, journaled as a single keyed payment's is.
   */
  startPayment(
    to: { channelId: string } | { dest: string; maxFeeSat?: number },
    amount: number,
    ref?: KeyRef,
  ): { payment: Payment; done: Promise<Payment> } {
    return 'channelId' in to
      ? this.pipeline.submit(to.channelId, amount, ref)
      : this.multihop.start(to.dest, amount, to.maxFeeSat, ref);
  }

  /**
   * The open channel a payment to `dest` goes on, or null: then it is routed. `dest` may name a committee
   * by its treasury id, whichever member is its primary now.
   */
  channelTo(dest: string): Promise<string | null> {
    return this.direct.channelTo(dest);
  }

  /** The channel graph this node's enclave knows, and the multi-hop payments it takes part in. */
  multihopView() {
    return this.enclave.call('mh_view', {});
  }

  /** The newest `limit` path rounds this node takes part in, newest first (multihop-rounds.ts). */
  async multihopRounds(limit: number) {
    return this.rounds.view((await this.multihopView()).payments, limit);
  }

  /**
   * Primary: adds the node listening at `address` to the formed committee (docs/protocol/committees.md,
   * "Roster change"). The host dials it, and the session's mutual attestation checks it runs this code;
   * the enclave then admits it once, has it attest its node id, gets the current members' votes for the
   * new view and catches it up. The node must have been started with --backup-of this primary.
   */
  async addMember(address: string) {
    const c = (await this.enclave.call('get_info', {})).committee;
    if (!c) throw new NodeError('no_committee');
    await this.gate.check();
    if (!c.formed) throw new NodeError('committee_incomplete', `${c.members.length} of ${c.size} members, not formed`);
    if (c.members.some((m) => m.address === address))
      throw new NodeError('already_a_member', `the member at ${address} is in the committee already`);
    let nodeId: string;
    try {
      nodeId = await this.connect(address, 10_000);
    } catch (err) {
      throw dialRefusal(err, address);
    }
    return this.enclave.call('committee_add', { node_id: nodeId, address });
  }

  /** Primary: removes a committee member under a new view (docs/protocol/committees.md, "Roster change"). */
  removeMember(nodeId: string) {
    return this.enclave.call('committee_remove', { node_id: nodeId });
  }

  setFees(baseSat: number, ppm: number) {
    return this.gate.refusal() ?? this.enclave.call('set_fees', { base_sat: baseSat, ppm });
  }

  /**
   * Throws `409 not_primary` naming the committee's primary when this member is a backup (the writes above
   * check it themselves; a route that does host-side work before its first write asks first).
   */
  async requirePrimary(): Promise<void> {
    await this.gate.check();
    // A member just promoted first journals the refs its enclave adopted from the old primary: a keyed
    // retry of a payment the old primary took must find its key (runs asked for at the view change).
    await this.refJournaling?.settled();
  }

  /** `not_primary` naming the primary of this member's current committee view (for an enclave's own refusal). */
  notPrimary() {
    return this.gate.notPrimary();
  }

  // ───────────────────────────── the enclave's events ─────────────────────────────

  private onEvent(e: TreasuryEventMsg): void {
    this.opts.observer?.enclaveEvent?.(e);
    this.gate.onEvent(e);
    this.direct.onEvent(e);
    switch (e.type) {
      case 'pay_acked':
        this.pipeline.acked(e.channel_id, BigInt(e.total));
        return;
      case 'pay_received':
        this.payments.received(e.channel_id, e.amounts);
        return;
      case 'mh_round':
        this.rounds.note(e);
        this.multihop.roundEvent(e);
        if (e.phase === 'done' || e.phase === 'aborted') {
          this.pipeline.roundEnded();
          if (e.role === 'payer') void this.routedKeys?.roundEnded();
        }
        return;
      case 'peer_connected':
        this.peerDirectory.authenticated(e.conn, e.peer_id);
        this.gossip.announce(e.peer_id);
        return;
      case 'peer_disconnected':
        this.peerDirectory.disconnected(e.conn, e.reason);
        if (e.peer_id) this.dialCommitteeOf(e.peer_id);
        return;
      case 'pay_refs_held':
        this.refJournaling?.request();
        return;
      case 'committee_view':
        this.refJournaling?.request();
        return;
      case 'peer_roster':
        this.committeePeers.set(e.peer_id, e.members);
        return;
      case 'channel_settled':
        // Known when the peer's enclave said what it received, or when committee members closed the channel
        // at the totals they signed; otherwise they stay in flight until the chain shows the settlement.
        if (e.paid_total !== undefined) this.pipeline.settled(e.channel_id, BigInt(e.paid_total));
        return;
      case 'settlement_paid':
        this.pipeline.settled(e.channel_id, BigInt(e.paid_total));
        return;
      case 'channel_updated':
        // A deposit joined or left, or the channel opened: announce it now rather than at the next tick.
        this.gossip.announce();
        return;
      case 'committee_roster':
        // Each member dials the members before it in the chain, so every pair of members has a session.
        for (const m of e.members.slice(0, Math.max(0, e.index))) {
          if (m.node_id !== this.nodeId && !this.peerDirectory.dialled(m.node_id))
            this.peerDirectory.redial(m.address, 0);
        }
        return;
    }
  }

  /**
   * The session to a committee peer dropped: its primary may be gone and another member about to take
   * over, so dial the other members too (their addresses are hints; each session is attested, and the
   * enclave follows a new primary only on its view certificate).
   */
  private dialCommitteeOf(peerId: string): void {
    const members = this.committeePeers.get(peerId);
    if (!members) return;
    const connected = new Set(this.peerDirectory.peers().map((p) => p.peer_id));
    for (const m of members)
      if (m.node_id !== peerId && m.address && !connected.has(m.node_id)) this.peerDirectory.redial(m.address, 0);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.follower?.stop();
    this.gossip?.stop();
    await this.opts.chain.close?.();
    await this.peerDirectory?.stop();
    await this.enclave?.stop();
    await this.journal?.close();
  }
}

/** Why the node to add could not be dialled and attested, as the operator needs to hear it. */
function dialRefusal(err: unknown, address: string): NodeError {
  const e = err instanceof NodeError ? err : new NodeError('peer_unreachable', String(err));
  // The reason is our own enclave's: its handshake names what the peer's quote failed.
  if (e.code === 'attestation_failed' && e.message.includes('measurement_not_allowed'))
    return new NodeError('wrong_measurement', `the node at ${address} runs other code (its measurement is not ours)`);
  if (e.code === 'attestation_failed' && e.message.includes('self_connection'))
    return new NodeError('already_a_member', `${address} is this node`);
  if (e.code === 'attestation_failed' || e.code === 'peer_unreachable')
    return new NodeError(e.code === 'attestation_failed' ? e.code : 'peer_unreachable', `${address}: ${e.message}`);
  return e;
}
