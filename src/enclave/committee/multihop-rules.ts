/**
 * What a backup checks of the multi-hop payments in an update (docs/protocol/multihop.md, committee hops),
 * so that a compromised primary cannot use them to make its backups sign what no payment produced:
 * - a channel is locked only by a record of a payment that holds it;
 * - a record's own hops describe our channels exactly as the update shows them when it first shows the
 *   record, and we pay nothing on them until its release (a credit needs the paying peer's signature of
 *   its total, as any credit: update-rules.ts; the release's credit has it from COMMIT);
 * - a record's route and fee rate never change, its phase only moves forward; its amounts never change
 *   either, except that a round may shrink from `locked` to `signed` (payments left out further down);
 * - τ in a record is the one its hops determine, and complete once committed (m members then may hand it
 *   out: every signature in it is checked once, when it first shows committed); once a member handed it
 *   out, the record stays frozen there until the chain decides.
 * A pure function of the replica and the incoming body, like the other rules.
 */
import { TreasuryError } from '../treasury/errors.ts';
import { peerTreasury } from '../treasury/multihop/identities.ts';
import { describe, matches, pathInputs, plan, sameHop } from '../treasury/multihop/path.ts';
import { isFrozen, isHolding, type MhHop, type MhPayment, type MhPhase } from '../treasury/multihop/records.ts';
import { localBalance, type Channel, type TreasuryState } from '../treasury/state.ts';
import { pathFullySigned, txidOf } from '../treasury/transactions.ts';
import type { ReplicaBody } from './update.ts';

export type MultihopRuleCode =
  'multihop_changed' | 'multihop_regressed' | 'lock_without_record' | 'locked_totals_changed' | 'tau_mismatch';

export interface MultihopRefusal {
  code: MultihopRuleCode;
  reason: string;
}

const no = (code: MultihopRuleCode, reason: string): MultihopRefusal => ({ code, reason });

/** Resolved records rank last: once done or aborted, a record stays so. */
const RANK: Record<MhPhase, number> = { locked: 0, signed: 1, committed: 2, released: 3, done: 4, aborted: 4 };
/** The phases in which the payment holds our channels at their old state (before its release). */
const BEFORE_RELEASE: ReadonlySet<MhPhase> = new Set(['locked', 'signed', 'committed']);

/** Null when the multi-hop records and locks of `body` may follow `replica`, else the first rule broken. */
export function checkMultihop(replica: TreasuryState, body: ReplicaBody, self: string): MultihopRefusal | null {
  const before = replica.multihop ?? {};
  const after = body.multihop ?? {};
  // A delta (update.ts) carries only the records that changed: the others are the replica's.
  const delta = body.base !== undefined;
  const gone = new Set(body.gone?.multihop ?? []);
  const record = (pid: string): MhPayment | undefined =>
    after[pid] ?? (delta && !gone.has(pid) ? before[pid] : undefined);
  let merged: TreasuryState | undefined;
  const view = (): TreasuryState =>
    (merged ??= delta
      ? ({
          ...replica,
          deposits: { ...replica.deposits, ...body.deposits },
          channels: { ...replica.channels, ...body.channels },
        } as TreasuryState)
      : ({ ...replica, deposits: body.deposits, channels: body.channels } as TreasuryState));
  // The channels a lock is checked on: those carried, and in a delta those of every record it changes or drops.
  const ids = new Set(Object.keys(body.channels));
  if (delta)
    for (const pid of [...Object.keys(after), ...gone])
      for (const rec of [after[pid], before[pid]]) {
        const hops = rec && hopsOf(rec);
        if (hops) for (const h of ownHops({ ...rec, hops })) ids.add(h.ch);
      }
  for (const id of ids) {
    const ch = body.channels[id] ?? (delta ? replica.channels[id] : undefined);
    if (!ch) continue;
    const why = lockFault(replica.channels[id], ch, record);
    if (why) return why;
  }
  for (const [pid, rec] of Object.entries(after)) {
    const why = recordFault(view, pid, rec, before[pid], self, replica);
    if (why) return why;
  }
  return null;
}

