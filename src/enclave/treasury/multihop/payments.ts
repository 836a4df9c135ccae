/**
 * The payments this treasury takes part in, and the state changes every side of the protocol shares:
 * release (the new state), finish (unlock), abort (the old state), a held channel closing. Each change
 * builds the record of the next phase (records.ts) and puts it in the sealed state in place of the last
 * one: code that keeps a record across an await reads it again by id. Which change happens when is the
 * table in phases.ts; this file only carries them out.
 */
import { TREASURY_ERRORS as ERROR_CODES, TreasuryError, type TreasuryErrorCode } from '../errors.ts';
import type { MultiHopMessage } from '../../protocol/messages.ts';
import { applyHopCredit, applyHopDebit, unlock } from '../channel.ts';
import { paidSig } from '../channel-wire.ts';
import type { Channel } from '../state.ts';
import type { MultiHopHost, MultiHopResult } from './host.ts';
import { describe, toWire } from './path.ts';
import { noteRoundDropped, resolveRoundRefs } from './payer-refs.ts';
import { step } from './phases.ts';
import {
  baseOf,
  isHolding,
  type MhAborted,
  type MhCommitted,
  type MhDone,
  type MhHolding,
  type MhLocked,
  type MhPayment,
  type MhReleased,
  type MhParts,
  type MhSigned,
  roleOf,
} from './records.ts';

/** Resolved payments kept to answer re-sent messages; older ones are dropped. */
const KEEP_RESOLVED = 64;

/** The payer's call, waiting for its round to resolve; `channel` is the path's first channel, ours. */
interface Waiter {
  channel: string;
  /** The round's payments the path left out (indices into those that travel), known once SIGN is back. */
  dropped: number[];
  resolve: (r: RoundReleased) => void;
  reject: (e: TreasuryError) => void;
}

/** A released round as the payer's call learns it: the result, and which of its payments did not go on. */
export interface RoundReleased {
  result: MultiHopResult;
  dropped: number[];
}

export class Payments {
  private readonly waiters = new Map<string, Waiter>();
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();
  /** Told whenever a payment here unlocks its channels (LOCKs waiting for one go again: lock-queue.ts). */
  onUnlock?: () => void;

  constructor(readonly h: MultiHopHost) {
    this.armWaiting();
  }

  /**
   * After a restart or a promotion: payments still locking get their timeout again, and so does a committee
   * payer that stopped while its members signed τ (it never committed: nobody holds τ complete).
   */
  armWaiting(): void {
    for (const rec of Object.values(this.records()))
      if (rec.phase === 'locked' || (rec.phase === 'signed' && rec.index === 0)) this.arm(rec);
  }

  records(): Record<string, MhPayment> {
    return (this.h.state.multihop ??= {});
  }

  get(pid: string | undefined): MhPayment | undefined {
    return pid === undefined ? undefined : this.records()[pid];
  }

  /** The record of a channel's lock, if any. */
  holding(ch: Channel): MhPayment | undefined {
    return this.get(ch.lockedBy);
  }

  put<R extends MhPayment>(rec: R): R {
    this.records()[rec.pid] = rec;
    // A keyed round's refs take its outcome in the same step (and so the same seal) as the record.
    resolveRoundRefs(this.h.state, rec);
    return rec;
  }

  /** The payer's call for round `pid` waits for the outcome (rejected: the error, resolved: the result). */
  wait(pid: string, channel: string): Promise<RoundReleased> {
    return new Promise<RoundReleased>((resolve, reject) =>
      this.waiters.set(pid, { channel, dropped: [], resolve, reject }),
    );
  }

  /** SIGN came back to the payer: the payments of round `pid` the path left out. */
  noteDropped(pid: string, dropped: number[]): void {
    noteRoundDropped(this.h.state, pid, dropped);
    const w = this.waiters.get(pid);
    if (w) w.dropped = dropped;
  }

  /**
   * Tells the host of round `rec` (MhRoundEvent, released with the next seal): at its first record here
   * with each payment's part (`each`), when SIGN brings the payments left out (`dropped`), at its end.
   */
  announce(rec: MhPayment, each?: Array<{ part: bigint[]; ref?: string }>, dropped?: number[]): void {
    const last = rec.amounts.length - 1;
    const payments = each?.map(({ part, ref }) => ({
      ...(ref ? { payment_id: ref } : {}),
      amount: part[last]!.toString(),
      fee: (part[0]! - part[last]!).toString(),
    }));
    this.h.event({
      type: 'mh_round',
      round_id: rec.pid,
      role: roleOf(rec),
      phase: rec.phase,
      route: rec.route,
      amounts: rec.amounts.map(String),
      txid: 'txid' in rec ? rec.txid : null,
      code: rec.phase === 'aborted' ? rec.code : null,
      ...(payments ? { payments } : {}),
      ...(dropped && dropped.length > 0 ? { dropped } : {}),
    });
  }

