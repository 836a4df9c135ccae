/**
 * One party's view of a Lightning-style channel: the BOLT 2 commitment_signed / revoke_and_ack state
 * machine, without I/O. `receive` and `propose…` mutate the state and append the messages to send; the
 * caller (party.ts) persists the state (`dirty`) before sending anything, and discards the turn if a
 * ProtocolError is thrown (the channel is then failed, as BOLT 2 fails a channel on a bad signature).
 *
 * Updates are proposed by one side and land in both commitments: the proposer's commitment_signed puts
 * them in the counterparty's commitment, the counterparty's reply puts them in the proposer's. This model
 * runs one update round ("dance") at a time on the channel:
 *   proposer:  updates… + commitment_signed            → counterparty verifies, persists,
 *   counterparty: revoke_and_ack + commitment_signed   → proposer checks, verifies, persists,
 *   proposer:  revoke_and_ack                          → counterparty checks, persists.
 * BOLT 2 forbids a second commitment_signed before the revoke_and_ack of the first, so batching many
 * updates into one round is how Lightning amortises a round; crossing rounds are not modelled.
 */
import { randomBytes } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import {
  buildCommitment,
  checkCommitmentSignatures,
  commitmentFee,
  obscuringFactorOf,
  otherSide,
  signCommitment,
  MAX_ACCEPTED_HTLCS,
  type ChannelConfig,
  type ChannelSpec,
  type Htlc,
  type Side,
} from './commitment.ts';
import { basepointsOf, bytesEqual, derivePrivkey, type Basepoints, type Bytes, type ChannelSecrets } from './keys.ts';
import {
  chainIndexOf,
  CommitmentSecrets,
  perCommitmentPoint,
  RevocationStore,
  type StoredSecret,
} from './revocation.ts';
import { fundingOutput } from './scripts.ts';
import type { AcceptChannel, CommitmentSigned, LnMessage, LnMode, OpenChannel, RevokeAndAck } from './wire.ts';

/** A violation by the counterparty: the channel fails and the current turn's changes are discarded. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** Our own payments cannot be proposed (not enough balance above the reserve and fee, or too many HTLCs). */
export class PaymentRejected extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PaymentRejected';
  }
}

export type Update =
  | { kind: 'pay'; id: number; amountSat: bigint }
  | { kind: 'add'; htlc: Htlc }
  | { kind: 'fulfill'; id: number; preimage: Bytes };

/** Our own commitment, with the counterparty's signatures: what we could broadcast. */
export interface LocalCommitment {
  index: number;
  spec: ChannelSpec;
  txid: string;
  signature: Bytes;
  htlcSignatures: Bytes[];
}

/** The counterparty's latest commitment, which we signed. */
export interface RemoteCommitment {
  index: number;
  spec: ChannelSpec;
  txid: string;
}

/** Everything a party persists after each change: enough to broadcast its commitment or punish a revoked one. */
export interface ChannelSnapshot {
  version: 1;
  side: Side;
  mode: LnMode;
  local: LocalCommitment;
  remote: RemoteCommitment;
  /** The counterparty's per-commitment points that are not revoked yet, plus the next one. */
  remotePoints: Array<{ index: number; point: Bytes }>;
  /** The counterparty's revealed per-commitment secrets, compactly (revocation.ts). */
  revocations: Array<StoredSecret | null>;
  awaitingRevocation: boolean;
  pendingForLocal: Update[];
  pendingForRemote: Update[];
  /** Preimages known for pending HTLCs (payee: from the keysend payload; payer: from update_fulfill_htlc). */
  preimages: Array<{ id: number; preimage: Bytes }>;
  nextUpdateId: number;
  nextRemoteUpdateId: number;
}

/** Funding and fee parameters the opener proposes (fixed values: the model measures updates, not funding). */
export const DEFAULT_CHANNEL_PARAMS = {
  toSelfDelay: 144,
  dustLimitSat: 546n,
  feeratePerKw: 253n,
  cltvExpiry: 800_144,
} as const;

