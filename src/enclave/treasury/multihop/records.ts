/**
 * A multi-hop payment as this treasury records it, one type per phase (docs/protocol/multihop.md):
 *
 *   locked ──► signed ──► committed ──► released ──► done
 *      └─────────┴───────────┴──► aborted           (committed: only from downstream, τ not handed out)
 *
 * Each type carries exactly what that phase knows, so a field that is "set by now" is a field of the type:
 * τ exists from `signed` on and is dropped at `released`; `tauOut` (τ handed to the host: the path is
 * frozen) exists only while τ may still be held; a resolved record (`done`, `aborted`) is slimmed to what
 * answering re-sent messages needs. The transitions between them are the table in phases.ts.
 *
 * These records are sealed as they are (state.ts). Records sealed before the phases had their own types
 * were one flat shape with optional fields; `recordFromSealed` reads both.
 */

/** One channel of a multi-hop path as its sender describes it: enough for every hop to build the path settlement. */
export interface MhHop {
  ch: string;
  /** Node ids of the paying and the paid side of this channel. */
  from: string;
  to: string;
  /** What moves from `from` to `to` on this channel (the amount delivered plus downstream fees). */
  amount: bigint;
  /** Each side's balance in the old state. */
  fromOld: bigint;
  toOld: bigint;
  fromPayout: string;
  toPayout: string;
  /** Every deposit in the channel (both sides'). */
  inputs: Array<{ outpoint: string; value: bigint; witnessScript: string }>;
}

/** What every record has, whatever its phase. */
export interface MhBase {
  pid: string;
  /** Node ids from the payer to the destination. */
  route: string[];
  /** This treasury's place in `route`. */
  index: number;
  /** What moves on each channel of the path (amounts[i] from route[i] to route[i + 1]). */
  amounts: bigint[];
  feeRate: number;
}

/**
 * The payments of a round as LOCK carries them (docs/protocol/multihop.md, "Rounds"): `parts[k]` is what
 * payment k moves on each channel of the path (its amount delivered, plus its share of the fees after
 * each channel), `dropped` the payments hops so far left out, ascending; `amounts` is then the sum of the
 * others' parts. Absent for a lone payment, which is its own one part.
 */
export interface MhParts {
  parts: bigint[][];
  dropped: number[];
}

/** LOCK on its way to the destination: our channels are locked; hops 0..index are described. */
export interface MhLocked extends MhBase {
  phase: 'locked';
  hops: MhHop[];
  round?: MhParts;
}

/** SIGN on its way back to the payer: every hop described, τ signed by us and everyone downstream. */
export interface MhSigned extends MhBase {
  phase: 'signed';
  hops: MhHop[];
  tx: string;
  txid: string;
  /** The destination of a round: what each payment that went on delivers, in the round's order (its history shows each). */
  delivered?: bigint[];
  /** A round: the payments left out on the way (MhParts), which SIGN reports upstream and re-sends with it. */
  dropped?: number[];
}

/** τ complete, held here: the new state is certain once downstream releases; no abort from upstream now. */
export interface MhCommitted extends MhBase {
  phase: 'committed';
  hops: MhHop[];
  tx: string;
  txid: string;
  /**
   * τ was handed to the host (a settlement while committed): the path channels stay locked until the chain
   * shows τ or another spend of one of its inputs; this hop never passes a release or an unlock on.
   */
  tauOut: boolean;
}

/** The new state is applied and τ dropped; the channels stay locked, since τ may still be held upstream. */
export interface MhReleased extends MhBase {
  phase: 'released';
  hops: MhHop[];
  txid: string;
  /** Kept from `committed`: a frozen hop stays locked until the chain decides. */
  tauOut: boolean;
}

/**
 * What a resolved record (done or aborted) still waits for: our channels of the payment whose neighbour
 * has not shown yet that it is past it. A neighbour that locks the channel again (its LOCK reaches us, or
 * its SIGN for a LOCK we sent) has unlocked its side, so it is done with every earlier payment on it and
 * will never ask for this one again; once no channel is left, nothing can need the record and it is
 * dropped (payments.ts). So a treasury keeps about one resolved record per busy channel, not a long tail
 * of them in every seal. Records sealed before this field existed are dropped by age only.
 */
export interface Resolution {
  waitsOn?: string[];
}

/** Unlocked: nobody holds τ any more, or the chain decided. */
export interface MhDone extends MhBase, Resolution {
  phase: 'done';
  txid: string;
  /** Resolved payments are kept for a while (to answer re-sent messages), then dropped (oldest first). */
  resolvedAt: number;
  /** Done without the unlock wave (its channels closed, the chain showed τ, or τ was out): nothing to pass on, even on resync. */
  quiet: boolean;
}

/** The old state stays: every lock released. */
export interface MhAborted extends MhBase, Resolution {
  phase: 'aborted';
  /** Why (an error code of ours or the neighbour's). */
  code: string;
  /** τ's txid if the payment got as far as signing (shown in the payments view). */
  txid: string | null;
  resolvedAt: number;
}

/** One keyed payment of a round, at its payer (payer-refs.ts). */
export interface MhRefEntry {
  fp: string;
  /** Its place among the round's payments that travel (the index SIGN's `dropped` names). */
  k: number;
  amt: bigint;
  /** Its share of what the path charges the round. */
  fee: bigint;
  /** Set when a hop left it out (the round went on without it). */
  code?: string;
  /** The host's id of the payment, so that a committee member promoted later answers the same id. */
  id?: string;
}

