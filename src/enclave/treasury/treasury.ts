/**
 * The treasury: every decision that moves money, made inside the enclave.
 *
 * It does no I/O of its own; it reaches the outside only through `TreasuryPorts` (sealing, sending
 * frames, events to the host, chain look-ups, quotes), which the enclave program wires to ocalls.
 * The host can delay, drop or reorder what passes through the ports, never forge it: frames are
 * authenticated per session, chain answers are checked against what the enclave computes itself, and
 * the sealed state is rollback-protected by the platform counter (all of it but a payee's credits:
 * credit-only.ts).
 *
 * This class is the facade the enclave program and the tests call. It owns the parts (sessions, outbox,
 * group commit, committee and multi-hop engines), shares them with its concern modules through one
 * `TreasuryCore` (core.ts), and routes each call to the module that decides it:
 *
 *   deposits.ts          our deposits: new, funded, released
 *   channel-requests.ts  the host's channel requests: open, add / remove a deposit, pay
 *   channel-messages.ts  the peer's channel messages, one handler per type, and the resync after a reconnection
 *   settlement.ts        settling alone, a spend seen on chain, closing a channel
 *   committee-adapter.ts this treasury's side of its committee: joint signing, the primary's filtering
 *   multihop-adapter.ts  this treasury's side of multi-hop payments
 *   peer-rosters.ts      the committees our peers announce
 */
import { reportDataFor, type Quote } from '../../../enclave-sim/quote-verify.ts';
import { bytesToHex, hexToBytes } from '../../../enclave-sim/encoding.ts';
import { publicKeyOf, randomPrivateKey } from '../../crypto/secp256k1.ts';
import { CommitteeCoordinator, type Planned, type SignKind } from '../committee/coordinator.ts';
import { issueJoinTokens } from '../committee/join-tokens.ts';
import { defaultThreshold } from '../committee/update.ts';
import type { ChannelMessage, CommitteeMessage, MultiHopMessage, SessionMessage } from '../protocol/messages.ts';
import { addDeposit, openChannel, pay, payRefs, removeDeposit } from './channel-requests.ts';
import { handleChannelMessage, resync } from './channel-messages.ts';
import { committeeHost, planFor, settleWithCommittee, stillTrue, withReplicationProof } from './committee-adapter.ts';
import { Committer } from './committer.ts';
import type { TreasuryCore } from './core.ts';
import { CreditOnlyCheck } from './credit-only.ts';
import { depositFunded, newDeposit, releaseDeposit } from './deposits.ts';
import { TreasuryError } from './errors.ts';
import { getChannel } from './lookups.ts';
import { MultiHop } from './multihop.ts';
import {
  multihopHost,
  multihopRefs,
  payMultihop,
  payMultihopRound,
  setFees,
  type RoundPaymentArg,
} from './multihop-adapter.ts';
import { Outbox } from './outbox.ts';
import { PeerRosters } from './peer-rosters.ts';
import { announceView, applyPeerView } from './peer-views.ts';
import type { CommitteeConfig, Outgoing, PayRequest, PayResult, TreasuryEvent, TreasuryPorts } from './ports.ts';
import { PeerReplies } from './replies.ts';
import { PeerSessions } from './sessions.ts';
import { settleAlone, spentOnChain } from './settlement.ts';
import { encodeState, type Channel, type Deposit, type TreasuryConfig, type TreasuryState } from './state.ts';
import { payoutScriptFor } from './transactions.ts';
import { channelView, depositView, type ChannelView, type DepositView } from './views.ts';

