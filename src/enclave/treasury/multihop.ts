/**
 * Multi-hop payments inside the enclave (docs/protocol/multihop.md): alice pays carol through bob,
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
 *
 * A round (docs/protocol/multihop.md, "Rounds") is one such payment carrying many: the payer plans it
 * (multihop/round.ts: one route, the totals, each payment's share of the fee, the ones that do not fit
 * refused alone) and the hops run the protocol above on its totals, none the wiser.
 *
 * The parts, in multihop/: records.ts (one record type per phase, and how sealed records are read),
 * phases.ts (every transition, as one table), payments.ts (the state changes the table names), payer.ts,
 * round.ts, hop.ts (the messages), settlement.ts (held channels meeting settlements), path.ts (channel
 * descriptions and τ), gossip.ts (routing announcements), host.ts (what all this needs from the treasury).
 * This class is the one face the treasury sees.
 */
import type { MultiHopMessage } from '../protocol/messages.ts';
import type { Channel } from './state.ts';
import { Gossip } from './multihop/gossip.ts';
import { HopMessages } from './multihop/hop.ts';
import type { MultiHopHost, MultiHopResult } from './multihop/host.ts';
import { payRound, type RoundResult } from './multihop/payer.ts';
import type { RoundPayment } from './multihop/round.ts';
import { TreasuryError } from './errors.ts';
import { Payments } from './multihop/payments.ts';
import type { MhHop, MhPayment } from './multihop/records.ts';
import { HeldChannels, type TauSettlement } from './multihop/settlement.ts';
import { peerTreasury } from './multihop/identities.ts';

export type { MultiHopHost, MultiHopResult } from './multihop/host.ts';
export { fromWire, toWire } from './multihop/path.ts';

export class MultiHop {
  private readonly payments: Payments;
  private readonly hop: HopMessages;
  private readonly held: HeldChannels;
  private readonly announcements: Gossip;

  constructor(private readonly h: MultiHopHost) {
    this.payments = new Payments(h);
    this.hop = new HopMessages(this.payments);
    this.held = new HeldChannels(this.payments);
    this.announcements = new Gossip(h);
  }

  /** This treasury on paths: a committee's treasury id whichever member is primary (MultiHopHost.nodeId). */
  get self(): string {
    return this.h.nodeId;
  }

  /**
   * Pays `payments` to `dest` in one path round: resolves once the round is released or aborted, with each
   * payment's outcome (a payment that does not fit, or whose share of the fee is over its limit, is
   * refused alone, before the round starts).
   */
  payRound(dest: string, payments: RoundPayment[], feeRate: number): Promise<RoundResult> {
    return payRound(this.payments, this.graph, dest, payments, feeRate);
  }

  /** One payment, as a round of one: resolves once it is released, rejects when it is refused or aborts. */
  async pay(dest: string, amount: bigint, feeRate: number, maxFee: bigint): Promise<MultiHopResult> {
    const { round, outcomes } = await this.payRound(dest, [{ amount, maxFee }], feeRate);
    const only = outcomes[0]!;
    if (!only.ok) throw new TreasuryError(only.code, only.message);
    return round!;
  }

  /**
   * A message from the session with `session`. The engine names neighbours by their treasury identity
   * (multihop/identities.ts); a session that speaks for none on our paths (a committee's former primary)
   * is not heard.
   */
  async handle(session: string, msg: MultiHopMessage): Promise<void> {
    const peerId = this.h.identityOf(session);
    if (peerId === null) return;
    switch (msg.t) {
      case 'gossip':
        return this.announcements.receive(peerId, msg.ann, msg.sig, msg.by);
      case 'mh_lock':
        return this.hop.onLock(peerId, msg);
      case 'mh_signed':
        return this.hop.onSigned(peerId, msg.pid, msg.hops, msg.tx, msg.dropped);
      case 'mh_commit':
        return this.hop.onCommit(peerId, msg.pid, msg.tx, msg.sig, msg.proof);
      case 'mh_release':
        return this.hop.onRelease(peerId, msg.pid);
      case 'mh_unlock':
        return this.hop.onUnlock(peerId, msg.pid);
      case 'mh_abort':
        return this.hop.onAbort(peerId, msg.pid, msg.code);
    }
  }

  /** After a reconnection (or a rebinding) of `session`: re-send what its treasury may have missed, from the sealed records. */
  resync(session: string): void {
    const peerId = this.h.identityOf(session);
    if (peerId !== null) this.hop.resync(peerId);
  }

  /**
   * This committee member became primary (a view change): it takes over the payments its replica holds,
   * with their LOCK / SIGN waits armed again, as after a restart; the channel peers' resynchronisation
   * then finishes or aborts each of them by the usual rules.
   */
  tookOver(): void {
    this.payments.armWaiting();
  }

  // ───────────────────────────── channel events from the treasury ─────────────────────────────

  /** The channel peer paid on `ch`, which a payment holds. */
  peerPaidOnLocked(ch: Channel): void {
    this.held.peerPaidOnLocked(ch, peerTreasury(ch));
  }

  localSettle(ch: Channel): Promise<TauSettlement | null> {
    return this.held.localSettle(ch);
  }

  closedLocally(ch: Channel): void {
    this.held.closedLocally(ch);
  }

  awaitsChain(ch: Channel): boolean {
    return this.held.awaitsChain(ch);
  }

  settledElsewhere(
    ch: Channel,
    txid: string,
    newState: (rec: MhPayment, hop: MhHop) => boolean,
    onChain = false,
  ): void {
    this.held.settledElsewhere(ch, txid, newState, onChain);
  }

  paysNewState(txHex: string, ch: Channel, hop: MhHop): boolean {
    return this.held.paysNewState(txHex, ch, hop);
  }

  view() {
    return Object.values(this.payments.records()).map((r) => ({
      payment_id: r.pid,
      role: r.index === 0 ? 'payer' : r.index === r.route.length - 1 ? 'destination' : 'intermediary',
      phase: r.phase,
      route: r.route,
      amounts: r.amounts.map(String),
      txid: 'txid' in r ? r.txid : null,
      code: r.phase === 'aborted' ? r.code : null,
    }));
  }

  // ───────────────────────────── routing gossip ─────────────────────────────

  get graph() {
    return this.announcements.graph;
  }

  get capacityRefreshMs(): number {
    return this.announcements.capacityRefreshMs;
  }

  set capacityRefreshMs(ms: number) {
    this.announcements.capacityRefreshMs = ms;
  }

  /** Announces our channels if they changed (or always to `session`), and gives `session` the whole graph. */
  gossip(session?: string): void {
    if (session === undefined) return this.announcements.announce();
    const peer = this.h.identityOf(session);
    if (peer !== null) this.announcements.announce(peer);
  }

  graphView() {
    return this.announcements.view();
  }
}
