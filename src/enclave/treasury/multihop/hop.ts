/**
 * The protocol messages at every hop (docs/protocol/multihop.md): LOCK travels payer → destination,
 * SIGN back, COMMIT forward, RELEASE back, UNLOCK forward; an ABORT can travel either way before COMMIT.
 * Each handler looks its case up in the transition table (phases.ts) and does nothing when it has no row;
 * the checks a message must pass (the sender's view of our channel, τ's txid, its signatures) are here.
 */
import { committedProofProblem, type CommittedProof } from '../../committee/committed-proof.ts';
import type { MhHopWire, MultiHopMessage } from '../../protocol/messages.ts';
import { verifyPaid } from '../../protocol/peer-sigs.ts';
import { lock, refusal } from '../channel.ts';
import { TreasuryError, type TreasuryErrorCode } from '../errors.ts';
import { forwardFee } from '../routing.ts';
import { spendable, type Channel } from '../state.ts';
import { completePathAsPayer, pathWitnessed, signPathInputs, txidOf, type SpendPlan } from '../transactions.ts';
import { eachPayment, type Payments } from './payments.ts';
import { peerTreasury } from './identities.ts';
import { fromWire, isFree, keysFor, matches, openChannelsTo, pathInputs, plan, sameHop, toWire } from './path.ts';
import { LockQueue } from './lock-queue.ts';
import { fitOn, leavesOutMore, partsProblem, totalsOf, withAmounts } from './parts.ts';
import { step, stepWithoutRecord } from './phases.ts';
import {
  baseOf,
  inPhase,
  isHolding,
  type MhAborted,
  type MhCommitted,
  type MhLocked,
  type MhParts,
  type MhSigned,
} from './records.ts';

type Lock = Extract<MultiHopMessage, { t: 'mh_lock' }>;

/** The longest a LOCK waits here for a channel onward (less when the payer's timeout is short). */
const LOCK_WAIT_MS = 250;

export class HopMessages {
  /** LOCKs waiting here for a channel onward that another round holds (lock-queue.ts). */
  private readonly waiting: LockQueue;

  constructor(private readonly p: Payments) {
    this.waiting = new LockQueue(
      (peerId, msg) => this.onLock(peerId, msg),
      // Well within the payer's wait for SIGN, so that a LOCK refused after waiting still aborts cleanly.
      () => Math.min(LOCK_WAIT_MS, this.h.timeoutMs / 4),
      () => this.h.takesPart(),
    );
    p.onUnlock = () => this.waiting.wake();
  }

  private get h() {
    return this.p.h;
  }

  private keys = (outpoint: string) => keysFor(this.h.state, outpoint);

