/**
 * The primary's side of replication. After every seal it issues one signed update, however many payments
 * the seal covers: a delta of what changed since the previous update (deltas.ts), or a full snapshot at
 * start, for a member that joins, and for one that reports it missed updates (`base_mismatch`); it sends
 * it to every member at once, and the seal's messages (payment acknowledgements, …) wait until every
 * backup's signed acknowledgement has come back (each sends its own straight here). A backup's refusal that shows a
 * settlement the members signed stops payments on that channel and has the treasury close it.
 */
import { bytesToHex } from '../../../enclave-sim/encoding.ts';
import type { CommitteeMessage } from '../protocol/messages.ts';
import { TreasuryError } from '../treasury/errors.ts';
import { verifyAck, type AckSig } from './acks.ts';
import { DeltaTracker } from './deltas.ts';
import { HeldStore, type PaidProof } from './paid-proof.ts';
import { CommitStore, type CommittedProof } from './committed-proof.ts';
import { RecentUpdates } from './recent-updates.ts';
import type { Membership } from './membership.ts';
import type { CommitteeHost } from './ports.ts';
import { forgetTau } from './signed.ts';
import { encodeUpdate, signEncoded, type EncodedUpdate, type SignedUpdate } from './update.ts';

/**
 * How long an update may wait for its acknowledgements before the chain is asked to carry it: a member's
 * frames to the primary may be lost on a session that still looks up (a lossy or hostile host), and the
 * chain's other sessions may still work. Far above an acknowledgement's usual round trip (milliseconds).
 */
export const RELAY_AFTER_MS = 500;
/** How long updates then keep going by the chain as well: a link that lost frames may well lose more. */
export const RELAY_FOR_MS = 10_000;
/**
 * How many times the latest update is sent again by the chain while its acknowledgements stay missing; past
 * that, a session coming back catches the member up (BackupReplication.peerConnected).
 */
const RELAY_TRIES = 3;

interface PendingUpdate {
  encoded: EncodedUpdate;
  full: boolean;
  signed?: SignedUpdate;
}

export class PrimaryReplication {
  /** The latest update issued: what a (re)connecting successor or a newcomer is sent first. */
  lastIssued?: SignedUpdate;
  /** The updates issued lately in this view: what a member behind gets to catch up (signing.ts). */
  readonly recent = new RecentUpdates();
  /** The highest sequence number every backup has signed as applied. */
  acked = 0;
  /** The highest sequence number each backup has signed as applied, by node id. */
  private readonly held = new Map<string, number>();
  private ackWaiters: Array<{ seq: number; resolve: () => void; reject: (err: unknown) => void }> = [];
  /** The update the seal under way will be replicated as; signed while that seal's write is under way. */
  private pendingUpdate?: PendingUpdate;
  /** Channels some member asked to sign a settlement for: they take no new payments. */
  private readonly settling = new Set<string>();
  private readonly deltas = new DeltaTracker();
  /** The backups' signed paid totals, which the channel peers credit on (paid-proof.ts). */
  private readonly heldTotals = new HeldStore();
  /** The backups' signed multi-hop commits, which the next hop commits on (committed-proof.ts). */
  private readonly heldCommits = new CommitStore();
  /** Updates issued since this enclave started, and their bodies' bytes (the bench's update-size figure). */
  readonly issued = { updates: 0, bytes: 0 };
  /** Until when updates are marked `relay` (the chain carries them too), after acknowledgements went missing. */
  private relayUntil = 0;
  /** Armed while an update waits for acknowledgements: the chain is asked to carry it after RELAY_AFTER_MS. */
  private relayTimer?: ReturnType<typeof setTimeout>;
  /** Times the chain was asked to carry the update under way, since the last acknowledgement that raised `acked`. */
  private relayTries = 0;

  constructor(
    private readonly host: CommitteeHost,
    private readonly chain: Membership,
  ) {}

  private get c() {
    return this.chain.c;
  }

  /** Whether members are settling `channelId` (a signing request was seen), so it must not pay on it. */
  isSettling(channelId: string): boolean {
    return this.settling.has(channelId);
  }

  /** Whatever the txid, a member is settling the channel: the primary pays no more on it. */
  settlingSeen(channelId: string): void {
    this.settling.add(channelId);
  }

