/**
 * Every transition of a multi-hop payment, as one table: in this phase, on this message or event, for this
 * role, from this side of the path → the phases it may end in, and what is done. The handlers look their
 * case up here before acting; a case with no row is ignored, which is how a late, re-sent, out-of-place or
 * forged message is treated (nothing changes, nothing is sealed or sent). test/multihop.phases.test.ts
 * runs every row and every case that has none.
 *
 * Where a row lists several phases, the first is the usual one: the action's own checks may refuse (a LOCK
 * that does not match our view: aborted; a COMMIT that is not the τ we signed: unchanged), and a released
 * intermediary is done only once neither of its two channels is held.
 */
import { isFrozen, roleOf, sideOf, type MhPayment, type MhPhase, type MhRole } from './records.ts';

export type MhEvent =
  /** The protocol messages, from a neighbour on the path. */
  | 'mh_lock'
  | 'mh_signed'
  | 'mh_commit'
  | 'mh_release'
  | 'mh_unlock'
  | 'mh_abort'
  /** A direct payment from a neighbour on a channel the payment holds (it may overtake a release or an unlock). */
  | 'paid'
  /** The LOCK / SIGN wait ran out. */
  | 'timeout'
  /** We settle a channel the payment holds. */
  | 'settle'
  /** A channel the payment holds was settled elsewhere: by τ itself; */
  | 'settled_tau'
  /** by something else, while the payment is not committed (old or new makes no difference then); */
  | 'settled'
  /** while committed: in the new state (the peer's word or the chain), in the old state on the peer's word, on chain. */
  | 'settled_new'
  | 'settled_old'
  | 'settled_old_on_chain'
  /** Our own settlement of a released payment's channel went out. */
  | 'closed'
  /** The neighbour reconnected: re-send what it may have missed. */
  | 'reconnected';

/** Who the event comes from: a neighbour on one side, either neighbour, anybody, or this treasury itself. */
export type MhFrom = 'upstream' | 'downstream' | 'either' | 'anyone' | 'self';

export type MhAction =
  /** Check the LOCK against our view, lock the incoming and an outgoing channel, forward the LOCK. */
  | 'lock_and_forward'
  /** The destination: check the LOCK, build τ, sign our inputs, send SIGN back. */
  | 'sign_and_return'
  /** Rebuild τ from the descriptions, check the txid, add our signatures, pass SIGN upstream. */
  | 'countersign'
  /** The payer: rebuild and check τ, complete it, commit, send COMMIT down the path. */
  | 'complete_and_commit'
  /** Check it is the τ we signed, complete; commit and forward (the destination releases at once). */
  | 'commit'
  /** Apply the new state, drop τ; pass the release upstream (the payer starts the unlock wave) unless τ is out. */
  | 'release'
  /** Unlock our channels and pass the unlock wave on. */
  | 'unlock'
  /** Keep the old state: unlock, tell the other neighbour(s), fail the payer's call. */
  | 'abort'
  /** Answer with the abort we already decided. */
  | 'resend_abort'
  /** No record of a payment whose SIGN comes back: we never kept its lock (or it is over); answer with an abort. */
  | 'abort_forgotten'
  /** Nothing holds the channel any more (the record is gone or resolved): drop the stale lock. */
  | 'drop_lock'
  /** Hand τ to the host to broadcast, sealing the freeze first. */
  | 'hand_out_tau'
  /** The caller settles the new state as usual; the lock holds until that settlement closes the channel. */
  | 'settle_new'
  /** τ decided: apply the new state if not yet, close every channel of ours on the path by τ. */
  | 'resolve_by_tau'
  /** τ is out and only the peer says the old state won: τ may still confirm, so wait for the chain. */
  | 'await_chain'
  /** The new state is certain: release (unfrozen if the chain showed it), and let go of the settled channel. */
  | 'release_and_close'
  /** Let go of the closing channel's lock; the payment is done once it holds none. */
  | 'close_channel'
  | 'resend_lock'
  | 'resend_signed'
  | 'resend_commit'
  | 'resend_release'
  | 'resend_unlock';

/** No record of the payment here (a new LOCK, or a lock left by a record already pruned). */
export type MhPhaseOrNone = MhPhase | 'none';

export interface MhTransition {
  phase: readonly MhPhaseOrNone[];
  on: readonly MhEvent[];
  roles: readonly MhRole[];
  from: MhFrom;
  /** Only if τ has (true) or has not (false) been handed out; absent: either. */
  frozen?: boolean;
  /** Only if the record is (true) or is not (false) quiet (done without the unlock wave); absent: either. */
  quiet?: boolean;
  next: readonly MhPhaseOrNone[];
  action: MhAction;
}

const ALL: readonly MhRole[] = ['payer', 'intermediary', 'destination'];
const SENDS_ONWARD: readonly MhRole[] = ['payer', 'intermediary'];
const HAS_UPSTREAM: readonly MhRole[] = ['intermediary', 'destination'];
const SETTLED: readonly MhEvent[] = ['settled', 'settled_tau', 'settled_new', 'settled_old', 'settled_old_on_chain'];