  async onLock(peerId: string, msg: Lock): Promise<void> {
    const known = this.p.get(msg.pid);
    if (known) {
      if (step(known, 'mh_lock', peerId)?.action === 'resend_abort' && known.phase === 'aborted') {
        this.h.queue(peerId, { t: 'mh_abort', pid: msg.pid, code: known.code });
        await this.h.commit();
      }
      return;
    }
    const j = msg.hops.length;
    let amounts = msg.amounts.map(BigInt);
    let hops = msg.hops.map(fromWire);
    const hop = hops[j - 1]!;
    let round = roundOf(msg);
    const base = () => ({ pid: msg.pid, route: msg.route, index: j, amounts, feeRate: msg.fee_rate });
    const refuse = async (code: TreasuryErrorCode | string) => {
      // The sender locked its side of msg.ch for this LOCK: it waits for our abort on that channel.
      const theirs = this.h.state.channels[msg.ch];
      const waitsOn = theirs && peerTreasury(theirs) === peerId && theirs.status !== 'closed' ? [msg.ch] : [];
      const rec: MhAborted = { ...base(), phase: 'aborted', code, txid: null, resolvedAt: Date.now(), waitsOn };
      this.p.refused(rec, peerId);
      // A well-formed round refused here is a round that ended at once; a malformed LOCK is no round of ours.
      if (code !== 'invalid_argument') this.p.announce(rec, eachPayment(amounts, round), round?.dropped);
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
      new Set(msg.route).size !== msg.route.length ||
      (round && partsProblem(round, amounts) !== null)
    ) {
      return refuse('invalid_argument');
    }
    const ch = this.h.state.channels[msg.ch];
    if (!ch || peerTreasury(ch) !== peerId) return refuse('channel_not_open');
    const busy = refusal(ch, 'lock');
    if (busy) return refuse(busy);
    // Payments still in flight on the channel make the two views differ: busy for now, retry.
    if (!matches(this.h.state, this.h.nodeId, hop, ch)) return refuse('channel_busy');
    const role = j === msg.route.length - 1 ? 'destination' : 'intermediary';
    const row = stepWithoutRecord('mh_lock', role, 'upstream');
    if (row?.action === 'sign_and_return') {
      // The destination: every channel is described now; build τ, sign what we can, send it back.
      let signed: string;
      let spend: SpendPlan;
      try {
        if (round) {
          // τ's chain fee comes out of the payer's side of the first channel; it depends only on the
          // path's deposits and payout scripts, so it is known now: a round's payments that would leave
          // too little for it are left out, in the round's order, like those a hop had no room for.
          const fee = plan(
            withAmounts(
              hops,
              amounts.map(() => 0n),
            ),
            msg.fee_rate,
          ).fee;
          const fitted = fitOn(round, 0, hops[0]!.fromOld - fee);
          if (fitted.dropped.length === fitted.parts.length) return await refuse('fee_exceeds_balance');
          round = fitted;
          amounts = totalsOf(round);
          hops = withAmounts(hops, amounts);
        }
        spend = plan(hops, msg.fee_rate);
        signed = signPathInputs(spend.spend.tx.toHex(), pathInputs(hops), this.keys);
      } catch (err) {
        return refuse(err instanceof TreasuryError ? err.code : 'state_mismatch');
      }
      this.p.neighbourMovedOn(ch.id);
      lock(ch, msg.pid);
      const delivered = round && keptParts(round).map((part) => part[part.length - 1]!);
      const rec = this.p.put<MhSigned>({
        ...base(),
        phase: 'signed',
        hops,
        tx: signed,
        txid: spend.txid,
        ...(round ? { delivered, dropped: round.dropped } : {}),
      });
      this.p.announce(rec, eachPayment(amounts, round), round?.dropped);
      const tx = await this.signedByCommittee(msg.pid, signed);
      if (tx === null) return;
      const dropped = round ? { dropped: round.dropped } : {};
      this.h.queue(peerId, { t: 'mh_signed', pid: msg.pid, hops: hops.map(toWire), tx, ...dropped });
      await this.h.commit();
      return;
    }
    if (row?.action !== 'lock_and_forward') return;
    // Our fee is checked on the round as it reaches us: a payment left out (here or further down) takes
    // its part with it, its share of every fee included, and parts never grow downstream (parts.ts), so
    // we never forward more than we receive.
    if (!this.feeCovered(amounts, j)) return refuse('fee_insufficient');
    const nextPeer = msg.route[j + 1]!;
    if (!this.h.connected(nextPeer)) return refuse('peer_not_connected');
    const candidates = openChannelsTo(this.h.state, nextPeer);
    if (candidates.length === 0) return refuse('no_route');
    const free = candidates.filter(isFree);
    // Every channel onward is held by another round: wait for one to be free (bounded), then refuse.
    if (free.length === 0) return this.waiting.wait(peerId, msg) ? undefined : refuse('channel_busy');
    let next = free.find((c) => spendable(this.h.state, c) >= amounts[j]!);
    if (!next && round) {
      // Short of room for the whole round: the freest channel carries what fits of it, in the round's order.
      const room = (c: Channel) => spendable(this.h.state, c);
      const freest = free.reduce((a, b) => (room(b) > room(a) ? b : a));
      const fitted = fitOn(round, j, room(freest));
      if (fitted.dropped.length < fitted.parts.length) {
        next = freest;
        round = fitted;
        amounts = totalsOf(round);
        hops = withAmounts(hops, amounts);
      }
    }
    if (!next) return refuse('insufficient_capacity');
    this.p.neighbourMovedOn(ch.id);
    lock(ch, msg.pid);
    lock(next, msg.pid);
    const rec = this.p.put<MhLocked>({
      ...base(),
      phase: 'locked',
      hops: [...hops, this.p.describe(next, amounts[j]!)],
      ...(round ? { round } : {}),
    });
    this.p.announce(rec, eachPayment(amounts, round), round?.dropped);
    // Before its seal, when it can (host.ts, sendAhead): forgetting this lock in a crash harms no one.
    this.h.sendAhead(nextPeer, this.p.lockMessage(rec));
    this.p.arm(rec);
    await this.h.commit();
  }

