/**
 * A backup's side of replication. It applies the primary's updates in sequence order, whoever relays
 * them: seal first, then forward to its successor, then acknowledge towards the primary, and only ever
 * the latest update whose seal is durable. An update that contradicts a settlement this member signed is
 * refused with that settlement, and refusals from further down the chain are relayed up to the primary.
 */
import type { CommitteeMessage } from '../protocol/messages.ts';
import { signAck, type AckSig } from './acks.ts';
import type { Membership } from './membership.ts';
import type { CommitteeHost, SignedSettlement, UpdateRefusal } from './ports.ts';
import { forgetTau } from './signed.ts';
import { checkUpdate } from './update-rules.ts';
import type { TreasuryState } from '../treasury/state.ts';
import { openUpdate, type ReplicaBody, type SignedUpdate } from './update.ts';

export class BackupReplication {
  /** The highest sequence acknowledged by its successor (or applied, for the tail). */
  downstreamAck = 0;
  /** The signatures that came with `downstreamAck`, from its successor down to the tail. */
  private downstreamSigs: AckSig[] = [];
  private lastAckSent = 0;
  /** The latest update whose seal is durable: the only one it forwards or acknowledges. */
  durable?: SignedUpdate;

  constructor(
    private readonly host: CommitteeHost,
    private readonly chain: Membership,
  ) {
    this.durable = host.state.committee?.lastUpdate; // restored from a seal
  }

  private get c() {
    return this.chain.c;
  }

  /**
   * Applies an update (from whichever member relays it): the primary's signature and a sequence number
   * above ours are required. Returns the refusal code, or null when applied or already had.
   */
  async applyUpdate(update: SignedUpdate): Promise<UpdateRefusal | null> {
    if (this.chain.isPrimary || !this.c.primaryId) return { code: 'not_primary' };
    // Epoch fencing (view.ts): an old view's primary is refused; a newer view needs its certificate first.
    const epoch = update.epoch ?? 0;
    if (epoch < this.chain.epoch) return { code: 'stale_epoch' };
    if (epoch > this.chain.epoch) return { code: 'view_unknown' };
    const body = openUpdate(update, this.c.primaryId);
    if (!body) return { code: 'forged_update' };
    // Sequence numbers run on within a view; the first update of a new view follows whatever came before.
    const sameView = (this.c.lastUpdate?.epoch ?? 0) === epoch && !this.c.rejoin;
    if (sameView && update.seq < this.c.seq) return { code: 'stale_update' };
    if (sameView && update.seq === this.c.seq) return null; // a duplicate: already sealed, just acknowledge again
    const settled = this.contradictedSettlement(body);
    if (settled) return { code: 'channel_settled', settled };
    const broken = checkUpdate(this.c.rejoin ? rejoinBaseline(this.host.state) : this.host.state, body);
    if (broken) return { code: broken.code };
    this.adopt(body);
    delete this.c.rejoin;
    this.c.lastUpdate = update;
    await this.host.commitLocal();
    if (!this.durable || update.seq > this.durable.seq) this.durable = update;
    return null;
  }

  /**
   * A settlement this member signed that `body` does not show, closed by that txid at the signed totals.
   * Acknowledging such an update would let the primary release payments the signed transaction leaves out.
   */
  private contradictedSettlement(body: ReplicaBody): SignedSettlement | null {
    for (const id of Object.keys(this.c.signed)) {
      const s = this.signedSettlement(id);
      if (!s) continue; // a release, not a channel
      const inc = body.channels[id];
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
    this.downstreamAck = 0;
    this.downstreamSigs = [];
    this.lastAckSent = 0;
    this.durable = this.c.lastUpdate;
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
    s.config.payoutAddress = body.payoutAddress;
    s.nextDeposit = body.nextDeposit;
    for (const d of Object.values(body.deposits)) {
      const mine = this.c.memberKeys[d.id];
      const local = s.deposits[d.id];
      // What this member has signed away stays spent, whatever a later update says.
      if (local?.status === 'spent' && this.c.signed[d.id]) {
        d.status = 'spent';
        d.spentBy = local.spentBy;
      }
      d.privkeys = mine ? [mine] : [];
    }
    s.deposits = body.deposits;
    for (const [id, ch] of Object.entries(body.channels)) {
      const local = s.channels[id];
      if (local?.status === 'closed')
        body.channels[id] = local; // closed here (signed or seen on chain): final
      else
        for (const d of ch.myDeposits)
          if (s.deposits[d]) s.deposits[d].privkeys = this.c.memberKeys[d] ? [this.c.memberKeys[d]] : [];
    }
    s.channels = body.channels;
    s.multihop = body.multihop ?? {};
    forgetTau(this.c, s.multihop);
    if (rosterChanged) this.chain.rosterChanged();
  }

  /** An update from its predecessor: applied, then forwarded and acknowledged, or refused back. */
  async onUpdate(peerId: string, update: SignedUpdate): Promise<void> {
    const refused = await this.applyUpdate(update);
    if (refused) {
      this.host.sendNow(peerId, this.refusal(update.seq, refused));
      return;
    }
    // The tail of the replicating chain acknowledges; members standing by after it are sent updates too.
    const next = this.chain.neighbour(1);
    if (next && this.current) this.host.sendNow(next, { t: 'c_update', update: this.current });
    if (this.isTail) this.downstreamAck = this.durable?.seq ?? 0;
    this.ackUpstream();
  }

  /** Acknowledges upstream what this member and everyone after it have sealed. */
  private ackUpstream(force = false): void {
    const isTail = this.isTail;
    if (this.chain.index >= this.chain.chainLength || !this.current) return; // standing by: nothing waits for it
    const own = this.current.seq;
    const seq = Math.min(own, isTail ? own : this.downstreamAck);
    const prev = this.chain.neighbour(-1);
    if (!prev || (seq <= this.lastAckSent && !force)) return;
    if (!this.host.connected(prev) || !this.c.primaryId) return;
    if (!isTail && this.downstreamSigs.length !== this.chain.chainLength - 1 - this.chain.index) return;
    this.lastAckSent = seq;
    const sigs = [
      signAck(this.c.primaryId, seq, this.host.identityKey(), this.chain.epoch),
      ...(isTail ? [] : this.downstreamSigs),
    ];
    this.host.sendNow(prev, { t: 'c_ack', seq, sigs });
  }

  /** A session with another member is up: catch its successor up, or tell its predecessor where it is. */
  private get isTail(): boolean {
    return this.chain.index === this.chain.chainLength - 1;
  }

  peerConnected(peerId: string): void {
    if (peerId === this.chain.neighbour(1) && this.current)
      this.host.sendNow(peerId, { t: 'c_update', update: this.current });
    if (peerId === this.chain.neighbour(-1)) this.ackUpstream(true);
  }
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
