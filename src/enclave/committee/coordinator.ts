/**
 * One member's part in a committee chain (README "Committee chains"), inside its enclave.
 *
 * Primary: issues a signed update after every seal, sends it to its successor and releases the seal's
 * messages (payment acknowledgements, …) only when the tail's acknowledgement has come back up the
 * chain; asks every member for a key of each new deposit and for its key sealed to the channel peer
 * when a deposit joins a channel.
 * Backup: applies the primary's updates in sequence order (seal, then forward, then acknowledge), makes
 * and keeps its own deposit keys, and signs a settlement or release only when it rebuilds the very same
 * transaction from its own replica.
 * Any m members settle: the settler gathers m signatures for every committee deposit and m secret
 * shares of every key the channel peer handed over.
 */
import { bytesToHex, hexToBytes } from '../../../enclave-sim/encoding.ts';
import { openBox, sealTo } from '../../crypto/ecies.ts';
import { publicKeyOf, randomPrivateKey } from '../../crypto/secp256k1.ts';
import type { CommitteeMessage } from '../protocol/messages.ts';
import { TreasuryError, type TreasuryErrorCode } from '../treasury/errors.ts';
import type { CommitteeMember, CommitteeState, PeerDeposit, TreasuryState } from '../treasury/state.ts';
import { checkInputSignature, finishInput, signaturesFor, type SpendPlan } from '../treasury/transactions.ts';
import { combineShares, splitSecret } from './shares.ts';
import { joinRefusal, useJoinToken } from './join-tokens.ts';
import { checkMemberQuote, MEMBER_QUOTE_NONCE, verifyRoster, type RosterProof } from './roster.ts';
import type { Quote } from '../../../enclave-sim/quote.ts';
import { openUpdate, replicaOf, signUpdate, type ReplicaBody, type SignedUpdate } from './update.ts';
import { checkUpdate, type UpdateRuleCode } from './update-rules.ts';
import { ackedByAll, signAck, type AckSig } from './acks.ts';
import type { KeyedSignature } from '../../bitcoin/index.ts';

export type SignKind = 'settle' | 'release';

/** One input of a transaction the committee signs, and how its signatures are obtained. */
export type PlannedInput =
  { kind: 'own'; depositId: string; m: number; pubkeys: string[] } | { kind: 'peer'; deposit: PeerDeposit };

export interface Planned {
  plan: SpendPlan;
  inputs: PlannedInput[];
}

/** What the coordinator needs from the treasury that owns it. */
export interface CommitteeHost {
  readonly state: TreasuryState;
  readonly nodeId: string;
  identityKey(): Uint8Array;
  /** Sends at once over the member's session (no-op if it is not connected). */
  sendNow(peerId: string, msg: CommitteeMessage): void;
  connected(peerId: string): boolean;
  commitLocal(): Promise<void>;
  /** The unsigned transaction this member would sign for (kind, id) from its own state. */
  planFor(kind: SignKind, id: string, feeRate: number): Planned;
  /** Marks what this member signed as done in its own state (channel closed, deposit spent). */
  markSigned(kind: SignKind, id: string, txid: string, feeRate: number): void;
  rosterChanged(members: CommitteeMember[], index: number): void;
  /** Primary: members signed this settlement of a channel; close it at the signed totals (if they check out). */
  settledByMembers(s: SignedSettlement): void;
  /** Backup: its primary refused its join (with the code the primary gave). */
  joinRefused(code: string): void;
  /** A quote over this member's identity for `nonce` (Treasury.attest). */
  attest(nonce: Uint8Array): Promise<Quote>;
  /** Primary: every member's quote is in; the roster proof can go to channel peers. */
  rosterComplete(): void;
  timeoutMs: number;
}

/** A settlement a member signed: the channel, the txid, the totals and fee rate it was built from. */
export interface SignedSettlement {
  ch: string;
  txid: string;
  sent: bigint;
  received: bigint;
  feeRate: number;
}

/** Why an update was refused; for `channel_settled`, the settlement that the update contradicts. */
export interface UpdateRefusal {
  code: TreasuryErrorCode | UpdateRuleCode;
  settled?: SignedSettlement;
}