/** A fixed made-up funding outpoint: no chain is involved. */
export const FUNDING_TX_HASH = sha256(new TextEncoder().encode('teechain-ts lnmodel funding'));

/** The channel configuration both parties derive from open_channel and accept_channel. */
export function configFromOpen(open: OpenChannel, accept: AcceptChannel): ChannelConfig {
  return {
    capacitySat: open.capacitySat,
    fundingTxHash: open.fundingTxHash,
    fundingVout: open.fundingVout,
    fundingWitnessScript: fundingOutput(open.basepoints.funding, accept.basepoints.funding).witnessScript,
    basepoints: { opener: open.basepoints, acceptor: accept.basepoints },
    toSelfDelay: open.toSelfDelay,
    dustLimitSat: open.dustLimitSat,
    feeratePerKw: open.feeratePerKw,
    reserveSat: open.reserveSat,
    obscuringFactor: obscuringFactorOf(open.basepoints.payment, accept.basepoints.payment),
  };
}

export function applyUpdates(spec: ChannelSpec, updates: Update[]): ChannelSpec {
  let openerSat = spec.openerSat;
  let acceptorSat = spec.acceptorSat;
  const added: Htlc[] = [];
  let removed: Set<number> | null = null;
  let byId: Map<number, Htlc> | null = null;
  for (const u of updates) {
    if (u.kind === 'pay') {
      openerSat -= u.amountSat;
      acceptorSat += u.amountSat;
    } else if (u.kind === 'add') {
      openerSat -= u.htlc.amountSat;
      added.push(u.htlc);
    } else {
      byId ??= new Map([...htlcsById(spec), ...added.map((h) => [h.id, h] as const)]);
      const h = byId.get(u.id);
      if (h && removed?.has(u.id)) throw new ProtocolError(`HTLC ${u.id} fulfilled twice`);
      if (!h) throw new ProtocolError(`fulfill of unknown HTLC ${u.id}`);
      (removed ??= new Set()).add(u.id);
      acceptorSat += h.amountSat;
    }
  }
  const kept = removed ? spec.htlcs.filter((h) => !removed.has(h.id)) : spec.htlcs;
  return {
    openerSat,
    acceptorSat,
    htlcs: added.length ? [...kept, ...added.filter((h) => !removed?.has(h.id))] : kept,
  };
}

const htlcIndexCache = new WeakMap<ChannelSpec, Map<number, Htlc>>();

/** The spec's HTLCs by id (specs are never mutated, so the index is cached per spec). */
function htlcsById(spec: ChannelSpec): Map<number, Htlc> {
  let m = htlcIndexCache.get(spec);
  if (!m) {
    m = new Map(spec.htlcs.map((h) => [h.id, h]));
    htlcIndexCache.set(spec, m);
  }
  return m;
}

function emptySig(): Bytes {
  return new Uint8Array(0);
}

/** What a turn produced besides messages. */
export interface TurnEvents {
  /** Our own payments (update ids) now final on our side: our commitment has them settled, the old one is revoked. */
  finalised: number[];
}

export class Channel {
  /** Set by every state change; the caller persists and clears it before sending the turn's messages. */
  dirty = false;
  private readonly own: CommitmentSecrets;
  private readonly ownBasepoints: Basepoints;
  private readonly counterpartyFunding: Bytes;
  private readonly remotePoints: Map<number, Bytes>;
  private readonly revocations: RevocationStore;
  private readonly preimages: Map<number, Bytes>;
  /** HTLCs whose fulfill was received but is not in our commitment yet (a second fulfill is a violation). */
  private readonly fulfilling = new Set<number>();
  private signWanted = false;
  readonly side: Side;
  readonly mode: LnMode;
  local: LocalCommitment;
  remote: RemoteCommitment;
  awaitingRevocation: boolean;
  pendingForLocal: Update[];
  pendingForRemote: Update[];
  nextUpdateId: number;
  nextRemoteUpdateId: number;