  /**
   * A new view: acknowledgements start again (they are signed per epoch). What waits for one of the old
   * view's is never released: the new primary's state decides, and the peer resynchronises from it.
   */
  newView(): void {
    this.acked = 0;
    this.held.clear();
    this.heldTotals.clear();
    this.heldCommits.clear();
    this.lastIssued = undefined;
    this.recent.clear();
    this.pendingUpdate = undefined;
    this.deltas.wantFull(); // the new view's first update is a full snapshot
    this.relayUntil = 0;
    this.disarm();
    const err = new TreasuryError('not_primary', 'a newer committee view took over before this was acknowledged');
    for (const w of this.ackWaiters) w.reject(err);
    this.ackWaiters = [];
  }

  /** Called while snapshotting: the update that the coming seal's state will be replicated as. */
  prepareUpdate(): void {
    if (!this.chain.isPrimary || this.c.members.length < 2) return;
    this.c.seq += 1;
    forgetTau(this.c, this.host.state.multihop);
    // Taken now, in the same synchronous step as the seal's own snapshot: the update is exactly the state
    // sealed, never a change made while the seal is under way (which a crash would lose here but not there).
    const body = this.deltas.bodyFor(this.host.state, this.c.seq, this.lastIssued?.seq ?? 0);
    const pending: PendingUpdate = { encoded: encodeUpdate(body), full: body.base === undefined };
    this.pendingUpdate = pending;
    // Signing is the primary's largest cost per update, and done here it would hold up the seal. Once this
    // turn has handed the seal's write to the host, the enclave thread waits for the disk: signing then
    // costs the payment nothing. Nothing is sent before replicate(), after the seal.
    setImmediate(() => {
      if (this.pendingUpdate === pending) pending.signed = this.sign(pending.encoded);
    });
  }

  private sign(u: EncodedUpdate): SignedUpdate {
    return signEncoded(u, bytesToHex(this.host.identityKey()));
  }

  /** After the primary's own seal: send the update down the chain; resolves when the tail has it. */
  replicate(): Promise<void> {
    const pending = this.pendingUpdate;
    if (!pending) return Promise.resolve();
    this.pendingUpdate = undefined;
    const update = pending.signed ?? this.sign(pending.encoded);
    this.lastIssued = update;
    this.recent.add(update, pending.full);
    this.issued.updates += 1;
    this.issued.bytes += update.body.length;
    // To every member at once rather than down the chain: each backup's seal then starts one hop after the
    // primary's instead of one hop per member before it, and each acknowledges straight back. The chain is
    // the fallback: with a member out of the primary's reach, the update says `relay`, and every member
    // passes it on to its successor and acknowledges up the chain too (BackupReplication.onUpdate).
    const relay = Date.now() < this.relayUntil || this.chain.others().some((id) => !this.host.connected(id));
    this.broadcast(update, relay);
    if (update.seq <= this.acked) return Promise.resolve();
    this.arm();
    return new Promise((resolve, reject) => this.ackWaiters.push({ seq: update.seq, resolve, reject }));
  }

  private broadcast(update: SignedUpdate, relay: boolean): void {
    const msg: CommitteeMessage = relay ? { t: 'c_update', update, relay } : { t: 'c_update', update };
    for (const id of this.chain.others()) this.host.sendNow(id, msg);
  }

  /**
   * A member's session went down while an update waits for acknowledgements: the members still in reach get
   * the latest update again, marked `relay`, so that the chain carries it to the one cut off, and its
   * acknowledgement back, by whatever sessions remain (the update went out when all were in reach).
   */
  memberLost(peerId: string): void {
    if (this.chain.isMember(peerId)) this.relayLatest();
  }

  /** The latest update again, marked `relay`, if it still waits for acknowledgements; later ones relay too for a while. */
  private relayLatest(): void {
    const latest = this.lastIssued;
    if (!latest || latest.seq <= this.acked) return;
    this.relayUntil = Date.now() + RELAY_FOR_MS;
    this.broadcast(latest, true);
  }

  private arm(): void {
    if (this.relayTimer || this.relayTries >= RELAY_TRIES) return;
    this.relayTimer = setTimeout(() => {
      this.relayTimer = undefined;
      this.relayTries += 1;
      this.relayLatest();
      if (this.lastIssued && this.lastIssued.seq > this.acked) this.arm(); // and again while nothing comes
    }, RELAY_AFTER_MS);
  }

  private disarm(): void {
    if (this.relayTimer) clearTimeout(this.relayTimer);
    this.relayTimer = undefined;
  }