/**
 * The payer's refs of the keyed payments of one of its rounds, by key hash, and the round's outcome once
 * known: kept in the sealed state by round id until the host has journaled the outcomes (payer-refs.ts).
 */
export interface MhRefRound {
  /** Our channel that carries the round (the path's first). */
  ch: string;
  route: string[];
  out?: { ok: true } | { ok: false; code: string };
  refs: Record<string, MhRefEntry>;
}

export type MhPayment = MhLocked | MhSigned | MhCommitted | MhReleased | MhDone | MhAborted;
export type MhPhase = MhPayment['phase'];
/** The phases in which the payment still holds its channels (and knows every hop it has described). */
export type MhHolding = MhLocked | MhSigned | MhCommitted | MhReleased;

export function isHolding(rec: MhPayment): rec is MhHolding {
  return rec.phase !== 'done' && rec.phase !== 'aborted';
}

/** Whether τ has been handed out: only a committed or released record can say so. */
export function isFrozen(rec: MhPayment): boolean {
  return (rec.phase === 'committed' || rec.phase === 'released') && rec.tauOut;
}

/** The fields every phase shares, copied (a transition builds the next record from them). */
export function baseOf(rec: MhBase): MhBase {
  return { pid: rec.pid, route: rec.route, index: rec.index, amounts: rec.amounts, feeRate: rec.feeRate };
}

export type MhRole = 'payer' | 'intermediary' | 'destination';

export function roleOf(rec: MhBase): MhRole {
  return rec.index === 0 ? 'payer' : rec.index === rec.route.length - 1 ? 'destination' : 'intermediary';
}

/** Where `peerId` sits on the path relative to us, if it is a neighbour. */
export function sideOf(rec: MhBase, peerId: string): 'upstream' | 'downstream' | null {
  if (rec.route[rec.index - 1] === peerId) return 'upstream';
  if (rec.route[rec.index + 1] === peerId) return 'downstream';
  return null;
}

/** A record as sealed before the phases had their own types: one shape, the phase's fields optional. */
export interface FlatMhRecord extends MhBase {
  phase: MhPhase;
  hops?: MhHop[];
  tx?: string;
  txid?: string;
  code?: string;
  resolvedAt?: number;
  /** The payer's first channel (now known from its hops, and to its waiting call). */
  channel?: string;
  tauOut?: boolean;
  quiet?: boolean;
  round?: MhParts;
  delivered?: bigint[];
  dropped?: number[];
  waitsOn?: string[];
}

/**
 * A sealed record in either shape, as the record of its phase. A flat record's fields map one to one; what
 * was optional gets the value its absence meant (no `tauOut`: not handed out; no `quiet`: not quiet). A
 * flat `done` record with `tauOut` was always also `quiet` (a hop that handed τ out never passes the
 * unlock wave on), which is what `quiet` now says alone.
 */
export function recordFromSealed(raw: FlatMhRecord | MhPayment): MhPayment {
  const r = raw as FlatMhRecord;
  const base = baseOf(r);
  const hops = r.hops ?? [];
  switch (r.phase) {
    case 'locked':
      return { ...base, phase: 'locked', hops, ...(r.round ? { round: r.round } : {}) };
    case 'signed':
      return {
        ...base,
        phase: 'signed',
        hops,
        tx: need(r, 'tx'),
        txid: need(r, 'txid'),
        ...(r.delivered ? { delivered: r.delivered } : {}),
        ...(r.dropped ? { dropped: r.dropped } : {}),
      };
    case 'committed':
      return { ...base, phase: 'committed', hops, tx: need(r, 'tx'), txid: need(r, 'txid'), tauOut: !!r.tauOut };
    case 'released':
      return { ...base, phase: 'released', hops, txid: need(r, 'txid'), tauOut: !!r.tauOut };
    case 'done':
      return {
        ...base,
        phase: 'done',
        txid: need(r, 'txid'),
        resolvedAt: r.resolvedAt ?? 0,
        quiet: !!r.quiet || !!r.tauOut,
        ...waitsOnOf(r),
      };
    case 'aborted':
      return {
        ...base,
        phase: 'aborted',
        code: r.code ?? 'aborted',
        txid: r.txid ?? null,
        resolvedAt: r.resolvedAt ?? 0,
        ...waitsOnOf(r),
      };
  }
}

function waitsOnOf(r: FlatMhRecord): Resolution {
  return Array.isArray(r.waitsOn) ? { waitsOn: r.waitsOn.filter((c) => typeof c === 'string') } : {};
}

function need(r: FlatMhRecord, field: 'tx' | 'txid'): string {
  const v = r[field];
  if (typeof v !== 'string') throw new Error(`sealed state: multi-hop payment ${r.pid} (${r.phase}) has no ${field}`);
  return v;
}

/**
 * The handlers act on the phase the transition table found; this tells the type checker so. It cannot
 * fail unless the table and the code disagree (the phases test would show it): then nothing is done.
 */
export function inPhase<P extends MhPhase>(rec: MhPayment, ...phases: P[]): rec is Extract<MhPayment, { phase: P }> {
  return (phases as MhPhase[]).includes(rec.phase);
}
