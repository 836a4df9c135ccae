/**
 * The view change (docs/protocol/committees.md, "View change"): failure detection, voting and adopting a
 * new view, so that a backup takes over when its primary is gone and the committee goes on paying.
 *
 * Detection: the primary sends every member a heartbeat (c_beat) at least once a second; a backup that has
 * heard nothing from its primary for the promotion timeout suspects it. Timing decides only when a view
 * change is tried, never whether one is safe: that rests on the votes.
 * Agreement: the first backup in chain order that it can reach proposes the next epoch's view (itself
 * first, the old primary at the tail: view.ts). A member votes at most once per epoch (the vote is sealed
 * before it leaves), only while it suspects the primary too, and hands the candidate its newer update
 * first; the candidate counts only votes from members no newer than itself. q votes make the certificate;
 * the winner seals it, becomes primary and sends it to every member ahead of its first update.
 * Fencing: a member adopts a newer view only with a certificate that verifies against its own roster,
 * and from then on refuses updates, acknowledgements and signing requests of older epochs.
 */
import type { CommitteeMessage } from '../protocol/messages.ts';
import type { Membership } from './membership.ts';
import type { CommitteeHost } from './ports.ts';
import type { BackupReplication } from './replication-backup.ts';
import type { PrimaryReplication } from './replication-primary.ts';
import { checkRosterChangeSpec, checkViewCert } from './roster-change.ts';
import type { CommitteeMember } from '../treasury/state.ts';
import {
  checkViewSpec,
  isPromotionOf,
  proposedView,
  quorum,
  signVote,
  ViewError,
  voteValid,
  type ViewCert,
  type ViewSpec,
} from './view.ts';

/** A proposal this member made: its votes so far (with each voter's sequence number) until the deadline. */
interface Round {
  view: ViewSpec;
  /** A roster change that adds a member: its record, which only the primary knows yet. */
  joining?: CommitteeMember;
  votes: Map<string, { sig: string; seq: number }>;
  deadline: number;
}

export class Promotion {
  private lastHeard = Date.now();
  private lastBeat = 0;
  private round?: Round;
  private adopting = false;
  /** A proposal that came before this member suspected the primary itself: voted on if it does in time. */
  private deferred?: { peerId: string; msg: Extract<CommitteeMessage, { t: 'c_propose' }>; until: number };
  private readonly timer?: ReturnType<typeof setInterval>;

  constructor(
    private readonly host: CommitteeHost,
    private readonly chain: Membership,
    private readonly primary: PrimaryReplication,
    private readonly backup: BackupReplication,
    /** Called at every tick while this member is primary (work it retries on its own: resharing.ts). */
    private readonly onPrimaryTick: () => void = () => undefined,
  ) {
    const timeout = host.promotionTimeoutMs;
    if (timeout > 0) {
      this.timer = setInterval(() => this.tick(), Math.max(10, Math.min(250, Math.floor(timeout / 5))));
      this.timer.unref?.();
    }
  }

  private get c() {
    return this.chain.c;
  }

  private get timeout(): number {
    return this.host.promotionTimeoutMs;
  }

  /** At least once a second, and often enough that a short test timeout is not mistaken for silence. */
  private get beatMs(): number {
    return Math.max(10, Math.min(1000, Math.floor(this.timeout / 3)));
  }

  private ids(): string[] {
    return this.c.members.map((m) => m.node_id);
  }

  /** A view change of this member's is under way (a proposal out, or a certificate being adopted). */
  get busy(): boolean {
    return this.round !== undefined || this.adopting;
  }

  /** Stops the timers (a treasury that is shut down). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Any message from the current primary shows it is alive. */
  heard(peerId: string): void {
    if (peerId === this.c.primaryId) this.lastHeard = Date.now();
  }

  /** Whether this backup has heard nothing from its primary for the promotion timeout. */
  suspects(): boolean {
    return !this.chain.isPrimary && this.timeout > 0 && Date.now() - this.lastHeard >= this.timeout;
  }

