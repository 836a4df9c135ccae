/**
 * One member's part in a committee chain (docs/protocol/committees.md), inside its enclave: the one object
 * the treasury holds, which routes each committee message to the part that owns it.
 *
 * Primary: issues a signed update after every seal, sends it to its successor and releases the seal's
 * messages (payment acknowledgements, …) only when the tail's acknowledgement has come back up the
 * chain (replication-primary.ts); asks every member for a key of each new deposit and for its key sealed
 * to the channel peer when a deposit joins a channel (deposit-keys.ts); admits members (joining.ts).
 * Backup: applies the primary's updates in sequence order (seal, then forward, then acknowledge), makes
 * and keeps its own deposit keys, and signs a settlement or release only when it rebuilds the very same
 * transaction from its own replica (replication-backup.ts, signing.ts).
 * Any m members settle: the settler gathers m signatures for every committee deposit and m secret
 * shares of every key the channel peer handed over (signing.ts).
 */
import type { CommitteeMessage } from '../protocol/messages.ts';
import { TreasuryError } from '../treasury/errors.ts';
import type { Quote } from '../../../enclave-sim/quote.ts';
import { Admission } from './admission.ts';
import { DepositKeys } from './deposit-keys.ts';
import { Joining } from './joining.ts';
import { Membership } from './membership.ts';
import { Promotion } from './promotion.ts';
import { RosterOps, type RosterChangeResult } from './roster-ops.ts';
import type { CommitteeHost, HandedKey, Planned, SignKind, UpdateRefusal } from './ports.ts';
import { BackupReplication } from './replication-backup.ts';
import { PrimaryReplication } from './replication-primary.ts';
import { Requests } from './requests.ts';
import { Resharing } from './resharing.ts';
import type { RosterProof, ViewProof } from './roster.ts';
import type { PaidProof } from './paid-proof.ts';
import type { CommittedProof } from './committed-proof.ts';
import { ThresholdSigning, type Contribution } from './signing.ts';
import type { SignedUpdate } from './update.ts';

export type {
  CommitteeHost,
  HandedKey,
  Planned,
  PlannedInput,
  SignedSettlement,
  SignKind,
  UpdateRefusal,
} from './ports.ts';
export { openSealedKey, shareKeys } from './key-boxes.ts';

export class CommitteeCoordinator {
  private readonly chain: Membership;
  private readonly requests: Requests;
  private readonly primary: PrimaryReplication;
  private readonly backup: BackupReplication;
  private readonly joining: Joining;
  private readonly admission: Admission;
  private readonly keys: DepositKeys;
  private readonly signing: ThresholdSigning;
  private readonly promotion: Promotion;
  private readonly rosterOps: RosterOps;
  private readonly resharing: Resharing;

  constructor(private readonly host: CommitteeHost) {
    this.chain = new Membership(host);
    this.requests = new Requests(host);
    this.primary = new PrimaryReplication(host, this.chain);
    this.backup = new BackupReplication(host, this.chain);
    this.admission = new Admission(host, this.chain, (id) => this.joining.askAgain(id));
    this.joining = new Joining(host, this.chain, this.primary, this.admission);
    this.keys = new DepositKeys(host, this.chain, this.requests);
    this.signing = new ThresholdSigning(host, this.chain, this.requests, this.primary, this.backup, {
      contribution: (planned) => this.contribution(planned),
      announceSigned: (id) => this.announceSigned(id),
    });
    this.resharing = new Resharing(host, this.chain, this.requests);
    this.promotion = new Promotion(host, this.chain, this.primary, this.backup, () => this.resharing.kick());
    this.rosterOps = new RosterOps(host, this.chain, this.promotion, this.primary, this.admission);
  }

  /** Primary: removes a member (dead or alive) under a new view that a quorum of the current members signs. */
  removeMember(nodeId: string): Promise<RosterChangeResult> {
    return this.rosterOps.remove(nodeId);
  }

