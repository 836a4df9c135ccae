/**
 * A backup's side of replication. It applies the primary's updates in sequence order, whoever relays
 * them (the primary sends each to every member, and each member forwards it to its successor), a delta
 * only onto exactly its base: checked and adopted in memory, forwarded, sealed (without holding up the
 * next update), and acknowledged straight to the primary and up the chain once its seal is durable. An update that contradicts a settlement this
 * member signed is refused with that settlement, and refusals from further down the chain are relayed
 * up to the primary (a `base_mismatch` there asks the primary for a full snapshot).
 */
import type { CommitteeMessage } from '../protocol/messages.ts';
import type { Channel, Deposit } from '../treasury/state.ts';
import { signAck, type AckSig } from './acks.ts';
import { HeldTotals, signHeld } from './paid-proof.ts';
import { HeldCommits, signCommitted } from './committed-proof.ts';
import type { Membership } from './membership.ts';
import type { CommitteeHost, SignedSettlement, UpdateRefusal } from './ports.ts';
import { RecentUpdates } from './recent-updates.ts';
import { forgetTau } from './signed.ts';
import { checkUpdate } from './update-rules.ts';
import type { TreasuryState } from '../treasury/state.ts';
import { recordsOf, REPLICATED, type Collection, type RecordOf } from './replicated.ts';
import { openUpdate, wholeRecords, type ReplicaBody, type SignedUpdate } from './update.ts';
import { keepRefs } from './update-refs.ts';
import { failOrphanRounds, keepMhRefs } from './update-mh-refs.ts';

export class BackupReplication {
  /** The highest sequence acknowledged by its successor (or applied, for the tail). */
  downstreamAck = 0;
  /** The signatures that came with `downstreamAck`, from its successor down to the tail. */
  private downstreamSigs: AckSig[] = [];
  private lastAckSent = 0;
  private lastDirectAck = 0;
  /**
   * Whether the latest update came marked `relay` (the primary could not reach every member): then this
   * member passes updates on to its successor and acknowledges up the chain as well as to the primary.
   */
  private relaying = false;
  /** Its latest acknowledgement signatures, by primary, epoch and sequence number (the direct and the relayed one share them). */
  private readonly sigs = new Map<string, AckSig>();
  /** Its latest acknowledgement with the held statements signed for it (ownSig). */
  private lastSig?: AckSig;
  private lastSigEpoch = 0;
  /** The latest update whose seal is durable: the only one it forwards or acknowledges. */
  durable?: SignedUpdate;
  /** The updates applied lately in this view: what a member behind gets to catch up (signing.ts, promotion.ts). */
  readonly recent = new RecentUpdates();
  /** The paid totals this member signs for the channel peers with its acknowledgements (paid-proof.ts). */
  private readonly heldTotals = new HeldTotals();
  /** The multi-hop commits this member signs for the next hop, likewise (committed-proof.ts). */
  private readonly heldCommits = new HeldCommits();

  constructor(
    private readonly host: CommitteeHost,
    private readonly chain: Membership,
  ) {
    this.durable = host.state.committee?.lastUpdate; // restored from a seal
    if (this.durable && (this.durable.epoch ?? 0) === chain.epoch) this.recent.add(this.durable, false);
  }

  private get c() {
    return this.chain.c;
  }

  /**
   * Applies an update (from whichever member relays it): the primary's signature and a sequence number
   * above ours are required. Returns the refusal code, or null when applied or already had.
   */
  async applyUpdate(update: SignedUpdate): Promise<UpdateRefusal | null> {
    const admitted = this.admit(update);
    if (admitted === 'applied') await this.sealed(update);
    return typeof admitted === 'string' ? null : admitted;
  }

