/**
 * Multi-hop payments inside the enclave (README "Multi-hop payments"): alice pays carol through bob,
 * atomically, without HTLCs. Every hop is an enclave, so the path is locked, the path settlement τ
 * (one transaction paying every channel of the path in its new state) is built and signed by every hop,
 * then every channel is updated and unlocked:
 *
 *   LOCK    payer → dest   each hop checks its incoming channel against the sender's description, locks
 *                          it and an outgoing channel with enough balance, seals, forwards
 *   SIGN    dest → payer   the destination builds τ and signs the inputs it holds keys for; every hop
 *                          rebuilds τ from the descriptions, checks the txid, adds its signatures, seals
 *   COMMIT  payer → dest   the payer signs τ's inputs it holds keys for, verifies the other signatures,
 *                          commits, seals, forwards; each hop checks it is the τ it signed, complete,
 *                          commits, seals, forwards
 *   RELEASE dest → payer   the destination (everyone is committed) applies the new totals, drops τ, seals;
 *                          each hop does the same, keeping its channels locked; the payer unlocks and
 *                          answers its user
 *   UNLOCK  payer → dest   `mh_unlock`: each hop unlocks its channels, seals, forwards
 *
 * Why an unlock wave: τ pays every channel of the path the state right after this payment, and every hop
 * upstream that has not released yet still holds it complete. A channel that moved on while some enclave
 * still held τ could be settled back by whoever gets τ out of it. The payer is the last to drop τ, so a
 * channel unlocks only once the payer has released: on `mh_unlock`, or on a payment from the upstream
 * neighbour on it (an honest enclave pays only on an unlocked channel, and a payment may overtake the
 * unlock: a seal's payments leave before its multi-hop messages).
 *
 * Why τ handed out freezes for good: a committed hop asked to settle hands τ to the host, which may keep it
 * for later. Before τ leaves, the record is marked `tauOut` and sealed; from then on this hop never passes
 * a release upstream nor an unlock downstream and ignores aborts and the peers' word, so every channel τ
 * spends stays locked (upstream hops stay committed, downstream ones released) until the chain shows τ or
 * another spend of one of its inputs. A release that still arrives applies the new state (everyone is
 * committed, so it is certain) without unlocking: the frozen channels then show exactly what τ pays them,
 * and a frozen hop may still settle them alone in that state (which conflicts with τ and pays the same).
 *
 * Before COMMIT a hop may settle its channels alone in the old state (τ can then never confirm: it
 * double-spends); a committed hop settles its path channels only with τ; a released hop settles in the
 * new state. Locked channels refuse other payments and deposit changes with `channel_busy`: contention
 * is abort-and-retry, nothing ever waits for a lock, so there is no deadlock.
 */
import { bytesToHex } from '../../../enclave-sim/encoding.ts';
import type { AnnouncementWire, ChannelMessage, MhHopWire, MultiHopMessage } from '../protocol/messages.ts';
import { findRoute, forwardFee, signAnnouncement, verifyAnnouncement } from './routing.ts';
import { TREASURY_ERRORS as ERROR_CODES, TreasuryError, type TreasuryErrorCode } from './errors.ts';
import { applyHopCredit, applyHopDebit, lock, refusal, unlock } from './channel.ts';
import {
  localBalance,
  remoteBalance,
  spendable,
  type Channel,
  type MhHop,
  type MhPayment,
  type TreasuryState,
} from './state.ts';
import {
  completePathAsPayer,
  pathWitnessed,
  planPathSettlement,
  signPathInputs,
  txidOf,
  valuePaidTo,
  type PathInput,
  type SpendPlan,
} from './transactions.ts';
import type { TreasuryEvent, TxOutInfo } from './ports.ts';

/** A channel a new multi-hop payment may lock: no other payment holds it, no deposit is joining or leaving. */
function isFree(c: Channel): boolean {
  return refusal(c, 'lock') === null;
}

export interface MultiHopHost {
  readonly state: TreasuryState;
  readonly nodeId: string;
  identityKey(): string;
  isCommittee(): boolean;
  connected(peerId: string): boolean;
  peers(): string[];
  /** Queues a message for after the next seal (in order with the channel's payments). */
  queue(peerId: string, msg: MultiHopMessage | ChannelMessage): void;
  /** Sends now, outside any seal (gossip only: it is not state). */
  sendNow(peerId: string, msg: MultiHopMessage): void;
  commit(): Promise<void>;
  /** An event for the host, released with the next seal. */
  event(e: TreasuryEvent): void;
  closeChannel(ch: Channel, settlement: NonNullable<Channel['settlement']>): void;
  random(n: number): Uint8Array;
  getTxOut(txid: string, vout: number): Promise<TxOutInfo | null>;
  /** How long the payer waits for LOCK and SIGN before aborting (intermediaries wait twice that). */
  timeoutMs: number;
}

export interface MultiHopResult {
  payment_id: string;
  route: string[];
  amounts: string[];
  fee_sat: string;
  channel_id: string;
}