export class Treasury {
  /** Peer connections and their sessions. */
  private readonly sessions: PeerSessions;
  /** What waits for the next seal. */
  private readonly outbox = new Outbox();
  /** Requests waiting for a peer's answer. */
  private readonly replies: PeerReplies;
  private readonly committer: Committer<Outgoing | TreasuryEvent>;
  /** What the next seal is compared with to decide whether it needs the rollback counter. */
  private readonly creditBase: CreditOnlyCheck;
  private readonly identityPub: Uint8Array;
  private fatal: unknown = undefined;
  /** Present when this treasury is a committee member (primary or backup). */
  private readonly committee?: CommitteeCoordinator;
  /** Multi-hop payments and routing (docs/protocol/multihop.md). */
  readonly multihop: MultiHop;
  /** The committees our channel peers announce. */
  private readonly peerRosters: PeerRosters;
  /** What the concern modules share (core.ts). */
  private readonly core: TreasuryCore;

  constructor(
    readonly state: TreasuryState,
    private readonly ports: TreasuryPorts,
  ) {
    this.identityPub = publicKeyOf(hexToBytes(state.identityKey));
    const core = (this.core = this.makeCore());
    this.sessions = new PeerSessions(ports, () => this.handshakeDeps(), {
      message: (peerId, msg) => this.apply(peerId, msg),
      established: (peerId) => this.established(peerId),
      lost: (peerId) => this.committee?.peerLost(peerId),
    });
    this.replies = new PeerReplies(() => this.ports.replyTimeoutMs ?? 10_000);
    this.peerRosters = new PeerRosters({
      get state() {
        return core.state;
      },
      emit: (event) => this.ports.emit(event),
      commit: () => this.committer.commit(),
    });
    this.creditBase = CreditOnlyCheck.from(state);
    if (state.committee) this.committee = new CommitteeCoordinator(committeeHost(core));
    // Every member may become primary (a view change), so every member's seals go through replicate().
    const replicates = state.committee !== undefined;
    this.committer = new Committer<Outgoing | TreasuryEvent>({
      snapshot: () => this.snapshot(),
      seal: (bytes, protect) => this.ports.seal(bytes, protect),
      deliver: (items) => this.deliver(items),
      onFatal: (err) => {
        this.fatal = err;
      },
      ...(replicates ? { replicate: () => this.committee!.replicate() } : {}),
    });
    this.multihop = new MultiHop(multihopHost(core));
  }

  /**
   * The core reads the treasury's fields when used and calls its methods, so a test that swaps one of
   * them (`state`, `planFor`, `sendNow`) changes it for every module, as it did when they were one class.
   */
  private makeCore(): TreasuryCore {
    // The getters' own `this` is the object literal: they reach the treasury through `t`.
    const t = this;
    return {
      get state() {
        return t.state;
      },
      get nodeId() {
        return t.nodeId;
      },
      get ports() {
        return t.ports;
      },
      get committer() {
        return t.committer;
      },
      get outbox() {
        return t.outbox;
      },
      get replies() {
        return t.replies;
      },
      get sessions() {
        return t.sessions;
      },
      get committee() {
        return t.committee;
      },
      get multihop() {
        return t.multihop;
      },
      get peerRosters() {
        return t.peerRosters;
      },
      planFor: (kind, id, feeRate) => t.planFor(kind, id, feeRate),
      sendNow: (peerId, msg) => t.sendNow(peerId, msg),
      attest: (nonce) => t.attest(nonce),
      assertLive: () => t.assertLive(),
      assertPrimary: () => t.assertPrimary(),
    };
  }