  private tick(): void {
    const now = Date.now();
    if (this.chain.isPrimary) {
      if (now - this.lastBeat >= this.beatMs && this.chain.known) this.beat(now);
      this.onPrimaryTick();
      return;
    }
    if (!this.chain.known || !this.c.primaryId || this.adopting) return;
    const d = this.deferred;
    if (d && (now > d.until || this.suspects())) {
      this.deferred = undefined;
      if (now <= d.until) void this.onPropose(d.peerId, d.msg).catch(() => undefined);
    }
    if (this.round && now < this.round.deadline) return;
    this.round = undefined;
    if (this.suspects() && this.firstReachable()) void this.propose().catch(() => undefined);
  }

  private beat(now: number): void {
    this.lastBeat = now;
    for (const id of this.ids())
      if (id !== this.host.nodeId) this.host.sendNow(id, { t: 'c_beat', epoch: this.chain.epoch });
  }

  /** No backup before this one in chain order is reachable: this one is the candidate. */
  private firstReachable(): boolean {
    const i = this.chain.index;
    return (
      i >= 1 &&
      this.ids()
        .slice(1, i)
        .every((id) => !this.host.connected(id))
    );
  }

  /** Proposes the next epoch's view with this member first, and votes for it (sealed) before asking anyone. */
  async propose(): Promise<void> {
    const c = this.c;
    const ids = this.ids();
    const epoch = Math.max(this.chain.epoch, c.vote?.epoch ?? 0) + 1;
    const me = this.host.nodeId;
    const view = proposedView(this.chain.treasuryId, epoch, ids, me, (id) => this.host.connected(id));
    if (view.chain < quorum(ids.length, c.threshold)) return; // too few members reachable to win
    c.vote = view;
    await this.host.commitLocal();
    const seq = c.seq;
    this.round = {
      view,
      votes: new Map([[me, { sig: signVote(view, this.host.identityKey()), seq }]]),
      deadline: Date.now() + this.timeout,
    };
    for (const id of view.members.slice(1, -1))
      this.host.sendNow(id, { t: 'c_propose', epoch, members: view.members, chain: view.chain, seq });
  }

  /** Another backup proposes a view: voted for once per epoch, only while this member suspects the primary too. */
  async onPropose(peerId: string, msg: Extract<CommitteeMessage, { t: 'c_propose' }>): Promise<void> {
    const c = this.c;
    if (this.chain.isPrimary || !this.chain.known) return;
    // A roster change comes from the primary (onRosterPropose); a promotion never does.
    if (msg.threshold !== undefined) return this.onRosterPropose(peerId, msg);
    if (peerId === c.primaryId) return;
    const ids = this.ids();
    if (!ids.includes(peerId)) return;
    // A proposer that would replace a primary this member no longer has is behind: it learns the current view.
    if (c.view && msg.members[msg.members.length - 1] !== c.primaryId) {
      this.host.sendNow(peerId, { t: 'c_view', cert: c.view });
      return;
    }
    if (!this.suspects()) {
      // Heartbeats reach members at different times: one that hears the primary a little longer waits a little.
      this.deferred = { peerId, msg, until: Date.now() + this.timeout };
      return;
    }
    let view: ViewSpec;
    try {
      view = checkViewSpec(
        { treasury_id: this.chain.treasuryId, epoch: msg.epoch, members: msg.members, chain: msg.chain },
        { members: ids, threshold: c.threshold },
        this.chain.treasuryId,
        Math.max(this.chain.epoch, c.vote?.epoch ?? 0),
      );
    } catch {
      return;
    }
    if (!isPromotionOf(view, ids, peerId)) return;
    // Recorded before any await: a second proposal of this epoch, even one arriving meanwhile, gets no vote.
    c.vote = view;
    // A candidate behind this member gets the updates it lacks first (the session keeps the order).
    for (const update of this.backup.recent.after(msg.seq)) this.host.sendNow(peerId, { t: 'c_update', update });
    await this.host.commitLocal();
    this.sendVote(peerId, view);
  }

