/**
 * The payments of a path round as the hops see them (docs/protocol/multihop.md, "Rounds"): LOCK carries
 * each payment's part (what it moves on each channel of the path) and the payments left out so far; the
 * path's amounts are the sum of the other parts. A hop that cannot carry them all leaves out, in the
 * round's order, each payment that no longer fits (first fit: a later, smaller one may still fit), so any
 * hop given the same parts and the same room decides the same way. A part never grows along the path, so
 * whatever is left out, no intermediary forwards more than it receives. Pure functions: no message, no seal.
 */
import type { MhHop, MhParts } from './records.ts';

/** What moves on each channel for the payments of `round` not left out. */
export function totalsOf(round: MhParts): bigint[] {
  const left = new Set(round.dropped);
  const totals = round.parts[0]!.map(() => 0n);
  round.parts.forEach((part, k) => {
    if (left.has(k)) return;
    part.forEach((a, i) => (totals[i]! += a));
  });
  return totals;
}

/** Why `round` is not a well-formed round for a path whose channels carry `amounts`, or null. */
export function partsProblem(round: MhParts, amounts: bigint[]): string | null {
  const { parts, dropped } = round;
  if (parts.length === 0) return 'a round without payments';
  if (!parts.every((p) => p.length === amounts.length && p.every((a, i) => a > 0n && (i === 0 || a <= p[i - 1]!))))
    return 'a payment without a positive amount on every channel, no larger than on the one before';
  if (!dropped.every((k, i) => Number.isInteger(k) && k >= 0 && k < parts.length && (i === 0 || k > dropped[i - 1]!)))
    return 'left-out payments not listed once each, in order';
  if (dropped.length >= parts.length) return 'every payment left out';
  const totals = totalsOf(round);
  if (!totals.every((t, i) => t === amounts[i])) return 'the amounts are not the sum of the payments';
  return null;
}

/**
 * `round` with the payments that do not fit in `room` on channel `i` left out as well: in the round's
 * order, each payment still in goes on if what the ones before it took leaves room for its part.
 */
export function fitOn(round: MhParts, i: number, room: bigint): MhParts {
  const left = new Set(round.dropped);
  let used = 0n;
  round.parts.forEach((part, k) => {
    if (left.has(k)) return;
    if (used + part[i]! <= room) used += part[i]!;
    else left.add(k);
  });
  return { parts: round.parts, dropped: [...left].sort((a, b) => a - b) };
}

/** `hops` describing `amounts` (the same channels, states and deposits: only what moves on each changes). */
export function withAmounts(hops: MhHop[], amounts: bigint[]): MhHop[] {
  return hops.map((h, i) => (h.amount === amounts[i] ? h : { ...h, amount: amounts[i]! }));
}

/** Whether `later` leaves out every payment `earlier` did (a hop downstream may only leave out more). */
export function leavesOutMore(earlier: readonly number[], later: readonly number[]): boolean {
  const set = new Set(later);
  return earlier.every((k) => set.has(k));
}