  async onSigned(peerId: string, pid: string, wire: MhHopWire[], tx: string, dropped?: number[]): Promise<void> {
    const rec = this.p.get(pid);
    if (!rec) {
      // Our LOCK left before its seal and a crash lost the lock (sendAhead): the hops after us hold the path
      // locked, `signed`, waiting for us. We never committed (that takes a record), so the old state stands.
      if (stepWithoutRecord('mh_signed', 'intermediary', 'downstream')?.action !== 'abort_forgotten') return;
      this.h.queue(peerId, { t: 'mh_abort', pid, code: 'peer_refused' });
      await this.h.commit();
      return;
    }
    const row = step(rec, 'mh_signed', peerId);
    if (!row || !inPhase(rec, 'locked')) return;
    const hops = wire.map(fromWire);
    // A round may come back with more of its payments left out than we forwarded: what moves is then less.
    const amounts = finalAmounts(rec, dropped ?? []);
    const consistent =
      amounts !== null &&
      hops.length === rec.route.length - 1 &&
      hops.every((h, i) => h.from === rec.route[i] && h.to === rec.route[i + 1] && h.amount === amounts[i]) &&
      withAmounts(rec.hops, amounts).every((h, i) => sameHop(h, hops[i]!));
    let spend: SpendPlan | null = null;
    try {
      if (consistent) spend = plan(hops, rec.feeRate);
    } catch {
      spend = null;
    }
    if (!spend || txidOf(tx) !== spend.txid) {
      this.p.abort(rec, 'state_mismatch');
      await this.h.commit();
      return;
    }
    // The neighbour downstream locked its side of our channel to it for this payment: it is past the earlier ones.
    this.p.neighbourMovedOn(rec.hops[rec.index]!.ch);
    if (rec.round) this.p.noteDropped(pid, dropped ?? []);
    const signed: MhSigned = {
      ...baseOf(rec),
      amounts: amounts!,
      phase: 'signed',
      hops,
      tx: signPathInputs(tx, pathInputs(hops), this.keys),
      txid: spend.txid,
      ...(rec.round ? { dropped: dropped ?? [] } : {}),
    };
    this.p.disarm(pid);
    if (rec.round && dropped && dropped.length > rec.round.dropped.length) this.p.announce(signed, undefined, dropped);
    if (row.action === 'countersign') {
      this.p.put(signed);
      const tx = await this.signedByCommittee(pid, signed.tx);
      if (tx === null) return;
      const left = rec.round ? { dropped: dropped ?? [] } : {};
      this.h.queue(rec.route[rec.index - 1]!, { t: 'mh_signed', pid, hops: wire, tx, ...left });
      await this.h.commit();
      return;
    }
    // A committee payer signs its own deposits with its members first, from the record at this step.
    let held: string | null = signed.tx;
    if (this.h.signTau) {
      this.p.put(signed);
      held = await this.signedByCommittee(pid, signed.tx);
      if (held === null) return;
    }
    // The payer: τ must now be complete; from here on there is no abort.
    const complete = completePathAsPayer(held, pathInputs(hops), this.keys);
    if (!complete) {
      this.p.abort(signed, 'state_mismatch');
      await this.h.commit();
      return;
    }
    const committed = this.p.put<MhCommitted>({ ...signed, phase: 'committed', tx: complete, tauOut: false });
    this.h.queue(rec.route[1]!, this.p.commitMessage(committed));
    await this.h.commit();
  }