  /**
   * The primary proposes a roster change (roster-change.ts): `members` is the next roster in view order,
   * `joining` the added member's record. Checked here as every voter will check it, then voted for
   * (sealed) by the primary itself. Returns the proposal's epoch, or throws ViewError with the reason.
   */
  async proposeRosterChange(members: string[], chain: number, joining?: CommitteeMember): Promise<number> {
    const c = this.c;
    if (!this.chain.isPrimary || !this.chain.known)
      throw new ViewError("only a formed committee's primary changes the roster");
    if (this.round || this.adopting) throw new ViewError('a view change is under way');
    const epoch = Math.max(this.chain.epoch, c.vote?.epoch ?? 0) + 1;
    const view = checkRosterChangeSpec(
      { treasury_id: this.chain.treasuryId, epoch, members, chain, threshold: c.threshold },
      { members: this.ids(), threshold: c.threshold },
      this.chain.treasuryId,
      epoch - 1,
    );
    c.vote = view;
    await this.host.commitLocal();
    const me = this.host.nodeId;
    this.round = {
      view,
      joining,
      votes: new Map([[me, { sig: signVote(view, this.host.identityKey()), seq: c.seq }]]),
      deadline: Date.now() + Math.max(this.timeout, 5_000),
    };
    for (const id of this.ids())
      if (id !== me)
        this.host.sendNow(id, {
          t: 'c_propose',
          epoch,
          members: view.members,
          chain: view.chain,
          threshold: view.threshold,
          seq: c.seq,
        });
    return epoch;
  }

  /**
   * Primary: withdraws its roster-change proposal of `epoch`, which no quorum voted for in time, so that
   * a vote arriving later adopts no view the operator was told was refused, and the next change can be
   * proposed (the sealed vote of that epoch stays spent: the next one uses the next epoch). False while a
   * certificate is being adopted: the caller waits for it instead.
   */
  withdrawRosterChange(epoch: number): boolean {
    if (this.adopting) return false;
    if (this.round?.view.epoch === epoch && this.round.view.threshold !== undefined) this.round = undefined;
    return true;
  }

  /**
   * The primary proposes a roster change: voted for once per epoch if it is one the primary may propose
   * (roster-change.ts). No suspicion is needed; the vote is sealed before it leaves, like a promotion's.
   */
  private async onRosterPropose(peerId: string, msg: Extract<CommitteeMessage, { t: 'c_propose' }>): Promise<void> {
    const c = this.c;
    if (peerId !== c.primaryId) return;
    let view: ViewSpec;
    try {
      view = checkRosterChangeSpec(
        {
          treasury_id: this.chain.treasuryId,
          epoch: msg.epoch,
          members: msg.members,
          chain: msg.chain,
          threshold: msg.threshold,
        },
        { members: this.ids(), threshold: c.threshold },
        this.chain.treasuryId,
        Math.max(this.chain.epoch, c.vote?.epoch ?? 0),
      );
    } catch {
      return;
    }
    c.vote = view;
    await this.host.commitLocal();
    this.sendVote(peerId, view);
  }

  /** This member's vote for `view` (already sealed as its vote of that epoch), with the sequence number it holds. */
  private sendVote(peerId: string, view: ViewSpec): void {
    this.host.sendNow(peerId, {
      t: 'c_vote',
      epoch: view.epoch,
      seq: this.c.seq,
      sig: signVote(view, this.host.identityKey()),
    });
  }

  /**
   * A vote for this member's proposal: counted if it verifies, the voter is a member of the CURRENT roster
   * and no newer than this member; q of the current roster make the certificate.
   */
  async onVote(peerId: string, msg: Extract<CommitteeMessage, { t: 'c_vote' }>): Promise<void> {
    const r = this.round;
    if (!r || msg.epoch !== r.view.epoch || Date.now() > r.deadline) return;
    const ids = this.ids();
    if (!ids.includes(peerId) || !voteValid(r.view, peerId, msg.sig)) return;
    r.votes.set(peerId, { sig: msg.sig, seq: msg.seq });
    const counted = [...r.votes].filter(([, v]) => v.seq <= this.c.seq);
    if (counted.length < quorum(ids.length, this.c.threshold) || this.adopting) return;
    this.round = undefined;
    const cert: ViewCert = { ...r.view, votes: counted.map(([node_id, v]) => ({ node_id, sig: v.sig })) };
    await this.adopt(cert, r.joining);
  }