  /**
   * An acknowledgement from a backup: the successor's relayed one carries every backup's signature
   * (successor first); a backup's own, sent straight here (the successor's too), only its own. A signature
   * counts only for the member whose key made it, and only what every backup signed is acknowledged.
   */
  onAck(peerId: string, msg: Extract<CommitteeMessage, { t: 'c_ack' }>): void {
    const backups = this.chain.chainMembers.slice(1).map((m) => m.node_id);
    const sigs = msg.sigs;
    let claims: Array<[string, AckSig]>;
    if (peerId === this.chain.neighbour(1) && sigs?.length === backups.length) {
      claims = backups.map((id, i) => [id, sigs[i]!]);
    } else {
      if (!backups.includes(peerId) || sigs?.length !== 1) return;
      claims = [[peerId, sigs[0]!]];
    }
    // A signature that would raise nothing is not checked again; one that fails voids the whole message.
    // The sender's own word in its view needs none: it came over the sender's authenticated session, to this
    // very primary, and the member could sign anything it says anyway. A signature matters where one
    // member passes on another's word (the chain's relay), and the held and committed statements it carries
    // are checked whatever the path (HeldStore.take, CommitStore.take): they go on to the channel peers.
    const epoch = this.chain.epoch;
    const ownWord = (id: string) => id === peerId && msg.epoch === epoch;
    const raising = claims.filter(([id, s]) => s.seq > (this.held.get(id) ?? 0));
    if (raising.some(([id, s]) => !ownWord(id) && !verifyAck(this.host.nodeId, id, s, epoch))) return;
    for (const [id, s] of raising) {
      this.held.set(id, s.seq);
      if (s.held) this.heldTotals.take(id, s.held, this.chain.treasuryId, this.chain.epoch);
      if (s.committed) this.heldCommits.take(id, s.committed, this.chain.treasuryId, this.chain.epoch);
    }
    const seq = Math.min(...backups.map((id) => this.held.get(id) ?? 0));
    if (seq <= this.acked) return;
    this.acked = seq;
    this.relayTries = 0;
    if (this.lastIssued && seq >= this.lastIssued.seq) this.disarm();
    const still: typeof this.ackWaiters = [];
    for (const w of this.ackWaiters) w.seq <= seq ? w.resolve() : still.push(w);
    this.ackWaiters = still;
  }

  /** The proof for the channel peer that every backup holds `total` paid on `channelId`, if they all signed it. */
  paidProof(channelId: string, total: bigint): PaidProof | undefined {
    const backups = this.chain.chainMembers.slice(1).map((m) => m.node_id);
    return this.heldTotals.proof(backups, this.chain.epoch, channelId, total);
  }

  /** The proof for the next hop that every backup holds multi-hop payment `pid` committed, once they all signed it. */
  committedProof(pid: string): CommittedProof | undefined {
    const backups = this.chain.chainMembers.slice(1).map((m) => m.node_id);
    return this.heldCommits.proof(backups, this.chain.epoch, pid);
  }

  /** The highest sequence number `nodeId` has signed as applied in this view (0: none yet). */
  heldBy(nodeId: string): number {
    return this.held.get(nodeId) ?? 0;
  }

  /** The next update is a full snapshot (a member joins). */
  wantFull(): void {
    this.deltas.wantFull();
  }

  /**
   * A member could not apply delta `seq` (it holds another base: it restarted, reconnected, missed some):
   * one full snapshot, issued at once, unless one is due already or was issued after that delta.
   */
  private fullAfter(seq: number): void {
    if (this.deltas.fullPending || this.deltas.lastFull > seq) return;
    this.deltas.wantFull();
    void this.host.commitLocal().catch(() => undefined); // a seal with nothing new: its update is the snapshot
  }

  /** A member's refusal of an update: a missed base is caught up, a signed settlement it reports is acted on. */
  onRefuse(peerId: string, msg: Extract<CommitteeMessage, { t: 'c_refuse' }>): void {
    if (this.chain.isMember(peerId)) this.host.updateRefused(peerId, msg.seq, msg.code);
    if (msg.code === 'base_mismatch' && this.chain.isMember(peerId)) return this.fullAfter(msg.seq);
    // Otherwise the primary stays frozen: an update a member refuses is never acknowledged past.
    if (
      !this.chain.isMember(peerId) ||
      msg.code !== 'channel_settled' ||
      !msg.ch ||
      !msg.txid ||
      msg.sent === undefined ||
      msg.received === undefined ||
      !msg.fee_rate
    )
      return;
    this.settling.add(msg.ch);
    this.host.settledByMembers({
      ch: msg.ch,
      txid: msg.txid,
      sent: BigInt(msg.sent),
      received: BigInt(msg.received),
      feeRate: msg.fee_rate,
    });
  }
}
