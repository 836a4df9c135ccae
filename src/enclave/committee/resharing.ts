/**
 * Re-splitting handed-over keys after a roster change (docs/protocol/committees.md, "Re-splitting
 * handed-over keys"): the shares a channel peer made for the old roster are replaced by shares for the
 * current one, so that m of the current members rebuild every key and a removed member's share, of a
 * split no current member keeps, rebuilds nothing.
 *
 * The primary does it, for every open channel's peer deposits whose holders are not the current roster
 * (share-holders.ts reshareDue), in two replicated steps:
 *   1. it gathers m shares of the old split (its own and those of current members, each given only while
 *      that member's own replica shows the re-split due), rebuilds each key inside its enclave, checks it
 *      against the public key, splits it afresh (a new random polynomial, m-of-n' over the current roster)
 *      and seals one share to each current member: the new split goes into the deposit's `reshare`, beside
 *      the old shares, and waits until every replicating member has sealed it;
 *   2. only then the new split becomes `shares` and the old boxes go (every member drops its old share
 *      when it adopts that update).
 * A crash at any point leaves either the old split whole (step 1 not acknowledged: it is made again) or
 * both (step 2 not acknowledged: it is done again): the keys stay rebuildable throughout. Each step is a
 * plain replicated state change, so it is idempotent across restarts and promotions: whichever member is
 * primary next finds what is still due and carries on. Backups check both steps (update-rules.ts).
 */
import { bytesToHex, hexToBytes } from '../../../enclave-sim/encoding.ts';
import { publicKeyOf } from '../../crypto/secp256k1.ts';
import type { CommitteeMessage } from '../protocol/messages.ts';
import { TreasuryError } from '../treasury/errors.ts';
import type { Channel, PeerDeposit } from '../treasury/state.ts';
import { ownShares, shareKeys } from './key-boxes.ts';
import type { Membership } from './membership.ts';
import type { CommitteeHost } from './ports.ts';
import type { Requests } from './requests.ts';
import { holdersOf, reshareDue, rosterIds, sameMembers } from './share-holders.ts';
import { combineShares, splitSecret } from './shares.ts';

/** How long a failed re-split waits before the next attempt (members may be down for a while). */
const RETRY_MS = 1_000;

export class Resharing {
  private running = false;
  /** After a failed attempt (too few members gave shares), the next waits a little. */
  private retryAt = 0;

  constructor(
    private readonly host: CommitteeHost,
    private readonly chain: Membership,
    private readonly requests: Requests,
  ) {}

  private get c() {
    return this.chain.c;
  }

  /** Open channels (a settled one's keys are signed away and forgotten once deep) with a peer deposit to re-split. */
  private dueChannels(): Channel[] {
    return Object.values(this.host.state.channels).filter(
      (ch) => ch.status !== 'closed' && ch.peerDeposits.some((d) => reshareDue(d, this.c) || d.reshare),
    );
  }

  /** Primary: starts a re-split if one is due and none is running (called on view changes, connections, ticks). */
  kick(): void {
    if (!this.chain.isPrimary || !this.chain.known || this.running || Date.now() < this.retryAt) return;
    if (this.dueChannels().length === 0) return;
    void this.run().catch(() => undefined);
  }