interface Collector {
  onMessage(peerId: string, msg: CommitteeMessage): void;
}

const AAD_KEY = 'deposit-key';
const AAD_SHARE = 'key-share';

export class CommitteeCoordinator {
  private nextReq = 1;
  private readonly collectors = new Map<number, Collector>();
  /** Primary: the latest update issued, and the highest sequence number the tail has acknowledged. */
  private lastIssued?: SignedUpdate;
  private acked = 0;
  private ackWaiters: Array<{ seq: number; resolve: () => void }> = [];
  /** Backup: the highest sequence acknowledged by its successor (or applied, for the tail). */
  private downstreamAck = 0;
  /** Backup: the signatures that came with `downstreamAck`, from its successor down to the tail. */
  private downstreamSigs: AckSig[] = [];
  private lastAckSent = 0;
  /** Backup: the latest update whose seal is durable: the only one it forwards or acknowledges. */
  private durable?: SignedUpdate;

  /** Primary: channels some member asked to sign a settlement for: they take no new payments. */
  private readonly settling = new Set<string>();

  constructor(private readonly host: CommitteeHost) {
    this.durable = host.state.committee?.lastUpdate; // restored from a seal
  }

  /** Primary: whether members are settling `channelId` (a signing request was seen), so it must not pay on it. */
  isSettling(channelId: string): boolean {
    return this.settling.has(channelId);
  }

  private get c(): CommitteeState {
    return this.host.state.committee!;
  }

  get isPrimary(): boolean {
    return this.c.role === 'primary';
  }

  get formed(): boolean {
    return this.c.members.length === this.c.size;
  }

  private get index(): number {
    return this.c.members.findIndex((m) => m.node_id === this.host.nodeId);
  }

  private neighbour(offset: number): string | undefined {
    const i = this.index;
    return i < 0 ? undefined : this.c.members[i + offset]?.node_id;
  }

  isMember(peerId: string): boolean {
    return this.c.members.some((m) => m.node_id === peerId) || peerId === this.c.primaryId;
  }