  /**
   * A brand-new treasury: fresh identity key, nothing else (and its committee role, if any). A primary's
   * one-time join tokens, one per backup, are pushed onto `joinTokens`: the only time they exist in clear.
   */
  static create(config: TreasuryConfig, committee?: CommitteeConfig, joinTokens: string[] = []): TreasuryState {
    const identityKey = bytesToHex(randomPrivateKey());
    const state: TreasuryState = { version: 1, identityKey, config, nextDeposit: 1, deposits: {}, channels: {} };
    if (committee?.role === 'primary' && committee.size > 1) {
      const threshold = committee.threshold ?? defaultThreshold(committee.size);
      if (!Number.isInteger(committee.size) || committee.size > 15 || threshold < 2 || threshold > committee.size) {
        throw new TreasuryError(
          'invalid_argument',
          `a committee needs 2 ≤ m ≤ n ≤ 15, got ${threshold}-of-${committee.size}`,
        );
      }
      const self = bytesToHex(publicKeyOf(hexToBytes(identityKey)));
      state.committee = {
        role: 'primary',
        size: committee.size,
        threshold,
        members: [{ node_id: self, address: committee.address }],
        treasuryId: self,
        epoch: 0,
        seq: 0,
        memberKeys: {},
        signed: {},
      };
      joinTokens.push(...issueJoinTokens(state.committee, committee.size - 1));
    } else if (committee?.role === 'backup') {
      state.committee = { role: 'backup', size: 0, threshold: 0, members: [], seq: 0, memberKeys: {}, signed: {} };
    }
    return state;
  }

  get nodeId(): string {
    return bytesToHex(this.identityPub);
  }

  /** Durably seal the current state (used after init and by tests). */
  commit(): Promise<void> {
    return this.committer.commit();
  }

  // ───────────────────────────── views ─────────────────────────────

  info() {
    const channels = Object.values(this.state.channels);
    return {
      node_id: this.nodeId,
      // A committee's members all show the committee's identity; a lone treasury is its own.
      treasury_id: this.committee ? this.committee.treasuryId : this.nodeId,
      peers: this.sessions.peers(),
      num_channels: channels.filter((c) => c.status !== 'closed').length,
      min_confirmations: this.state.config.minConfirmations,
      // What settlements and releases pay our side to: a member's own address until it joins, then the
      // committee's (replicated, the same on every member), whatever address its host was started with.
      payout_address: this.state.config.payoutAddress,
      seals: this.committer.seals,
      committee: this.committee ? this.committee.view() : null,
    };
  }

  /** A backup (sent by its host after dialling the primary) asks to join the primary's committee. */
  joinCommittee(primaryId: string, address: string, token?: string, restUrl?: string): void {
    if (!this.committee)
      throw new TreasuryError('invalid_argument', 'this treasury was not started as a committee backup');
    this.sessions.requireSession(primaryId);
    this.committee.join(primaryId, address, token, restUrl);
  }

  /** The host's REST URL, given at every start: a committee primary lists it in its roster (a hint for clients). */
  async advertiseRestUrl(url: string): Promise<void> {
    if (this.committee?.advertiseRestUrl(url)) await this.committer.commitLocal();
  }

  /** A quote over this treasury's identity (report data = reportDataFor(node id)) for a caller's nonce. */
  /**
   * Primary: adds the node on an attested session (its host dialled it at `address`) to the formed
   * committee under a new view (docs/protocol/committees.md, "Roster change").
   */
  addMember(nodeId: string, address: string) {
    if (!this.committee) throw new TreasuryError('invalid_argument', 'this treasury has no committee');
    return this.committee.addMember(nodeId, address);
  }

  /** Primary: removes a committee member under a new view (docs/protocol/committees.md, "Roster change"). */
  removeMember(nodeId: string) {
    if (!this.committee) throw new TreasuryError('invalid_argument', 'this treasury has no committee');
    return this.committee.removeMember(nodeId);
  }

  attest(nonce: Uint8Array): Promise<Quote> {
    return this.ports.quote(reportDataFor(this.identityPub), nonce);
  }

  channelView(ch: Channel): ChannelView {
    return channelView(this.state, ch, this.sessions.connected(ch.peerId));
  }

  channels() {
    return Object.values(this.state.channels).map((c) => this.channelView(c));
  }

  channel(id: string) {
    return this.channelView(getChannel(this.state, id));
  }

  depositView(d: Deposit): DepositView {
    return depositView(this.state, d);
  }

  deposits() {
    return Object.values(this.state.deposits).map((d) => this.depositView(d));
  }

