/**
 * A path round as the payer plans it (docs/protocol/multihop.md, "Rounds"): the payments waiting for one
 * destination put on one path, so that the whole round costs one lock, one τ, one commit and one release
 * at every hop. The path carries the round's totals; each payment keeps its own amount and fee.
 *
 * The totals are priced as one payment of the round's delivered sum (each intermediary checks its fee
 * on what it forwards, which is now the sum), and that fee is shared among the payments in proportion to
 * their amounts. Payments are taken in order while the totals still fit every channel of the path (ours
 * by its live balance, the others by what their owners announced); one that does not fit, or whose
 * share of the fee exceeds its own limit, is refused alone and the round goes on without it.
 */
import { TreasuryError, type TreasuryErrorCode } from '../errors.ts';
import { findRoute, forwardFee } from '../routing.ts';
import { spendable, type Channel } from '../state.ts';
import type { MultiHopHost } from './host.ts';
import { peerTreasury } from './identities.ts';
import { isFree, openChannelsTo } from './path.ts';
import type { MhRefInput } from './payer-refs.ts';

type Graph = Parameters<typeof findRoute>[0]['graph'];

/** One payment of a round as the payer's caller asks it. */
export interface RoundPayment {
  amount: bigint;
  maxFee: bigint;
  /** The host's id of the payment, only passed back in the round's `mh_round` event. */
  ref?: string;
  /** A keyed payment: hashes of its idempotency key and request, kept with the round (payer-refs.ts). */
  key?: MhRefInput;
}

export type PaymentOutcome = { ok: true; fee: bigint } | { ok: false; code: TreasuryErrorCode; message: string };

export interface RoundPlan {
  route: string[];
  /** The round's totals: what moves on each channel of the path. */
  amounts: bigint[];
  /** Our channel to route[1] that carries the round. */
  channel: Channel;
  /** One per payment asked, in order: its fee if it travels in the round, or why it was refused. */
  outcomes: PaymentOutcome[];
  /** The payments that travel (indices into those asked, in order), and what each moves on each channel. */
  taken: number[];
  parts: bigint[][];
}

function refusedAll(payments: RoundPayment[], err: unknown): PaymentOutcome[] {
  if (!(err instanceof TreasuryError)) throw err;
  const e = err;
  return payments.map(() => ({ ok: false, code: e.code, message: e.message }));
}

/**
 * The round for `payments` to `dest`, or only their refusals (`plan` null) when none can travel: no path,
 * no free channel, none fits.
 */
export function planRound(
  h: MultiHopHost,
  graph: Graph,
  dest: string,
  payments: RoundPayment[],
): { plan: RoundPlan | null; outcomes: PaymentOutcome[] } {
  const local = Object.values(h.state.channels)
    .filter((c) => c.status === 'open' && c.peerPayout && h.connected(peerTreasury(c)))
    .map((c) => ({ peer: peerTreasury(c), cap: spendable(h.state, c) }));
  const total = payments.reduce((s, p) => s + p.amount, 0n);
  const smallest = payments.reduce((m, p) => (p.amount < m ? p.amount : m), payments[0]!.amount);
  let route: string[];
  try {
    route = findRoute({ self: h.nodeId, dest, amount: total, graph, local }).route;
  } catch (err) {
    // A path that carries the whole round may not exist while one carries part of it.
    if (!(err instanceof TreasuryError) || err.code !== 'insufficient_capacity' || smallest === total)
      return { plan: null, outcomes: refusedAll(payments, err) };
    try {
      route = findRoute({ self: h.nodeId, dest, amount: smallest, graph, local }).route;
    } catch (again) {
      return { plan: null, outcomes: refusedAll(payments, again) };
    }
  }
  const candidates = openChannelsTo(h.state, route[1]!);
  const free = candidates.filter(isFree);
  const channel = free.sort((a, b) => (spendable(h.state, b) > spendable(h.state, a) ? 1 : -1))[0];
  // Our channel held by another round: the host queues this one and tries again.
  const shortCode: TreasuryErrorCode = free.length < candidates.length ? 'channel_busy' : 'insufficient_capacity';
  if (!channel) {
    const err = new TreasuryError(shortCode, `no free channel to ${route[1]!.slice(0, 16)}…`);
    return { plan: null, outcomes: refusedAll(payments, err) };
  }
  const caps = [
    spendable(h.state, channel),
    ...route.slice(1, -1).map((node, i) => announcedCap(graph, node, route[i + 2]!)),
  ];
  const totalsFor = (delivered: bigint) => pathTotals(graph, route, delivered);

  const outcomes: Array<PaymentOutcome | null> = payments.map(() => null);
  for (;;) {
    let delivered = 0n;
    const taken: number[] = [];
    payments.forEach((p, k) => {
      if (outcomes[k] !== null) return;
      const totals = totalsFor(delivered + p.amount);
      const short = totals.findIndex((x, i) => x > caps[i]!);
      if (short === -1) {
        delivered += p.amount;
        taken.push(k);
        return;
      }
      outcomes[k] = {
        ok: false,
        code: short === 0 ? shortCode : 'insufficient_capacity',
        message: `the path to ${dest.slice(0, 16)}… cannot carry ${p.amount} sat more in this round (channel ${short + 1} of ${caps.length})`,
      };
    });
    if (taken.length === 0) return { plan: null, outcomes: outcomes as PaymentOutcome[] };
    const amounts = totalsFor(delivered);
    const parts = partsOf(
      amounts,
      taken.map((k) => payments[k]!.amount),
    );
    const fees = parts.map((part, i) => part[0]! - payments[taken[i]!]!.amount);
    // A share over its payment's limit: that payment is refused and the round priced again without it.
    const over = taken.findIndex((k, i) => fees[i]! > payments[k]!.maxFee);
    if (over !== -1) {
      const k = taken[over]!;
      outcomes[k] = {
        ok: false,
        code: 'fee_limit_exceeded',
        message: `the cheapest path to ${dest.slice(0, 16)}… charges ${fees[over]} sat in fees, more than the limit of ${payments[k]!.maxFee} sat`,
      };
      continue;
    }
    taken.forEach((k, i) => (outcomes[k] = { ok: true, fee: fees[i]! }));
    const done = outcomes as PaymentOutcome[];
    return { plan: { route, amounts, channel, outcomes: done, taken, parts }, outcomes: done };
  }
}