/** Resolved payments kept to answer re-sent messages; older ones are dropped. */
const KEEP_RESOLVED = 64;

export class MultiHop {
  private readonly waiters = new Map<
    string,
    { resolve: (r: MultiHopResult) => void; reject: (e: TreasuryError) => void }
  >();
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();
  readonly graph = new Map<string, { ann: AnnouncementWire; sig: string }>();
  private announced = '';
  /** Channels, fees and capacities of the last announcement, and when it was made. */
  private announcedShape = '';
  private announcedCaps = new Map<string, bigint>();
  private announcedAt = 0;
  private seq = 0;
  /**
   * Capacity moves with every payment; re-announcing it each time would cost a signature here and a
   * verification at every node (about 2 ms each with @noble/secp256k1) twice a second under load, which
   * shows up in payment latency. Small capacity changes (under an eighth of what was announced) wait this
   * long; new channels, fees, and larger moves (a deposit added, a channel drained) go out at once.
   */
  capacityRefreshMs = 5_000;

  constructor(private readonly h: MultiHopHost) {
    // After a restart: payments still locking get their timeout again.
    for (const rec of Object.values(this.records())) if (rec.phase === 'locked') this.arm(rec);
  }

  private records(): Record<string, MhPayment> {
    return (this.h.state.multihop ??= {});
  }

  // ───────────────────────────── paying ─────────────────────────────

  /** Routes and pays `amount` to `dest`; resolves once the payment is released, rejects when it aborts. */
  async pay(dest: string, amount: bigint, feeRate: number, maxFee: bigint): Promise<MultiHopResult> {
    if (this.h.isCommittee())
      throw new TreasuryError(
        'multihop_unsupported',
        'this treasury is a committee: multi-hop payments go through lone treasuries only',
      );
    const local = Object.values(this.h.state.channels)
      .filter((c) => c.status === 'open' && c.peerPayout && this.h.connected(c.peerId))
      .map((c) => ({ peer: c.peerId, cap: spendable(this.h.state, c) }));
    const { route, amounts } = findRoute({ self: this.h.nodeId, dest, amount, graph: this.graph, local, maxFee });
    const candidates = this.openChannelsTo(route[1]!);
    const free = candidates.filter(isFree);
    const ch = free
      .filter((c) => spendable(this.h.state, c) >= amounts[0]!)
      .sort((a, b) => (spendable(this.h.state, b) > spendable(this.h.state, a) ? 1 : -1))[0];
    if (!ch)
      throw new TreasuryError(
        free.length < candidates.length ? 'channel_busy' : 'insufficient_capacity',
        `no free channel to ${route[1]!.slice(0, 16)}… can carry ${amounts[0]} sat`,
      );
    const pid = bytesToHex(this.h.random(32));
    const rec: MhPayment = {
      pid,
      route,
      index: 0,
      amounts,
      hops: [this.describe(ch, amounts[0]!)],
      feeRate,
      phase: 'locked',
      channel: ch.id,
    };
    lock(ch, pid);
    this.records()[pid] = rec;
    this.h.queue(route[1]!, this.lockMessage(rec));
    const done = new Promise<MultiHopResult>((resolve, reject) => this.waiters.set(pid, { resolve, reject }));
    done.catch(() => undefined); // it may settle while the seal below is in flight; the caller gets it below
    this.arm(rec);
    await this.h.commit();
    return done;
  }

  /** Our open channels to `peer` whose payout the peer has given (so a τ can pay it). */
  private openChannelsTo(peer: string): Channel[] {
    return Object.values(this.h.state.channels).filter((c) => c.status === 'open' && c.peerId === peer && c.peerPayout);
  }

  private result(rec: MhPayment): MultiHopResult {
    return {
      payment_id: rec.pid,
      route: rec.route,
      amounts: rec.amounts.map(String),
      fee_sat: (rec.amounts[0]! - rec.amounts[rec.amounts.length - 1]!).toString(),
      channel_id: rec.channel ?? rec.hops[0]!.ch,
    };
  }

  // ───────────────────────────── messages ─────────────────────────────

  async handle(peerId: string, msg: MultiHopMessage): Promise<void> {
    switch (msg.t) {
      case 'gossip':
        return this.onGossip(peerId, msg.ann, msg.sig);
      case 'mh_lock':
        return this.onLock(peerId, msg);
      case 'mh_signed':
        return this.onSigned(peerId, msg.pid, msg.hops, msg.tx);
      case 'mh_commit':
        return this.onCommit(peerId, msg.pid, msg.tx);
      case 'mh_release':
        return this.onRelease(peerId, msg.pid);
      case 'mh_unlock':
        return this.onUnlock(peerId, msg.pid);
      case 'mh_abort':
        return this.onAbort(peerId, msg.pid, msg.code);
    }
  }

