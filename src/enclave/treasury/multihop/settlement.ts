/**
 * Channels held by a multi-hop payment meeting the rest of the treasury: a payment from the neighbour on
 * one, our own settlement of one, one settled by the peer or seen spent on chain. What each does in each
 * phase is in the transition table (phases.ts):
 *
 * Before COMMIT a hop may settle its channels alone in the old state (τ can then never confirm: it
 * double-spends); a committed hop settles its path channels only with τ; a released hop settles in the
 * new state. τ handed out freezes the path: see the `tauOut` field of a committed record (records.ts).
 */
import { unlock } from '../channel.ts';
import { TreasuryError } from '../errors.ts';
import type { Channel } from '../state.ts';
import { valuePaidTo } from '../transactions.ts';
import type { Payments } from './payments.ts';
import { pathInputs, plan } from './path.ts';
import { step, stepWithoutRecord, type MhEvent } from './phases.ts';
import {
  baseOf,
  inPhase,
  isHolding,
  type MhCommitted,
  type MhHop,
  type MhPayment,
  type MhReleased,
} from './records.ts';

/** What we pay when we settle a channel of a committed path: τ itself, and what it pays each side. */
export interface TauSettlement {
  txid: string;
  hex: string;
  fee: bigint;
  local: bigint;
  remote: bigint;
}

export class HeldChannels {
  constructor(private readonly p: Payments) {}

  private get h() {
    return this.p.h;
  }

  /**
   * A payment from `peerId` on a channel we hold. From downstream while committed: the peer has released,
   * so the new state is certain. From upstream while released: the peer has unlocked (it could not pay
   * otherwise), which follows the payer's release: this is its unlock, overtaken by its payment.
   */
  peerPaidOnLocked(ch: Channel, peerId: string): void {
    const rec = this.p.holding(ch);
    const row = rec && step(rec, 'paid', peerId);
    if (!row) return;
    if (row.action === 'release' && inPhase(rec, 'committed')) this.p.settleWaiterAfterSeal(this.p.release(rec));
    else if (row.action === 'unlock' && inPhase(rec, 'released')) this.p.finish(rec, true);
  }

  /**
   * We settle a locked channel. Before COMMIT: the old state, and the payment aborts (returns null: the
   * caller settles as usual). Committed: τ, handed to the host to broadcast, and nothing changes here yet:
   * the channels close when τ is seen spending their deposits (the host's watcher, `spentOnChain`). Should
   * an old-state settlement of another path channel win the race to the chain instead, τ never confirms
   * and that settlement decides (old), with no channel of ours closed on τ's behalf.
   */
  async localSettle(ch: Channel): Promise<TauSettlement | null> {
    const rec = this.p.holding(ch);
    const row = rec ? step(rec, 'settle') : stepWithoutRecord('settle', 'intermediary');
    switch (row?.action) {
      case 'abort':
        if (rec && isHolding(rec)) this.p.abort(rec, 'channel_closed');
        return null;
      // Released: the new state is applied; the caller settles it as usual (it pays this channel what τ pays
      // it), and the lock holds until that settlement has closed the channel (see closedLocally).
      case 'settle_new':
        return null;
      case 'hand_out_tau':
        if (rec && inPhase(rec, 'committed')) return this.handOutTau(rec, ch);
        return null;
      default:
        unlock(ch);
        return null;
    }
  }

  private async handOutTau(rec: MhCommitted, ch: Channel): Promise<TauSettlement> {
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
    const now = this.p.get(rec.pid);
    if (!now || !inPhase(now, 'committed'))
      throw new TreasuryError('multihop_in_doubt', 'the payment changed state meanwhile; try again');
    const hop = now.hops.find((x) => x.ch === ch.id)!;
    const local = hop.from === this.h.nodeId ? hop.fromOld - hop.amount : hop.toOld + hop.amount;
    const remote = hop.from === this.h.nodeId ? hop.toOld + hop.amount : hop.fromOld - hop.amount;
    const out = {
      txid: now.txid,
      hex: now.tx,
      fee: now.index === 0 ? plan(now.hops, now.feeRate).fee : 0n,
      local,
      remote,
    };
    // The freeze is durable before τ leaves: a restart must not forget that the host may hold it.
    this.p.put({ ...now, tauOut: true });
    await this.h.commit();
    return out;
  }

