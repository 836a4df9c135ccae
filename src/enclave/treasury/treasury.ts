/**
 * The treasury: every decision that moves money, made inside the enclave.
 *
 * It does no I/O of its own; it reaches the outside only through `TreasuryPorts` (sealing, sending
 * frames, events to the host, chain look-ups, quotes), which the enclave program wires to ocalls.
 * The host can delay, drop or reorder what passes through the ports, never forge it: frames are
 * authenticated per session, chain answers are checked against what the enclave computes itself, and
 * the sealed state is rollback-protected by the platform counter (all of it but a payee's credits:
 * credit-only.ts).
 */
import { reportDataFor, type Quote } from '../../../enclave-sim/attestation.ts';
import type { CommitteeConfig, Outgoing, PayRequest, PayResult, TreasuryEvent, TreasuryPorts } from './ports.ts';
import { publicKeyOf, randomPrivateKey } from '../../crypto/secp256k1.ts';
import {
  type ChannelMessage,
  type CommitteeMessage,
  type DepositGrant,
  type MultiHopMessage,
  type SessionMessage,
} from '../protocol/messages.ts';
import { MultiHop } from './multihop.ts';
import { defaultMaxFee } from './routing.ts';
import {
  CommitteeCoordinator,
  openSealedKey,
  shareKeys,
  type Planned,
  type SignedSettlement,
  type SignKind,
} from '../committee/coordinator.ts';
import { splitSecret } from '../committee/shares.ts';
import { verifyRoster, type PeerRoster } from '../committee/roster.ts';
import { defaultThreshold } from '../committee/update.ts';
import { issueJoinTokens } from '../committee/join-tokens.ts';
import { Committer } from './committer.ts';
import { CreditOnlyCheck } from './credit-only.ts';
import {
  channelKeysHeld,
  decidingDepth,
  finalDepth,
  forgetChannelKeys,
  inputOutpoints,
  learnSpend,
  settleDepositsAtClose,
} from './deposit-fate.ts';
import { TreasuryError, type TreasuryErrorCode } from './errors.ts';
import { verifyPaid, verifyPayout } from '../protocol/peer-sigs.ts';
import { openMessage, paidSig, settledMessage } from './channel-wire.ts';
import {
  asSpendable,
  assertNotHeld,
  checkAmount,
  checkOutput,
  getChannel,
  getDeposit,
  getOpenChannel,
  notFree,
  outpointInUse,
} from './lookups.ts';
import { Outbox } from './outbox.ts';
import { PeerReplies } from './replies.ts';
import { PeerSessions } from './sessions.ts';
import { channelView, depositView, type ChannelView, type DepositView } from './views.ts';
import { dropRefs, listRefs, recordRef, refRoom, takeRoom } from './payment-refs.ts';
import { paidBySettlement } from './settlement-outcome.ts';
import { bytesToHex, hexToBytes } from '../../../enclave-sim/encoding.ts';
import {
  encodeState,
  localBalance,
  remoteBalance,
  spendable,
  peerDepositTotal,
  type Channel,
  type CommitteeMember,
  type Deposit,
  type PeerDeposit,
  type TreasuryConfig,
  type TreasuryState,
} from './state.ts';
import {
  buildDepositScript,
  buildReleaseTx,
  buildSettlementTx,
  payoutScriptFor,
  planRelease,
  planSettlement,
  txidOf,
  verifyDepositSpend,
} from './transactions.ts';

const HEX16 = /^[0-9a-f]{32}$/;