  /**
   * Checks `update` and adopts its state in memory, in one synchronous step: 'applied', 'duplicate' (the
   * very update already applied: acknowledged again, not re-applied) or the refusal. `fromPrimary`: it came
   * over the primary's own authenticated session (openUpdate: its signature needs no check then).
   */
  private admit(update: SignedUpdate, fromPrimary = false): UpdateRefusal | 'applied' | 'duplicate' {
    if (this.chain.isPrimary || !this.c.primaryId) return { code: 'not_primary' };
    // Epoch fencing (view.ts): an old view's primary is refused; a newer view needs its certificate first.
    const epoch = update.epoch ?? 0;
    if (epoch < this.chain.epoch) return { code: 'stale_epoch' };
    if (epoch > this.chain.epoch) return { code: 'view_unknown' };
    // The primary sends each update to every member and the members forward it too, so most updates come
    // twice: the second copy, byte for byte the update adopted last, needs no second signature check.
    const last = this.c.lastUpdate;
    if (last && !this.c.rejoin && sameUpdate(update, last)) return 'duplicate';
    // Sequence numbers run on within a view; the first update of a new view follows whatever came before.
    // One older than ours is refused before its signature is checked: a refusal changes nothing, and most
    // updates a signing request carries (recent-updates.ts) are ones this member applied already.
    const sameView = (this.c.lastUpdate?.epoch ?? 0) === epoch && !this.c.rejoin;
    if (sameView && update.seq < this.c.seq) return { code: 'stale_update' };
    const opened = openUpdate(update, this.c.primaryId, fromPrimary);
    if (!opened) return { code: 'forged_update' };
    if (sameView && update.seq === this.c.seq) return 'duplicate';
    // A delta holds only what changed since its base: onto any other state it would make one the primary
    // never had. A new view (or a rejoin) starts from a full snapshot.
    if (opened.base !== undefined && (!sameView || opened.base !== this.c.seq)) return { code: 'base_mismatch' };
    const held = <K extends Collection>(k: K, id: string) => recordsOf(this.host.state, k)[id];
    const settled = this.contradictedSettlement(opened);
    if (settled) return { code: 'channel_settled', settled };
    const body = wholeRecords(opened, held);
    if (!body) return { code: 'entry_missing' }; // a patch of a record this member does not hold
    let broken;
    try {
      broken = checkUpdate(this.c.rejoin ? rejoinBaseline(this.host.state) : this.host.state, body);
    } catch {
      // A record without the fields of its kind (a patch that removed them): no rule can pass it.
      return { code: 'malformed_record' };
    }
    if (broken) return { code: broken.code };
    for (const id of Object.keys(this.c.signed))
      if (body.channels[id]) (this.c.shownClosed ??= {})[id] = this.c.signed[id]!; // shown closed by what we signed
    const before = this.host.state.channels;
    const sentBefore = (id: string) => before[id]?.sent;
    const moved = Object.entries(body.channels)
      .filter(([id, ch]) => opened.base === undefined || sentBefore(id) !== ch.sent)
      .map(([id]) => id);
    const wasCommitted = (pid: string) =>
      opened.base !== undefined && this.host.state.multihop?.[pid]?.phase === 'committed';
    const commits = Object.values(body.multihop ?? {}).filter((r) => r.phase === 'committed' && !wasCommitted(r.pid));
    this.adopt(body);
    this.heldCommits.adopted(
      update.seq,
      commits.map((r) => ({ key: r.pid, value: null })),
    );
    const open = moved.filter((id) => this.host.state.channels[id]?.status === 'open');
    this.heldTotals.adopted(
      update.seq,
      open.map((id) => ({ key: id, value: this.host.state.channels[id]!.sent })),
    );
    delete this.c.rejoin;
    this.c.lastUpdate = update;
    this.recent.add(update, opened.base === undefined);
    return 'applied';
  }

  /** Once the seal covering `update` is durable, it is the latest this member may acknowledge. */
  private async sealed(update: SignedUpdate): Promise<void> {
    await this.host.commitLocal();
    if (!this.durable || update.seq > this.durable.seq) this.durable = update;
  }