/**
 * What each payment moves on each channel (multihop/parts.ts): its amount on the last channel, and on each
 * channel before, its part on the next plus its share (as `share` makes them) of the fee the hop between
 * them takes. Each channel's parts add up to its total and never grow along the path; a payment's fee is
 * its part on the first channel less its amount.
 */
function partsOf(amounts: bigint[], delivered: bigint[]): bigint[][] {
  const n = amounts.length;
  const parts = delivered.map((d) => {
    const part = new Array<bigint>(n);
    part[n - 1] = d;
    return part;
  });
  for (let i = n - 2; i >= 0; i--) {
    const fee = share(amounts[i]! - amounts[i + 1]!, delivered);
    parts.forEach((part, k) => (part[i] = part[i + 1]! + fee[k]!));
  }
  return parts;
}

/** What moves on each channel of `route` to deliver `delivered`: each intermediary adds its announced fee. */
function pathTotals(graph: Graph, route: string[], delivered: bigint): bigint[] {
  const amounts = new Array<bigint>(route.length - 1);
  amounts[route.length - 2] = delivered;
  for (let i = route.length - 3; i >= 0; i--) {
    const ann = graph.get(route[i + 1]!)?.ann;
    const fees = ann ? { base: ann.fee_base, ppm: ann.fee_ppm } : undefined;
    amounts[i] = amounts[i + 1]! + forwardFee(fees, amounts[i + 1]!);
  }
  return amounts;
}

/** The most `node` announced it can pay `to` on one channel. */
function announcedCap(graph: Graph, node: string, to: string): bigint {
  let best = 0n;
  for (const c of graph.get(node)?.ann.channels ?? []) if (c.peer === to && BigInt(c.cap) > best) best = BigInt(c.cap);
  return best;
}

/**
 * `fee` split in proportion to `amounts`, exactly (largest remainders get the odd satoshis, ties to the
 * earlier payment): the shares add up to what the path charges the round.
 */
export function share(fee: bigint, amounts: bigint[]): bigint[] {
  const sum = amounts.reduce((s, a) => s + a, 0n);
  if (sum === 0n) return amounts.map(() => 0n);
  const shares = amounts.map((a) => (fee * a) / sum);
  let left = fee - shares.reduce((s, x) => s + x, 0n);
  const order = amounts
    .map((a, i) => ({ i, rest: (fee * a) % sum }))
    .sort((x, y) => (y.rest > x.rest ? 1 : y.rest < x.rest ? -1 : x.i - y.i));
  for (const { i } of order) {
    if (left === 0n) break;
    shares[i]! += 1n;
    left -= 1n;
  }
  return shares;
}