  constructor(
    readonly cfg: ChannelConfig,
    private readonly secrets: ChannelSecrets,
    snap: ChannelSnapshot,
  ) {
    this.own = new CommitmentSecrets(secrets.commitmentSeed);
    this.ownBasepoints = basepointsOf(secrets);
    if (!bytesEqual(this.ownBasepoints.funding, cfg.basepoints[snap.side].funding))
      throw new Error('secrets do not match the channel');
    this.counterpartyFunding = cfg.basepoints[otherSide(snap.side)].funding;
    this.side = snap.side;
    this.mode = snap.mode;
    this.local = snap.local;
    this.remote = snap.remote;
    this.remotePoints = new Map(snap.remotePoints.map((p) => [p.index, p.point]));
    this.revocations = new RevocationStore(snap.revocations);
    this.awaitingRevocation = snap.awaitingRevocation;
    this.pendingForLocal = snap.pendingForLocal;
    this.pendingForRemote = snap.pendingForRemote;
    this.preimages = new Map(snap.preimages.map((p) => [p.id, p.preimage]));
    this.nextUpdateId = snap.nextUpdateId;
    this.nextRemoteUpdateId = snap.nextRemoteUpdateId;
    for (const u of this.pendingForLocal) if (u.kind === 'fulfill') this.fulfilling.add(u.id);
  }

  /** The state right after open_channel/accept_channel: commitment 0 on both sides, not yet signed. */
  static opened(
    cfg: ChannelConfig,
    secrets: ChannelSecrets,
    side: Side,
    mode: LnMode,
    remoteFirstPoints: Bytes[],
  ): Channel {
    const spec: ChannelSpec = { openerSat: cfg.capacitySat, acceptorSat: 0n, htlcs: [] };
    return new Channel(cfg, secrets, {
      version: 1,
      side,
      mode,
      local: { index: 0, spec, txid: '', signature: emptySig(), htlcSignatures: [] },
      remote: { index: 0, spec, txid: '' },
      remotePoints: remoteFirstPoints.map((point, index) => ({ index, point })),
      revocations: [],
      awaitingRevocation: false,
      pendingForLocal: [],
      pendingForRemote: [],
      preimages: [],
      nextUpdateId: 0,
      nextRemoteUpdateId: 0,
    });
  }

  /** Our per-commitment points for commitments 0 and 1, announced when the channel opens. */
  firstPoints(): Bytes[] {
    return [this.own.point(0), this.own.point(1)];
  }

  /** funding_created / funding_signed: our signature on the counterparty's commitment 0. */
  signInitialCommitment(): Bytes {
    const built = buildCommitment(this.cfg, otherSide(this.side), 0, this.remotePointFor(0), this.remote.spec);
    this.remote = { ...this.remote, txid: built.txid };
    return signCommitment(built, this.secrets.funding, null).signature;
  }

  /** Checks the counterparty's signature on our commitment 0. @throws ProtocolError */
  acceptInitialSignature(signature: Bytes): void {
    const built = buildCommitment(this.cfg, this.side, 0, this.own.point(0), this.local.spec);
    const reason = checkCommitmentSignatures(built, { signature, htlcSignatures: [] }, this.counterpartyFunding);
    if (reason) throw new ProtocolError(reason);
    this.local = { ...this.local, txid: built.txid, signature };
    this.dirty = true;
  }

  /** No round in progress: every update is in both commitments and every old commitment is revoked. */
  quiescent(): boolean {
    return !this.awaitingRevocation && this.pendingForLocal.length === 0 && this.pendingForRemote.length === 0;
  }

  /** The opener may start a round of payments (in `htlc` mode only once the previous HTLCs are settled). */
  canProposePayments(): boolean {
    return this.side === 'opener' && this.quiescent() && this.local.spec.htlcs.length === 0;
  }