  /**
   * Primary: adds the node its host dialled at `address` (an attested session) at the tail, under a new
   * view that a quorum of the current members signs (admission.ts, roster-ops.ts).
   */
  addMember(nodeId: string, address: string): Promise<RosterChangeResult> {
    return this.rosterOps.add(nodeId, address);
  }

  /**
   * The quotes of the members the roster changes name: what a channel peer needs to follow a change that
   * added a member (it takes none without its quote). Founding members' come along; the peer has them.
   */
  addedMembers(): Array<{ node_id: string; quote: Quote }> {
    const quotes = this.c.quotes ?? {};
    const named = new Set((this.c.rosterViews ?? []).flatMap((v) => v.members));
    return [...named].filter((id) => quotes[id]).map((id) => ({ node_id: id, quote: quotes[id]! }));
  }

  /**
   * Primary: re-splits the handed-over keys whose shares another set of members holds than the current
   * roster (resharing.ts); resolves when none is left. Also started on its own after every view change.
   */
  reshare(): Promise<void> {
    return this.resharing.run();
  }

  /** Primary: starts a re-split if one is due (a peer granted a deposit split for an older roster). */
  reshareSoon(): void {
    this.resharing.kick();
  }

  /** Stops the view change's timers (the treasury is shut down). */
  stop(): void {
    this.promotion.stop();
  }

  /** The current view's certificate (absent in epoch 0): what a channel peer needs to follow a new primary. */
  get viewCert() {
    return this.c.view;
  }

  /** Every roster change's certificate since formation: the chain a channel peer follows (roster-change.ts). */
  get rosterViews() {
    return this.c.rosterViews ?? [];
  }

  private get c() {
    return this.chain.c;
  }

  get isPrimary(): boolean {
    return this.chain.isPrimary;
  }

  get formed(): boolean {
    return this.chain.formed;
  }

  isMember(peerId: string): boolean {
    return this.chain.isMember(peerId);
  }

  /** Primary: whether members are settling `channelId` (a signing request was seen), so it must not pay on it. */
  isSettling(channelId: string): boolean {
    return this.primary.isSettling(channelId);
  }

  /** The committee's stable identity for channel peers and routing (Membership.treasuryId). */
  get treasuryId(): string {
    return this.chain.treasuryId;
  }

  view() {
    return {
      treasury_id: this.chain.treasuryId,
      epoch: this.chain.epoch,
      role: this.c.role,
      size: this.c.size,
      threshold: this.c.threshold,
      index: this.chain.index,
      // The first `chain` members replicate and acknowledge; the others stand by (a view change left them out).
      chain: this.chain.chainLength,
      seq: this.c.seq,
      // A primary is formed once every member has joined and attested (its roster proof is complete).
      acked_seq: this.isPrimary ? this.primary.acked : this.backup.acknowledged,
      formed: this.formed && (!this.isPrimary || this.rosterProof() !== null),
      ...(this.isPrimary ? { issued: { ...this.primary.issued } } : {}),
      members: this.c.members.map((m) => ({
        node_id: m.node_id,
        address: m.address,
        ...(m.rest_url !== undefined ? { rest_url: m.rest_url } : {}),
        connected: m.node_id === this.host.nodeId || this.host.connected(m.node_id),
      })),
    };
  }

  /** Primary: refuses new payments unless every member is there to replicate them (Teechain freezes too). */
  assertReady(): void {
    if (!this.isPrimary)
      throw new TreasuryError(
        'not_primary',
        'this member is a backup: payments and channel changes go through the primary',
      );
    if (!this.formed)
      throw new TreasuryError(
        'committee_incomplete',
        `${this.c.members.length} of ${this.c.size} committee members have joined`,
      );
    const missing = this.chain.chainMembers.slice(1).filter((m) => !this.host.connected(m.node_id));
    if (missing.length > 0)
      throw new TreasuryError(
        'committee_unavailable',
        `committee member ${missing[0]!.node_id.slice(0, 16)}… is not connected`,
      );
  }

  // ───────────────────────────── replication ─────────────────────────────

  /** Called while snapshotting: the update that the coming seal's state will be replicated as. */
  prepareUpdate(): void {
    this.primary.prepareUpdate();
  }