  /** Primary: re-splits every due key in the two steps above; resolves when none is left due. */
  async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const epoch = this.chain.epoch;
    let superseded = false;
    try {
      let made = false;
      for (const ch of this.dueChannels()) made = (await this.splitChannel(ch, epoch)) || made;
      // Step 1 durable at every replicating member: also a split an earlier primary made, whose
      // acknowledgement this one never saw (it carries on after a promotion or a restart).
      if (made || this.dueChannels().length > 0) await this.host.commitReplicated();
      if (this.chain.epoch !== epoch || !this.chain.isPrimary) return; // a newer view carries on from the state
      let swapped = false;
      for (const ch of this.dueChannels()) for (const dep of ch.peerDeposits) swapped = this.swap(dep) || swapped;
      if (swapped) await this.host.commitReplicated();
    } catch (err) {
      // A newer view took over while this one waited for its acknowledgement: not a failure to back off
      // from, the new view's re-split starts at once (its kick came while this run still held `running`).
      if (this.chain.epoch !== epoch) superseded = true;
      else {
        this.retryAt = Date.now() + RETRY_MS;
        throw err;
      }
    } finally {
      this.running = false;
    }
    if (superseded) this.kick();
  }

  /** Step 1 for one channel: a fresh split of each due key for the current roster. Returns whether it made one. */
  private async splitChannel(ch: Channel, epoch: number): Promise<boolean> {
    const roster = rosterIds(this.c);
    const due = ch.peerDeposits.filter(
      (d) => reshareDue(d, this.c) && !(d.reshare && sameMembers(d.reshare.holders, roster)),
    );
    let made = false;
    // A re-split made for a roster that is back where the shares' holders are (added, then removed): dropped.
    for (const d of ch.peerDeposits)
      if (d.reshare && !reshareDue(d, this.c)) {
        delete d.reshare;
        made = true;
      }
    if (due.length === 0) return made;
    const gathered = await this.gather(ch, due);
    for (const dep of due) {
      const keys = [];
      for (const s of dep.shares!) keys.push(await this.rebuild(dep, s.pubkey, gathered));
      // Re-read: the state may have moved while members answered (the channel closed, a newer view).
      if (this.chain.epoch !== epoch || ch.status === 'closed' || !ch.peerDeposits.includes(dep)) return made;
      dep.reshare = {
        epoch,
        holders: roster,
        shares: await shareKeys(
          keys,
          roster.map((node_id) => ({ node_id, address: '' })),
          this.c.threshold,
          splitSecret,
        ),
      };
      made = true;
    }
    return made;
  }

  /** Step 2: a re-split every replicating member has sealed becomes the deposit's shares; the old boxes go. */
  private swap(dep: PeerDeposit): boolean {
    const r = dep.reshare;
    if (!r || !reshareDue(dep, this.c) || !sameMembers(r.holders, rosterIds(this.c))) return false;
    dep.shares = r.shares;
    dep.holders = r.holders;
    dep.gen = r.epoch;
    delete dep.reshare;
    return true;
  }

  /** m shares of the old split of every due key of `ch`, this member's own and the others' (c_reshare). */
  private async gather(ch: Channel, due: PeerDeposit[]): Promise<Map<string, Uint8Array[]>> {
    const m = this.c.threshold;
    const me = this.host.nodeId;
    const out = new Map<string, Uint8Array[]>(); // `${outpoint}/${pubkey}` → shares of the old split
    const add = (s: { outpoint: string; pubkey: string; share: string; gen?: number }) => {
      const dep = due.find((d) => d.outpoint === s.outpoint);
      if (!dep || (s.gen ?? 0) !== (dep.gen ?? 0) || !dep.shares!.some((k) => k.pubkey === s.pubkey)) return;
      const key = `${s.outpoint}/${s.pubkey}`;
      const list = out.get(key) ?? [];
      if (!list.some((x) => bytesToHex(x) === s.share)) list.push(hexToBytes(s.share));
      out.set(key, list);
    };
    for (const dep of due) for (const s of ownShares(dep, this.c, me, this.host.identityKey())) add(s);
    const enough = () =>
      due.every((d) => d.shares!.every((s) => (out.get(`${d.outpoint}/${s.pubkey}`)?.length ?? 0) >= m));
    if (enough()) return out;
    // Only current members that hold a share of the old split can give one.
    const holders = new Set(due.flatMap((d) => holdersOf(d, this.c)));
    const others = rosterIds(this.c).filter((id) => id !== me && holders.has(id) && this.host.connected(id));
    await this.requests
      .ask(
        others,
        { t: 'c_reshare', req: 0, ch: ch.id, epoch: this.chain.epoch },
        others.length,
        (msg) => {
          // A member that refuses (it has not adopted the view yet, say) does not stop the others' answers.
          if (msg.t === 'c_error') return false;
          if (msg.t !== 'c_reshare_res') return null;
          for (const s of msg.shares) add(s);
          return true;
        },
        enough,
      )
      .catch((err: unknown) => {
        if (!enough()) throw err;
      });
    if (!enough()) throw new TreasuryError('committee_unavailable', `fewer than ${m} members gave their key shares`);
    return out;
  }

  /** One key rebuilt from m shares of its old split, checked against its public key before it is split again. */
  private async rebuild(dep: PeerDeposit, pubkey: string, gathered: Map<string, Uint8Array[]>): Promise<string> {
    const list = gathered.get(`${dep.outpoint}/${pubkey}`) ?? [];
    const key = await combineShares(list.slice(0, this.c.threshold));
    if (bytesToHex(publicKeyOf(key)) !== pubkey)
      throw new TreasuryError(
        'committee_unavailable',
        'the key shares members gave did not rebuild the handed-over key',
      );
    return bytesToHex(key);
  }

  /**
   * Member: its primary asks for this member's shares of `ch`'s peer deposits to re-split them. Given only
   * to the current primary, in the current view, and only for keys whose re-split this member's own replica
   * shows due (held by another set than the current roster): a primary cannot collect shares at will.
   */
  onReshare(peerId: string, msg: Extract<CommitteeMessage, { t: 'c_reshare' }>): void {
    const refuse = (code: 'stale_epoch' | 'view_unknown' | 'unknown_channel' | 'state_mismatch', message: string) =>
      this.host.sendNow(peerId, { t: 'c_error', req: msg.req, code, message });
    if (this.chain.isPrimary || peerId !== this.c.primaryId) return;
    if (msg.epoch < this.chain.epoch) return refuse('stale_epoch', 'the request comes from an older committee view');
    if (msg.epoch > this.chain.epoch)
      return refuse('view_unknown', 'the request comes from a view this member has not seen');
    const ch = this.host.state.channels[msg.ch];
    if (!ch || ch.status === 'closed')
      return refuse('unknown_channel', `no open channel ${msg.ch} in this member's state`);
    const due = ch.peerDeposits.filter((d) => reshareDue(d, this.c));
    if (due.length === 0) return refuse('state_mismatch', "no re-split is due in this member's state");
    const shares = due.flatMap((d) =>
      ownShares(d, this.c, this.host.nodeId, this.host.identityKey()).filter((s) => s.gen === (d.gen ?? 0)),
    );
    this.host.sendNow(peerId, { t: 'c_reshare_res', req: msg.req, shares });
  }
}