  /**
   * Proposes payments to the acceptor and signs the acceptor's new commitment. Returns their update ids.
   * @throws PaymentRejected (nothing changed) if the balance above reserve and fees does not cover them.
   */
  proposePayments(amounts: bigint[], out: LnMessage[]): number[] {
    if (!this.canProposePayments()) throw new Error('a round is in progress');
    if (amounts.length === 0) return [];
    if (this.mode === 'htlc' && amounts.length > MAX_ACCEPTED_HTLCS) {
      throw new PaymentRejected(`at most ${MAX_ACCEPTED_HTLCS} HTLCs per commitment (BOLT 2 max_accepted_htlcs)`);
    }
    const updates: Update[] = [];
    const ids: number[] = [];
    for (const amountSat of amounts) {
      if (amountSat <= 0n) throw new PaymentRejected('amounts must be positive');
      const id = this.nextUpdateId + ids.length;
      ids.push(id);
      if (this.mode === 'balance') {
        updates.push({ kind: 'pay', id, amountSat });
      } else {
        const preimage = new Uint8Array(randomBytes(32));
        updates.push({
          kind: 'add',
          htlc: { id, amountSat, paymentHash: sha256(preimage), cltvExpiry: DEFAULT_CHANNEL_PARAMS.cltvExpiry },
        });
        this.preimages.set(id, preimage);
      }
    }
    const reason = this.affordability(applyUpdates(this.local.spec, updates));
    if (reason) {
      for (const id of ids) this.preimages.delete(id);
      throw new PaymentRejected(reason);
    }
    this.nextUpdateId += ids.length;
    for (const u of updates) {
      if (u.kind === 'pay') out.push({ type: 'update_pay', id: u.id, amountSat: u.amountSat });
      else if (u.kind === 'add') {
        out.push({
          type: 'update_add_htlc',
          id: u.htlc.id,
          amountSat: u.htlc.amountSat,
          paymentHash: u.htlc.paymentHash,
          cltvExpiry: u.htlc.cltvExpiry,
          keysendPreimage: this.preimages.get(u.htlc.id)!,
        });
      }
    }
    this.pendingForLocal = this.pendingForLocal.concat(updates);
    this.pendingForRemote = this.pendingForRemote.concat(updates);
    this.dirty = true;
    this.signWanted = true;
    this.maybeSign(out);
    return ids;
  }

  /**
   * The acceptor, once HTLCs are irrevocably committed (in both commitments, the old ones revoked), fulfills
   * them all with their preimages and signs. Returns false if there is nothing to fulfill yet.
   */
  fulfillCommittedHtlcs(out: LnMessage[]): boolean {
    if (this.side !== 'acceptor' || !this.quiescent() || this.local.spec.htlcs.length === 0) return false;
    const updates: Update[] = this.local.spec.htlcs.map((h) => ({
      kind: 'fulfill',
      id: h.id,
      preimage: this.preimages.get(h.id)!,
    }));
    for (const u of updates)
      if (u.kind === 'fulfill') out.push({ type: 'update_fulfill_htlc', id: u.id, paymentPreimage: u.preimage });
    this.pendingForLocal = this.pendingForLocal.concat(updates);
    this.pendingForRemote = this.pendingForRemote.concat(updates);
    this.dirty = true;
    this.signWanted = true;
    this.maybeSign(out);
    return true;
  }