  /** After the primary's own seal: send the update down the chain; resolves when the tail has it. */
  replicate(): Promise<void> {
    return this.primary.replicate();
  }

  /**
   * Applies an update (from whichever member relays it): the primary's signature and a sequence number
   * above ours are required. Returns the refusal code, or null when applied or already had.
   */
  applyUpdate(update: SignedUpdate): Promise<UpdateRefusal | null> {
    return this.backup.applyUpdate(update);
  }

  /** Primary: the proof for the channel peer that every backup holds `total` paid on `channelId` (paid-proof.ts). */
  paidProof(channelId: string, total: bigint): PaidProof | undefined {
    return this.isPrimary ? this.primary.paidProof(channelId, total) : undefined;
  }

  /** Primary: the proof for the next hop that every backup holds multi-hop payment `pid` committed (committed-proof.ts). */
  committedProof(pid: string): CommittedProof | undefined {
    return this.isPrimary ? this.primary.committedProof(pid) : undefined;
  }

  /** Backup that signed a settlement of `channelId`: tell the primary directly, so it stops paying on it. */
  announceSigned(channelId: string): void {
    this.backup.announceSigned(channelId);
  }

  /** A session with another member is up: catch it up, or tell it where we are. */
  peerConnected(peerId: string): void {
    this.promotion.peerConnected(peerId);
    this.joining.requestQuote(peerId);
    if (!this.isPrimary) return this.backup.peerConnected(peerId);
    const latest = this.primary.lastIssued;
    // Every member gets its updates from the primary: one that comes back is sent the latest at once.
    if (latest && this.chain.others().includes(peerId)) this.host.sendNow(peerId, { t: 'c_update', update: latest });
    this.resharing.kick(); // a member that gives its shares may be back
  }

  /** A session with another member went down: a primary waiting for acknowledgements turns to the chain. */
  peerLost(peerId: string): void {
    if (this.isPrimary) this.primary.memberLost(peerId);
  }

  // ───────────────────────────── joining ─────────────────────────────

  /** Joining: the host dialled the primary; ask it for a place at the tail of its chain. */
  join(primaryId: string, address: string, token?: string, restUrl?: string): void {
    this.joining.join(primaryId, address, token, restUrl);
  }

  /** Primary: lists its host's REST URL in the roster (Joining.advertiseRestUrl); true when that changed it. */
  advertiseRestUrl(url: string): boolean {
    return this.joining.advertiseRestUrl(url);
  }

  /**
   * Every member's quote over its node id, in the formation order; past the founding view with the proof
   * of the view (viewProof), so that a peer that knew nothing of the committee can check that this member
   * is its primary (roster-change.ts verifyAnnouncedRoster). Null until each member has joined and answered.
   */
  rosterProof(): RosterProof | null {
    const proof = this.joining.rosterProof();
    return proof && { ...proof, ...this.viewProof() };
  }

  /**
   * The current view's certificate, the roster changes before it and the quotes of the members they name:
   * how a channel peer reaches this view from a roster it verified. Absent in the founding view.
   */
  viewProof(): ViewProof | undefined {
    const cert = this.c.view;
    if (!cert) return undefined;
    const chain = this.rosterViews.filter((v) => v.epoch < cert.epoch);
    const added = this.addedMembers();
    return { cert, ...(chain.length ? { chain } : {}), ...(added.length ? { added } : {}) };
  }

  // ───────────────────────────── deposit keys ─────────────────────────────

  /** Primary: one fresh key from every member for a new deposit (its own included); pubkeys in chain order. */
  depositKeys(depId: string, ownPub: string): Promise<string[]> {
    return this.keys.depositKeys(depId, ownPub);
  }

  /**
   * Primary: every member's key of `depId` for the channel peer, in `pubkeys` order: sealed whole to a lone
   * peer, or split for a committee peer's roster (each member splits its own, so no one sees the others').
   */
  handover(
    depId: string,
    pubkeys: string[],
    own: HandedKey,
  ): Promise<{ sealedKeys: string[] } | { shares: Array<{ pubkey: string; boxes: string[] }> }> {
    return this.keys.handover(depId, pubkeys, own);
  }