  // ───────────────────────────── deposits (deposits.ts) ─────────────────────────────

  /** A new deposit address (a fresh key, 1-of-1 P2WSH multisig) for the host to fund. */
  newDeposit() {
    return newDeposit(this.core);
  }

  /** The host says deposit `id` was funded by txid:vout; the enclave checks the transaction it is given. */
  depositFunded(id: string, txid: string, vout: number) {
    return depositFunded(this.core, id, txid, vout);
  }

  /** Pays a free deposit back to `payoutAddress` on chain; returns the signed transaction for the host to broadcast. */
  releaseDeposit(id: string, address: string | undefined, feeRate: number) {
    return releaseDeposit(this.core, id, address, feeRate);
  }

  // ───────────────────────────── channels (channel-requests.ts) ─────────────────────────────

  openChannel(peerId: string, payoutAddress: string) {
    return openChannel(this.core, peerId, payoutAddress);
  }

  addDeposit(channelId: string, depositId: string) {
    return addDeposit(this.core, channelId, depositId);
  }

  removeDeposit(channelId: string, depositId: string) {
    return removeDeposit(this.core, channelId, depositId);
  }

  /** Debits each payment, in order, and queues it for the peer; resolves when the debits are sealed. */
  pay(requests: PayRequest[], journaled?: readonly string[]): Promise<PayResult[]> {
    return pay(this.core, requests, journaled);
  }

  /** Refs of keyed payments not journaled by the host yet; `drop` first forgets those it now has. */
  payRefs(drop?: readonly string[]) {
    return payRefs(this.core, drop);
  }

  // ───────────────────────────── settlement (settlement.ts, committee-adapter.ts) ─────────────────────────────

  /**
   * Settles the channel: alone, one transaction paying each side its latest balance; in a committee,
   * with m members' signatures. The channel is closed for good: this enclave never signs for it again.
   */
  async settle(channelId: string, feeRate: number) {
    this.assertLive();
    const ch = getChannel(this.state, channelId);
    if (this.committee) return settleWithCommittee(this.core, ch, feeRate);
    return settleAlone(this.core, ch, feeRate);
  }

  /** The host saw a deposit of a channel spent on chain: closed only if the transaction really spends it. */
  spentOnChain(channelId: string, txHex: string) {
    return spentOnChain(this.core, channelId, txHex);
  }

  /** The unsigned transaction this member would sign for a settlement or a release, from its own state. */
  planFor(kind: SignKind, id: string, feeRate: number): Planned {
    return planFor(this.core, kind, id, feeRate);
  }

  // ───────────────────────────── multi-hop (multihop-adapter.ts) ─────────────────────────────

  /** Pays `amount_sat` to `dest` through a path of channels (docs/protocol/multihop.md). */
  payMultihop(dest: string, amountSat: number, feeRate: number, maxFeeSat?: number) {
    return payMultihop(this.core, dest, amountSat, feeRate, maxFeeSat);
  }

  /** Pays many payments to `dest` in one path round, each answered with its own outcome. */
  payMultihopRound(dest: string, payments: RoundPaymentArg[], feeRate: number, journaled?: readonly string[]) {
    return payMultihopRound(this.core, dest, payments, feeRate, journaled);
  }

  /** Refs of keyed routed payments not journaled by the host yet, with their outcomes; `drop` first forgets resolved ones. */
  multihopRefs(drop?: readonly string[]) {
    return multihopRefs(this.core, drop);
  }

  /** What this treasury charges to forward a multi-hop payment (announced to the network). */
  setFees(base: number, ppm: number) {
    return setFees(this.core, base, ppm);
  }

  // ───────────────────────────── connections (sessions.ts) ─────────────────────────────

  /** The host opened a TCP connection to a peer: start the handshake. */
  async connect(conn: string): Promise<void> {
    this.assertLive();
    this.sessions.connect(conn);
  }