  async onCommit(peerId: string, pid: string, tx: string, sig?: string, proof?: CommittedProof): Promise<void> {
    const rec = this.p.get(pid);
    if (!rec || !step(rec, 'mh_commit', peerId) || !inPhase(rec, 'signed')) return;
    // The payer verified every signature of τ before committing (its enclave runs this code); a hop
    // checks that this is the τ it signed, complete. Verifying every signature again at every hop would
    // cost each hop one ECDSA verification per input of the path, per payment.
    if (txidOf(tx) !== rec.txid || !pathWitnessed(tx, pathInputs(rec.hops).length)) return;
    const unproven = this.unprovenCommit(rec, proof);
    if (unproven) {
      const channel = rec.hops[rec.index - 1]!.ch;
      this.h.notify({ type: 'multihop_commit_unproven', payment_id: pid, channel_id: channel, reason: unproven });
      return;
    }
    if (this.h.isCommittee() && !this.notePaidTotal(rec, peerId, sig)) return;
    if (rec.index === rec.route.length - 1) {
      // Everyone before us is committed: the new state is certain.
      this.p.release({ ...rec, tx });
    } else {
      const committed = this.p.put<MhCommitted>({ ...rec, phase: 'committed', tx, tauOut: false });
      this.h.queue(rec.route[rec.index + 1]!, this.p.commitMessage(committed));
    }
    await this.h.commit();
  }

  /** Whether what we receive on the path (channel j − 1) less what we forward (channel j) covers our fee. */
  private feeCovered(amounts: bigint[], j: number): boolean {
    const out = amounts[j]!;
    return amounts[j - 1]! - out >= forwardFee(this.h.state.config.fees, out);
  }

  /**
   * A committee upstream (its roster verified on our incoming channel) commits for us only with every
   * replicating backup's proof that it holds the commit (committed-proof.ts): on its primary's word alone
   * the backups might settle the old state while we go on to the new. Why not, or null when proven (or
   * the upstream peer is no committee). Refused, the record stays `signed` (nothing credited, nothing
   * forwarded, τ not kept) and the session stays up, as for an unproven paid total: tearing it down would
   * let one lying backup turn every resynchronisation into another refusal and another teardown. The
   * COMMIT is checked again whenever it comes (each resynchronisation re-sends it); until a proven one,
   * the path ends all old or all new by the chain (docs/protocol/multihop.md, "Committee hops").
   */
  private unprovenCommit(rec: MhSigned, proof: CommittedProof | undefined): string | null {
    const roster = this.h.state.channels[rec.hops[rec.index - 1]!.ch]?.peerRoster;
    const problem = roster && committedProofProblem(roster, rec.pid, proof);
    return problem ? `COMMIT of ${rec.pid} not proven replicated: ${problem}` : null;
  }

  /**
   * A committee credits the payment on its incoming channel only with the upstream peer's signature of
   * the total it will then have paid (update-rules.ts: `received` only up to a signed total), so COMMIT
   * must carry it; kept as the peer's highest signed total.
   */
  private notePaidTotal(rec: MhSigned, peerId: string, sig: string | undefined): boolean {
    const ch = this.h.state.channels[rec.hops[rec.index - 1]!.ch];
    if (!ch) return false;
    const total = ch.received + rec.amounts[rec.index - 1]!;
    // Signed by the member that speaks for the peer now (the session), not by its treasury id.
    if (peerTreasury(ch) !== peerId || !verifyPaid(ch.peerId, ch.id, total, sig)) return false;
    if (!ch.peerPaid || ch.peerPaid.total < total) ch.peerPaid = { total, sig: sig! };
    return true;
  }

  /**
   * At a committee hop, τ with this committee's own deposits signed by m members (the record at `signed`
   * is replicated first); a lone hop's `tx` as it is. Null when the payment aborted: too few members
   * signed (τ never went upstream, so giving up is safe), or an abort came in meanwhile.
   */
  private async signedByCommittee(pid: string, tx: string): Promise<string | null> {
    const sign = this.h.signTau;
    if (!sign) return tx;
    let out: string | null = null;
    let code = 'committee_unavailable';
    try {
      out = await sign(pid, tx);
    } catch (err) {
      if (err instanceof TreasuryError) code = err.code;
    }
    const now = this.p.get(pid);
    if (!now || !inPhase(now, 'signed')) return null;
    if (out === null) {
      this.p.abort(now, code);
      await this.h.commit();
      return null;
    }
    this.p.put<MhSigned>({ ...now, tx: out });
    return out;
  }