  /**
   * A settlement this member signed that `body` does not show, closed by that txid at the signed totals.
   * Acknowledging such an update would let the primary release payments the signed transaction leaves out.
   */
  private contradictedSettlement(body: ReplicaBody): SignedSettlement | null {
    for (const id of Object.keys(this.c.signed)) {
      const s = this.signedSettlement(id);
      if (!s) continue; // a release, not a channel
      const inc = this.primaryCopy(body, id, s.txid);
      if (
        inc?.status === 'closed' &&
        inc.settlement?.txid === s.txid &&
        inc.sent === s.sent &&
        inc.received === s.received
      )
        continue;
      return s;
    }
    return null;
  }

  /**
   * Channel `id` (which this member signed a settlement of, by `txid`) as the primary's update `body` shows
   * it. A delta that leaves it out, or patches it, leaves the rest as the primary's copy at the base was:
   * closed by that txid if an adopted update showed it so, else still open at the totals this member
   * signed (it refused every update that moved them).
   */
  private primaryCopy(body: ReplicaBody, id: string, txid: string): Channel | undefined {
    const carried = body.channels[id];
    if (body.base === undefined) return carried;
    const own = this.host.state.channels[id]!;
    const atBase: Channel = this.c.shownClosed?.[id] === txid ? own : { ...own, status: 'open', settlement: undefined };
    if (!carried) return atBase;
    if (!body.patched?.channels?.[id]) return carried;
    const copy: Record<string, unknown> = { ...atBase, ...carried };
    for (const f of body.patched.channels[id]) delete copy[f];
    return copy as unknown as Channel;
  }

  /** The settlement of channel `id` this member signed, from its own (closed) copy of the channel. */
  private signedSettlement(id: string): SignedSettlement | null {
    const txid = this.c.signed[id];
    const ch = this.host.state.channels[id];
    if (!txid || !ch || ch.status !== 'closed') return null;
    return { ch: id, txid, sent: ch.sent, received: ch.received, feeRate: ch.settlement?.feeRate ?? 0 };
  }

  private refusal(seq: number, r: UpdateRefusal): CommitteeMessage {
    const s = r.settled;
    return {
      t: 'c_refuse',
      seq,
      code: r.code,
      ...(s
        ? {
            ch: s.ch,
            txid: s.txid,
            sent: s.sent.toString(),
            received: s.received.toString(),
            ...(s.feeRate >= 1 ? { fee_rate: s.feeRate } : {}),
          }
        : {}),
    };
  }

  /** Backup that signed a settlement of `channelId`: tell the primary directly, so it stops paying on it. */
  announceSigned(channelId: string): void {
    if (this.chain.isPrimary || !this.c.primaryId) return;
    const s = this.signedSettlement(channelId);
    if (s) this.host.sendNow(this.c.primaryId, this.refusal(this.c.seq, { code: 'channel_settled', settled: s }));
  }

  /**
   * A refusal from its successor, relayed towards the primary. One that reports a signed settlement is
   * remembered first: the primary's next update closes the channel at those lower totals, and this member
   * lets it.
   */
  onRefuse(peerId: string, msg: Extract<CommitteeMessage, { t: 'c_refuse' }>): void {
    const prev = this.chain.neighbour(-1);
    if (peerId !== this.chain.neighbour(1) || !prev) return;
    if (msg.code === 'channel_settled' && msg.ch && msg.txid && msg.sent !== undefined && msg.received !== undefined) {
      (this.c.reported ??= {})[msg.ch] = { txid: msg.txid, sent: BigInt(msg.sent), received: BigInt(msg.received) };
      void this.host.commitLocal().catch(() => undefined);
    }
    this.host.sendNow(prev, msg);
  }

  /** A new view (promotion.ts): acknowledgements are signed per epoch, so what came before no longer counts. */
  newView(): void {
    this.relaying = false;
    this.downstreamAck = 0;
    this.downstreamSigs = [];
    this.lastAckSent = 0;
    this.heldTotals.clear();
    this.heldCommits.clear();
    this.durable = this.c.lastUpdate;
    this.recent.clear();
  }

  /** The highest number this member has acknowledged, to the primary or up the chain (GET /v1/committee). */
  get acknowledged(): number {
    return Math.max(this.lastDirectAck, this.lastAckSent);
  }