  /** A certificate from another member: adopted if it verifies against this member's roster and is newer. */
  async onView(peerId: string, raw: ViewCert): Promise<void> {
    if (!this.chain.known) return;
    const c = this.c;
    if ((raw.epoch ?? 0) < this.chain.epoch && c.view) {
      this.host.sendNow(peerId, { t: 'c_view', cert: c.view }); // the sender is behind: show it ours
      return;
    }
    let cert: ViewCert;
    try {
      cert = checkViewCert(
        raw,
        { members: this.ids(), threshold: c.threshold },
        this.chain.treasuryId,
        this.chain.epoch,
      );
    } catch {
      return;
    }
    await this.adopt(cert);
  }

  /** A heartbeat from a member still in an older view: it learns the current one. */
  onBeat(peerId: string, epoch: number): void {
    if (epoch < this.chain.epoch && this.c.view) this.host.sendNow(peerId, { t: 'c_view', cert: this.c.view });
  }

  /** A session with a member is up: a member in an older view learns the current one before anything else. */
  peerConnected(peerId: string): void {
    if (this.c.view && this.ids().includes(peerId)) this.host.sendNow(peerId, { t: 'c_view', cert: this.c.view });
  }

  /**
   * Adopts a checked certificate: the new order, the new epoch, this member's new role. The winner tells
   * every member before its first update of the view (that update comes from the seal below).
   */
  private async adopt(cert: ViewCert, joining?: CommitteeMember): Promise<void> {
    const c = this.c;
    if (cert.epoch <= this.chain.epoch) return;
    const me = this.host.nodeId;
    // A member the roster change removed stops here: it no longer follows the committee's views.
    if (!cert.members.includes(me)) return;
    const wasPrimary = this.chain.isPrimary;
    const before = this.ids();
    c.shareOrder ??= before;
    // A member a roster change added: it holds no share until the committee re-splits (resharing.ts).
    const added = cert.threshold !== undefined ? cert.members.filter((id) => !before.includes(id)) : [];
    const byId = new Map(c.members.map((m) => [m.node_id, m]));
    if (joining && added.includes(joining.node_id)) byId.set(joining.node_id, structuredClone(joining));
    // An added member's address reaches the backups in the primary's next update (update-rules.ts).
    c.members = cert.members.map((id) => byId.get(id) ?? { node_id: id, address: '' });
    c.size = c.members.length;
    if (cert.threshold !== undefined) c.rosterViews = [...(c.rosterViews ?? []), cert];
    c.epoch = cert.epoch;
    c.view = cert;
    this.round = undefined;
    this.lastHeard = Date.now();
    if (cert.members[0] === me) {
      c.role = 'primary';
      delete c.primaryId;
      delete c.lastUpdate;
      delete c.rejoin;
    } else {
      if (wasPrimary) {
        // Its own deposit keys stay with it, now as a member's keys; its unacknowledged state is the new primary's to decide.
        for (const d of Object.values(this.host.state.deposits))
          if (d.privkeys[0] && !c.memberKeys[d.id]) c.memberKeys[d.id] = d.privkeys[0];
        c.rejoin = true;
      }
      c.role = 'backup';
      c.primaryId = cert.members[0];
    }
    this.primary.newView();
    this.backup.newView();
    this.adopting = true;
    try {
      if (cert.members[0] === me) {
        for (const id of new Set([...cert.members.slice(1), ...before]))
          if (id !== me) this.host.sendNow(id, { t: 'c_view', cert });
        // The newcomer knows no roster to check this against: it is told its place (admission.ts).
        if (joining && added.includes(joining.node_id))
          this.host.sendNow(joining.node_id, {
            t: 'c_welcome',
            cert,
            chain: (c.rosterViews ?? []).filter((v) => v.epoch < cert.epoch),
            share_order: c.shareOrder,
          });
      }
      await this.host.commitLocal();
    } finally {
      this.adopting = false;
    }
    // Its catch-up: the new view's full snapshot (from that seal) straight after the welcome, on the same session.
    const latest = this.primary.lastIssued;
    if (joining && added.includes(joining.node_id) && latest && this.chain.isPrimary)
      this.host.sendNow(joining.node_id, { t: 'c_update', update: latest });
    this.chain.rosterChanged();
    this.host.viewChanged(cert);
  }
}