  private async onLock(peerId: string, msg: Extract<MultiHopMessage, { t: 'mh_lock' }>): Promise<void> {
    const known = this.records()[msg.pid];
    if (known) {
      if (known.phase === 'aborted') {
        this.h.queue(peerId, { t: 'mh_abort', pid: msg.pid, code: known.code ?? 'aborted' });
        await this.h.commit();
      }
      return;
    }
    const j = msg.hops.length;
    const amounts = msg.amounts.map(BigInt);
    const hops = msg.hops.map(fromWire);
    const hop = hops[j - 1]!;
    const refuse = async (code: TreasuryErrorCode | string) => {
      this.records()[msg.pid] = {
        pid: msg.pid,
        route: msg.route,
        index: j,
        amounts,
        hops: [],
        feeRate: msg.fee_rate,
        phase: 'aborted',
        code,
        resolvedAt: Date.now(),
      };
      this.prune();
      this.h.queue(peerId, { t: 'mh_abort', pid: msg.pid, code });
      await this.h.commit();
    };
    if (
      msg.route.length !== amounts.length + 1 ||
      msg.route[j] !== this.h.nodeId ||
      msg.route[j - 1] !== peerId ||
      hop.ch !== msg.ch ||
      hop.from !== peerId ||
      hop.to !== this.h.nodeId ||
      hop.amount !== amounts[j - 1] ||
      new Set(msg.route).size !== msg.route.length
    ) {
      return refuse('invalid_argument');
    }
    if (this.h.isCommittee()) return refuse('multihop_unsupported');
    const ch = this.h.state.channels[msg.ch];
    if (!ch || ch.peerId !== peerId) return refuse('channel_not_open');
    const busy = refusal(ch, 'lock');
    if (busy) return refuse(busy);
    // Payments still in flight on the channel make the two views differ: busy for now, retry.
    if (!this.matches(hop, ch)) return refuse('channel_busy');
    const rec: MhPayment = {
      pid: msg.pid,
      route: msg.route,
      index: j,
      amounts,
      hops,
      feeRate: msg.fee_rate,
      phase: 'locked',
    };
    if (j === msg.route.length - 1) {
      // The destination: every channel is described now; build τ, sign what we can, send it back.
      let signed: string;
      let plan: SpendPlan;
      try {
        plan = this.plan(hops, msg.fee_rate);
        signed = signPathInputs(plan.spend.tx.toHex(), pathInputs(hops), (o) => this.keysFor(o));
      } catch (err) {
        return refuse(err instanceof TreasuryError ? err.code : 'state_mismatch');
      }
      lock(ch, msg.pid);
      Object.assign(rec, { phase: 'signed', tx: signed, txid: plan.txid });
      this.records()[msg.pid] = rec;
      this.h.queue(peerId, { t: 'mh_signed', pid: msg.pid, hops: hops.map(toWire), tx: signed });
      await this.h.commit();
      return;
    }
    const out = amounts[j]!;
    if (amounts[j - 1]! - out < forwardFee(this.h.state.config.fees, out)) return refuse('fee_insufficient');
    const nextPeer = msg.route[j + 1]!;
    if (!this.h.connected(nextPeer)) return refuse('peer_not_connected');
    const candidates = this.openChannelsTo(nextPeer);
    if (candidates.length === 0) return refuse('no_route');
    const free = candidates.filter(isFree);
    if (free.length === 0) return refuse('channel_busy');
    const next = free.find((c) => spendable(this.h.state, c) >= out);
    if (!next) return refuse('insufficient_capacity');
    lock(ch, msg.pid);
    lock(next, msg.pid);
    rec.hops = [...hops, this.describe(next, out)];
    this.records()[msg.pid] = rec;
    this.h.queue(nextPeer, this.lockMessage(rec));
    this.arm(rec);
    await this.h.commit();
  }

  private async onSigned(peerId: string, pid: string, wire: MhHopWire[], tx: string): Promise<void> {
    const rec = this.records()[pid];
    if (!rec || rec.phase !== 'locked' || rec.route[rec.index + 1] !== peerId) return;
    const hops = wire.map(fromWire);
    const consistent =
      hops.length === rec.route.length - 1 &&
      hops.every((h, i) => h.from === rec.route[i] && h.to === rec.route[i + 1] && h.amount === rec.amounts[i]) &&
      rec.hops.every((h, i) => sameHop(h, hops[i]!));
    let plan: SpendPlan | null = null;
    try {
      if (consistent) plan = this.plan(hops, rec.feeRate);
    } catch {
      plan = null;
    }
    if (!plan || txidOf(tx) !== plan.txid) {
      this.abort(rec, 'state_mismatch');
      await this.h.commit();
      return;
    }
    const signed = signPathInputs(tx, pathInputs(hops), (o) => this.keysFor(o));
    rec.hops = hops;
    rec.tx = signed;
    rec.txid = plan.txid;
    this.disarm(pid);
    if (rec.index > 0) {
      rec.phase = 'signed';
      this.h.queue(rec.route[rec.index - 1]!, { t: 'mh_signed', pid, hops: wire, tx: signed });
      await this.h.commit();
      return;
    }
    // The payer: τ must now be complete; from here on there is no abort.
    const complete = completePathAsPayer(signed, pathInputs(hops), (o) => this.keysFor(o));
    if (!complete) {
      this.abort(rec, 'state_mismatch');
      await this.h.commit();
      return;
    }
    rec.tx = complete;
    rec.phase = 'committed';
    this.h.queue(rec.route[1]!, { t: 'mh_commit', pid, tx: complete });
    await this.h.commit();
  }