  /** The latest durable update if it belongs to the current view: an older one would only be refused. */
  private get current(): SignedUpdate | undefined {
    return (this.durable?.epoch ?? 0) === this.chain.epoch ? this.durable : undefined;
  }

  /** Its successor's acknowledgement (the caller checked it came from the successor): pass it on up. */
  onAck(msg: Extract<CommitteeMessage, { t: 'c_ack' }>): void {
    if (msg.seq < this.downstreamAck || !msg.sigs) return;
    this.downstreamAck = msg.seq;
    this.downstreamSigs = msg.sigs;
    this.ackUpstream();
  }

  private adopt(body: ReplicaBody): void {
    const s = this.host.state;
    const rosterChanged = JSON.stringify(body.members) !== JSON.stringify(this.c.members);
    this.c.seq = body.seq;
    if (body.treasuryId) this.c.treasuryId = body.treasuryId;
    if (body.epoch !== undefined) this.c.epoch = body.epoch;
    this.c.size = body.size;
    this.c.threshold = body.threshold;
    this.c.members = body.members;
    if (body.quotes) this.c.quotes = body.quotes;
    if (body.shareOrder && !this.c.shareOrder) this.c.shareOrder = [...body.shareOrder];
    s.config.payoutAddress = body.payoutAddress;
    s.nextDeposit = body.nextDeposit;
    // A full snapshot replaces each collection; a delta changes only the records it carries.
    const full = body.base === undefined;
    for (const k of REPLICATED) {
      const held = recordsOf(s, k);
      const next: Record<string, RecordOf<typeof k>> = full ? {} : held;
      for (const [id, r] of Object.entries(body[k])) next[id] = this.adopted(k, r, held[id]);
      for (const id of body.gone?.[k] ?? []) delete next[id];
      (s as Record<Collection, unknown>)[k] = next;
    }
    forgetTau(this.c, s.multihop);
    // The primary's refs of keyed payments, kept here until this member's host has journaled them.
    if (keepRefs(s, body.refs) + keepMhRefs(s, body.mhRefs) + failOrphanRounds(s) > 0) this.host.refsHeld?.();
    if (rosterChanged) this.chain.rosterChanged();
  }

  /** The record this member keeps for `incoming` (checked already), given its own copy `local`. */
  private adopted<K extends Collection>(k: K, incoming: RecordOf<K>, local: RecordOf<K> | undefined): RecordOf<K> {
    if (k === 'channels') {
      // Closed here (signed or seen on chain): final.
      return (local as Channel | undefined)?.status === 'closed' ? local! : incoming;
    }
    if (k !== 'deposits') return incoming; // a multi-hop record holds no key
    const d = incoming as Deposit;
    const mine = this.c.memberKeys[d.id];
    // What this member has signed away stays spent, whatever a later update says.
    if ((local as Deposit | undefined)?.status === 'spent' && this.c.signed[d.id]) {
      d.status = 'spent';
      d.spentBy = (local as Deposit).spentBy;
    }
    d.privkeys = mine ? [mine] : [];
    return incoming;
  }