export const TRANSITIONS: readonly MhTransition[] = [
  // LOCK: payer → destination. The sender and the message itself are checked by the action (refused: aborted).
  {
    phase: ['none'],
    on: ['mh_lock'],
    roles: ['intermediary'],
    from: 'anyone',
    next: ['locked', 'aborted'],
    action: 'lock_and_forward',
  },
  {
    phase: ['none'],
    on: ['mh_lock'],
    roles: ['destination'],
    from: 'anyone',
    next: ['signed', 'aborted'],
    action: 'sign_and_return',
  },
  { phase: ['aborted'], on: ['mh_lock'], roles: ALL, from: 'anyone', next: ['aborted'], action: 'resend_abort' },
  // SIGN: destination → payer.
  // No record: a LOCK that left before its seal, forgotten in a crash (or a payment resolved and dropped since,
  // whose neighbours are past it and ignore the abort). Nothing was signed here, so nothing was committed.
  { phase: ['none'], on: ['mh_signed'], roles: ALL, from: 'anyone', next: ['none'], action: 'abort_forgotten' },
  {
    phase: ['locked'],
    on: ['mh_signed'],
    roles: ['intermediary'],
    from: 'downstream',
    next: ['signed', 'aborted'],
    action: 'countersign',
  },
  {
    phase: ['locked'],
    on: ['mh_signed'],
    roles: ['payer'],
    from: 'downstream',
    next: ['committed', 'aborted'],
    action: 'complete_and_commit',
  },
  // COMMIT: payer → destination. Not the τ we signed, or incomplete: ignored.
  {
    phase: ['signed'],
    on: ['mh_commit'],
    roles: ['intermediary'],
    from: 'upstream',
    next: ['committed', 'signed'],
    action: 'commit',
  },
  {
    phase: ['signed'],
    on: ['mh_commit'],
    roles: ['destination'],
    from: 'upstream',
    next: ['released', 'signed'],
    action: 'commit',
  },
  // RELEASE: destination → payer; a payment from downstream says the same (the peer could not pay otherwise).
  {
    phase: ['committed'],
    on: ['mh_release', 'paid'],
    roles: ['intermediary'],
    from: 'downstream',
    next: ['released'],
    action: 'release',
  },
  {
    phase: ['committed'],
    on: ['mh_release', 'paid'],
    roles: ['payer'],
    from: 'downstream',
    frozen: false,
    next: ['done'],
    action: 'release',
  },
  {
    phase: ['committed'],
    on: ['mh_release', 'paid'],
    roles: ['payer'],
    from: 'downstream',
    frozen: true,
    next: ['released'],
    action: 'release',
  },
  // UNLOCK: payer → destination; a payment from upstream is the unlock, overtaken. Never while τ is out.
  {
    phase: ['released'],
    on: ['mh_unlock', 'paid'],
    roles: HAS_UPSTREAM,
    from: 'upstream',
    frozen: false,
    next: ['done'],
    action: 'unlock',
  },
  // ABORT: before COMMIT from either side; committed only from downstream and only while τ is in.
  { phase: ['locked', 'signed'], on: ['mh_abort'], roles: ALL, from: 'either', next: ['aborted'], action: 'abort' },
  {
    phase: ['committed'],
    on: ['mh_abort'],
    roles: SENDS_ONWARD,
    from: 'downstream',
    frozen: false,
    next: ['aborted'],
    action: 'abort',
  },
  // Only a hop that has not passed τ upstream yet may give up alone: without it τ cannot be completed.
  { phase: ['locked'], on: ['timeout'], roles: SENDS_ONWARD, from: 'self', next: ['aborted'], action: 'abort' },
  // A committee payer restarted while its members were signing τ: it never committed, so it may give up.
  { phase: ['signed'], on: ['timeout'], roles: ['payer'], from: 'self', next: ['aborted'], action: 'abort' },
  // We settle a held channel: before COMMIT the old state (the payment aborts), committed τ, released the new state.
  {
    phase: ['none', 'done', 'aborted'],
    on: ['settle'],
    roles: ALL,
    from: 'self',
    next: ['none', 'done', 'aborted'],
    action: 'drop_lock',
  },
  { phase: ['locked', 'signed'], on: ['settle'], roles: ALL, from: 'self', next: ['aborted'], action: 'abort' },
  {
    phase: ['committed'],
    on: ['settle'],
    roles: SENDS_ONWARD,
    from: 'self',
    next: ['committed'],
    action: 'hand_out_tau',
  },
  { phase: ['released'], on: ['settle'], roles: ALL, from: 'self', next: ['released'], action: 'settle_new' },
  // A held channel settled by the peer or seen spent on chain.
  {
    phase: ['none', 'done', 'aborted'],
    on: SETTLED,
    roles: ALL,
    from: 'self',
    next: ['none', 'done', 'aborted'],
    action: 'drop_lock',
  },
  {
    phase: ['signed', 'committed', 'released'],
    on: ['settled_tau'],
    roles: ALL,
    from: 'self',
    next: ['done'],
    action: 'resolve_by_tau',
  },
  { phase: ['locked', 'signed'], on: ['settled'], roles: ALL, from: 'self', next: ['aborted'], action: 'abort' },
  {
    phase: ['committed'],
    on: ['settled_old'],
    roles: SENDS_ONWARD,
    from: 'self',
    frozen: true,
    next: ['committed'],
    action: 'await_chain',
  },
  {
    phase: ['committed'],
    on: ['settled_old'],
    roles: SENDS_ONWARD,
    from: 'self',
    frozen: false,
    next: ['aborted'],
    action: 'abort',
  },
  {
    phase: ['committed'],
    on: ['settled_old_on_chain'],
    roles: SENDS_ONWARD,
    from: 'self',
    next: ['aborted'],
    action: 'abort',
  },
  {
    phase: ['committed'],
    on: ['settled_new'],
    roles: ['payer'],
    from: 'self',
    next: ['done'],
    action: 'release_and_close',
  },
  {
    phase: ['committed'],
    on: ['settled_new'],
    roles: ['intermediary'],
    from: 'self',
    next: ['released'],
    action: 'release_and_close',
  },
  {
    phase: ['released'],
    on: ['settled', 'closed'],
    roles: ['intermediary'],
    from: 'self',
    next: ['released', 'done'],
    action: 'close_channel',
  },
  {
    phase: ['released'],
    on: ['settled', 'closed'],
    roles: ['payer', 'destination'],
    from: 'self',
    next: ['done'],
    action: 'close_channel',
  },
  // A neighbour reconnected: what it may have missed, from the sealed record.
  {
    phase: ['locked'],
    on: ['reconnected'],
    roles: SENDS_ONWARD,
    from: 'downstream',
    next: ['locked'],
    action: 'resend_lock',
  },
  {
    phase: ['signed'],
    on: ['reconnected'],
    roles: HAS_UPSTREAM,
    from: 'upstream',
    next: ['signed'],
    action: 'resend_signed',
  },
  {
    phase: ['committed'],
    on: ['reconnected'],
    roles: SENDS_ONWARD,
    from: 'downstream',
    next: ['committed'],
    action: 'resend_commit',
  },
  {
    phase: ['released'],
    on: ['reconnected'],
    roles: HAS_UPSTREAM,
    from: 'upstream',
    frozen: false,
    next: ['released'],
    action: 'resend_release',
  },
  {
    phase: ['done'],
    on: ['reconnected'],
    roles: HAS_UPSTREAM,
    from: 'upstream',
    quiet: false,
    next: ['done'],
    action: 'resend_release',
  },
  {
    phase: ['done'],
    on: ['reconnected'],
    roles: SENDS_ONWARD,
    from: 'downstream',
    quiet: false,
    next: ['done'],
    action: 'resend_unlock',
  },
  { phase: ['aborted'], on: ['reconnected'], roles: ALL, from: 'either', next: ['aborted'], action: 'resend_abort' },
];