function ownHops(rec: MhPayment & { hops: MhHop[] }): MhHop[] {
  return [rec.hops[rec.index - 1], rec.hops[rec.index]].filter((h): h is MhHop => !!h);
}

function hopsOf(rec: MhPayment): MhHop[] | null {
  return 'hops' in rec && Array.isArray(rec.hops) ? rec.hops : null;
}

const baseKey = (r: MhPayment) => JSON.stringify([r.pid, r.route, r.index, r.feeRate]);

/**
 * Whether `rec`'s amounts may follow `old`'s: unchanged, except from `locked` to `signed`, where a round
 * may come back with payments left out further down the path (multihop/parts.ts): then each channel moves
 * no more than before, and an intermediary never forwards more than it receives.
 */
function amountsFollow(old: MhPayment, rec: MhPayment): boolean {
  const same = old.amounts.length === rec.amounts.length && old.amounts.every((a, i) => a === rec.amounts[i]);
  if (same) return true;
  if (old.phase !== 'locked' || rec.phase !== 'signed' || old.amounts.length !== rec.amounts.length) return false;
  if (!rec.amounts.every((a, i) => a <= old.amounts[i]!)) return false;
  const i = rec.index;
  return i === 0 || i === rec.route.length - 1 || rec.amounts[i - 1]! >= rec.amounts[i]!;
}

function recordFault(
  view: () => TreasuryState,
  pid: string,
  rec: MhPayment,
  old: MhPayment | undefined,
  self: string,
  replica: TreasuryState,
): MultihopRefusal | null {
  if (
    rec.pid !== pid ||
    !Array.isArray(rec.route) ||
    !Array.isArray(rec.amounts) ||
    !Number.isInteger(rec.index) ||
    rec.route[rec.index] !== self ||
    rec.amounts.length !== rec.route.length - 1 ||
    !rec.amounts.every((a) => typeof a === 'bigint' && a > 0n) ||
    !(rec.phase in RANK)
  )
    return no('multihop_changed', `payment ${pid}: not a record of ours`);
  if (old) {
    if (baseKey(old) !== baseKey(rec) || !amountsFollow(old, rec))
      return no('multihop_changed', `payment ${pid}: its route or amounts changed`);
    const back = RANK[rec.phase] < RANK[old.phase];
    const reopened = (old.phase === 'done' || old.phase === 'aborted') && rec.phase !== old.phase;
    // An aborted record may change while it stays aborted (what it waits for: records.ts `Resolution`).
    const undone = rec.phase === 'aborted' && old.phase !== 'aborted' && RANK[old.phase] > RANK.committed;
    if (back || reopened || undone) return no('multihop_regressed', `payment ${pid}: ${old.phase} → ${rec.phase}`);
    // τ handed out by this member (a settlement while committed): the path stays frozen until the chain
    // decides, so no update may pass the release or the unlock on meanwhile (records.ts, `tauOut`).
    if (isFrozen(old) && (rec.phase === 'committed' || rec.phase === 'released') && !isFrozen(rec))
      return no('multihop_regressed', `payment ${pid}: τ was handed out here, the path stays frozen`);
    const was = hopsOf(old);
    const now = hopsOf(rec);
    // What moves on a channel follows the amounts (checked above and below); nothing else of a hop may change.
    if (was && now && !was.every((h, i) => now[i] && sameHop({ ...h, amount: now[i]!.amount }, now[i]!)))
      return no('multihop_changed', `payment ${pid}: a hop's description changed`);
  }
  const hops = hopsOf(rec);
  if (!isHolding(rec) || !hops) return null;
  if (!hops.every((h, i) => h.from === rec.route[i] && h.to === rec.route[i + 1] && h.amount === rec.amounts[i]))
    return no('multihop_changed', `payment ${pid}: its hops do not follow its route`);
  // A record's own hops are checked against our channels when this member first sees it (they never change
  // after: above). Later credits may then move the channel (a payment the peer made before it saw the lock):
  // the peer's own check of our description then fails and the payment aborts.
  if (!old && BEFORE_RELEASE.has(rec.phase)) {
    for (const hop of ownHops(rec as MhPayment & { hops: MhHop[] })) {
      const ch = view().channels[hop.ch];
      if (ch?.status === 'closed') continue; // settled meanwhile: the settlement decides (multihop/settlement.ts)
      if (!ch || ch.lockedBy !== pid || !described(view(), self, hop, ch, replica.channels[hop.ch]))
        return no('multihop_changed', `payment ${pid}: channel ${hop.ch} is not as its description says`);
    }
  }
  return tauFault(pid, rec, old);
}