function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

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
  /** Multi-hop payments and routing (README "Multi-hop payments"). */
  readonly multihop: MultiHop;
  /** Each peer's latest verified roster (it may come before the channel it is for exists here). */
  private readonly peerRosters = new Map<string, PeerRoster>();
  /** Peers whose announced roster did not verify, and why: they get no keys, whole or shared. */
  private readonly rosterRefused = new Map<string, string>();

  constructor(
    readonly state: TreasuryState,
    private readonly ports: TreasuryPorts,
  ) {
    this.identityPub = publicKeyOf(hexToBytes(state.identityKey));
    this.sessions = new PeerSessions(ports, () => this.handshakeDeps(), {
      message: (peerId, msg) => this.apply(peerId, msg),
      established: (peerId) => this.established(peerId),
    });
    this.replies = new PeerReplies(() => this.ports.replyTimeoutMs ?? 10_000);
    this.creditBase = CreditOnlyCheck.from(state);
    if (state.committee) this.committee = new CommitteeCoordinator(this.committeeHost());
    const replicates = state.committee?.role === 'primary';
    this.committer = new Committer<Outgoing | TreasuryEvent>({
      snapshot: () => this.snapshot(),
      seal: (bytes, protect) => this.ports.seal(bytes, protect),
      deliver: (items) => this.deliver(items),
      onFatal: (err) => {
        this.fatal = err;
      },
      ...(replicates ? { replicate: () => this.committee!.replicate() } : {}),
    });
    this.multihop = new MultiHop(this.multihopHost());
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
      peers: this.sessions.peers(),
      num_channels: channels.filter((c) => c.status !== 'closed').length,
      min_confirmations: this.state.config.minConfirmations,
      seals: this.committer.seals,
      committee: this.committee ? this.committee.view() : null,
    };
  }

  /** A backup (sent by its host after dialling the primary) asks to join the primary's committee. */
  joinCommittee(primaryId: string, address: string, token?: string): void {
    if (!this.committee)
      throw new TreasuryError('invalid_argument', 'this treasury was not started as a committee backup');
    this.sessions.requireSession(primaryId);
    this.committee.join(primaryId, address, token);
  }

  /** A quote over this treasury's identity (report data = reportDataFor(node id)) for a caller's nonce. */
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

  // ───────────────────────────── deposits ─────────────────────────────

  /** A new deposit address (a fresh key, 1-of-1 P2WSH multisig) for the host to fund. */
  async newDeposit() {
    this.assertLive();
    this.assertPrimary();
    const priv = randomPrivateKey();
    const pub = bytesToHex(publicKeyOf(priv));
    const id = `dep${this.state.nextDeposit++}`;
    // With a committee: m-of-n over one fresh key per member, each made and kept by that member.
    const pubkeys = this.committee ? await this.committee.depositKeys(id, pub) : [pub];
    const m = this.committee ? this.state.committee!.threshold : 1;
    const { witnessScript, address } = buildDepositScript(m, pubkeys);
    const dep: Deposit = { id, m, pubkeys, privkeys: [bytesToHex(priv)], witnessScript, address, status: 'pending' };
    this.state.deposits[id] = dep;
    await this.committer.commit();
    return this.depositView(dep);
  }

  /**
   * The host says deposit `id` was funded by txid:vout. The enclave checks the transaction it is given:
   * its txid, that the output pays this deposit's script, its value, that it is unspent, and its
   * confirmations (the count is the host's word: without an SPV proof it cannot be checked here).
   */
  async depositFunded(id: string, txid: string, vout: number) {
    this.assertLive();
    this.assertPrimary();
    const dep = getDeposit(this.state, id);
    if (dep.status !== 'pending') throw new TreasuryError('deposit_not_free', `deposit ${id} is already ${dep.status}`);
    const outpoint = `${txid}:${vout}`;
    if (outpointInUse(this.state, outpoint, id))
      throw new TreasuryError('deposit_in_use', `${outpoint} already backs another deposit`);
    const info = await this.ports.getTxOut(txid, vout);
    const value = checkOutput(info, txid, vout, dep.witnessScript);
    if (dep.status !== 'pending') throw new TreasuryError('deposit_not_free', `deposit ${id} is already ${dep.status}`);
    dep.outpoint = outpoint;
    dep.value = value;
    if (info!.confirmations >= this.state.config.minConfirmations) dep.status = 'free';
    await this.committer.commit();
    if (dep.status === 'pending') {
      throw new TreasuryError(
        'deposit_unconfirmed',
        `deposit ${id} has ${info!.confirmations} of ${this.state.config.minConfirmations} confirmations`,
      );
    }
    return this.depositView(dep);
  }

  /** Pays a free deposit back to `payoutAddress` on chain; returns the signed transaction for the host to broadcast. */
  async releaseDeposit(id: string, address: string | undefined, feeRate: number) {
    this.assertLive();
    const payoutAddress = address ?? this.state.config.payoutAddress;
    if (this.committee) return this.releaseWithCommittee(id, payoutAddress, feeRate);
    const dep = getDeposit(this.state, id);
    if (dep.status !== 'free' || !dep.outpoint || dep.value === undefined) throw notFree(this.state, dep);
    const tx = buildReleaseTx({
      deposit: asSpendable(dep),
      payoutScript: payoutScriptFor(payoutAddress),
      feeRate,
    });
    dep.status = 'spent';
    dep.spentBy = tx.txid;
    dep.releaseHex = tx.hex;
    await this.committer.commit();
    return { deposit_id: id, txid: tx.txid, tx_hex: tx.hex, fee_sat: tx.fee.toString() };
  }

  // ───────────────────────────── channels ─────────────────────────────

  async openChannel(peerId: string, payoutAddress: string) {
    this.assertLive();
    this.assertPrimary();
    this.sessions.requireSession(peerId);
    // Backups check every channel pays our side to the replicated payout address (update-rules.ts).
    if (this.committee && payoutAddress !== this.state.config.payoutAddress) {
      throw new TreasuryError(
        'invalid_argument',
        `a committee treasury's channels pay only its payout address ${this.state.config.payoutAddress}`,
      );
    }
    const proof = this.committee?.rosterProof();
    if (this.committee && !proof)
      throw new TreasuryError('committee_incomplete', 'not every committee member has attested yet');
    const id = bytesToHex(this.ports.random(32));
    const ch: Channel = {
      id,
      peerId,
      status: 'opening',
      initiator: true,
      myPayout: bytesToHex(payoutScriptFor(payoutAddress)),
      myDeposits: [],
      removing: [],
      adding: [],
      peerDeposits: [],
      sent: 0n,
      received: 0n,
      acked: 0n,
    };
    this.state.channels[id] = ch;
    // Before `open`: the peer learns we are a committee before it has a channel to add deposits to.
    if (proof) this.outbox.push({ peerId, msg: { t: 'roster', ch: id, ...proof } });
    this.outbox.push({ peerId, msg: openMessage(this.state, 'open', ch, this.committee !== undefined) });
    const reply = this.replies.waitFor(`open:${id}`);
    await this.committer.commit();
    await reply;
    return this.channelView(ch);
  }

  async addDeposit(channelId: string, depositId: string) {
    this.assertLive();
    this.assertPrimary();
    const ch = getOpenChannel(this.state, channelId);
    const dep = getDeposit(this.state, depositId);
    const check = () => {
      if (dep.status === 'in_channel')
        throw new TreasuryError('deposit_in_use', `deposit ${depositId} is already in channel ${dep.channelId}`);
      if (dep.status !== 'free') throw new TreasuryError('deposit_not_free', `deposit ${depositId} is ${dep.status}`);
      if (ch.status !== 'open') throw new TreasuryError('channel_not_open', `channel ${channelId} is ${ch.status}`);
      this.sessions.requireSession(ch.peerId);
      assertNotHeld(ch);
    };
    check();
    ch.peerRoster ??= this.peerRosters.get(ch.peerId);
    if (!ch.peerRoster && this.rosterRefused.has(ch.peerId)) {
      throw new TreasuryError(
        'roster_unknown',
        `the peer announced a committee whose roster does not verify (${this.rosterRefused.get(ch.peerId)})`,
      );
    }
    // To a committee peer a lone treasury hands its key over only as shares, one per attested member.
    const peerShares = !this.committee && ch.peerRoster ? await this.sharesFor(ch, dep.privkeys) : undefined;
    check();
    if (peerShares) dep.peerShares = peerShares;
    else delete dep.peerShares;
    dep.status = 'in_channel';
    dep.channelId = ch.id;
    ch.adding.push(dep.id);
    if (this.committee) {
      // Members hand their keys over only once their replica shows the deposit joining this channel.
      try {
        await this.committer.commit();
        const own = await this.committee.sealOwnKey(dep.id, dep.privkeys[0]!);
        const handed = await this.committee.handover(dep.id, dep.pubkeys, own);
        if ('shares' in handed) {
          dep.peerShares = handed.shares;
          delete dep.sealedKeys;
        } else {
          dep.sealedKeys = handed.sealedKeys;
          delete dep.peerShares;
        }
      } catch (err) {
        ch.adding = ch.adding.filter((d) => d !== dep.id);
        dep.status = 'free';
        delete dep.channelId;
        await this.committer.commitLocal();
        throw err;
      }
    }
    this.outbox.push({ peerId: ch.peerId, msg: { t: 'add_deposit', ch: ch.id, deposit: this.grantFor(dep) } });
    const reply = this.replies.waitFor(`add:${ch.id}:${dep.outpoint}`);
    await this.committer.commit();
    await reply;
    return this.channelView(ch);
  }

  /** Splits `privkeys` for the channel peer's roster, re-verified from the sealed proof before any share leaves. */
  private async sharesFor(ch: Channel, privkeys: string[]) {
    let roster: PeerRoster;
    try {
      roster = verifyRoster(
        { threshold: ch.peerRoster!.threshold, members: ch.peerRoster!.proof },
        ch.peerId,
        this.state.config,
      );
    } catch (err) {
      throw new TreasuryError('roster_unknown', `the peer's roster does not verify: ${(err as Error).message}`);
    }
    return shareKeys(
      privkeys,
      roster.members.map((node_id) => ({ node_id, address: '' })),
      roster.threshold,
      splitSecret,
    );
  }

  /**
   * A peer announced its committee roster. Verified, it decides where our keys go (shares to its members);
   * refused, the peer gets no keys at all: it said it is a committee, so whole keys are never the fallback.
   */
  private async applyRoster(peerId: string, msg: Extract<ChannelMessage, { t: 'roster' }>): Promise<void> {
    let roster: PeerRoster;
    try {
      roster = verifyRoster({ threshold: msg.threshold, members: msg.members }, peerId, this.state.config);
    } catch (err) {
      const reason = (err as Error).message;
      this.rosterRefused.set(peerId, reason);
      this.ports.emit({ type: 'roster_refused', peer_id: peerId, channel_id: msg.ch, reason });
      return;
    }
    this.rosterRefused.delete(peerId);
    this.peerRosters.set(peerId, roster);
    const ch = this.state.channels[msg.ch];
    if (ch && ch.peerId === peerId && ch.status !== 'closed' && !ch.peerRoster) {
      ch.peerRoster = roster;
      await this.committer.commit();
    }
  }

  /** Primary: the roster proof to every channel peer (once every member has attested). */
  private sendRosters(): void {
    const proof = this.committee?.rosterProof();
    if (!proof) return;
    for (const ch of Object.values(this.state.channels)) {
      if (ch.status !== 'closed') this.outbox.push({ peerId: ch.peerId, msg: { t: 'roster', ch: ch.id, ...proof } });
    }
    void this.committer.commit().catch(() => undefined);
  }

  async removeDeposit(channelId: string, depositId: string) {
    this.assertLive();
    this.assertPrimary();
    const ch = getOpenChannel(this.state, channelId);
    const dep = getDeposit(this.state, depositId);
    if (!ch.myDeposits.includes(depositId))
      throw new TreasuryError('unknown_deposit', `deposit ${depositId} is not in channel ${channelId}`);
    if (ch.removing.includes(depositId))
      throw new TreasuryError('deposit_in_use', `deposit ${depositId} is already being removed`);
    assertNotHeld(ch);
    if (spendable(this.state, ch) < (dep.value ?? 0n))
      throw new TreasuryError(
        'insufficient_funds',
        `balance ${spendable(this.state, ch)} does not cover deposit ${depositId} (${dep.value})`,
      );
    this.sessions.requireSession(ch.peerId);
    ch.removing.push(depositId);
    this.outbox.push({ peerId: ch.peerId, msg: { t: 'remove_deposit', ch: ch.id, outpoint: dep.outpoint! } });
    const reply = this.replies.waitFor(`remove:${ch.id}:${dep.outpoint}`);
    await this.committer.commit();
    await reply;
    return this.channelView(ch);
  }

  /**
   * Debits each payment, in order, and queues it for the peer. Resolves when the debits are sealed and
   * the `pay` message is on its way; each result's `position` is the channel's cumulative total after
   * that payment, which the peer's `pay_ack` total reaches once the payment is final.
   */
  async pay(requests: PayRequest[], journaled?: readonly string[]): Promise<PayResult[]> {
    this.assertLive();
    this.committee?.assertReady();
    if (journaled) dropRefs(this.state, journaled);
    const room = refRoom(this.state);
    const results: PayResult[] = [];
    for (const r of requests) {
      try {
        results.push(this.debit(r, room));
      } catch (err) {
        if (!(err instanceof TreasuryError)) throw err;
        results.push({ ok: false, code: err.code, message: err.message });
      }
    }
    if (results.some((r) => r.ok)) await this.committer.commit();
    return results;
  }

  private debit(r: PayRequest, room: { left: number }): PayResult {
    checkAmount(r.amount_sat);
    if (r.ref && (!HEX16.test(r.ref.key) || !HEX16.test(r.ref.fp)))
      throw new TreasuryError('invalid_argument', 'a payment ref is two 16-byte hex hashes');
    const ch = getOpenChannel(this.state, r.channel_id);
    this.sessions.requireSession(ch.peerId);
    assertNotHeld(ch);
    if (this.committee?.isSettling(ch.id))
      throw new TreasuryError('channel_settling', `committee members are settling channel ${ch.id}`);
    const amount = BigInt(r.amount_sat);
    const available = spendable(this.state, ch);
    if (available < amount)
      throw new TreasuryError('insufficient_funds', `channel balance ${available} sat < ${amount} sat`);
    if (r.ref) takeRoom(room);
    ch.sent += amount;
    this.outbox.debited(ch.id, r.amount_sat);
    if (r.ref) recordRef(this.state, { key: r.ref.key, fp: r.ref.fp }, ch.id, ch.sent, r.amount_sat);
    return { ok: true, channel_id: ch.id, position: ch.sent.toString() };
  }

  /** Refs of keyed payments not journaled by the host yet; `drop` first forgets those it now has. */
  payRefs(drop?: readonly string[]) {
    if (drop) dropRefs(this.state, drop);
    return listRefs(this.state);
  }

  /**
   * Settles the channel alone: one transaction spending every deposit in it (both sides'), paying each
   * side its latest balance; we pay the fee from our side. The channel is closed for good: this
   * enclave never signs for it again.
   */
  async settle(channelId: string, feeRate: number) {
    this.assertLive();
    const ch = getChannel(this.state, channelId);
    if (this.committee) return this.settleWithCommittee(ch, feeRate);
    if (ch.status === 'closed')
      throw new TreasuryError(
        'channel_closed',
        `channel ${channelId} was already settled${ch.settlement ? ` by ${ch.settlement.txid}` : ''}`,
      );
    if (ch.lockedBy) {
      // Held by a multi-hop payment: before its commit the old state (the payment aborts); committed, only τ
      // (for the host to broadcast; the channels close when the chain shows it).
      const tau = await this.multihop.localSettle(ch);
      if (tau) {
        return {
          channel_id: ch.id,
          txid: tau.txid,
          tx_hex: tau.hex,
          fee_sat: tau.fee.toString(),
          local_balance_sat: tau.local.toString(),
          remote_balance_sat: tau.remote.toString(),
        };
      }
      if ((ch.status as string) === 'closed')
        throw new TreasuryError('channel_closed', `channel ${channelId} was already settled`);
    }
    const inputs = [
      ...ch.myDeposits.map((id) => asSpendable(this.state.deposits[id]!)),
      ...ch.peerDeposits.map((d) => ({
        outpoint: d.outpoint,
        value: d.value,
        m: d.m,
        pubkeys: d.pubkeys,
        privkeys: d.privkeys,
        witnessScript: d.witnessScript,
      })),
    ];
    let settlement: { txid: string; hex: string; fee: bigint } | null = null;
    if (inputs.length > 0) {
      settlement = buildSettlementTx({
        inputs,
        local: { script: hexToBytes(ch.myPayout), value: localBalance(this.state, ch) },
        remote: { script: ch.peerPayout ? hexToBytes(ch.peerPayout) : null, value: remoteBalance(ch) },
        feeRate,
      });
    }
    const txid = settlement?.txid ?? '0'.repeat(64);
    this.closeChannel(ch, { txid, by: 'local', ...(settlement ? { hex: settlement.hex } : {}) });
    if (ch.lockedBy) this.multihop.closedLocally(ch);
    this.outbox.push({ peerId: ch.peerId, msg: settledMessage(ch) });
    await this.committer.commit();
    return {
      channel_id: ch.id,
      txid: settlement ? txid : null,
      tx_hex: settlement?.hex ?? null,
      fee_sat: (settlement?.fee ?? 0n).toString(),
      local_balance_sat: localBalance(this.state, ch).toString(),
      remote_balance_sat: remoteBalance(ch).toString(),
    };
  }

  /**
   * The host saw a deposit of an open channel spent on chain (the peer settled, and its message may never
   * come: it may be gone for good). Closed only if the transaction really spends one of the channel's
   * deposits with valid signatures, which only an enclave holding its keys can make; a host that lies
   * gets `funding_mismatch` and the channel stays open.
   */
  async spentOnChain(channelId: string, txHex: string) {
    this.assertLive();
    const ch = getChannel(this.state, channelId);
    // A channel closed on the peer's word while the path settlement τ is out still waits for the chain, as do
    // deposits whose fate the confirmed spend decides, keys that go once it is final, and the outcome of a
    // settlement we signed (ours, or a peer's that raced it).
    const awaitsTau = ch.status === 'closed' && this.multihop.awaitsChain(ch);
    const outcomeUnknown = ch.status === 'closed' && ch.settlement?.by === 'local' && ch.settlement.paid === undefined;
    if (
      ch.status === 'closed' &&
      !awaitsTau &&
      !outcomeUnknown &&
      !ch.undecided?.length &&
      !channelKeysHeld(this.state, ch)
    )
      return this.channelView(ch);
    const own = [...new Set([...ch.myDeposits, ...(ch.undecided ?? [])])].map((id) =>
      asSpendable(this.state.deposits[id]!),
    );
    const txid = [...own, ...ch.peerDeposits].map((d) => verifyDepositSpend(txHex, d)).find((t) => t !== null);
    if (!txid)
      throw new TreasuryError('funding_mismatch', 'the transaction does not validly spend a deposit of this channel');
    if (outcomeUnknown) {
      const paid = paidBySettlement(ch, txid);
      if (paid !== undefined) {
        ch.settlement!.paid = paid;
        this.outbox.event({ type: 'settlement_paid', channel_id: ch.id, txid, paid_total: paid.toString() });
      }
    }
    if (ch.lockedBy && (ch.status !== 'closed' || awaitsTau))
      this.multihop.settledElsewhere(ch, txid, (_rec, hop) => this.multihop.paysNewState(txHex, ch, hop), true);
    if ((ch.status as string) !== 'closed') this.closeChannel(ch, { txid, by: 'remote' });
    await this.learnFromSpend(ch, txHex, txid);
    await this.committer.commit();
    return this.channelView(ch);
  }

  /**
   * A closed channel, and a valid spend of it: its depth (the host's word, as for deposits) decides the
   * deposits awaiting the chain once it is confirmed, and, once final, lets the channel's keys go.
   */
  private async learnFromSpend(ch: Channel, txHex: string, txid: string): Promise<void> {
    const info = await this.ports.getTxOut(txid, 0);
    const depth = info && txidOf(info.txHex) === txid ? info.confirmations : 0;
    const minConf = this.state.config.minConfirmations;
    if (ch.status !== 'closed' || depth < decidingDepth(minConf)) return;
    learnSpend(this.state, ch, inputOutpoints(txHex), txid);
    // A committee settlement still being gathered needs the shares, unless the final spend is that very
    // settlement; nothing else ever signs for a closed channel.
    const signing =
      this.committee !== undefined &&
      ch.settlement?.by === 'local' &&
      !ch.settlement.hex &&
      ch.settlement.txid !== txid;
    if (depth >= finalDepth(minConf) && !signing) forgetChannelKeys(this.state, ch);
  }

  // ───────────────────────────── committee signing ─────────────────────────────

  /**
   * Settlement by any committee member: the channel is closed here first (this member never signs another
   * state for it), then m members' signatures and shares are gathered. If too few answer, the channel
   * stays closed with its settlement unsigned and a new call retries the very same transaction.
   */
  private async settleWithCommittee(ch: Channel, feeRate: number) {
    if (
      ch.status === 'closed' &&
      (ch.settlement?.by !== 'local' || ch.settlement.hex || ch.settlement.txid === '0'.repeat(64))
    ) {
      throw new TreasuryError(
        'channel_closed',
        `channel ${ch.id} was already settled${ch.settlement ? ` by ${ch.settlement.txid}` : ''}`,
      );
    }
    const rate = ch.settlement?.feeRate ?? feeRate;
    const c = this.state.committee!;
    if (ch.myDeposits.length + ch.peerDeposits.length === 0) {
      this.closeChannel(ch, { txid: '0'.repeat(64), by: 'local' });
      await this.committer.commitLocal();
      return {
        channel_id: ch.id,
        txid: null,
        tx_hex: null,
        fee_sat: '0',
        local_balance_sat: localBalance(this.state, ch).toString(),
        remote_balance_sat: remoteBalance(ch).toString(),
      };
    }
    const planned = this.planFor('settle', ch.id, rate);
    const done = c.signed[ch.id];
    if (done && done !== planned.plan.txid)
      throw new TreasuryError('already_signed', `this member already signed ${done} for channel ${ch.id}`);
    c.signed[ch.id] = planned.plan.txid;
    this.markSigned('settle', ch.id, planned.plan.txid, rate);
    this.outbox.push({ peerId: ch.peerId, msg: { t: 'settled', ch: ch.id, txid: planned.plan.txid } });
    await this.committer.commitLocal();
    this.committee!.announceSigned(ch.id);
    const { hex } = await this.committee!.sign('settle', ch.id, rate, planned);
    ch.settlement!.hex = hex;
    await this.committer.commitLocal();
    return {
      channel_id: ch.id,
      txid: planned.plan.txid,
      tx_hex: hex,
      fee_sat: planned.plan.fee.toString(),
      local_balance_sat: localBalance(this.state, ch).toString(),
      remote_balance_sat: remoteBalance(ch).toString(),
    };
  }

  /** A committee deposit goes back only to the treasury's replicated payout address, which every member checks. */
  private async releaseWithCommittee(id: string, address: string, feeRate: number) {
    if (address !== this.state.config.payoutAddress) {
      throw new TreasuryError(
        'invalid_argument',
        `a committee treasury releases deposits only to its payout address ${this.state.config.payoutAddress}`,
      );
    }
    const dep = getDeposit(this.state, id);
    const c = this.state.committee!;
    const retry = dep.status === 'spent' && c.signed[id] && !dep.releaseHex;
    if (dep.status !== 'free' && !retry) throw notFree(this.state, dep);
    const planned = this.planFor('release', id, feeRate);
    if (c.signed[id] && c.signed[id] !== planned.plan.txid)
      throw new TreasuryError('already_signed', `this member already signed ${c.signed[id]} for ${id}`);
    c.signed[id] = planned.plan.txid;
    this.markSigned('release', id, planned.plan.txid, feeRate);
    await this.committer.commitLocal();
    const { hex } = await this.committee!.sign('release', id, feeRate, planned);
    dep.releaseHex = hex;
    await this.committer.commitLocal();
    return { deposit_id: id, txid: planned.plan.txid, tx_hex: hex, fee_sat: planned.plan.fee.toString() };
  }

  /** The unsigned transaction this member would sign for a settlement or a release, from its own state. */
  planFor(kind: SignKind, id: string, feeRate: number): Planned {
    if (kind === 'release') {
      const dep = getDeposit(this.state, id);
      const signedHere = this.state.committee?.signed[id];
      if (dep.status !== 'free' && !(dep.status === 'spent' && signedHere && dep.spentBy === signedHere)) {
        throw new TreasuryError('deposit_not_free', `deposit ${id} is ${dep.status}`);
      }
      if (!dep.outpoint || dep.value === undefined)
        throw new TreasuryError('deposit_not_free', `deposit ${id} is not funded`);
      const plan = planRelease({
        deposit: asSpendable(dep),
        payoutScript: payoutScriptFor(this.state.config.payoutAddress),
        feeRate,
      });
      return { plan, inputs: [{ kind: 'own', depositId: id, m: dep.m, pubkeys: dep.pubkeys }] };
    }
    const ch = getChannel(this.state, id);
    if (ch.settlement?.by === 'remote')
      throw new TreasuryError('channel_closed', `channel ${id} was settled by the peer (${ch.settlement.txid})`);
    const own = ch.myDeposits.map((d) => this.state.deposits[d]!);
    const plan = planSettlement({
      inputs: [...own.map((d) => asSpendable(d)), ...ch.peerDeposits],
      local: { script: hexToBytes(ch.myPayout), value: localBalance(this.state, ch) },
      remote: { script: ch.peerPayout ? hexToBytes(ch.peerPayout) : null, value: remoteBalance(ch) },
      feeRate,
    });
    return {
      plan,
      inputs: [
        ...own.map((d) => ({ kind: 'own' as const, depositId: d.id, m: d.m, pubkeys: d.pubkeys })),
        ...ch.peerDeposits.map((d) => ({ kind: 'peer' as const, deposit: d })),
      ],
    };
  }

  /** Records in this member's state what it signed: the channel is closed, the deposit spent. */
  private markSigned(kind: SignKind, id: string, txid: string, feeRate: number): void {
    if (kind === 'release') {
      const dep = getDeposit(this.state, id);
      dep.status = 'spent';
      dep.spentBy = txid;
      return;
    }
    const ch = getChannel(this.state, id);
    if (ch.status !== 'closed') this.closeChannel(ch, { txid, by: 'local', feeRate });
  }

  /** Pays `amount_sat` to `dest` through a path of channels (README "Multi-hop payments"). */
  async payMultihop(dest: string, amountSat: number, feeRate: number, maxFeeSat?: number) {
    this.assertLive();
    checkAmount(amountSat);
    if (maxFeeSat !== undefined && (!Number.isSafeInteger(maxFeeSat) || maxFeeSat < 0)) {
      throw new TreasuryError('invalid_argument', 'max_fee_sat must be a non-negative integer number of satoshis');
    }
    const amount = BigInt(amountSat);
    return this.multihop.pay(
      dest,
      amount,
      feeRate,
      maxFeeSat !== undefined ? BigInt(maxFeeSat) : defaultMaxFee(amount),
    );
  }

  /** What this treasury charges to forward a multi-hop payment (announced to the network). */
  async setFees(base: number, ppm: number) {
    this.assertLive();
    if (!Number.isSafeInteger(base) || base < 0 || !Number.isSafeInteger(ppm) || ppm < 0 || ppm > 1_000_000) {
      throw new TreasuryError('invalid_argument', 'fees: base_sat ≥ 0 and 0 ≤ ppm ≤ 1,000,000');
    }
    this.state.config.fees = { base, ppm };
    await this.committer.commit();
    this.multihop.gossip();
    return { base_sat: base, ppm };
  }

  private multihopHost() {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const t = this;
    return {
      get state() {
        return t.state;
      },
      get nodeId() {
        return t.nodeId;
      },
      identityKey: () => t.state.identityKey,
      isCommittee: () => t.committee !== undefined,
      connected: (peerId: string) => t.sessions.connected(peerId),
      peers: () => t.sessions.peers(),
      queue: (peerId: string, msg: MultiHopMessage | ChannelMessage) => {
        t.outbox.pushMultihop({ peerId, msg });
      },
      sendNow: (peerId: string, msg: MultiHopMessage) => t.sendNow(peerId, msg),
      commit: () => t.committer.commit(),
      event: (e: TreasuryEvent) => {
        t.outbox.event(e);
      },
      closeChannel: (ch: Channel, s: NonNullable<Channel['settlement']>) => t.closeChannel(ch, s),
      random: (n: number) => t.ports.random(n),
      getTxOut: (txid: string, vout: number) => t.ports.getTxOut(txid, vout),
      timeoutMs: t.ports.multihopTimeoutMs ?? 5_000,
    };
  }

  private committeeHost() {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const t = this;
    return {
      get state() {
        return t.state;
      },
      get nodeId() {
        return t.nodeId;
      },
      identityKey: () => hexToBytes(t.state.identityKey),
      sendNow: (peerId: string, msg: CommitteeMessage) => t.sendNow(peerId, msg),
      connected: (peerId: string) => t.sessions.connected(peerId),
      commitLocal: () => t.committer.commitLocal(),
      planFor: (kind: SignKind, id: string, feeRate: number) => t.planFor(kind, id, feeRate),
      markSigned: (kind: SignKind, id: string, txid: string, feeRate: number) => t.markSigned(kind, id, txid, feeRate),
      rosterChanged: (members: CommitteeMember[], index: number) =>
        t.ports.emit({ type: 'committee_roster', members, index }),
      settledByMembers: (s: SignedSettlement) => t.settledByMembers(s),
      joinRefused: (code: string) => t.ports.emit({ type: 'committee_join_refused', code }),
      attest: (nonce: Uint8Array) => t.attest(nonce),
      rosterComplete: () => t.sendRosters(),
      timeoutMs: t.ports.replyTimeoutMs ?? 10_000,
    };
  }

  /**
   * Primary: members signed a settlement of `s.ch` (maybe without it). Their replicas are never ahead of
   * this state, so debits beyond the signed totals were never acknowledged to the peer: the channel closes
   * at the signed totals, provided they rebuild the very transaction signed, and the next update is one
   * the signers accept. Messages already queued beyond those totals are dropped at delivery.
   */
  private settledByMembers(s: SignedSettlement): void {
    const ch = this.state.channels[s.ch];
    // Below what the peer acknowledged cannot be what the members signed: released payments were in their replicas.
    if (!ch || ch.status === 'closed' || s.sent > ch.sent || s.received > ch.received || s.sent < ch.acked) return;
    const was = { sent: ch.sent, received: ch.received };
    ch.sent = s.sent;
    ch.received = s.received;
    let txid: string | undefined;
    try {
      txid = this.planFor('settle', ch.id, s.feeRate).plan.txid;
    } catch {
      txid = undefined;
    }
    if (txid !== s.txid) {
      // Not the transaction signed from this state: keep the channel frozen (isSettling) and as it was.
      Object.assign(ch, was);
      return;
    }
    // Committee members settled at these totals: payments within them are in the settlement, the rest never left.
    this.closeChannel(ch, { txid, by: 'local', feeRate: s.feeRate }, ch.sent);
    this.state.committee!.signed[ch.id] = txid;
    this.outbox.push({ peerId: ch.peerId, msg: settledMessage(ch) });
    void this.committer.commit().catch(() => undefined);
  }

  /**
   * A committee primary's queued message or event that reports more than a closed channel now records
   * (queued before members' settlement closed it at lower totals): must not leave, or the peer would
   * credit what the signed settlement leaves out. Null to drop; sync entries are rewritten.
   */
  private stillTrue(item: Outgoing | TreasuryEvent): Outgoing | TreasuryEvent | null {
    const closed = (id: string) => {
      const ch = this.state.channels[id];
      return ch?.status === 'closed' ? ch : undefined;
    };
    if ('type' in item) {
      if (item.type !== 'pay_received') return item;
      const ch = closed(item.channel_id);
      return ch && BigInt(item.total) > ch.received ? null : item;
    }
    const msg = item.msg;
    if (msg.t === 'sync') {
      const channels = msg.channels.map((e) => {
        const ch = closed(e.ch);
        return ch
          ? {
              ch: e.ch,
              sent: ch.sent.toString(),
              received: ch.received.toString(),
              closed: true,
              ...paidSig(this.state, ch, ch.sent),
            }
          : e;
      });
      return { peerId: item.peerId, msg: { t: 'sync', channels } };
    }
    if (!('ch' in msg) || msg.t === 'settled' || msg.t.startsWith('mh_')) return item;
    const ch = closed(msg.ch);
    if (!ch) return item;
    if (msg.t === 'pay') return BigInt(msg.total) <= ch.sent ? item : null;
    if (msg.t === 'pay_ack') return BigInt(msg.total) <= ch.received ? item : null;
    return null;
  }

  /** Sends one message now, outside the group commit: committee messages are sent after their own seals. */
  private sendNow(peerId: string, msg: SessionMessage): void {
    this.sessions.sendNow(peerId, msg);
  }

  /** `paidTotal`: what of our sent total the settlement is known to pay (default: `settlement.paid`), for the event. */
  private closeChannel(ch: Channel, settlement: NonNullable<Channel['settlement']>, paidTotal = settlement.paid): void {
    ch.status = 'closed';
    ch.settlement = settlement;
    // Deposits added or removed without the peer's acknowledgement may or may not be in the settlement that
    // wins: they wait for the chain (deposit-fate.ts). A remote settlement with no input spends none of them.
    settleDepositsAtClose(
      this.state,
      ch,
      settlement.txid,
      settlement.by === 'remote' && settlement.txid === '0'.repeat(64),
    );
    this.outbox.dropPays(ch.id);
    this.outbox.event({
      type: 'channel_settled',
      channel_id: ch.id,
      txid: settlement.txid,
      by: settlement.by,
      ...(paidTotal !== undefined ? { paid_total: paidTotal.toString() } : {}),
    });
  }

  // ───────────────────────────── connections ─────────────────────────────

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
    this.resync(peerId);
    this.committee?.peerConnected(peerId);
  }

  /** After every handshake: re-send what the peer may have missed, from durable state. */
  private resync(peerId: string): void {
    const channels = Object.values(this.state.channels).filter((ch) => ch.peerId === peerId);
    this.outbox.push({
      peerId,
      msg: {
        t: 'sync',
        channels: channels.map((ch) => ({
          ch: ch.id,
          sent: ch.sent.toString(),
          received: ch.received.toString(),
          closed: ch.status === 'closed',
          ...paidSig(this.state, ch, ch.sent),
        })),
      },
    });
    const proof = this.committee?.rosterProof();
    for (const ch of channels) {
      if (proof && ch.status !== 'closed') this.outbox.push({ peerId, msg: { t: 'roster', ch: ch.id, ...proof } });
      if (ch.status === 'opening' && ch.initiator)
        this.outbox.push({ peerId, msg: openMessage(this.state, 'open', ch, this.committee !== undefined) });
      if (ch.status === 'closed' && ch.settlement?.by === 'local')
        this.outbox.push({ peerId, msg: settledMessage(ch) });
      if (ch.status !== 'open') continue;
      for (const id of ch.adding)
        this.outbox.push({
          peerId,
          msg: { t: 'add_deposit', ch: ch.id, deposit: this.grantFor(this.state.deposits[id]!) },
        });
      for (const id of ch.removing)
        this.outbox.push({
          peerId,
          msg: { t: 'remove_deposit', ch: ch.id, outpoint: this.state.deposits[id]!.outpoint! },
        });
    }
    this.multihop.resync(peerId);
    void this.committer.commit().catch(() => undefined);
  }

  // ───────────────────────────── peer messages ─────────────────────────────

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
    msg = msg as ChannelMessage;
    if (msg.t === 'sync') {
      for (const s of msg.channels) this.applySync(peerId, s);
      return;
    }
    if (msg.t === 'roster') {
      await this.applyRoster(peerId, msg);
      return;
    }
    const ch = this.state.channels[msg.ch];
    if (msg.t === 'open') {
      if (ch && ch.peerId !== peerId) return; // not this peer's channel: ignore, never reveal
      const proof = this.committee?.rosterProof();
      if (this.committee && !proof) {
        this.outbox.push({ peerId, msg: { t: 'open_nack', ch: msg.ch, code: 'committee_incomplete' } });
        void this.committer.commit().catch(() => undefined);
        return;
      }
      // Before `open_ack`: the peer knows we are a committee before its channel opens.
      if (proof) this.outbox.push({ peerId, msg: { t: 'roster', ch: msg.ch, ...proof } });
      if (!ch) {
        // A committee's backups accept the peer's payout only with the peer's signature of it.
        if (this.committee && !verifyPayout(peerId, msg.ch, msg.payout, msg.sig)) {
          this.outbox.push({ peerId, msg: { t: 'open_nack', ch: msg.ch, code: 'invalid_argument' } });
          void this.committer.commit().catch(() => undefined);
          return;
        }
        this.state.channels[msg.ch] = {
          id: msg.ch,
          peerId,
          status: 'open',
          initiator: false,
          myPayout: bytesToHex(payoutScriptFor(this.state.config.payoutAddress)),
          peerPayout: msg.payout,
          myDeposits: [],
          removing: [],
          adding: [],
          peerDeposits: [],
          sent: 0n,
          received: 0n,
          acked: 0n,
          ...(msg.want_sigs ? { signPays: true } : {}),
          ...(this.committee ? { peerPayoutSig: msg.sig! } : {}),
        };
        this.outbox.event({ type: 'channel_updated', channel_id: msg.ch, status: 'open' });
      }
      const mine = this.state.channels[msg.ch]!;
      // The initiator's roster came just before its `open`: keep it with the channel, sealed.
      if (mine.status !== 'closed') mine.peerRoster ??= this.peerRosters.get(peerId);
      this.outbox.push({ peerId, msg: openMessage(this.state, 'open_ack', mine, this.committee !== undefined) });
      void this.committer.commit().catch(() => undefined);
      return;
    }
    if (!ch || ch.peerId !== peerId) return;
    switch (msg.t) {
      case 'open_ack':
        if (ch.status === 'opening') {
          if (this.committee && !verifyPayout(peerId, ch.id, msg.payout, msg.sig)) {
            this.replies.reject(`open:${ch.id}`, new TreasuryError('peer_refused', 'the peer did not sign its payout'));
            return;
          }
          ch.status = 'open';
          ch.peerPayout = msg.payout;
          if (msg.want_sigs) ch.signPays = true;
          if (this.committee) ch.peerPayoutSig = msg.sig!;
          this.outbox.event({ type: 'channel_updated', channel_id: ch.id, status: 'open' });
          await this.committer.commit();
        }
        this.replies.resolve(`open:${ch.id}`);
        return;
      case 'open_nack':
        this.replies.reject(
          `open:${ch.id}`,
          new TreasuryError('peer_refused', `peer refused the channel: ${msg.code}`),
        );
        return;
      case 'pay':
        this.applyPay(ch, BigInt(msg.total), msg.amounts, msg.sig);
        return;
      case 'pay_ack':
        this.applyPayAck(ch, BigInt(msg.total));
        return;
      case 'add_deposit':
        await this.applyAddDeposit(peerId, ch, msg.deposit);
        return;
      case 'add_deposit_ack':
        await this.applyAddDepositAck(ch, msg.outpoint);
        return;
      case 'add_deposit_nack':
        this.applyAddDepositNack(ch, msg.outpoint, msg.code);
        return;
      case 'remove_deposit':
        this.applyRemoveDeposit(peerId, ch, msg.outpoint);
        return;
      case 'remove_deposit_ack':
        await this.applyRemoveDepositAck(ch, msg.outpoint);
        return;
      case 'remove_deposit_nack': {
        const dep = Object.values(this.state.deposits).find((d) => d.outpoint === msg.outpoint);
        if (dep) ch.removing = ch.removing.filter((id) => id !== dep.id);
        await this.committer.commit();
        this.replies.reject(
          `remove:${ch.id}:${msg.outpoint}`,
          new TreasuryError('peer_refused', `peer refused the removal: ${msg.code}`),
        );
        return;
      }
      case 'settled':
        if (ch.status !== 'closed' && ch.lockedBy) {
          // The peer's totals tell which state it settled: ours plus the payment, or ours as it was.
          this.multihop.settledElsewhere(ch, msg.txid, (_rec, hop) =>
            hop.from === this.nodeId
              ? msg.received !== undefined && BigInt(msg.received) === ch.sent + hop.amount
              : msg.sent !== undefined && BigInt(msg.sent) === ch.received + hop.amount,
          );
        }
        if (ch.status !== 'closed') {
          // The peer's enclave says what it received of ours: that is what its settlement pays.
          const paid = msg.received !== undefined ? minBig(BigInt(msg.received), ch.sent) : undefined;
          this.closeChannel(ch, { txid: msg.txid, by: 'remote', ...(paid !== undefined ? { paid } : {}) });
          await this.committer.commit();
        } else if (
          ch.settlement?.by === 'local' &&
          ch.settlement.paid === undefined &&
          msg.txid !== ch.settlement.txid &&
          !ch.settlement.peer
        ) {
          // Both sides settled: which one the chain takes decides what is paid (spentOnChain).
          ch.settlement.peer = {
            txid: msg.txid,
            ...(msg.received !== undefined ? { received: BigInt(msg.received) } : {}),
          };
          await this.committer.commit();
        }
        return;
    }
  }

  private applySync(
    peerId: string,
    s: { ch: string; sent: string; received: string; closed: boolean; sig?: string },
  ): void {
    const ch = this.state.channels[s.ch];
    if (!ch || ch.peerId !== peerId) return;
    this.applyPay(ch, BigInt(s.sent), null, s.sig);
    this.applyPayAck(ch, BigInt(s.received));
  }

  /** The peer has now paid `total` in all: credit the difference (idempotent for old or repeated totals). */
  private applyPay(ch: Channel, total: bigint, amounts: number[] | null, sig?: string): void {
    if (ch.status !== 'open' || total <= ch.received) return;
    // A committee credits only totals the payer signed: its backups refuse any other (update-rules.ts).
    if (this.committee && !verifyPaid(ch.peerId, ch.id, total, sig))
      throw new TreasuryError('session_failed', "paid total without the payer's signature");
    if (ch.lockedBy) this.multihop.peerPaidOnLocked(ch, ch.peerId);
    const delta = total - ch.received;
    // Defence in depth: an honest peer enclave never overdraws; refuse a total that would.
    if (peerDepositTotal(ch) - total + ch.sent < 0n)
      throw new TreasuryError('session_failed', 'peer payment exceeds its balance');
    ch.received = total;
    if (this.committee) ch.peerPaid = { total, sig: sig! };
    let listed = 0n;
    for (const a of amounts ?? []) listed += BigInt(a);
    const shown = amounts && listed === delta ? amounts : [Number(delta)];
    this.outbox.event({ type: 'pay_received', channel_id: ch.id, amounts: shown, total: total.toString() });
    this.outbox.acknowledge(ch.id);
    void this.committer.commit().catch(() => undefined);
  }

  private applyPayAck(ch: Channel, total: bigint): void {
    if (total <= ch.acked || total > ch.sent) return;
    ch.acked = total;
    this.ports.emit({ type: 'pay_acked', channel_id: ch.id, total: total.toString() });
  }

  private async applyAddDeposit(peerId: string, ch: Channel, grant: DepositGrant): Promise<void> {
    const nack = (code: TreasuryErrorCode) => {
      this.outbox.push({ peerId, msg: { t: 'add_deposit_nack', ch: ch.id, outpoint: grant.outpoint, code } });
      void this.committer.commit().catch(() => undefined);
    };
    if (ch.peerDeposits.some((d) => d.outpoint === grant.outpoint)) {
      this.outbox.push({ peerId, msg: { t: 'add_deposit_ack', ch: ch.id, outpoint: grant.outpoint } });
      void this.committer.commit().catch(() => undefined);
      return;
    }
    if (ch.status !== 'open') return nack('channel_not_open');
    if (ch.lockedBy) return nack('channel_busy');
    if (outpointInUse(this.state, grant.outpoint)) return nack('deposit_in_use');
    let deposit: PeerDeposit;
    try {
      deposit = await this.verifyGrant(grant);
    } catch (err) {
      return nack(err instanceof TreasuryError ? err.code : 'funding_mismatch');
    }
    // Re-check after the chain look-up: the channel may have closed or the outpoint been used meanwhile.
    if (ch.status !== 'open') return nack('channel_not_open');
    if (ch.lockedBy) return nack('channel_busy');
    if (outpointInUse(this.state, grant.outpoint)) return nack('deposit_in_use');
    ch.peerDeposits.push(deposit);
    this.outbox.push({ peerId, msg: { t: 'add_deposit_ack', ch: ch.id, outpoint: grant.outpoint } });
    this.outbox.event({ type: 'channel_updated', channel_id: ch.id, status: ch.status });
    await this.committer.commit();
  }

  /** Checks a granted deposit against the chain through our own host: keys, script, value, unspent, confirmed. */
  private async verifyGrant(grant: DepositGrant): Promise<PeerDeposit> {
    const c = this.state.committee;
    if (c) return this.verifySharedGrant(grant, c.members.length);
    if (grant.shares)
      throw new TreasuryError('funding_mismatch', 'a lone treasury takes handed-over keys whole, not as shares');
    let privkeys = grant.privkeys;
    if (grant.sealed_keys?.length) {
      privkeys = grant.sealed_keys
        .map((b) => openSealedKey(hexToBytes(this.state.identityKey), b))
        .filter((k): k is string => k !== null);
    }
    if (privkeys.length < grant.m || grant.m > grant.pubkeys.length)
      throw new TreasuryError('funding_mismatch', 'grant does not carry enough keys');
    for (const k of privkeys) {
      if (!grant.pubkeys.includes(bytesToHex(publicKeyOf(hexToBytes(k)))))
        throw new TreasuryError('funding_mismatch', 'granted key does not match the deposit');
    }
    const { witnessScript, value } = await this.checkGrantOutput(grant);
    return { outpoint: grant.outpoint, value, m: grant.m, pubkeys: grant.pubkeys, privkeys, witnessScript };
  }

  /** The granted deposit's output as our own host's chain shows it: its script, value and confirmations. */
  private async checkGrantOutput(grant: DepositGrant): Promise<{ witnessScript: string; value: bigint }> {
    const { witnessScript } = buildDepositScript(grant.m, grant.pubkeys);
    const [txid, voutStr] = grant.outpoint.split(':') as [string, string];
    const vout = Number(voutStr);
    const info = await this.ports.getTxOut(txid, vout);
    const value = checkOutput(info, txid, vout, witnessScript);
    if (value !== BigInt(grant.value))
      throw new TreasuryError('funding_mismatch', 'deposit value differs from the chain');
    if (info!.confirmations < this.state.config.minConfirmations) throw new TreasuryError('deposit_unconfirmed');
    return { witnessScript, value };
  }

  /**
   * A committee's side of a grant: the keys come split for our roster, share i sealed to member i by the
   * granting enclave(s), and never whole: not even this primary ever holds one. A grant with whole or
   * sealed keys is refused (a committee never asks for them; opening one would put a whole key here).
   */
  private async verifySharedGrant(grant: DepositGrant, n: number): Promise<PeerDeposit> {
    if (grant.privkeys.length > 0 || grant.sealed_keys !== undefined)
      throw new TreasuryError('funding_mismatch', 'a committee takes handed-over keys only as secret shares');
    const shares = grant.shares ?? [];
    if (grant.m > grant.pubkeys.length || shares.length < grant.m)
      throw new TreasuryError('funding_mismatch', 'grant does not carry enough key shares');
    const seen = new Set<string>();
    for (const s of shares) {
      if (!grant.pubkeys.includes(s.pubkey) || seen.has(s.pubkey))
        throw new TreasuryError('funding_mismatch', 'key shares do not match the deposit');
      if (s.boxes.length !== n)
        throw new TreasuryError('funding_mismatch', `key shares are not one per member (${s.boxes.length} of ${n})`);
      seen.add(s.pubkey);
    }
    const { witnessScript, value } = await this.checkGrantOutput(grant);
    return {
      outpoint: grant.outpoint,
      value,
      m: grant.m,
      pubkeys: [...grant.pubkeys],
      privkeys: [],
      witnessScript,
      shares: shares.map((s) => ({ pubkey: s.pubkey, boxes: [...s.boxes] })),
    };
  }

  private async applyAddDepositAck(ch: Channel, outpoint: string): Promise<void> {
    const id = ch.adding.find((d) => this.state.deposits[d]?.outpoint === outpoint);
    if (id) {
      ch.adding = ch.adding.filter((d) => d !== id);
      ch.myDeposits.push(id);
      this.outbox.event({ type: 'channel_updated', channel_id: ch.id, status: ch.status });
      await this.committer.commit();
    }
    this.replies.resolve(`add:${ch.id}:${outpoint}`);
  }

  private applyAddDepositNack(ch: Channel, outpoint: string, code: string): void {
    const id = ch.adding.find((d) => this.state.deposits[d]?.outpoint === outpoint);
    if (id) {
      ch.adding = ch.adding.filter((d) => d !== id);
      const dep = this.state.deposits[id]!;
      dep.status = 'free';
      delete dep.channelId;
      void this.committer.commit().catch(() => undefined);
    }
    this.replies.reject(
      `add:${ch.id}:${outpoint}`,
      new TreasuryError('peer_refused', `peer refused the deposit: ${code}`),
    );
  }

  private applyRemoveDeposit(peerId: string, ch: Channel, outpoint: string): void {
    const dep = ch.peerDeposits.find((d) => d.outpoint === outpoint);
    if (dep) {
      if (ch.status !== 'open' || ch.lockedBy) {
        this.outbox.push({
          peerId,
          msg: {
            t: 'remove_deposit_nack',
            ch: ch.id,
            outpoint,
            code: ch.lockedBy ? 'channel_busy' : 'channel_not_open',
          },
        });
        void this.committer.commit().catch(() => undefined);
        return;
      }
      // The owner checked its own (conservative) balance; we check ours too before forgetting the keys.
      if (peerDepositTotal(ch) - dep.value - ch.received + ch.sent < 0n) {
        this.outbox.push({
          peerId,
          msg: { t: 'remove_deposit_nack', ch: ch.id, outpoint, code: 'insufficient_funds' },
        });
        void this.committer.commit().catch(() => undefined);
        return;
      }
      ch.peerDeposits = ch.peerDeposits.filter((d) => d !== dep);
      this.outbox.event({ type: 'channel_updated', channel_id: ch.id, status: ch.status });
    }
    this.outbox.push({ peerId, msg: { t: 'remove_deposit_ack', ch: ch.id, outpoint } });
    void this.committer.commit().catch(() => undefined);
  }

  private async applyRemoveDepositAck(ch: Channel, outpoint: string): Promise<void> {
    const id = ch.removing.find((d) => this.state.deposits[d]?.outpoint === outpoint);
    // Once closed, our own settlement may spend it even though the peer dropped it: the chain decides.
    if (id && ch.status !== 'closed') {
      ch.removing = ch.removing.filter((d) => d !== id);
      ch.myDeposits = ch.myDeposits.filter((d) => d !== id);
      const dep = this.state.deposits[id]!;
      dep.status = 'free';
      delete dep.channelId;
      this.outbox.event({ type: 'channel_updated', channel_id: ch.id, status: ch.status });
      await this.committer.commit();
    }
    this.replies.resolve(`remove:${ch.id}:${outpoint}`);
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
    const items = this.committee?.isPrimary ? queued.map((i) => this.stillTrue(i)).filter((i) => i !== null) : queued;
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

  private grantFor(dep: Deposit): DepositGrant {
    const base = { outpoint: dep.outpoint!, value: dep.value!.toString(), m: dep.m, pubkeys: dep.pubkeys };
    if (dep.peerShares) return { ...base, privkeys: [], shares: dep.peerShares };
    return dep.sealedKeys
      ? { ...base, privkeys: [], sealed_keys: dep.sealedKeys }
      : { ...base, privkeys: dep.privkeys };
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