  view() {
    return {
      role: this.c.role,
      size: this.c.size,
      threshold: this.c.threshold,
      index: this.index,
      seq: this.c.seq,
      // A primary is formed once every member has joined and attested (its roster proof is complete).
      acked_seq: this.isPrimary ? this.acked : this.downstreamAck,
      formed: this.formed && (!this.isPrimary || this.rosterProof() !== null),
      members: this.c.members.map((m) => ({
        ...m,
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
    const missing = this.c.members.slice(1).filter((m) => !this.host.connected(m.node_id));
    if (missing.length > 0)
      throw new TreasuryError(
        'committee_unavailable',
        `committee member ${missing[0]!.node_id.slice(0, 16)}… is not connected`,
      );
  }

  // ───────────────────────────── replication (primary) ─────────────────────────────

  /** Called while snapshotting: the update that the coming seal's state will be replicated as. */
  prepareUpdate(): void {
    if (!this.isPrimary || this.c.members.length < 2) return;
    this.c.seq += 1;
    this.pendingUpdate = true;
  }
  private pendingUpdate = false;

  /** After the primary's own seal: send the update down the chain; resolves when the tail has it. */
  replicate(): Promise<void> {
    if (!this.pendingUpdate) return Promise.resolve();
    this.pendingUpdate = false;
    const update = signUpdate(replicaOf(this.host.state, this.c.seq), bytesToHex(this.host.identityKey()));
    this.lastIssued = update;
    const next = this.neighbour(1);
    if (next) this.host.sendNow(next, { t: 'c_update', update });
    if (update.seq <= this.acked) return Promise.resolve();
    return new Promise((resolve) => this.ackWaiters.push({ seq: update.seq, resolve }));
  }

  private onAck(peerId: string, msg: Extract<CommitteeMessage, { t: 'c_ack' }>): void {
    if (peerId !== this.neighbour(1)) return;
    if (!this.isPrimary) {
      if (msg.seq < this.downstreamAck || !msg.sigs) return;
      this.downstreamAck = msg.seq;
      this.downstreamSigs = msg.sigs;
      this.ackUpstream();
      return;
    }
    // Only what every backup signed counts: the successor's word alone does not.
    const seq = ackedByAll(this.host.nodeId, this.c.members, msg.sigs);
    if (seq === null || seq <= this.acked) return;
    this.acked = seq;
    const still: typeof this.ackWaiters = [];
    for (const w of this.ackWaiters) w.seq <= seq ? w.resolve() : still.push(w);
    this.ackWaiters = still;
  }

  // ───────────────────────────── replication (backup) ─────────────────────────────

  /** Joining: the host dialled the primary; ask it for a place at the tail of its chain. */
  join(primaryId: string, address: string, token?: string): void {
    if (this.isPrimary) throw new TreasuryError('invalid_argument', 'a primary cannot join another committee');
    if (this.c.primaryId && this.c.primaryId !== primaryId)
      throw new TreasuryError('invalid_argument', `already a backup of ${this.c.primaryId.slice(0, 16)}…`);
    this.c.primaryId = primaryId;
    this.host.sendNow(primaryId, { t: 'c_join', address, ...(token !== undefined ? { token } : {}) });
  }

  private async onJoin(peerId: string, address: string, token: string | undefined): Promise<void> {
    if (!this.isPrimary) return;
    if (!this.c.members.some((m) => m.node_id === peerId)) {
      // A newcomer needs the operator's say (a one-time token) on top of a valid attestation.
      const refused = this.formed ? 'committee_full' : joinRefusal(this.c, token);
      if (refused) {
        this.host.sendNow(peerId, { t: 'c_join_refused', code: refused });
        return;
      }
      useJoinToken(this.c, token!, peerId);
      this.c.members.push({ node_id: peerId, address });
      this.prepareRosterEvent();
    }
    // Sealed before the newcomer hears anything: a restarted primary never lets the token admit another.
    await this.host.commitLocal();
    // The newcomer cannot get updates from its predecessor until it knows whom to dial: send it the latest.
    if (this.lastIssued) this.host.sendNow(peerId, { t: 'c_update', update: this.lastIssued });
    this.requestQuote(peerId);
  }

  // ───────────────────────────── roster proof (primary) ─────────────────────────────

  /** Every member's quote over its node id, in chain order; null until each member has joined and answered. */
  rosterProof(): RosterProof | null {
    if (!this.isPrimary || !this.formed) return null;
    const quotes = this.c.quotes ?? {};
    if (!this.c.members.every((m) => quotes[m.node_id])) return null;
    return {
      threshold: this.c.threshold,
      members: this.c.members.map((m) => ({ node_id: m.node_id, quote: quotes[m.node_id]! })),
    };
  }

  private requestQuote(peerId: string): void {
    if (!this.isPrimary || this.c.quotes?.[peerId] || !this.c.members.some((m) => m.node_id === peerId)) return;
    this.host.sendNow(peerId, { t: 'c_quote_req', req: 0 });
  }

  private async onQuoteReq(peerId: string, req: number): Promise<void> {
    if (this.isPrimary || peerId !== this.c.primaryId) return;
    this.host.sendNow(peerId, { t: 'c_quote', req, quote: await this.host.attest(MEMBER_QUOTE_NONCE) });
  }

  private async onQuote(peerId: string, quote: Quote): Promise<void> {
    if (!this.isPrimary || !this.c.members.some((m) => m.node_id === peerId) || this.c.quotes?.[peerId]) return;
    try {
      checkMemberQuote(peerId, quote, this.host.state.config);
    } catch {
      return; // a member that cannot attest keeps the roster incomplete: no channel peer is asked to trust it
    }
    const quotes = (this.c.quotes ??= {});
    quotes[peerId] = structuredClone(quote);
    if (!quotes[this.host.nodeId]) quotes[this.host.nodeId] = await this.host.attest(MEMBER_QUOTE_NONCE);
    await this.host.commitLocal();
    if (this.rosterProof()) this.host.rosterComplete();
  }

  /**
   * Applies an update (from whichever member relays it): the primary's signature and a sequence number
   * above ours are required. Returns the refusal code, or null when applied or already had.
   */
  async applyUpdate(update: SignedUpdate): Promise<UpdateRefusal | null> {
    if (this.isPrimary || !this.c.primaryId) return { code: 'not_primary' };
    const body = openUpdate(update, this.c.primaryId);
    if (!body) return { code: 'forged_update' };
    if (update.seq < this.c.seq) return { code: 'stale_update' };
    if (update.seq === this.c.seq) return null; // a duplicate: already sealed, just acknowledge again
    const settled = this.contradictedSettlement(body);
    if (settled) return { code: 'channel_settled', settled };
    const broken = checkUpdate(this.host.state, body);
    if (broken) return { code: broken.code };
    this.adopt(body);
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
    if (this.isPrimary || !this.c.primaryId) return;
    const s = this.signedSettlement(channelId);
    if (s) this.host.sendNow(this.c.primaryId, this.refusal(this.c.seq, { code: 'channel_settled', settled: s }));
  }

  /** A refusal: a backup relays its successor's towards the primary; the primary acts on a signed settlement. */
  private onRefuse(peerId: string, msg: Extract<CommitteeMessage, { t: 'c_refuse' }>): void {
    if (!this.isPrimary) {
      const prev = this.neighbour(-1);
      if (peerId !== this.neighbour(1) || !prev) return;
      if (
        msg.code === 'channel_settled' &&
        msg.ch &&
        msg.txid &&
        msg.sent !== undefined &&
        msg.received !== undefined
      ) {
        // The primary's next update closes the channel at these lower totals: this member lets it.
        (this.c.reported ??= {})[msg.ch] = { txid: msg.txid, sent: BigInt(msg.sent), received: BigInt(msg.received) };
        void this.host.commitLocal().catch(() => undefined);
      }
      this.host.sendNow(prev, msg);
      return;
    }
    // Otherwise the primary stays frozen: an update a member refuses is never acknowledged past.
    if (
      !this.isMember(peerId) ||
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

  private adopt(body: ReplicaBody): void {
    const s = this.host.state;
    const rosterChanged = JSON.stringify(body.members) !== JSON.stringify(this.c.members);
    this.c.seq = body.seq;
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
    if (rosterChanged) this.prepareRosterEvent();
  }

  private async onUpdate(peerId: string, update: SignedUpdate): Promise<void> {
    const refused = await this.applyUpdate(update);
    if (refused) {
      this.host.sendNow(peerId, this.refusal(update.seq, refused));
      return;
    }
    const next = this.neighbour(1);
    if (next) {
      if (this.durable) this.host.sendNow(next, { t: 'c_update', update: this.durable });
    } else this.downstreamAck = this.durable?.seq ?? 0;
    this.ackUpstream();
  }

  /** Acknowledges upstream what this member and everyone after it have sealed. */
  private ackUpstream(force = false): void {
    const isTail = this.index === this.c.members.length - 1;
    const own = this.durable?.seq ?? 0;
    const seq = Math.min(own, isTail ? own : this.downstreamAck);
    const prev = this.neighbour(-1);
    if (!prev || (seq <= this.lastAckSent && !force)) return;
    if (!this.host.connected(prev) || !this.c.primaryId) return;
    if (!isTail && this.downstreamSigs.length !== this.c.members.length - 1 - this.index) return;
    this.lastAckSent = seq;
    const sigs = [signAck(this.c.primaryId, seq, this.host.identityKey()), ...(isTail ? [] : this.downstreamSigs)];
    this.host.sendNow(prev, { t: 'c_ack', seq, sigs });
  }

  /** A session with another member is up: catch it up, or tell it where we are. */
  peerConnected(peerId: string): void {
    this.requestQuote(peerId);
    if (peerId === this.neighbour(1)) {
      const latest = this.isPrimary ? this.lastIssued : this.durable;
      if (latest) this.host.sendNow(peerId, { t: 'c_update', update: latest });
    }
    if (!this.isPrimary && peerId === this.neighbour(-1)) this.ackUpstream(true);
  }

  private rosterEventDue = false;
  private prepareRosterEvent(): void {
    this.rosterEventDue = true;
    queueMicrotask(() => {
      if (!this.rosterEventDue) return;
      this.rosterEventDue = false;
      this.host.rosterChanged(this.c.members, this.index);
    });
  }

  // ───────────────────────────── deposit keys ─────────────────────────────

  /** Primary: one fresh key from every member for a new deposit (its own included); pubkeys in chain order. */
  async depositKeys(depId: string, ownPub: string): Promise<string[]> {
    const others = this.c.members.slice(1);
    const answers = await this.ask(
      others.map((m) => m.node_id),
      { t: 'c_keygen', req: 0, dep: depId },
      others.length,
      (msg) => {
        if (msg.t !== 'c_keygen_res') return null;
        return msg.pubkey;
      },
    );
    return [ownPub, ...others.map((m) => answers.get(m.node_id)!)];
  }

  /**
   * Primary: every member's key of `depId` for the channel peer, in `pubkeys` order: sealed whole to a lone
   * peer, or split for a committee peer's roster (each member splits its own, so no one sees the others').
   */
  async handover(
    depId: string,
    pubkeys: string[],
    own: HandedKey,
  ): Promise<{ sealedKeys: string[] } | { shares: Array<{ pubkey: string; boxes: string[] }> }> {
    const others = this.c.members.slice(1);
    const split = 'boxes' in own;
    const answers = await this.ask(
      others.map((m) => m.node_id),
      { t: 'c_handover', req: 0, dep: depId },
      others.length,
      (msg): HandedKey | null => {
        // Every member answers from its own replica: one that disagrees on whether the peer is a committee is not used.
        if (split && msg.t === 'c_handover_shares') return { pubkey: msg.pubkey, boxes: msg.boxes };
        if (!split && msg.t === 'c_handover_res') return { pubkey: msg.pubkey, box: msg.box };
        return null;
      },
    );
    const byPub = new Map<string, HandedKey>([
      [own.pubkey, own],
      ...[...answers.values()].map((a) => [a.pubkey, a] as [string, HandedKey]),
    ]);
    const handed = pubkeys.map((p) => {
      const h = byPub.get(p);
      if (!h) throw new TreasuryError('committee_unavailable', 'a member did not hand over its deposit key');
      return h;
    });
    if (split) return { shares: handed.map((h) => ({ pubkey: h.pubkey, boxes: (h as { boxes: string[] }).boxes })) };
    return { sealedKeys: handed.map((h) => (h as { box: string }).box) };
  }

  /**
   * This member's key of `depId` for the deposit's channel peer, after checking the replica says so: split
   * for the peer's roster (re-verified here: the primary's word for it is not enough), else sealed whole.
   */
  async sealOwnKey(depId: string, priv: string): Promise<HandedKey> {
    const dep = this.host.state.deposits[depId];
    const ch = dep?.channelId ? this.host.state.channels[dep.channelId] : undefined;
    if (!dep || !ch || dep.status !== 'in_channel')
      throw new TreasuryError('unknown_deposit', `deposit ${depId} is not joining a channel in this member's state`);
    const pubkey = bytesToHex(publicKeyOf(hexToBytes(priv)));
    if (!ch.peerRoster) return { pubkey, box: sealTo(hexToBytes(ch.peerId), hexToBytes(priv), AAD_KEY) };
    let members: string[];
    let threshold: number;
    try {
      ({ members, threshold } = verifyRoster(
        { threshold: ch.peerRoster.threshold, members: ch.peerRoster.proof },
        ch.peerId,
        this.host.state.config,
      ));
    } catch (err) {
      throw new TreasuryError('roster_unknown', `the channel peer's roster does not verify: ${(err as Error).message}`);
    }
    const [shares] = await shareKeys(
      [priv],
      members.map((node_id) => ({ node_id, address: '' })),
      threshold,
      splitSecret,
    );
    return shares!;
  }

  private async onKeygen(peerId: string, req: number, depId: string): Promise<void> {
    if (peerId !== this.c.primaryId) return;
    let key = this.c.memberKeys[depId];
    if (!key) {
      key = bytesToHex(randomPrivateKey());
      this.c.memberKeys[depId] = key;
      await this.host.commitLocal();
    }
    this.host.sendNow(peerId, { t: 'c_keygen_res', req, pubkey: bytesToHex(publicKeyOf(hexToBytes(key))) });
  }

  private async onHandover(peerId: string, req: number, depId: string): Promise<void> {
    if (peerId !== this.c.primaryId) return;
    const key = this.c.memberKeys[depId];
    try {
      if (!key) throw new TreasuryError('unknown_deposit', `no key for deposit ${depId}`);
      const handed = await this.sealOwnKey(depId, key);
      this.host.sendNow(
        peerId,
        'boxes' in handed ? { t: 'c_handover_shares', req, ...handed } : { t: 'c_handover_res', req, ...handed },
      );
    } catch (err) {
      const e = err instanceof TreasuryError ? err : new TreasuryError('invalid_argument', String(err));
      this.host.sendNow(peerId, { t: 'c_error', req, code: e.code, message: e.message });
    }
  }

  // ───────────────────────────── threshold signing ─────────────────────────────

  /**
   * Signs `planned` with this member's part and m − 1 other members' parts. The settler's own state must
   * already record the settlement (so it never signs another); `update` lets the others catch up first.
   */
  async sign(kind: SignKind, id: string, feeRate: number, planned: Planned): Promise<{ hex: string }> {
    const own = this.contribution(planned);
    const sigs = new Map<number, KeyedSignature[]>();
    const shares = new Map<string, Uint8Array[]>(); // `${outpoint}/${pubkey}` → shares
    const add = (part: Contribution) => {
      for (const s of part.sigs) {
        const pub = hexToBytes(s.pubkey);
        const sig = hexToBytes(s.sig);
        const input = planned.inputs[s.input];
        if (input?.kind !== 'own' || !input.pubkeys.includes(s.pubkey)) continue;
        if (!checkInputSignature(planned.plan.spend, s.input, pub, sig)) continue;
        const list = sigs.get(s.input) ?? [];
        if (!list.some((x) => bytesToHex(x.pubkey) === s.pubkey)) list.push({ pubkey: pub, signature: sig });
        sigs.set(s.input, list);
      }
      for (const s of part.shares) {
        const key = `${s.outpoint}/${s.pubkey}`;
        const list = shares.get(key) ?? [];
        if (!list.some((x) => bytesToHex(x) === s.share)) list.push(hexToBytes(s.share));
        shares.set(key, list);
      }
    };
    add(own);
    const enough = () =>
      planned.inputs.every((input, i) =>
        input.kind === 'own'
          ? (sigs.get(i)?.length ?? 0) >= input.m
          : !input.deposit.shares ||
            input.deposit.shares.filter(
              (s) => (shares.get(`${input.deposit.outpoint}/${s.pubkey}`)?.length ?? 0) >= this.c.threshold,
            ).length >= input.deposit.m,
      );
    const others = this.c.members.map((m) => m.node_id).filter((n) => n !== this.host.nodeId && this.host.connected(n));
    const update = this.isPrimary ? this.lastIssued : this.c.lastUpdate;
    if (!enough()) {
      const refusals: string[] = [];
      await this.ask(
        others,
        { t: 'c_sign', req: 0, kind, id, fee_rate: feeRate, txid: planned.plan.txid, ...(update ? { update } : {}) },
        others.length,
        (msg, from) => {
          if (msg.t === 'c_error') {
            refusals.push(`${from.slice(0, 12)}…: ${msg.code}`);
            return 'refused';
          }
          if (msg.t !== 'c_sign_res') return null;
          add(msg);
          return 'ok';
        },
        enough,
      ).catch((err) => {
        if (!enough())
          throw new TreasuryError(
            'committee_unavailable',
            `${(err as Error).message}${refusals.length ? `; refused by ${refusals.join(', ')}` : ''}`,
          );
      });
      if (!enough())
        throw new TreasuryError(
          'committee_unavailable',
          `fewer than ${this.c.threshold} members signed${refusals.length ? `; refused by ${refusals.join(', ')}` : ''}`,
        );
    }
    const spend = planned.plan.spend;
    for (const [i, input] of planned.inputs.entries()) {
      if (input.kind === 'own') {
        finishInput(spend, i, sigs.get(i)!);
        continue;
      }
      const keys = input.deposit.shares ? await this.rebuildKeys(input.deposit, shares) : input.deposit.privkeys;
      finishInput(spend, i, signaturesFor(spend, i, keys.slice(0, input.deposit.m)));
    }
    return { hex: spend.tx.toHex() };
  }

  /** Rebuilds m of the peer's handed-over keys from members' shares, each checked against its public key. */
  private async rebuildKeys(dep: PeerDeposit, shares: Map<string, Uint8Array[]>): Promise<string[]> {
    const keys: string[] = [];
    for (const s of dep.shares!) {
      const list = shares.get(`${dep.outpoint}/${s.pubkey}`) ?? [];
      if (list.length < this.c.threshold) continue;
      const key = await combineShares(list.slice(0, this.c.threshold));
      if (bytesToHex(publicKeyOf(key)) !== s.pubkey)
        throw new TreasuryError('committee_unavailable', 'secret shares did not rebuild the handed-over key');
      keys.push(bytesToHex(key));
      if (keys.length === dep.m) break;
    }
    return keys;
  }

  /** This member's part: its signature of each committee deposit, its share of each handed-over key. */
  private contribution(planned: Planned): Contribution {
    const sigs: Contribution['sigs'] = [];
    const shares: Contribution['shares'] = [];
    const me = this.index;
    for (const [i, input] of planned.inputs.entries()) {
      if (input.kind === 'own') {
        const key = this.isPrimary
          ? this.host.state.deposits[input.depositId]?.privkeys[0]
          : this.c.memberKeys[input.depositId];
        if (!key) continue;
        for (const s of signaturesFor(planned.plan.spend, i, [key]))
          sigs.push({ input: i, pubkey: bytesToHex(s.pubkey), sig: bytesToHex(s.signature) });
        continue;
      }
      for (const s of input.deposit.shares ?? []) {
        const share = openBox(this.host.identityKey(), s.boxes[me] ?? '', AAD_SHARE);
        if (share) shares.push({ outpoint: input.deposit.outpoint, pubkey: s.pubkey, share: bytesToHex(share) });
      }
    }
    return { sigs, shares };
  }

  private async onSign(peerId: string, msg: Extract<CommitteeMessage, { t: 'c_sign' }>): Promise<void> {
    const refuse = (code: TreasuryErrorCode, message: string) =>
      this.host.sendNow(peerId, { t: 'c_error', req: msg.req, code, message });
    if (!this.c.members.some((m) => m.node_id === peerId)) return;
    // Whatever the txid, a member is settling the channel: the primary pays no more on it.
    if (this.isPrimary && msg.kind === 'settle') this.settling.add(msg.id);
    if (msg.update && !this.isPrimary) {
      const refused = await this.applyUpdate(msg.update);
      if (refused && refused.code !== 'stale_update')
        return refuse(refused.code as TreasuryErrorCode, 'the attached update was refused');
    }
    const done = this.c.signed[msg.id];
    if (done && done !== msg.txid) return refuse('already_signed', `this member already signed ${done} for ${msg.id}`);
    let planned: Planned;
    try {
      planned = this.host.planFor(msg.kind, msg.id, msg.fee_rate);
    } catch (err) {
      return refuse(err instanceof TreasuryError ? err.code : 'invalid_argument', (err as Error).message);
    }
    if (planned.plan.txid !== msg.txid)
      return refuse('state_mismatch', "the transaction does not match this member's latest state");
    this.c.signed[msg.id] = msg.txid;
    this.host.markSigned(msg.kind, msg.id, msg.txid, msg.fee_rate);
    await this.host.commitLocal();
    if (msg.kind === 'settle') this.announceSigned(msg.id);
    this.host.sendNow(peerId, { t: 'c_sign_res', req: msg.req, ...this.contribution(planned) });
  }

  // ───────────────────────────── plumbing ─────────────────────────────

  /** Handles a committee message from a connected member. */
  async handle(peerId: string, msg: CommitteeMessage): Promise<void> {
    switch (msg.t) {
      case 'c_join':
        return this.onJoin(peerId, msg.address, msg.token);
      case 'c_join_refused':
        if (!this.isPrimary && peerId === this.c.primaryId) this.host.joinRefused(msg.code);
        return;
      case 'c_update':
        if (!this.isPrimary) await this.onUpdate(peerId, msg.update);
        return;
      case 'c_ack':
        this.onAck(peerId, msg);
        return;
      case 'c_refuse':
        this.onRefuse(peerId, msg);
        return;
      case 'c_keygen':
        return this.onKeygen(peerId, msg.req, msg.dep);
      case 'c_handover':
        return this.onHandover(peerId, msg.req, msg.dep);
      case 'c_quote_req':
        return this.onQuoteReq(peerId, msg.req);
      case 'c_quote':
        return this.onQuote(peerId, msg.quote);
      case 'c_sign':
        return this.onSign(peerId, msg);
      default:
        this.collectors.get(msg.req)?.onMessage(peerId, msg);
    }
  }

  /**
   * Sends `msg` (with a fresh request number) to each of `to` and gathers answers until `needed` have
   * come, `done()` says so, or the timeout passes (then rejects with committee_unavailable).
   */
  private ask<T>(
    to: string[],
    msg: CommitteeMessage & { req: number },
    needed: number,
    read: (msg: CommitteeMessage, from: string) => T | null,
    done?: () => boolean,
  ): Promise<Map<string, T>> {
    const req = this.nextReq++;
    const answers = new Map<string, T>();
    return new Promise((resolve, reject) => {
      const finish = (err?: TreasuryError) => {
        clearTimeout(timer);
        this.collectors.delete(req);
        if (err) reject(err);
        else resolve(answers);
      };
      const timer = setTimeout(
        () =>
          finish(
            new TreasuryError(
              'committee_unavailable',
              `${answers.size} of ${needed} committee members answered in time`,
            ),
          ),
        this.host.timeoutMs,
      );
      this.collectors.set(req, {
        onMessage: (from, m) => {
          if (!to.includes(from) || answers.has(from)) return;
          const v = read(m, from);
          if (v === null && m.t === 'c_error') {
            finish(new TreasuryError(m.code as TreasuryErrorCode, m.message));
            return;
          }
          if (v === null) return;
          answers.set(from, v);
          if (answers.size >= needed || done?.()) finish();
        },
      });
      if (needed === 0 || done?.()) {
        finish();
        return;
      }
      const reachable = to.filter((p) => this.host.connected(p));
      if (reachable.length < needed && !done) {
        finish(
          new TreasuryError(
            'committee_unavailable',
            `${reachable.length} of ${needed} committee members are connected`,
          ),
        );
        return;
      }
      for (const p of reachable) this.host.sendNow(p, { ...msg, req } as CommitteeMessage);
      if (reachable.length === 0)
        finish(new TreasuryError('committee_unavailable', 'no other committee member is connected'));
    });
  }
}

/** One member's key of a deposit as it goes to the channel peer: sealed whole, or as shares for the peer's roster. */
export type HandedKey = { pubkey: string; box: string } | { pubkey: string; boxes: string[] };

interface Contribution {
  sigs: Array<{ input: number; pubkey: string; sig: string }>;
  shares: Array<{ outpoint: string; pubkey: string; share: string }>;
}

/** Splits each handed-over key m-of-n and seals share i to member i: no member holds a whole key. */
export async function shareKeys(
  privkeys: string[],
  members: CommitteeMember[],
  threshold: number,
  split: (s: Uint8Array, n: number, m: number) => Promise<Uint8Array[]>,
) {
  const out: Array<{ pubkey: string; boxes: string[] }> = [];
  for (const k of privkeys) {
    const parts = await split(hexToBytes(k), members.length, threshold);
    out.push({
      pubkey: bytesToHex(publicKeyOf(hexToBytes(k))),
      boxes: parts.map((p, i) => sealTo(hexToBytes(members[i]!.node_id), p, AAD_SHARE)),
    });
  }
  return out;
}

/** Opens a deposit key sealed to this enclave by a member of the peer's committee. */
export function openSealedKey(identityKey: Uint8Array, box: string): string | null {
  const k = openBox(identityKey, box, AAD_KEY);
  return k ? bytesToHex(k) : null;
}