  private async onCommit(peerId: string, pid: string, tx: string): Promise<void> {
    const rec = this.records()[pid];
    if (!rec || rec.phase !== 'signed' || rec.route[rec.index - 1] !== peerId) return;
    // The payer verified every signature of τ before committing (its enclave runs this code); a hop
    // checks that this is the τ it signed, complete. Verifying every signature again at every hop would
    // cost each hop one ECDSA verification per input of the path, per payment.
    if (txidOf(tx) !== rec.txid || !pathWitnessed(tx, pathInputs(rec.hops).length)) return;
    rec.tx = tx;
    if (rec.index === rec.route.length - 1) {
      // Everyone before us is committed: the new state is certain.
      this.release(rec);
    } else {
      rec.phase = 'committed';
      this.h.queue(rec.route[rec.index + 1]!, { t: 'mh_commit', pid, tx });
    }
    await this.h.commit();
  }

  private async onRelease(peerId: string, pid: string): Promise<void> {
    const rec = this.records()[pid];
    if (!rec || rec.phase !== 'committed' || rec.route[rec.index + 1] !== peerId) return;
    this.release(rec);
    await this.h.commit();
    if (rec.index === 0) this.settleWaiter(rec);
  }

  private async onUnlock(peerId: string, pid: string): Promise<void> {
    const rec = this.records()[pid];
    if (!rec || rec.phase !== 'released' || rec.tauOut || rec.route[rec.index - 1] !== peerId) return;
    this.finish(rec, true);
    await this.h.commit();
  }

  /**
   * An abort from a neighbour. Before COMMIT, always. Committed, only from downstream: a downstream hop
   * aborts only while it is not committed (so no hop after it holds τ complete) and only because the old
   * state won (its own or a neighbour's old-state settlement, or an abort from its downstream for that
   * reason); the committed hops upstream, the only ones holding τ complete, drop it together, so τ is
   * never broadcast and the old state is the outcome everywhere.
   */
  private async onAbort(peerId: string, pid: string, code: string): Promise<void> {
    const rec = this.records()[pid];
    if (!rec) return;
    const upstream = rec.route[rec.index - 1] === peerId;
    const downstream = rec.route[rec.index + 1] === peerId;
    if (!upstream && !downstream) return;
    if (rec.phase !== 'locked' && rec.phase !== 'signed' && !(rec.phase === 'committed' && downstream && !rec.tauOut))
      return;
    this.abort(rec, code, peerId);
    await this.h.commit();
  }

  // ───────────────────────────── state changes ─────────────────────────────

  /**
   * The new state: our channels of the path take the payment and τ is dropped; the release goes back
   * upstream. The channels stay locked until the unlock wave (the payer starts it here), since hops
   * upstream may still hold τ; a hop that handed τ out passes neither on.
   */
  private release(rec: MhPayment, acknowledged = true): void {
    this.applyNew(rec, acknowledged);
    rec.phase = 'released';
    delete rec.tx;
    if (rec.tauOut) return;
    if (rec.index > 0) this.h.queue(rec.route[rec.index - 1]!, { t: 'mh_release', pid: rec.pid });
    else this.finish(rec, true);
  }

  /** Released and no enclave holds τ any more (or the chain decided): unlock; `forward` passes the unlock wave on. */
  private finish(rec: MhPayment, forward: boolean): void {
    this.unlock(rec);
    rec.phase = 'done';
    rec.resolvedAt = Date.now();
    const next = rec.route[rec.index + 1];
    if (!forward) rec.quiet = true;
    if (forward && !rec.tauOut && next) this.h.queue(next, { t: 'mh_unlock', pid: rec.pid });
    this.slim(rec);
    this.prune();
  }

  /** A channel of a released payment is being settled: it no longer needs the lock; the payment is done once none is held. */
  private channelClosing(rec: MhPayment, ch: Channel): void {
    if (rec.phase !== 'released') return;
    unlock(ch, rec.pid);
    if (this.myChannels(rec).every((c) => c.lockedBy !== rec.pid)) this.finish(rec, false);
  }

  /** A resolved payment keeps only what answering re-sent messages needs: the sealed state stays small. */
  private slim(rec: MhPayment): void {
    rec.hops = [];
    delete rec.tx;
  }