  /**
   * An update from its predecessor: adopted, forwarded to its successor at once, and acknowledged once
   * sealed here; or refused back. Forwarding does not wait for this member's seal: the update is the
   * primary's, signed, and sealed by the primary before it left, so the successor may hold it whoever
   * relayed it and whether or not the relay has sealed it yet (as when it comes from the primary itself).
   * What does wait is the acknowledgement, this member's signed word that it holds the update durably,
   * and the primary releases nothing before every backup has given it. So the members' seals overlap
   * instead of adding up down the chain. The seal is not awaited either: the next update is taken
   * meanwhile (one seal may cover both), and each is acknowledged in order as its seal becomes durable.
   */
  onUpdate(peerId: string, update: SignedUpdate, relay = false): void {
    const admitted = this.admit(update, peerId === this.c.primaryId);
    if (typeof admitted !== 'string') {
      const refusal = this.refusal(update.seq, admitted);
      this.host.sendNow(peerId, refusal);
      // A settlement this member signed goes up the chain as well, whoever sent the update: each member on
      // the way remembers it, and lets the primary's closure at those totals through (onRefuse).
      const prev = this.chain.neighbour(-1);
      if (admitted.settled && prev && prev !== peerId) this.host.sendNow(prev, refusal);
      return;
    }
    this.relaying = relay;
    // The primary sent it to every member itself unless it says `relay`: then it goes on down the chain (to
    // members standing by after the tail too). A duplicate: the latest goes on, in case the successor missed it.
    const next = this.chain.neighbour(1);
    const onward = admitted === 'duplicate' ? this.c.lastUpdate : update;
    if (relay && next && onward && (onward.epoch ?? 0) === this.chain.epoch)
      this.host.sendNow(next, { t: 'c_update', update: onward, relay });
    const acknowledge = () => {
      if (this.isTail) this.downstreamAck = this.durable?.seq ?? 0;
      this.ackUpstream();
    };
    if (admitted === 'duplicate') return acknowledge();
    // A failed seal halts the enclave (Committer.onFatal): nothing is acknowledged after it.
    this.sealed(update).then(acknowledge, () => undefined);
    // The signatures for the acknowledgement (its own and its statements') are made while the seal's write is
    // under way (once this turn has handed it to the host), not after it: they are sent only once the seal
    // is durable all the same.
    const seq = update.seq;
    setImmediate(() => {
      if (this.c.seq !== seq || (this.durable?.seq ?? 0) >= seq) return;
      if (this.relaying) this.ackSig(seq); // only what the chain relays is signed (acks.ts)
      this.presignStatements(seq);
    });
  }

  /**
   * Acknowledges to the primary its own word and, when the chain is needed, up the chain what this member and
   * everyone after it have sealed. The chain carries acknowledgements only while some member cannot reach
   * the primary: the primary said so (`relay`), this member is cut off from it, or a member after it sent
   * its word up the chain (which must then go on up, whatever this member's own reach).
   */
  private ackUpstream(force = false): void {
    const isTail = this.isTail;
    if (this.chain.index >= this.chain.chainLength || !this.current) return; // standing by: nothing waits for it
    const own = this.current.seq;
    const seq = Math.min(own, isTail ? own : this.downstreamAck);
    const prev = this.chain.neighbour(-1);
    const primary = this.c.primaryId;
    if (!prev || !primary) return;
    // Its own word goes straight to the primary, the successor's too: the primary need not wait for the
    // members after it to relay it back. (A successor that is the tail sends it only once, just below.)
    if (prev !== primary || !isTail) this.ackPrimary(own, force);
    if (seq <= this.lastAckSent && !force) return;
    const downstreamNews = !isTail && this.downstreamAck > this.lastAckSent;
    if (prev !== primary && !this.relaying && this.host.connected(primary) && !downstreamNews) return;
    if (!this.host.connected(prev)) return;
    if (!isTail && this.downstreamSigs.length !== this.chain.chainLength - 1 - this.chain.index) return;
    this.lastAckSent = seq;
    // Its own word to the primary itself needs no signature; passed on by a predecessor, it does.
    const sigs = [this.ownSig(seq, false, prev !== primary), ...(isTail ? [] : this.downstreamSigs)];
    this.host.sendNow(prev, { t: 'c_ack', seq, epoch: this.chain.epoch, sigs });
  }

  /** Its own signature straight to the primary, which need not wait for it to be relayed with the others. */
  private ackPrimary(own: number, force: boolean): void {
    const primary = this.c.primaryId!;
    if (own === 0 || (own <= this.lastDirectAck && !force) || !this.host.connected(primary)) return;
    this.lastDirectAck = own;
    this.host.sendNow(primary, {
      t: 'c_ack',
      seq: own,
      epoch: this.chain.epoch,
      sigs: [this.ownSig(own, force, false)],
    });
  }

