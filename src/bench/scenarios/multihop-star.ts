/**
 * Multi-hop through a shared hub: a star of five nodes (a hub and four leaves, each leaf with one channel
 * to the hub), every leaf paying every other leaf through the hub, many payments in flight: each ordered
 * pair of leaves has its own client sending `POST /v1/payments/batch` requests naming only the destination,
 * so a leaf's node holds rounds to each other leaf at once and the hub carries rounds of every pair. The
 * rounds of one leaf share its channel to the hub in the same direction, and the rounds into one leaf
 * share the hub's channel to it: they queue for those (docs/protocol/multihop.md, "Contention between
 * rounds"). The same star with 2, 3 and 4 leaves paying (the other leaves idle) says how the total grows
 * with the leaves: `multihop.star3`, `multihop.star4`, `multihop.star5` (by the nodes taking part). Every
 * channel is checked to move by exactly what its leaf paid and received (no fees).
 */
import { movedExactly, openFundedChannel, totals, type Agent, type ChannelTotals } from '../cluster.ts';
import type { BenchConfig } from '../config.ts';
import { stage, type Run, type Scenario, type Stage } from '../scenario.ts';
import { summarize } from '../stats.ts';

interface Star {
  hub: Agent;
  leaves: Agent[];
  /** channels[i] joins leaves[i] and the hub. */
  channels: string[];
}

const LEAVES = 4;
/** Routed payments per batch request at most. */
const PER_REQUEST = 250;

/** Until every leaf sees the whole star announced, every channel with its funded capacity. */
async function graphReady({ leaves, channels }: Star): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (const leaf of leaves) {
    for (;;) {
      const g = await leaf.api.request<{ nodes: Array<{ channels: Array<{ capacity_sat: string }> }> }>(
        'GET',
        '/v1/graph',
      );
      const caps = g.nodes.flatMap((x) => x.channels.map((c) => BigInt(c.capacity_sat)));
      if (g.nodes.length === leaves.length + 1 && caps.length >= 2 * channels.length && caps.every((c) => c > 0n))
        break;
      if (Date.now() > deadline) throw new Error('multi-hop star: the channel graph did not reach every leaf in 30 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function starScenario(leafCount: number, count: number): Scenario<Star> {
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < leafCount; i++) for (let j = 0; j < leafCount; j++) if (i !== j) pairs.push([i, j]);
  const perPair = Math.max(1, Math.ceil(count / pairs.length));
  const perRequest = Math.min(PER_REQUEST, perPair);
  const requestsPerPair = Math.ceil(perPair / perRequest);
  const total = pairs.length * requestsPerPair * perRequest;
  return {
    id: `multihop.star${leafCount + 1}`,
    name: `teechain multi-hop star, ${leafCount} leaves each paying the others through a hub (${pairs.length} clients × ${perRequest} in flight, REST batch)`,
    group: 'teechain-multihop',
    payments: total,
    batch: perRequest,
    note: `${leafCount + 1} node processes; every ordered pair of leaves its own client, 2 hops through the hub; each leaf–hub channel checked to move by exactly what its leaf paid and received`,
    async measure({ hub, leaves, channels }, meter): Promise<Run> {
      const used = leaves.slice(0, leafCount);
      const snapshot = () => Promise.all(used.map((leaf, i) => totals(leaf, hub, channels[i]!)));
      const before = await snapshot();
      const paid = used.map(() => 0n);
      const received = used.map(() => 0n);
      const lat: number[] = [];
      let failed = 0;
      const client = async ([from, to]: [number, number]) => {
        const body = {
          payments: Array.from({ length: perRequest }, () => ({ dest: used[to]!.nodeId, amount_sat: 1 })),
        };
        for (let k = 0; k < requestsPerPair; k++) {
          const s0 = performance.now();
          const r = await used[from]!.api.request<{ results: Array<{ status: string }> }>(
            'POST',
            '/v1/payments/batch',
            body,
          ).catch(() => null);
          const ms = performance.now() - s0;
          const ok = r?.results.filter((x) => x.status === 'succeeded').length ?? 0;
          failed += perRequest - ok;
          paid[from]! += BigInt(ok);
          received[to]! += BigInt(ok);
          for (let n = 0; n < perRequest; n++) lat.push(ms);
        }
      };
      const { seconds, usage } = await meter([hub, ...used], () => Promise.all(pairs.map(client)));
      const after = await settled(snapshot);
      const { p50_ms, p95_ms, p99_ms, max_ms } = summarize(lat);
      return {
        payments_per_s: total / seconds,
        latency: { p50_ms, p95_ms, p99_ms, max_ms },
        verified: failed === 0 && before.every((b, i) => movedExactly(b, after[i]!, paid[i]!, received[i]!)),
        usage,
        ...(failed > 0 ? { note: `${failed} of ${total} payments not succeeded when answered` } : {}),
      };
    },
  };
}

/**
 * The channels' totals once both ends of each agree (a round answered succeeded is released at the payer;
 * the hub's and the destination's last steps may still be on their way), for up to 10 s.
 */
async function settled(snapshot: () => Promise<ChannelTotals[]>): Promise<ChannelTotals[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const now = await snapshot();
    if (now.every((t) => t.aSent === t.bReceived && t.bSent === t.aReceived) || Date.now() > deadline) return now;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** multihop.star3, multihop.star4 and multihop.star5 on one star of a hub and four leaves. */
export function multihopStarStage({ sizes }: BenchConfig): Stage {
  const count = sizes.multihop * 20;
  return stage<Star>({
    title: 'a star of a hub and four leaves, routed payments between every pair of leaves',
    async setUp(env) {
      const hub = await env.agent('star-hub');
      const leaves: Agent[] = [];
      for (let i = 0; i < LEAVES; i++) leaves.push(await env.agent(`star-leaf${i + 1}`));
      const channels: string[] = [];
      for (const leaf of leaves) channels.push(await openFundedChannel(leaf, hub, 50_000_000));
      const star = { hub, leaves, channels };
      await graphReady(star);
      return star;
    },
    tearDown: ({ hub, leaves }, env) => env.stop([hub, ...leaves]),
    scenarios: [2, 3, 4].map((n) => starScenario(n, count)),
  });
}