/** The case to look up: what the record is, what happened, and where it came from. */
export interface MhCase {
  phase: MhPhaseOrNone;
  on: MhEvent;
  role: MhRole;
  /** The sender's side of the path (null: not a neighbour), or 'self' for this treasury's own events. */
  from: 'upstream' | 'downstream' | 'self' | null;
  frozen: boolean;
  quiet: boolean;
}

function fromMatches(row: MhFrom, from: MhCase['from']): boolean {
  switch (row) {
    case 'self':
      return from === 'self';
    case 'anyone':
      return from !== 'self';
    case 'either':
      return from === 'upstream' || from === 'downstream';
    default:
      return row === from;
  }
}

/** The row for this case, or undefined: not in the table, so ignored. */
export function transitionFor(c: MhCase): MhTransition | undefined {
  return TRANSITIONS.find(
    (row) =>
      row.phase.includes(c.phase) &&
      row.on.includes(c.on) &&
      row.roles.includes(c.role) &&
      fromMatches(row.from, c.from) &&
      (row.frozen === undefined || row.frozen === c.frozen) &&
      (row.quiet === undefined || row.quiet === c.quiet),
  );
}

/** The case of `rec` meeting `on` from `peerId` (or from this treasury itself when absent). */
export function caseOf(rec: MhPayment, on: MhEvent, peerId?: string): MhCase {
  return {
    phase: rec.phase,
    on,
    role: roleOf(rec),
    from: peerId === undefined ? 'self' : sideOf(rec, peerId),
    frozen: isFrozen(rec),
    quiet: rec.phase === 'done' && rec.quiet,
  };
}

/** Looks up `rec` meeting `on` (from `peerId`, or from ourselves). */
export function step(rec: MhPayment, on: MhEvent, peerId?: string): MhTransition | undefined {
  return transitionFor(caseOf(rec, on, peerId));
}

/** Looks up an event that finds no record of the payment (a new LOCK, or a lock whose record is gone). */
export function stepWithoutRecord(on: MhEvent, role: MhRole, from: MhCase['from'] = 'self'): MhTransition | undefined {
  return transitionFor({ phase: 'none', on, role, from, frozen: false, quiet: false });
}