  lockMessage(rec: MhLocked): MultiHopMessage {
    const hop = rec.hops[rec.index]!;
    return {
      t: 'mh_lock',
      pid: rec.pid,
      ch: hop.ch,
      route: rec.route,
      amounts: rec.amounts.map(String),
      hops: rec.hops.slice(0, rec.index + 1).map(toWire),
      fee_rate: rec.feeRate,
      ...(rec.round ? { parts: rec.round.parts.map((part) => part.map(String)), dropped: rec.round.dropped } : {}),
    };
  }

  /**
   * COMMIT for the next hop, with our signature of the total we will have paid it on our outgoing channel
   * when the peer is a committee (its backups credit nothing else; the channel is locked, so `sent` is
   * still the old total).
   */
  commitMessage(rec: MhCommitted): MultiHopMessage {
    const ch = this.h.state.channels[rec.hops[rec.index]!.ch];
    const sig = ch ? paidSig(this.h.state, ch, ch.sent + rec.amounts[rec.index]!) : {};
    return { t: 'mh_commit', pid: rec.pid, tx: rec.tx, ...sig };
  }

  /** Our outgoing channel as the next hop will check it. */
  describe(ch: Channel, amount: bigint) {
    return describe(this.h.state, this.h.nodeId, ch, amount);
  }

  // ───────────────────────────── state changes ─────────────────────────────

  /**
   * The new state: our channels of the path take the payment and τ is dropped; the release goes back
   * upstream. The channels stay locked until the unlock wave (the payer starts it here), since hops
   * upstream may still hold τ; a hop that handed τ out passes neither on.
   */
  release(rec: MhSigned | MhCommitted, acknowledged = true): MhReleased | MhDone {
    this.applyNew(rec, acknowledged);
    const released = this.put<MhReleased>({
      ...baseOf(rec),
      phase: 'released',
      hops: rec.hops,
      txid: rec.txid,
      tauOut: rec.phase === 'committed' && rec.tauOut,
    });
    if (released.tauOut) return released;
    if (rec.index > 0) {
      this.h.queue(rec.route[rec.index - 1]!, { t: 'mh_release', pid: rec.pid });
      return released;
    }
    return this.finish(released, true);
  }

  /** Released and no enclave holds τ any more (or the chain decided): unlock; `forward` passes the unlock wave on. */
  finish(rec: MhReleased, forward: boolean): MhDone {
    this.unlock(rec);
    const next = rec.route[rec.index + 1];
    const quiet = !forward || rec.tauOut;
    // An intermediary's UNLOCK may leave before its seal (sendAhead): losing our unlock in a crash only
    // leaves our side locked, released, until the payer's UNLOCK comes again. The payer's waits for its
    // seal: it says the payer dropped τ, which a crash before that seal would undo.
    if (!quiet && next) {
      const unlockMsg = { t: 'mh_unlock' as const, pid: rec.pid };
      if (rec.index > 0) this.h.sendAhead(next, unlockMsg);
      else this.h.queue(next, unlockMsg);
    }
    // A resolved payment keeps only what answering re-sent messages needs: the sealed state stays small.
    const done = this.put<MhDone>({
      ...baseOf(rec),
      phase: 'done',
      txid: rec.txid,
      resolvedAt: Date.now(),
      quiet,
      waitsOn: this.openChannelIds(rec),
    });
    this.announce(done);
    this.prune();
    return done;
  }

  /** A channel of a released payment is being settled: it no longer needs the lock; the payment is done once none is held. */
  channelClosing(rec: MhReleased, ch: Channel): MhReleased | MhDone {
    unlock(ch, rec.pid);
    if (this.myChannels(rec).every((c) => c.lockedBy !== rec.pid)) return this.finish(rec, false);
    return rec;
  }