  /** We settled a channel held by a released payment (in the new state): its lock is no longer needed. */
  closedLocally(ch: Channel): void {
    const rec = this.p.holding(ch);
    if (rec && step(rec, 'closed') && inPhase(rec, 'released')) this.p.channelClosing(rec, ch);
  }

  /** A closed channel of a payment whose τ is out, closed on the peer's word: only the chain can resolve it. */
  awaitsChain(ch: Channel): boolean {
    const rec = this.p.holding(ch);
    return !!rec && rec.phase === 'committed' && rec.tauOut;
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
    const rec = this.p.holding(ch);
    if (!rec || !isHolding(rec)) {
      const row = rec ? step(rec, 'settled') : stepWithoutRecord('settled', 'intermediary');
      if (row?.action === 'drop_lock') unlock(ch);
      return;
    }
    // τ is this payment's outcome only while the payment still holds the channel (it cannot have moved
    // since); a τ of an earlier payment is an ordinary settlement of a channel that moved on.
    let on: MhEvent;
    if (rec.phase !== 'locked' && txid === rec.txid) on = 'settled_tau';
    else if (rec.phase !== 'committed') on = 'settled';
    else if (
      newState(
        rec,
        rec.hops.find((x) => x.ch === ch.id)!,
      )
    )
      on = 'settled_new';
    else on = onChain ? 'settled_old_on_chain' : 'settled_old';
    const row = step(rec, on);
    switch (row?.action) {
      case 'resolve_by_tau':
        if (rec.phase !== 'locked') this.resolveByTau(rec);
        return;
      case 'abort':
        this.p.abort(rec, rec.phase === 'committed' ? 'settled_old' : 'channel_closed');
        return;
      case 'release_and_close': {
        if (!inPhase(rec, 'committed')) return;
        // Another transaction spends an input of τ on chain: τ can never confirm, the freeze has no object.
        const after = this.p.release(onChain ? { ...rec, tauOut: false } : rec, false);
        this.p.settleWaiterAfterSeal(after);
        if (after.phase === 'released') this.p.channelClosing(after, ch);
        return;
      }
      case 'close_channel':
        if (inPhase(rec, 'released')) this.p.channelClosing(rec, ch);
        return;
      // 'await_chain': τ is out and only the peer says it settled the old state: τ may still confirm.
      default:
        return;
    }
  }

  /**
   * τ settles the path: the new state (applied here unless already), every channel of ours on it closed by
   * τ. Nothing is passed on: every hop's own watcher sees τ spend its channels, and a host that showed its
   * enclave a τ it never broadcast must not thereby unlock anyone else's channel.
   */
  private resolveByTau(rec: Exclude<MhPayment, { phase: 'locked' | 'done' | 'aborted' }>): void {
    const mine = this.p.myChannels(rec);
    const tx = rec.phase === 'released' ? undefined : rec.tx;
    let released: MhReleased;
    if (rec.phase === 'released') released = rec;
    else {
      this.p.applyNew(rec, false);
      released = { ...baseOf(rec), phase: 'released', hops: rec.hops, txid: rec.txid, tauOut: isTauOut(rec) };
    }
    this.p.finish(released, false);
    for (const c of mine) {
      if (c.status === 'closed') continue;
      this.h.closeChannel(c, { txid: rec.txid, by: 'remote', ...(tx ? { hex: tx } : {}) });
    }
    this.p.settleWaiterAfterSeal(rec);
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
}

function isTauOut(rec: MhPayment): boolean {
  return rec.phase === 'committed' && rec.tauOut;
}