/**
 * Whether `hop` describes our channel `ch` as it was at the lock: our outgoing one as we describe it, the
 * incoming one as we check it; the peer named by its treasury identity (a committee peer's primary may
 * have changed since the channel opened: multihop/identities.ts).
 *
 * The update that first shows a record may also show credits that came after the lock (one update covers
 * a whole seal, and a member catching up gets many changes at once): a payment the peer made before it saw
 * the lock. The record then describes the channel with `received` lower by what came since, but never
 * lower than this member's replica had it (`before`): no description of a state this member never held
 * passes, and the peer's own check (of its view at the lock) decides whether the payment goes on.
 */
function described(view: TreasuryState, self: string, hop: MhHop, ch: Channel, before: Channel | undefined): boolean {
  const outgoing = hop.from === self;
  if (outgoing ? peerTreasury(ch) !== hop.to : hop.to !== self || peerTreasury(ch) !== hop.from) return false;
  const since = localBalance(view, ch) - (outgoing ? hop.fromOld : hop.toOld);
  const credited = before && before.received < ch.received ? ch.received - before.received : 0n;
  if (since < 0n || since > credited) return false;
  const atLock = since === 0n ? ch : { ...ch, received: ch.received - since };
  return outgoing ? sameHop(describe(view, self, atLock, hop.amount), hop) : matches(view, self, hop, atLock);
}

function tauFault(pid: string, rec: MhPayment, old: MhPayment | undefined): MultihopRefusal | null {
  if (rec.phase !== 'signed' && rec.phase !== 'committed') return null;
  const same = old && (old.phase === 'signed' || old.phase === 'committed') && old.tx === rec.tx;
  if (same && old.phase === rec.phase) return null; // checked when it came
  let txid: string | null = null;
  try {
    if (rec.hops.length === rec.route.length - 1) txid = plan(rec.hops, rec.feeRate).txid;
  } catch (err) {
    if (!(err instanceof TreasuryError)) throw err;
  }
  if (txid === null || rec.txid !== txid || txidOf(rec.tx) !== txid)
    return no('tau_mismatch', `payment ${pid}: τ is not the one its hops determine`);
  if (rec.phase === 'committed' && !pathFullySigned(rec.tx, pathInputs(rec.hops)))
    return no('tau_mismatch', `payment ${pid}: committed without τ complete`);
  return null;
}

/**
 * A lock only with a record of a payment that holds the channel; and while it holds it before its release,
 * we pay nothing on it (credits still come in, each with the peer's signature, and acknowledgements of
 * what we paid before the lock).
 */
function lockFault(
  old: Channel | undefined,
  ch: Channel,
  record: (pid: string) => MhPayment | undefined,
): MultihopRefusal | null {
  if (ch.status === 'closed' || !ch.lockedBy) return null;
  const rec = record(ch.lockedBy);
  const hops = rec && hopsOf(rec);
  if (!rec || !isHolding(rec) || !hops || !ownHops({ ...rec, hops }).some((h) => h.ch === ch.id))
    return no('lock_without_record', `channel ${ch.id}: locked by ${ch.lockedBy}, which holds no channel of ours`);
  if (old?.lockedBy === ch.lockedBy && old.status !== 'closed' && BEFORE_RELEASE.has(rec.phase) && ch.sent !== old.sent)
    return no('locked_totals_changed', `channel ${ch.id}: we paid on it while payment ${ch.lockedBy} holds it`);
  return null;
}