  private applyNew(rec: MhPayment, acknowledged: boolean): void {
    const i = rec.index;
    if (i > 0) {
      const prev = this.h.state.channels[rec.hops[i - 1]!.ch]!;
      applyHopCredit(prev, rec.amounts[i - 1]!);
      if (i === rec.route.length - 1) {
        this.h.event({
          type: 'pay_received',
          channel_id: prev.id,
          amounts: [Number(rec.amounts[i - 1]!)],
          total: prev.received.toString(),
        });
      } else {
        this.h.event({ type: 'channel_updated', channel_id: prev.id, status: prev.status });
      }
    }
    if (i < rec.route.length - 1) {
      const next = this.h.state.channels[rec.hops[i]!.ch]!;
      // Released from downstream: the peer had everything we sent before the lock (its view matched
      // ours) and applied this payment before releasing.
      applyHopDebit(next, rec.amounts[i]!, acknowledged);
      this.h.event({ type: 'channel_updated', channel_id: next.id, status: next.status });
    }
  }

  /** The old state stays: unlock, tell the neighbours (but `except`, who told us), fail the payer's call. */
  private abort(rec: MhPayment, code: string, except?: string): void {
    this.unlock(rec);
    rec.phase = 'aborted';
    rec.code = code;
    rec.resolvedAt = Date.now();
    this.disarm(rec.pid);
    for (const n of [rec.route[rec.index - 1], rec.route[rec.index + 1]]) {
      if (n && n !== except) this.h.queue(n, { t: 'mh_abort', pid: rec.pid, code });
    }
    const w = this.waiters.get(rec.pid);
    if (w) {
      this.waiters.delete(rec.pid);
      const known = code in ERROR_CODES ? (code as TreasuryErrorCode) : 'peer_refused';
      const err = new TreasuryError(known, `multi-hop payment aborted: ${code}`);
      void this.h.commit().then(
        () => w.reject(err),
        () => w.reject(err),
      );
    }
    this.slim(rec);
    this.prune();
  }

  private settleWaiter(rec: MhPayment): void {
    const w = this.waiters.get(rec.pid);
    if (!w) return;
    this.waiters.delete(rec.pid);
    w.resolve(this.result(rec));
  }

  private unlock(rec: MhPayment): void {
    for (const c of this.myChannels(rec)) unlock(c, rec.pid);
  }

  private myChannels(rec: MhPayment): Channel[] {
    const ids = [rec.hops[rec.index - 1]?.ch, rec.hops[rec.index]?.ch].filter((x): x is string => !!x);
    return ids.map((id) => this.h.state.channels[id]).filter((c): c is Channel => !!c);
  }

  private prune(): void {
    const resolved = Object.values(this.records()).filter((r) => r.resolvedAt !== undefined);
    if (resolved.length <= KEEP_RESOLVED) return;
    resolved.sort((a, b) => a.resolvedAt! - b.resolvedAt!);
    for (const r of resolved.slice(0, resolved.length - KEEP_RESOLVED)) delete this.records()[r.pid];
  }

  private arm(rec: MhPayment): void {
    this.disarm(rec.pid);
    const ms = rec.index === 0 ? this.h.timeoutMs : 2 * this.h.timeoutMs;
    const timer = setTimeout(() => {
      this.timers.delete(rec.pid);
      // Only a hop that has not passed τ upstream yet may give up alone: without it τ cannot be completed.
      if (rec.phase !== 'locked') return;
      this.abort(rec, 'timeout');
      void this.h.commit().catch(() => undefined);
    }, ms);
    this.timers.set(rec.pid, timer);
  }

  private disarm(pid: string): void {
    const t = this.timers.get(pid);
    if (t) clearTimeout(t);
    this.timers.delete(pid);
  }

  // ───────────────────────────── channel events from the treasury ─────────────────────────────

  /**
   * A payment from `peerId` on a channel we hold. From downstream while committed: the peer has released,
   * so the new state is certain. From upstream while released: the peer has unlocked (it could not pay
   * otherwise), which follows the payer's release: this is its unlock, overtaken by its payment.
   */
  peerPaidOnLocked(ch: Channel, peerId: string): void {
    const rec = ch.lockedBy ? this.records()[ch.lockedBy] : undefined;
    if (rec && rec.phase === 'committed' && rec.route[rec.index + 1] === peerId) {
      this.release(rec);
      if (rec.index === 0)
        void this.h.commit().then(
          () => this.settleWaiter(rec),
          () => undefined,
        );
    } else if (rec && rec.phase === 'released' && !rec.tauOut && rec.route[rec.index - 1] === peerId) {
      this.finish(rec, true);
    }
  }