  /** Handles one message from the counterparty. @throws ProtocolError */
  receive(m: LnMessage, out: LnMessage[], events: TurnEvents): void {
    switch (m.type) {
      case 'update_pay':
        return this.onUpdate({ kind: 'pay', id: m.id, amountSat: m.amountSat }, 'balance');
      case 'update_add_htlc': {
        if (!bytesEqual(sha256(m.keysendPreimage), m.paymentHash))
          throw new ProtocolError(`HTLC ${m.id}: keysend preimage does not match the payment hash`);
        if (this.local.spec.htlcs.length + this.pendingForLocal.length >= MAX_ACCEPTED_HTLCS)
          throw new ProtocolError('too many HTLCs');
        this.onUpdate(
          {
            kind: 'add',
            htlc: { id: m.id, amountSat: m.amountSat, paymentHash: m.paymentHash, cltvExpiry: m.cltvExpiry },
          },
          'htlc',
        );
        this.preimages.set(m.id, m.keysendPreimage);
        return;
      }
      case 'update_fulfill_htlc': {
        if (this.side !== 'opener' || this.mode !== 'htlc') throw new ProtocolError('unexpected update_fulfill_htlc');
        const h = htlcsById(this.local.spec).get(m.id);
        if (!h || !htlcsById(this.remote.spec).has(m.id) || this.fulfilling.has(m.id)) {
          throw new ProtocolError(`fulfill of HTLC ${m.id}, which is not (or no longer) irrevocably committed`);
        }
        if (!bytesEqual(sha256(m.paymentPreimage), h.paymentHash))
          throw new ProtocolError(`HTLC ${m.id}: wrong preimage`);
        const u: Update = { kind: 'fulfill', id: m.id, preimage: m.paymentPreimage };
        this.fulfilling.add(m.id);
        this.pendingForLocal.push(u);
        this.pendingForRemote.push(u);
        this.preimages.set(m.id, m.paymentPreimage);
        this.dirty = true;
        return;
      }
      case 'commitment_signed':
        return this.onCommitmentSigned(m, out, events);
      case 'revoke_and_ack':
        return this.onRevokeAndAck(m, out);
      default:
        throw new ProtocolError(`unexpected ${m.type}`);
    }
  }

  /** A snapshot for persistence (shares immutable data with the live state; encode it before mutating further). */
  snapshot(): ChannelSnapshot {
    return {
      version: 1,
      side: this.side,
      mode: this.mode,
      local: this.local,
      remote: this.remote,
      remotePoints: [...this.remotePoints].map(([index, point]) => ({ index, point })),
      revocations: this.revocations.slots(),
      awaitingRevocation: this.awaitingRevocation,
      pendingForLocal: this.pendingForLocal,
      pendingForRemote: this.pendingForRemote,
      preimages: [...this.preimages].map(([id, preimage]) => ({ id, preimage })),
      nextUpdateId: this.nextUpdateId,
      nextRemoteUpdateId: this.nextRemoteUpdateId,
    };
  }

  /** The counterparty's revealed secret for its commitment `n`, if revoked (what a penalty would use). */
  revocationSecretOf(n: number): Bytes | null {
    return this.revocations.secretFor(chainIndexOf(n));
  }

  private affordability(spec: ChannelSpec): string | null {
    // The opener pays the fee of both commitments; check the larger one.
    const fee = [commitmentFee(this.cfg, 'opener', spec), commitmentFee(this.cfg, 'acceptor', spec)].reduce((a, b) =>
      a > b ? a : b,
    );
    if (spec.openerSat < this.cfg.reserveSat + fee) {
      return `insufficient balance: ${spec.openerSat} sat left, reserve ${this.cfg.reserveSat} + fee ${fee}`;
    }
    return null;
  }

  private onUpdate(u: Update, mode: LnMode): void {
    if (this.side !== 'acceptor' || this.mode !== mode) throw new ProtocolError(`unexpected ${u.kind} update`);
    const id = u.kind === 'add' ? u.htlc.id : u.id;
    if (id !== this.nextRemoteUpdateId) throw new ProtocolError(`update id ${id}, expected ${this.nextRemoteUpdateId}`);
    if ((u.kind === 'add' ? u.htlc.amountSat : u.kind === 'pay' ? u.amountSat : 1n) <= 0n)
      throw new ProtocolError('non-positive amount');
    // Affordability is checked once for the whole batch, on commitment_signed: the channel fails either way.
    this.nextRemoteUpdateId++;
    this.pendingForLocal.push(u);
    this.pendingForRemote.push(u);
    this.dirty = true;
  }