  /** How this member signs its statements for acknowledgement `seq` in the current view. */
  private statementSigners(seq: number) {
    const epoch = this.chain.epoch;
    const key = this.host.identityKey();
    const tid = this.chain.treasuryId;
    return {
      held: (ch: string, sent: bigint) => signHeld(tid, epoch, seq, ch, sent, key),
      committed: (pid: string) => signCommitted(tid, epoch, pid, key),
    };
  }

  /** The statements acknowledgement `seq` will carry, signed ahead (kept back until `seq` is durable). */
  private presignStatements(seq: number): void {
    const sign = this.statementSigners(seq);
    this.heldTotals.presign(seq, sign.held);
    this.heldCommits.presign(seq, sign.committed);
  }

  /**
   * This member's word that it holds update `seq`, with its paid totals newly durable (made once: the tail's
   * two acknowledgements share it); `all`: every latest statement, for a primary that may have lost them.
   * Called only once `seq` is durable: the held statements must never run ahead of the seal. `signed`: with
   * the signature over the number itself, which only a word the chain relays needs (acks.ts).
   */
  private ownSig(seq: number, all = false, signed = true): AckSig {
    const epoch = this.chain.epoch;
    if (this.lastSig?.seq !== seq || this.lastSigEpoch !== epoch) {
      const sign = this.statementSigners(seq);
      const held = this.heldTotals.signUpTo(seq, sign.held);
      const committed = this.heldCommits.signUpTo(seq, sign.committed);
      this.lastSig = { seq, ...(held.length ? { held } : {}), ...(committed.length ? { committed } : {}) };
      this.lastSigEpoch = epoch;
    }
    const word = all
      ? { ...this.lastSig, held: this.heldTotals.all(), committed: this.heldCommits.all() }
      : this.lastSig;
    return signed ? { ...word, sig: this.ackSig(seq).sig } : word;
  }

  /**
   * The bare signature over (primary, epoch, seq), kept for the last few numbers. It may be made while the
   * seal's write is under way, since it is sent only inside an acknowledgement, after the seal is durable;
   * the held statements are not (ownSig signs them when the acknowledgement goes out).
   */
  private ackSig(seq: number): AckSig {
    const epoch = this.chain.epoch;
    const key = `${this.c.primaryId}:${epoch}:${seq}`;
    let sig = this.sigs.get(key);
    if (!sig) {
      sig = signAck(this.c.primaryId!, seq, this.host.identityKey(), epoch);
      if (this.sigs.size >= 4) this.sigs.delete(this.sigs.keys().next().value!);
      this.sigs.set(key, sig);
    }
    return sig;
  }

  /** A session with another member is up: catch its successor up, or tell its predecessor where it is. */
  private get isTail(): boolean {
    return this.chain.index === this.chain.chainLength - 1;
  }

  peerConnected(peerId: string): void {
    // The latest adopted, sealed or not (as onUpdate forwards it): one forwarded while this session was down
    // and adopted before this member's seal of it is durable would otherwise never reach the successor.
    const latest = this.c.lastUpdate;
    if (peerId === this.chain.neighbour(1) && latest && (latest.epoch ?? 0) === this.chain.epoch)
      this.host.sendNow(peerId, { t: 'c_update', update: latest });
    if (peerId === this.chain.neighbour(-1) || peerId === this.c.primaryId) this.ackUpstream(true);
  }
}

/** The very same signed update: same view, number, bytes and signature. */
function sameUpdate(a: SignedUpdate, b: SignedUpdate): boolean {
  return (a.epoch ?? 0) === (b.epoch ?? 0) && a.seq === b.seq && a.body === b.body && a.sig === b.sig;
}

/**
 * What a former primary checks its first update of a new view against: its own roster, keys and payout,
 * but not its channels and deposits, whose latest changes it never had acknowledged (they never left it)
 * and the new primary's state replaces. That update is still checked as a newcomer's would be.
 */
function rejoinBaseline(state: TreasuryState): TreasuryState {
  const c = state.committee!;
  return {
    ...state,
    nextDeposit: 0,
    deposits: {},
    channels: {},
    committee: { ...c, lastUpdate: c.lastUpdate ?? { seq: 0, body: '', sig: '' } },
  };
}