  /**
   * We settle a locked channel. Before COMMIT: the old state, and the payment aborts (returns null: the
   * caller settles as usual). Committed: τ, handed to the host to broadcast, and nothing changes here yet:
   * the channels close when τ is seen spending their deposits (the host's watcher, `spentOnChain`). Should
   * an old-state settlement of another path channel win the race to the chain instead, τ never confirms
   * and that settlement decides (old), with no channel of ours closed on τ's behalf.
   */
  async localSettle(
    ch: Channel,
  ): Promise<{ txid: string; hex: string; fee: bigint; local: bigint; remote: bigint } | null> {
    const rec = this.records()[ch.lockedBy!];
    if (!rec || rec.phase === 'locked' || rec.phase === 'signed') {
      if (rec) this.abort(rec, 'channel_closed');
      else unlock(ch);
      return null;
    }
    // Released: the new state is applied; the caller settles it as usual (it pays this channel what τ pays
    // it), and the lock holds until that settlement has closed the channel (see closedLocally).
    if (rec.phase === 'released') return null;
    if (rec.phase !== 'committed' || !rec.tx || !rec.txid) {
      unlock(ch);
      return null;
    }
    // τ only if every input is still unspent (as far as our host knows): otherwise the chain decides.
    for (const input of pathInputs(rec.hops)) {
      const [txid, vout] = input.outpoint.split(':') as [string, string];
      const info = await this.h.getTxOut(txid, Number(vout));
      if (!info || !info.unspent)
        throw new TreasuryError(
          'multihop_in_doubt',
          `an input of the path settlement ${rec.txid} is already spent: waiting for the chain to show which state won`,
        );
    }
    if (rec.phase !== 'committed' || !rec.tx)
      throw new TreasuryError('multihop_in_doubt', 'the payment changed state meanwhile; try again');
    const hop = rec.hops.find((x) => x.ch === ch.id)!;
    const local = hop.from === this.h.nodeId ? hop.fromOld - hop.amount : hop.toOld + hop.amount;
    const remote = hop.from === this.h.nodeId ? hop.toOld + hop.amount : hop.fromOld - hop.amount;
    const out = {
      txid: rec.txid,
      hex: rec.tx,
      fee: rec.index === 0 ? this.plan(rec.hops, rec.feeRate).fee : 0n,
      local,
      remote,
    };
    // The freeze is durable before τ leaves: a restart must not forget that the host may hold it.
    rec.tauOut = true;
    await this.h.commit();
    return out;
  }

  /** We settled a channel held by a released payment (in the new state): its lock is no longer needed. */
  closedLocally(ch: Channel): void {
    const rec = ch.lockedBy ? this.records()[ch.lockedBy] : undefined;
    if (rec) this.channelClosing(rec, ch);
  }

  /** A closed channel of a payment whose τ is out, closed on the peer's word: only the chain can resolve it. */
  awaitsChain(ch: Channel): boolean {
    const rec = ch.lockedBy ? this.records()[ch.lockedBy] : undefined;
    return !!rec && rec.phase === 'committed' && !!rec.tauOut;
  }

  /**
   * τ settles the path: the new state (applied here unless already), every channel of ours on it closed by
   * τ. Nothing is passed on: every hop's own watcher sees τ spend its channels, and a host that showed its
   * enclave a τ it never broadcast must not thereby unlock anyone else's channel.
   */
  private resolveByTau(rec: MhPayment): void {
    const mine = this.myChannels(rec);
    const tx = rec.tx;
    if (rec.phase !== 'released') this.applyNew(rec, false);
    rec.phase = 'released';
    this.finish(rec, false);
    for (const c of mine) {
      if (c.status === 'closed') continue;
      this.h.closeChannel(c, { txid: rec.txid!, by: 'remote', ...(tx ? { hex: tx } : {}) });
    }
    if (rec.index === 0)
      void this.h.commit().then(
        () => this.settleWaiter(rec),
        () => undefined,
      );
  }

  /**
   * A locked channel was settled by the peer or seen spent on chain by `txid`. `newState` says whether that
   * settlement paid the new state (known from the peer's totals or from our output), when it is not τ.
   */
  settledElsewhere(
    ch: Channel,
    txid: string,
    newState: (rec: MhPayment, hop: MhHop) => boolean,
    onChain = false,
  ): void {
    const rec = ch.lockedBy ? this.records()[ch.lockedBy] : undefined;
    if (!rec || rec.phase === 'done' || rec.phase === 'aborted') {
      unlock(ch);
      return;
    }
    // τ is this payment's outcome only while the payment still holds the channel (it cannot have moved
    // since); a τ of an earlier payment is an ordinary settlement of a channel that moved on.
    if (rec.txid && txid === rec.txid) {
      this.resolveByTau(rec);
      return;
    }
    if (rec.phase === 'locked' || rec.phase === 'signed') {
      this.abort(rec, 'channel_closed');
      return;
    }
    if (rec.phase === 'committed') {
      const hop = rec.hops.find((x) => x.ch === ch.id)!;
      const isNew = newState(rec, hop);
      // τ is out and only the peer says it settled the old state: τ may still confirm, the chain decides.
      if (rec.tauOut && !onChain && !isNew) return;
      // Another transaction spends an input of τ on chain: τ can never confirm, the freeze has no object.
      if (onChain) delete rec.tauOut;
      if (!isNew) {
        this.abort(rec, 'settled_old');
        return;
      }
      this.release(rec, false);
      if (rec.index === 0)
        void this.h.commit().then(
          () => this.settleWaiter(rec),
          () => undefined,
        );
    }
    this.channelClosing(rec, ch);
  }