  /** This member's key of `depId` for the deposit's channel peer, after checking the replica says so. */
  sealOwnKey(depId: string, priv: string): Promise<HandedKey> {
    return this.keys.sealOwnKey(depId, priv);
  }

  // ───────────────────────────── threshold signing ─────────────────────────────

  /**
   * Signs `planned` with this member's part and m − 1 other members' parts. The settler's own state must
   * already record the settlement (so it never signs another); `update` lets the others catch up first.
   */
  sign(kind: SignKind, id: string, feeRate: number, planned: Planned): Promise<{ hex: string }> {
    return this.signing.sign(kind, id, feeRate, planned);
  }

  /** This member's part: its signature of each committee deposit, its share of each handed-over key. */
  private contribution(planned: Planned): Contribution {
    return this.signing.ownPart(planned);
  }

  // ───────────────────────────── plumbing ─────────────────────────────

  /** Handles a committee message from a connected member. */
  async handle(peerId: string, msg: CommitteeMessage): Promise<void> {
    this.promotion.heard(peerId);
    switch (msg.t) {
      case 'c_beat':
        return this.promotion.onBeat(peerId, msg.epoch);
      case 'c_propose':
        return this.promotion.onPropose(peerId, msg);
      // A view this member adopts as primary may leave handed-over keys to re-split (resharing.ts).
      case 'c_vote':
        await this.promotion.onVote(peerId, msg);
        return this.resharing.kick();
      case 'c_view':
        await this.promotion.onView(peerId, msg.cert);
        return this.resharing.kick();
      case 'c_join':
        return this.joining.onJoin(peerId, msg.address, msg.token, { url: msg.rest_url, sig: msg.rest_url_sig });
      case 'c_admit':
        return this.admission.onAdmit(peerId);
      case 'c_welcome':
        if (await this.admission.onWelcome(peerId, msg.cert, msg.chain, msg.share_order)) this.backup.newView();
        return;
      case 'c_join_refused':
        if (!this.isPrimary && peerId === this.c.primaryId) this.host.joinRefused(msg.code);
        return;
      case 'c_update':
        if (!this.isPrimary) this.backup.onUpdate(peerId, msg.update, msg.relay === true);
        else if ((msg.update.epoch ?? 0) < this.chain.epoch)
          this.host.sendNow(peerId, { t: 'c_refuse', seq: msg.update.seq, code: 'stale_epoch' });
        return;
      case 'c_ack':
        // The primary hears from its successor (for the whole chain) and from every backup (for itself).
        if (this.isPrimary) return this.primary.onAck(peerId, msg);
        if (peerId === this.chain.neighbour(1)) this.backup.onAck(msg);
        return;
      case 'c_refuse':
        // A backup relays its successor's towards the primary; the primary acts on a signed settlement.
        if (this.isPrimary) this.primary.onRefuse(peerId, msg);
        else this.backup.onRefuse(peerId, msg);
        return;
      case 'c_keygen':
        return this.keys.onKeygen(peerId, msg.req, msg.dep);
      case 'c_handover':
        return this.keys.onHandover(peerId, msg.req, msg.dep);
      case 'c_quote_req':
        return this.joining.onQuoteReq(peerId, msg.req);
      case 'c_quote':
        return this.joining.onQuote(peerId, msg.quote);
      case 'c_sign':
        return this.signing.onSign(peerId, msg);
      case 'c_reshare':
        return this.resharing.onReshare(peerId, msg);
      default:
        this.requests.deliver(peerId, msg);
    }
  }

  /** Sends `msg` to each of `to` and gathers answers (Requests.ask); tests send raw requests through it. */
  private ask<T>(
    to: string[],
    msg: CommitteeMessage & { req: number },
    needed: number,
    read: (msg: CommitteeMessage, from: string) => T | null,
    done?: () => boolean,
  ): Promise<Map<string, T>> {
    return this.requests.ask(to, msg, needed, read, done);
  }
}