  /** The host accepted a TCP connection from a peer. */
  accept(conn: string): void {
    this.assertLive();
    this.sessions.accept(conn);
  }

  /** Frames received on a connection, in order. Resolves when they have been applied (not sealed). */
  receive(conn: string, frames: Uint8Array[]): Promise<void> {
    return this.sessions.receive(conn, frames);
  }

  disconnected(conn: string): void {
    this.sessions.disconnected(conn);
  }

  /** A session is up: re-send what the peer may have missed, then let the committee catch up with it. */
  private established(peerId: string): void {
    announceView(this.core, peerId);
    resync(this.core, peerId);
    this.committee?.peerConnected(peerId);
  }

  /** A message from an authenticated peer: to the committee, the multi-hop engine, or the channel handlers. */
  private async apply(peerId: string, msg: SessionMessage): Promise<void> {
    if (msg.t.startsWith('c_')) {
      if (this.committee) await this.committee.handle(peerId, msg as CommitteeMessage);
      return;
    }
    if (this.committee && !this.committee.isPrimary) return; // a backup has no channel peers of its own
    if (msg.t === 'gossip' || msg.t.startsWith('mh_')) {
      await this.multihop.handle(peerId, msg as MultiHopMessage);
      return;
    }
    if (msg.t === 'view') {
      await applyPeerView(this.core, peerId, msg.cert, msg.chain, msg.added);
      return;
    }
    await handleChannelMessage(this.core, peerId, msg as Exclude<ChannelMessage, { t: 'view' }>);
  }

  /** Sends one message now, outside the group commit: committee messages are sent after their own seals. */
  private sendNow(peerId: string, msg: SessionMessage): void {
    this.sessions.sendNow(peerId, msg);
  }

  // ───────────────────────────── commit plumbing ─────────────────────────────

  private snapshot(): { state: Uint8Array; outbox: Array<Outgoing | TreasuryEvent>; protect: boolean } {
    const mayBeCredits = this.outbox.mayBeOnlyCredits();
    const out = this.outbox.drain(this.state);
    this.committee?.prepareUpdate();
    const state = encodeState(this.state);
    const protect = !(mayBeCredits && this.creditBase.onlyCredits(this.state));
    if (protect) this.creditBase.rebase(this.state, state);
    return { state, outbox: out, protect };
  }

  private deliver(queued: Array<Outgoing | TreasuryEvent>): void {
    const items = this.committee?.isPrimary
      ? queued
          .map((i) => stillTrue(this.core, i))
          .filter((i) => i !== null)
          .map((i) => withReplicationProof(this.core, i))
      : queued;
    this.sessions.deliver(items);
  }

  // ───────────────────────────── helpers ─────────────────────────────

  private handshakeDeps() {
    return {
      identityPub: this.identityPub,
      trustAnchor: this.state.config.trustAnchor,
      allowedMeasurements: this.state.config.allowedMeasurements,
      random: (n: number) => this.ports.random(n),
      quote: (rd: Uint8Array, nonce: Uint8Array) => this.ports.quote(rd, nonce),
    };
  }

  /** Where our side of the channels that peers open is paid at settlement. */
  setPayoutAddress(address: string): void {
    payoutScriptFor(address); // validates
    this.state.config.payoutAddress = address;
  }

  /** Channel and deposit changes start at the primary, and only once its committee is complete. */
  private assertPrimary(): void {
    if (!this.committee) return;
    if (!this.committee.isPrimary)
      throw new TreasuryError(
        'not_primary',
        'this member is a backup: channel and deposit changes go through the primary',
      );
    if (!this.committee.formed)
      throw new TreasuryError('committee_incomplete', 'not every committee member has joined yet');
  }

  private assertLive(): void {
    if (this.fatal !== undefined)
      throw new TreasuryError('session_failed', `treasury halted after a failed seal: ${String(this.fatal)}`);
  }
}