  /**
   * Whether a settlement of `hop`'s channel by the peer was of the new state. An old-state settlement can
   * only come from a peer that was not committed, whose channel was locked since our description of it:
   * it pays us exactly our old balance. Anything else is the new state (possibly with the peer's direct
   * payments made after its release on top).
   */
  paysNewState(txHex: string, ch: Channel, hop: MhHop): boolean {
    const old = hop.from === this.h.nodeId ? hop.fromOld : hop.toOld;
    const paid = valuePaidTo(txHex, ch.myPayout);
    return paid !== null && paid !== old;
  }

  /** After a reconnection: re-send what the peer may have missed, from the sealed records. */
  resync(peerId: string): void {
    for (const rec of Object.values(this.records())) {
      const prev = rec.route[rec.index - 1];
      const next = rec.route[rec.index + 1];
      if (prev !== peerId && next !== peerId) continue;
      if (rec.phase === 'locked' && next === peerId) this.h.queue(peerId, this.lockMessage(rec));
      else if (rec.phase === 'signed' && prev === peerId)
        this.h.queue(peerId, { t: 'mh_signed', pid: rec.pid, hops: rec.hops.map(toWire), tx: rec.tx! });
      else if (rec.phase === 'committed' && next === peerId)
        this.h.queue(peerId, { t: 'mh_commit', pid: rec.pid, tx: rec.tx! });
      else if ((rec.phase === 'released' || rec.phase === 'done') && prev === peerId && !rec.tauOut && !rec.quiet)
        this.h.queue(peerId, { t: 'mh_release', pid: rec.pid });
      else if (rec.phase === 'done' && next === peerId && !rec.tauOut && !rec.quiet)
        this.h.queue(peerId, { t: 'mh_unlock', pid: rec.pid });
      else if (rec.phase === 'aborted')
        this.h.queue(peerId, { t: 'mh_abort', pid: rec.pid, code: rec.code ?? 'aborted' });
    }
  }

  view() {
    return Object.values(this.records()).map((r) => ({
      payment_id: r.pid,
      role: r.index === 0 ? 'payer' : r.index === r.route.length - 1 ? 'destination' : 'intermediary',
      phase: r.phase,
      route: r.route,
      amounts: r.amounts.map(String),
      txid: r.txid ?? null,
      code: r.code ?? null,
    }));
  }

  // ───────────────────────────── routing gossip ─────────────────────────────

  /** Announces our channels if they changed (or always to `peer`), and gives `peer` the whole graph. */
  gossip(peer?: string): void {
    if (this.h.isCommittee()) return; // committees take no part in multi-hop payments
    const fees = this.h.state.config.fees ?? { base: 0, ppm: 0 };
    const channels = Object.values(this.h.state.channels)
      .filter((c) => c.status === 'open' && c.peerPayout)
      .map((c) => ({
        ch: c.id,
        peer: c.peerId,
        cap: (() => {
          const s = spendable(this.h.state, c);
          return (s > 0n ? s : 0n).toString();
        })(),
      }));
    const key = JSON.stringify([fees, channels]);
    const shape = JSON.stringify([fees, channels.map((c) => [c.ch, c.peer])]);
    const now = Date.now();
    const bigMove = channels.some((c) => {
      const before = this.announcedCaps.get(c.ch) ?? 0n;
      const diff = BigInt(c.cap) - before;
      return (diff < 0n ? -diff : diff) * 8n >= before && diff !== 0n;
    });
    if (
      key !== this.announced &&
      (shape !== this.announcedShape || bigMove || now - this.announcedAt >= this.capacityRefreshMs)
    ) {
      this.announced = key;
      this.announcedShape = shape;
      this.announcedCaps = new Map(channels.map((c) => [c.ch, BigInt(c.cap)]));
      this.announcedAt = now;
      this.seq = Math.max(this.seq + 1, now);
      const ann: AnnouncementWire = {
        node: this.h.nodeId,
        seq: this.seq,
        fee_base: fees.base,
        fee_ppm: fees.ppm,
        channels,
      };
      const sig = signAnnouncement(ann, this.h.identityKey());
      this.graph.set(this.h.nodeId, { ann, sig });
      for (const p of this.h.peers()) this.h.sendNow(p, { t: 'gossip', ann, sig });
    }
    if (peer) for (const { ann, sig } of this.graph.values()) this.h.sendNow(peer, { t: 'gossip', ann, sig });
  }

