/**
 * Routing for multi-hop payments (docs/protocol/multihop.md): channel announcements signed with each
 * treasury's identity key and flooded from peer to peer, and a shortest-path search with capacity as a
 * constraint and each intermediary's fee.
 *
 * The graph is not money: it lives in enclave memory, unsealed, and a stale or missing figure only makes
 * a payment's lock fail cleanly (the hops check their real balances). What the signature buys is that no
 * host can invent channels or capacities for another node.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '../../../enclave-sim/encoding.ts';
import { signDigestFast, verifyDigestFast } from '../../crypto/secp256k1-wasm.ts';
import type { AnnouncementWire } from '../protocol/messages.ts';
import { TreasuryError } from './errors.ts';

export const MAX_HOPS = 19;

function digest(ann: AnnouncementWire): Uint8Array {
  return sha256(new TextEncoder().encode(`teechain/announce/v1|${JSON.stringify(ann)}`));
}

export function signAnnouncement(ann: AnnouncementWire, identityKey: string): string {
  return bytesToHex(signDigestFast(digest(ann), hexToBytes(identityKey)));
}

/** Whether `sig` is `signer`'s over `ann`: the node it names, or the member that speaks for it (multihop/speakers.ts). */
export function verifyAnnouncement(ann: AnnouncementWire, sig: string, signer: string = ann.node): boolean {
  return verifyDigestFast(hexToBytes(sig), digest(ann), hexToBytes(signer));
}

/**
 * The fee limit of a routed payment when the payer names none: 1 % of the amount plus 10 sat, about what
 * Lightning wallets allow by default for small payments. A limit must exist because intermediaries
 * announce their own fees: without one a hop asking 60,000 sat to forward 1,000 would simply be paid.
 */
export function defaultMaxFee(amount: bigint): bigint {
  return amount / 100n + 10n;
}

/** What an intermediary charges for forwarding `amount`: base + ⌊amount × ppm / 10^6⌋. */
export function forwardFee(fees: { base: number; ppm: number } | undefined, amount: bigint): bigint {
  if (!fees) return 0n;
  return BigInt(fees.base) + (amount * BigInt(fees.ppm)) / 1_000_000n;
}

/** An edge from → to with the capacity `from` announced (what it may still pay on that channel). */
interface Edge {
  from: string;
  to: string;
  cap: bigint;
}

export interface RouteQuery {
  self: string;
  dest: string;
  amount: bigint;
  /** Announcements by node id. */
  graph: ReadonlyMap<string, { ann: AnnouncementWire }>;
  /** This node's own usable channels (live figures, not its announcement). */
  local: Array<{ peer: string; cap: bigint }>;
  /** The most the payer accepts to pay intermediaries in all (absent: no limit). */
  maxFee?: bigint;
}

/**
 * The cheapest path from `self` to `dest` (least total fee, then fewest hops, then most capacity) on which
 * every channel can carry what it must: the amount plus the fees of the intermediaries after it.
 * Costs are computed backwards from the destination, so each node's required amount is known when its
 * incoming edges are examined; at most MAX_HOPS channels.
 * Routing by cost rather than by hop count matters because fees are announced by the intermediaries
 * themselves: the shortest path may be the one whose hop asks the most.
 * @returns the node ids from self to dest, and what moves on each channel
 * @throws TreasuryError unknown_destination, no_route, insufficient_capacity, fee_limit_exceeded
 */
export function findRoute(q: RouteQuery): { route: string[]; amounts: bigint[] } {
  const edges: Edge[] = q.local.map((l) => ({ from: q.self, to: l.peer, cap: l.cap }));
  let known = q.graph.has(q.dest) || q.local.some((l) => l.peer === q.dest);
  for (const [node, { ann }] of q.graph) {
    if (node === q.self) continue;
    for (const c of ann.channels) {
      edges.push({ from: node, to: c.peer, cap: BigInt(c.cap) });
      if (c.peer === q.dest) known = true;
    }
  }
  if (!known || q.dest === q.self)
    throw new TreasuryError('unknown_destination', `no node ${q.dest.slice(0, 16)}… in the channel graph`);
  const found = search(q, edges, true);
  if (found) {
    const fee = found.amounts[0]! - q.amount;
    if (q.maxFee !== undefined && fee > q.maxFee) {
      throw new TreasuryError(
        'fee_limit_exceeded',
        `the cheapest path to ${q.dest.slice(0, 16)}… charges ${fee} sat in fees, more than the limit of ${q.maxFee} sat`,
      );
    }
    return found;
  }
  if (search(q, edges, false))
    throw new TreasuryError(
      'insufficient_capacity',
      `no path to ${q.dest.slice(0, 16)}… can carry ${q.amount} sat (plus fees)`,
    );
  throw new TreasuryError('no_route', `no path of open channels leads to ${q.dest.slice(0, 16)}…`);
}

/** What a node must receive to forward onwards (the payer: send), and to whom it sends it. */
interface Label {
  need: bigint;
  next: string;
  cap: bigint;
}

/**
 * Bellman-Ford over hop counts: layer k holds, for each node, the least amount it must receive (the payer:
 * send) to get `amount` to the destination through exactly k channels. Fees are non-negative, so a cycle
 * never lowers a cost and, ties going to fewer hops, the cheapest path found is simple. Equal costs in one
 * layer go to the edge with the most capacity.
 */
function search(q: RouteQuery, edges: Edge[], checkCapacity: boolean): { route: string[]; amounts: bigint[] } | null {
  const feesOf = (node: string) => {
    const ann = q.graph.get(node)?.ann;
    return ann ? { base: ann.fee_base, ppm: ann.fee_ppm } : undefined;
  };
  const layers: Array<Map<string, Label>> = [new Map([[q.dest, { need: q.amount, next: '', cap: 0n }]])];
  let best: { k: number; label: Label } | null = null;
  for (let k = 1; k <= MAX_HOPS; k++) {
    const prev = layers[k - 1]!;
    const layer = new Map<string, Label>();
    for (const e of edges) {
      const onward = prev.get(e.to);
      if (!onward || e.from === q.dest) continue;
      if (checkCapacity && e.cap < onward.need) continue;
      // The payer pays no fee to itself; an intermediary asks its announced fee on what it forwards.
      const need = e.from === q.self ? onward.need : onward.need + forwardFee(feesOf(e.from), onward.need);
      const seen = layer.get(e.from);
      if (!seen || need < seen.need || (need === seen.need && e.cap > seen.cap))
        layer.set(e.from, { need, next: e.to, cap: e.cap });
    }
    const payer = layer.get(q.self);
    if (payer && (!best || payer.need < best.label.need)) best = { k, label: payer };
    // The payer only starts a path, it never forwards one.
    layer.delete(q.self);
    layers.push(layer);
    if (layer.size === 0) break;
  }
  return best ? walk(q, layers, best.k, best.label) : null;
}

function walk(q: RouteQuery, layers: Array<Map<string, Label>>, k: number, payer: Label) {
  const route = [q.self];
  const amounts: bigint[] = [];
  let label = payer;
  for (let i = k - 1; i >= 0; i--) {
    route.push(label.next);
    label = layers[i]!.get(label.next)!;
    amounts.push(label.need); // what this node receives on the channel into it
  }
  return { route, amounts };
}