  async onRelease(peerId: string, pid: string): Promise<void> {
    const rec = this.p.get(pid);
    if (!rec || !step(rec, 'mh_release', peerId) || !inPhase(rec, 'committed')) return;
    this.p.release(rec);
    // A lone payer answers before the seal of its release: the next hop's RELEASE says every hop after us
    // released durably, and we committed durably, so the new state is decided whatever crashes now. A
    // crash before this seal restarts us committed, and the next hop's RELEASE, sent again on
    // reconnection, releases us (docs/protocol/multihop.md, "The payer answers at RELEASE"). A committee
    // answers once its members hold the release, so that a promoted one answers a retried key with it.
    const early = rec.index === 0 && !this.h.isCommittee();
    if (early) this.p.settleWaiter(rec);
    await this.h.commit();
    if (rec.index === 0 && !early) this.p.settleWaiter(rec);
  }

  async onUnlock(peerId: string, pid: string): Promise<void> {
    const rec = this.p.get(pid);
    if (!rec || !step(rec, 'mh_unlock', peerId) || !inPhase(rec, 'released')) return;
    this.p.finish(rec, true);
    await this.h.commit();
  }

  /**
   * An abort from a neighbour. Before COMMIT, always. Committed, only from downstream: a downstream hop
   * aborts only while it is not committed (so no hop after it holds τ complete) and only because the old
   * state won (its own or a neighbour's old-state settlement, or an abort from its downstream for that
   * reason); the committed hops upstream, the only ones holding τ complete, drop it together, so τ is
   * never broadcast and the old state is the outcome everywhere.
   */
  async onAbort(peerId: string, pid: string, code: string): Promise<void> {
    // Upstream gave up on a LOCK still waiting here: nothing was locked, nothing to tell anyone.
    if (this.waiting.drop(pid)) return;
    const rec = this.p.get(pid);
    if (!rec || !step(rec, 'mh_abort', peerId) || !isHolding(rec)) return;
    this.p.abort(rec, code, peerId);
    await this.h.commit();
  }

  /** After a reconnection: re-send what the peer may have missed, from the sealed records. */
  resync(peerId: string): void {
    for (const rec of Object.values(this.p.records())) {
      const row = step(rec, 'reconnected', peerId);
      if (!row) continue;
      const prev = rec.route[rec.index - 1];
      const next = rec.route[rec.index + 1];
      if (row.action === 'resend_lock' && inPhase(rec, 'locked')) this.h.queue(peerId, this.p.lockMessage(rec));
      else if (row.action === 'resend_signed' && inPhase(rec, 'signed'))
        this.h.queue(peerId, {
          t: 'mh_signed',
          pid: rec.pid,
          hops: rec.hops.map(toWire),
          tx: rec.tx,
          ...(rec.dropped ? { dropped: rec.dropped } : {}),
        });
      else if (row.action === 'resend_commit' && inPhase(rec, 'committed'))
        this.h.queue(peerId, this.p.commitMessage(rec));
      else if (row.action === 'resend_release' && prev === peerId)
        this.h.queue(peerId, { t: 'mh_release', pid: rec.pid });
      else if (row.action === 'resend_unlock' && next === peerId)
        this.h.queue(peerId, { t: 'mh_unlock', pid: rec.pid });
      else if (row.action === 'resend_abort' && inPhase(rec, 'aborted'))
        this.h.queue(peerId, { t: 'mh_abort', pid: rec.pid, code: rec.code });
    }
  }
}

/** The round a LOCK carries (absent for a lone payment). */
function roundOf(msg: Lock): MhParts | undefined {
  if (!msg.parts) return undefined;
  return { parts: msg.parts.map((p) => p.map(BigInt)), dropped: msg.dropped ?? [] };
}

/** The payments of `round` not left out, in the round's order. */
function keptParts(round: MhParts): bigint[][] {
  const left = new Set(round.dropped);
  return round.parts.filter((_, k) => !left.has(k));
}

/**
 * What moves on each channel once the payments `dropped` are left out of `rec`'s round: null unless it
 * leaves out at least what we did and not every payment; a lone payment leaves out nothing.
 */
function finalAmounts(rec: MhLocked, dropped: number[]): bigint[] | null {
  if (!rec.round) return dropped.length === 0 ? rec.amounts : null;
  const round = { parts: rec.round.parts, dropped };
  if (!leavesOutMore(rec.round.dropped, dropped)) return null;
  const amounts = totalsOf(round);
  return partsProblem(round, amounts) === null ? amounts : null;
}