  private onGossip(peerId: string, ann: AnnouncementWire, sig: string): void {
    if (ann.node === this.h.nodeId) return;
    const known = this.graph.get(ann.node);
    if (known && known.ann.seq >= ann.seq) return;
    if (!verifyAnnouncement(ann, sig)) return;
    this.graph.set(ann.node, { ann, sig });
    for (const p of this.h.peers()) if (p !== peerId && p !== ann.node) this.h.sendNow(p, { t: 'gossip', ann, sig });
  }

  graphView() {
    return [...this.graph.values()].map(({ ann }) => ({
      node_id: ann.node,
      seq: ann.seq,
      fee_base_sat: ann.fee_base,
      fee_ppm: ann.fee_ppm,
      channels: ann.channels.map((c) => ({ channel_id: c.ch, peer_id: c.peer, capacity_sat: c.cap })),
    }));
  }

  // ───────────────────────────── helpers ─────────────────────────────

  private lockMessage(rec: MhPayment): MultiHopMessage {
    const hop = rec.hops[rec.index]!;
    return {
      t: 'mh_lock',
      pid: rec.pid,
      ch: hop.ch,
      route: rec.route,
      amounts: rec.amounts.map(String),
      hops: rec.hops.slice(0, rec.index + 1).map(toWire),
      fee_rate: rec.feeRate,
    };
  }

  /** Our outgoing channel as the next hop will check it. */
  private describe(ch: Channel, amount: bigint): MhHop {
    return {
      ch: ch.id,
      from: this.h.nodeId,
      to: ch.peerId,
      amount,
      fromOld: localBalance(this.h.state, ch),
      toOld: remoteBalance(ch),
      fromPayout: ch.myPayout,
      toPayout: ch.peerPayout!,
      inputs: [
        ...ch.myDeposits.map((id) => {
          const d = this.h.state.deposits[id]!;
          return { outpoint: d.outpoint!, value: d.value!, witnessScript: d.witnessScript };
        }),
        ...ch.peerDeposits.map((d) => ({ outpoint: d.outpoint, value: d.value, witnessScript: d.witnessScript })),
      ],
    };
  }

  /** Whether the sender's description of our incoming channel is exactly our own view of it. */
  private matches(hop: MhHop, ch: Channel): boolean {
    const mine = this.describe(ch, hop.amount);
    const key = (h: MhHop) =>
      h.inputs
        .map((d) => `${d.outpoint}|${d.value}|${d.witnessScript}`)
        .sort()
        .join(',');
    return (
      mine.fromOld === hop.toOld &&
      mine.toOld === hop.fromOld &&
      mine.fromPayout === hop.toPayout &&
      mine.toPayout === hop.fromPayout &&
      hop.fromOld >= hop.amount &&
      key(mine) === key(hop)
    );
  }

  private plan(hops: MhHop[], feeRate: number): SpendPlan {
    const outputs = hops.flatMap((h) => [
      { script: h.fromPayout, value: h.fromOld - h.amount },
      { script: h.toPayout, value: h.toOld + h.amount },
    ]);
    return planPathSettlement({ inputs: pathInputs(hops), outputs, payerScript: hops[0]!.fromPayout, feeRate });
  }

  /** Keys of a deposit of an open channel only: a closed channel's deposits are never signed for again. */
  private keysFor(outpoint: string): { m: number; privkeys: string[] } | null {
    const own = Object.values(this.h.state.deposits).find((d) => d.outpoint === outpoint && d.status === 'in_channel');
    if (own && own.channelId && this.h.state.channels[own.channelId]?.status === 'open')
      return { m: own.m, privkeys: own.privkeys };
    for (const c of Object.values(this.h.state.channels)) {
      if (c.status !== 'open') continue;
      const d = c.peerDeposits.find((x) => x.outpoint === outpoint);
      if (d) return { m: d.m, privkeys: d.privkeys };
    }
    return null;
  }
}

function pathInputs(hops: MhHop[]): PathInput[] {
  return hops.flatMap((h) => h.inputs);
}

function sameHop(a: MhHop, b: MhHop): boolean {
  return JSON.stringify(toWire(a)) === JSON.stringify(toWire(b));
}

export function toWire(h: MhHop): MhHopWire {
  return {
    ch: h.ch,
    from: h.from,
    to: h.to,
    amount: h.amount.toString(),
    from_old: h.fromOld.toString(),
    to_old: h.toOld.toString(),
    from_payout: h.fromPayout,
    to_payout: h.toPayout,
    inputs: h.inputs.map((d) => ({ outpoint: d.outpoint, value: d.value.toString(), script: d.witnessScript })),
  };
}

export function fromWire(w: MhHopWire): MhHop {
  return {
    ch: w.ch,
    from: w.from,
    to: w.to,
    amount: BigInt(w.amount),
    fromOld: BigInt(w.from_old),
    toOld: BigInt(w.to_old),
    fromPayout: w.from_payout,
    toPayout: w.to_payout,
    inputs: w.inputs.map((d) => ({ outpoint: d.outpoint, value: BigInt(d.value), witnessScript: d.script })),
  };
}