  private onCommitmentSigned(m: CommitmentSigned, out: LnMessage[], events: TurnEvents): void {
    if (this.pendingForLocal.length === 0) throw new ProtocolError('commitment_signed without updates');
    const index = this.local.index + 1;
    const spec = applyUpdates(this.local.spec, this.pendingForLocal);
    const unaffordable = this.side === 'acceptor' ? this.affordability(spec) : null;
    if (unaffordable) throw new ProtocolError(unaffordable);
    const built = buildCommitment(this.cfg, this.side, index, this.own.point(index), spec);
    const reason = checkCommitmentSignatures(built, m, this.counterpartyFunding);
    if (reason) throw new ProtocolError(reason);
    if (this.side === 'opener') {
      for (const u of this.pendingForLocal) {
        if (u.kind === 'pay') events.finalised.push(u.id);
        else if (u.kind === 'fulfill') events.finalised.push(u.id);
      }
    }
    for (const u of this.pendingForLocal) if (u.kind === 'fulfill') this.preimages.delete(u.id);
    const revoked = this.local.index;
    this.local = { index, spec, txid: built.txid, signature: m.signature, htlcSignatures: m.htlcSignatures };
    this.pendingForLocal = [];
    this.fulfilling.clear();
    this.dirty = true;
    // Revoke the commitment just replaced: reveal its secret and announce the point after the new one.
    out.push({
      type: 'revoke_and_ack',
      perCommitmentSecret: this.own.secret(revoked),
      nextPerCommitmentPoint: this.own.point(index + 1),
    });
    this.own.forget(revoked);
    if (this.pendingForRemote.length > 0) this.signWanted = true;
    this.maybeSign(out);
  }

  private onRevokeAndAck(m: RevokeAndAck, out: LnMessage[]): void {
    if (!this.awaitingRevocation) throw new ProtocolError('revoke_and_ack without an outstanding commitment_signed');
    const revoked = this.remote.index - 1;
    const expected = this.remotePoints.get(revoked);
    let point: Bytes | null = null;
    try {
      point = perCommitmentPoint(m.perCommitmentSecret);
    } catch {
      point = null;
    }
    if (!expected || !point || !bytesEqual(point, expected)) {
      throw new ProtocolError(`revocation secret for commitment ${revoked} does not match its per-commitment point`);
    }
    if (!this.revocations.insert(chainIndexOf(revoked), m.perCommitmentSecret)) {
      throw new ProtocolError(
        `revocation secret for commitment ${revoked} is not from the same seed as the earlier ones`,
      );
    }
    this.remotePoints.delete(revoked);
    this.remotePoints.set(this.remote.index + 1, m.nextPerCommitmentPoint);
    this.awaitingRevocation = false;
    this.dirty = true;
    this.maybeSign(out);
  }

  private remotePointFor(index: number): Bytes {
    const p = this.remotePoints.get(index);
    if (!p) throw new ProtocolError(`no per-commitment point for the counterparty's commitment ${index}`);
    return p;
  }

  /** Signs the counterparty's next commitment if we owe one and BOLT 2 lets us (no unanswered commitment_signed). */
  private maybeSign(out: LnMessage[]): void {
    if (!this.signWanted || this.awaitingRevocation || this.pendingForRemote.length === 0) return;
    const index = this.remote.index + 1;
    const spec = applyUpdates(this.remote.spec, this.pendingForRemote);
    const point = this.remotePointFor(index);
    const built = buildCommitment(this.cfg, otherSide(this.side), index, point, spec);
    const htlcPriv =
      built.htlcSighashes.length > 0 ? derivePrivkey(this.secrets.htlc, this.ownBasepoints.htlc, point) : null;
    const sigs = signCommitment(built, this.secrets.funding, htlcPriv);
    out.push({ type: 'commitment_signed', signature: sigs.signature, htlcSignatures: sigs.htlcSignatures });
    this.remote = { index, spec, txid: built.txid };
    this.pendingForRemote = [];
    this.awaitingRevocation = true;
    this.signWanted = false;
    this.dirty = true;
  }
}
