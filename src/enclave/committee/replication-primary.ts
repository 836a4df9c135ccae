/**
 * The primary's side of replication. After every seal it issues one signed update of its whole state and
 * sends it to its successor; the seal's messages (payment acknowledgements, …) wait until the tail's
 * acknowledgement, signed by every backup, has come back up the chain. A backup's refusal that shows a
 * settlement the members signed stops payments on that channel and has the treasury close it.
 */
import { bytesToHex } from '../../../enclave-sim/encoding.ts';
import type { CommitteeMessage } from '../protocol/messages.ts';
import { TreasuryError } from '../treasury/errors.ts';
import { ackedByAll } from './acks.ts';
import type { Membership } from './membership.ts';
import type { CommitteeHost } from './ports.ts';
import { forgetTau } from './signed.ts';
import { replicaOf, signUpdate, type SignedUpdate } from './update.ts';

export class PrimaryReplication {
  /** The latest update issued: what a (re)connecting successor or a newcomer is sent first. */
  lastIssued?: SignedUpdate;
  /** The highest sequence number every backup has signed as applied. */
  acked = 0;
  private ackWaiters: Array<{ seq: number; resolve: () => void; reject: (err: unknown) => void }> = [];
  private pendingUpdate = false;
  /** Channels some member asked to sign a settlement for: they take no new payments. */
  private readonly settling = new Set<string>();

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
    this.lastIssued = undefined;
    this.pendingUpdate = false;
    const err = new TreasuryError('not_primary', 'a newer committee view took over before this was acknowledged');
    for (const w of this.ackWaiters) w.reject(err);
    this.ackWaiters = [];
  }

  /** Called while snapshotting: the update that the coming seal's state will be replicated as. */
  prepareUpdate(): void {
    if (!this.chain.isPrimary || this.c.members.length < 2) return;
    this.c.seq += 1;
    this.pendingUpdate = true;
    forgetTau(this.c, this.host.state.multihop);
  }

  /** After the primary's own seal: send the update down the chain; resolves when the tail has it. */
  replicate(): Promise<void> {
    if (!this.pendingUpdate) return Promise.resolve();
    this.pendingUpdate = false;
    const update = signUpdate(replicaOf(this.host.state, this.c.seq), bytesToHex(this.host.identityKey()));
    this.lastIssued = update;
    const next = this.chain.neighbour(1);
    if (next) this.host.sendNow(next, { t: 'c_update', update });
    if (update.seq <= this.acked) return Promise.resolve();
    return new Promise((resolve, reject) => this.ackWaiters.push({ seq: update.seq, resolve, reject }));
  }

  /** The successor's acknowledgement (the caller checked it came from the successor). */
  onAck(msg: Extract<CommitteeMessage, { t: 'c_ack' }>): void {
    // Only what every backup signed counts: the successor's word alone does not.
    const seq = ackedByAll(this.host.nodeId, this.chain.chainMembers, msg.sigs, this.chain.epoch);
    if (seq === null || seq <= this.acked) return;
    this.acked = seq;
    const still: typeof this.ackWaiters = [];
    for (const w of this.ackWaiters) w.seq <= seq ? w.resolve() : still.push(w);
    this.ackWaiters = still;
  }

  /** A member's refusal of an update: only a signed settlement it reports is acted on. */
  onRefuse(peerId: string, msg: Extract<CommitteeMessage, { t: 'c_refuse' }>): void {
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