  applyNew(rec: MhHolding, acknowledged: boolean): void {
    const i = rec.index;
    if (i > 0) {
      const prev = this.h.state.channels[rec.hops[i - 1]!.ch]!;
      applyHopCredit(prev, rec.amounts[i - 1]!);
      if (i === rec.route.length - 1) {
        this.h.event({
          type: 'pay_received',
          channel_id: prev.id,
          amounts: receivedAmounts(rec),
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
  abort(rec: MhHolding, code: string, except?: string): MhAborted {
    this.unlock(rec);
    const aborted = this.put<MhAborted>({
      ...baseOf(rec),
      phase: 'aborted',
      code,
      txid: rec.phase === 'locked' ? null : rec.txid,
      resolvedAt: Date.now(),
      waitsOn: this.openChannelIds(rec),
    });
    this.announce(aborted);
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
    this.prune();
    return aborted;
  }

  /** A LOCK refused before anything was locked: recorded aborted (to answer it again), the sender told. */
  refused(rec: MhAborted, peerId: string): void {
    this.put(rec);
    this.prune();
    this.h.queue(peerId, { t: 'mh_abort', pid: rec.pid, code: rec.code });
  }

  /** The payer's call learns its payment went through (once the state saying so is sealed). */
  settleWaiter(rec: MhPayment): void {
    const w = this.waiters.get(rec.pid);
    if (!w) return;
    this.waiters.delete(rec.pid);
    w.resolve({
      result: {
        payment_id: rec.pid,
        route: rec.route,
        amounts: rec.amounts.map(String),
        fee_sat: (rec.amounts[0]! - rec.amounts[rec.amounts.length - 1]!).toString(),
        channel_id: w.channel,
      },
      dropped: w.dropped,
    });
  }

  /** Seals, then tells the payer's call (for state changes that did not come with a seal of their own). */
  settleWaiterAfterSeal(rec: MhPayment): void {
    if (rec.index === 0)
      void this.h.commit().then(
        () => this.settleWaiter(rec),
        () => undefined,
      );
  }

  unlock(rec: MhHolding): void {
    for (const c of this.myChannels(rec)) unlock(c, rec.pid);
    this.onUnlock?.();
  }

  myChannels(rec: MhHolding): Channel[] {
    const ids = [rec.hops[rec.index - 1]?.ch, rec.hops[rec.index]?.ch].filter((x): x is string => !!x);
    return ids.map((id) => this.h.state.channels[id]).filter((c): c is Channel => !!c);
  }

  /** Our open channels of `rec`: those whose neighbour may still ask about it once it is resolved. */
  private openChannelIds(rec: MhHolding): string[] {
    return this.myChannels(rec)
      .filter((c) => c.status !== 'closed')
      .map((c) => c.id);
  }

  /**
   * The neighbour on channel `ch` has just shown that it locked its side of it again (for another
   * payment), so it is past every payment we resolved on it: no resolved record waits for it any more, and
   * one that waits for nothing else is dropped (records.ts, `Resolution`).
   */
  neighbourMovedOn(ch: string): void {
    const records = this.records();
    for (const rec of Object.values(records)) {
      if ((rec.phase !== 'done' && rec.phase !== 'aborted') || !rec.waitsOn?.includes(ch)) continue;
      const waitsOn = rec.waitsOn.filter((c) => c !== ch);
      if (waitsOn.length === 0) delete records[rec.pid];
      else this.put({ ...rec, waitsOn });
    }
  }

  private prune(): void {
    const resolved = Object.values(this.records()).filter(
      (r): r is MhDone | MhAborted => r.phase === 'done' || r.phase === 'aborted',
    );
    if (resolved.length <= KEEP_RESOLVED) return;
    resolved.sort((a, b) => a.resolvedAt - b.resolvedAt);
    for (const r of resolved.slice(0, resolved.length - KEEP_RESOLVED)) delete this.records()[r.pid];
  }

  /** The LOCK / SIGN wait: the payer waits `timeoutMs`, an intermediary twice that. */
  arm(rec: MhLocked | MhSigned): void {
    this.disarm(rec.pid);
    const ms = rec.index === 0 ? this.h.timeoutMs : 2 * this.h.timeoutMs;
    const timer = setTimeout(() => {
      this.timers.delete(rec.pid);
      // A committee's backup only replicates its primary's records; it arms them again if promoted.
      if (!this.h.takesPart()) return;
      const now = this.get(rec.pid);
      if (!now || !isHolding(now) || step(now, 'timeout')?.action !== 'abort') return;
      // Definite, not in doubt: the table lets only a hop that cannot have let τ be completed give up
      // here (still locked, or a payer that never committed), so every hop keeps the old state. Hence
      // `path_timeout` (4xx), never `timeout` (504: outcome unknown); the neighbours pass it on to the payer.
      this.abort(now, 'path_timeout');
      void this.h.commit().catch(() => undefined);
    }, ms);
    this.timers.set(rec.pid, timer);
  }

  disarm(pid: string): void {
    const t = this.timers.get(pid);
    if (t) clearTimeout(t);
    this.timers.delete(pid);
  }
}

/**
 * What the destination's history shows for a payment it received: each payment of a round that went on,
 * with its own amount (they add up to what the last channel moved), or the one amount.
 */
function receivedAmounts(rec: MhHolding): number[] {
  const total = rec.amounts[rec.amounts.length - 1]!;
  const each = rec.phase === 'signed' ? rec.delivered : undefined;
  if (each && each.reduce((s, a) => s + a, 0n) === total) return each.map(Number);
  return [Number(total)];
}

/** The payments of a round as LOCK carries them (`round`), or a lone payment as its one part. */
export function eachPayment(amounts: bigint[], round?: MhParts): Array<{ part: bigint[] }> {
  return round ? round.parts.map((part) => ({ part })) : [{ part: amounts }];
}
