/**
 * Routing for multi-hop payments (README "Multi-hop payments"): channel announcements signed with each
 * treasury's identity key and flooded from peer to peer, and a shortest-path search with capacity as a
 * constraint and each intermediary's fee.
 *
 * The graph is not money: it lives in enclave memory, unsealed, and a stale or missing figure only makes
 * a payment's lock fail cleanly (the hops check their real balances). What the signature buys is that no
 * host can invent channels or capacities for another node.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '../../enclave-sim/encoding.ts';
import { signDigest, verifyDigest } from '../crypto/secp256k1.ts';
import type { AnnouncementWire } from '../protocol/messages.ts';
import { TreasuryError } from './errors.ts';

export const MAX_HOPS = 19;

function digest(ann: AnnouncementWire): Uint8Array {
  return sha256(new TextEncoder().encode(`teechain/announce/v1|${JSON.stringify(ann)}`));
}

export function signAnnouncement(ann: AnnouncementWire, identityKey: string): string {
  return bytesToHex(signDigest(digest(ann), hexToBytes(identityKey)));
}

export function verifyAnnouncement(ann: AnnouncementWire, sig: string): boolean {
  return verifyDigest(hexToBytes(sig), digest(ann), hexToBytes(ann.node));
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
}

/**
 * The fewest-hop path from `self` to `dest` on which every channel can carry what it must (the amount
 * plus the fees of the intermediaries after it). Breadth-first from the destination backwards, so each
 * node's required amount is known when its incoming edges are examined.
 * @returns the node ids from self to dest, and what moves on each channel
 * @throws TreasuryError unknown_destination, no_route, insufficient_capacity
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
  if (!known || q.dest === q.self) throw new TreasuryError('unknown_destination', `no node ${q.dest.slice(0, 16)}… in the channel graph`);
  const found = search(q, edges, true);
  if (found) return found;
  if (search(q, edges, false)) throw new TreasuryError('insufficient_capacity', `no path to ${q.dest.slice(0, 16)}… can carry ${q.amount} sat (plus fees)`);
  throw new TreasuryError('no_route', `no path of open channels leads to ${q.dest.slice(0, 16)}…`);
}

function search(q: RouteQuery, edges: Edge[], checkCapacity: boolean): { route: string[]; amounts: bigint[] } | null {
  const into = new Map<string, Edge[]>();
  for (const e of edges) {
    let l = into.get(e.to);
    if (!l) into.set(e.to, (l = []));
    l.push(e);
  }
  const feesOf = (node: string) => {
    const ann = q.graph.get(node)?.ann;
    return ann ? { base: ann.fee_base, ppm: ann.fee_ppm } : undefined;
  };
  // out[n] = what n sends on its channel towards dest; next[n] = the node after n; depth[n] = hops to dest.
  const out = new Map<string, bigint>();
  const next = new Map<string, string>();
  const depth = new Map<string, number>([[q.dest, 0]]);
  let frontier = [q.dest];
  while (frontier.length > 0) {
    const following: string[] = [];
    for (const y of frontier) {
      if ((depth.get(y) ?? 0) >= MAX_HOPS) continue;
      const need = y === q.dest ? q.amount : out.get(y)! + forwardFee(feesOf(y), out.get(y)!);
      // Prefer, among equal-length paths, the channel with the most capacity.
      const candidates = [...(into.get(y) ?? [])].sort((a, b) => (b.cap > a.cap ? 1 : b.cap < a.cap ? -1 : 0));
      for (const e of candidates) {
        if (depth.has(e.from)) continue;
        if (checkCapacity && e.cap < need) continue;
        depth.set(e.from, depth.get(y)! + 1);
        out.set(e.from, need);
        next.set(e.from, y);
        if (e.from === q.self) return walk(q, out, next);
        following.push(e.from);
      }
    }
    frontier = following;
  }
  return null;
}

function walk(q: RouteQuery, out: Map<string, bigint>, next: Map<string, string>) {
  const route = [q.self];
  const amounts: bigint[] = [];
  let n = q.self;
  while (n !== q.dest) {
    amounts.push(out.get(n)!);
    n = next.get(n)!;
    route.push(n);
  }
  return { route, amounts };
}
