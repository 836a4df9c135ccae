/**
 * Multi-hop with many payments in flight: a line m0 – m1 – m2 – m3 of its own; m0 pays m2 (2 hops) and m3
 * (3 hops) through `POST /v1/payments/batch`, naming only the destination, from several clients at once.
 * The payer's node groups what arrives for one destination into path rounds (docs/protocol/multihop.md,
 * "Rounds"), so each round pays one lock, one τ, one commit and one release for all its payments. A
 * payment's latency is its request's (every entry of a batch is answered together); every channel of the
 * path is checked to move by exactly the sum paid.
 */
import { movedExactly, openFundedChannel, totals, type Agent } from '../cluster.ts';
import type { BenchConfig } from '../config.ts';
import { stage, type Run, type Scenario, type Stage } from '../scenario.ts';
import { summarize } from '../stats.ts';

interface Line {
  nodes: Agent[];
  channels: string[];
}

const LENGTH = 4;
/** Concurrent clients, each with one batch request in flight. */
const CLIENTS = 4;
/** Routed payments per batch request. */
const PER_REQUEST = 500;

/** Until m0 sees every channel of the line announced by both ends with its funded capacity. */
async function graphReady({ nodes, channels }: Line): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const g = await nodes[0]!.api.request<{ nodes: Array<{ channels: Array<{ capacity_sat: string }> }> }>(
      'GET',
      '/v1/graph',
    );
    const caps = g.nodes.flatMap((x) => x.channels.map((c) => BigInt(c.capacity_sat)));
    if (g.nodes.length === LENGTH && caps.length >= 2 * channels.length && caps.every((c) => c > 0n)) return;
    if (Date.now() > deadline) throw new Error('multi-hop batched: the channel graph did not reach m0 within 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}

function batchedScenario(hops: number, count: number): Scenario<Line> {
  const requests = Math.max(1, Math.ceil(count / PER_REQUEST));
  const perRequest = Math.ceil(count / requests);
  const total = requests * perRequest;
  return {
    id: `multihop${hops}.batched`,
    name: `teechain multi-hop ${hops} hops (${CLIENTS} clients × ${perRequest} in flight, REST batch)`,
    group: 'teechain-multihop',
    payments: total,
    batch: perRequest,
    note: `${hops + 1} node processes; payments to one destination grouped into path rounds (one lock, τ, commit, release per round); every channel of the path checked to move by exactly the sum paid`,
    async measure({ nodes, channels }, meter): Promise<Run> {
      const path = channels.slice(0, hops);
      const snapshot = () => Promise.all(path.map((c, i) => totals(nodes[i]!, nodes[i + 1]!, c)));
      const before = await snapshot();
      const lat: number[] = [];
      let failed = 0;
      let next = 0;
      const body = {
        payments: Array.from({ length: perRequest }, () => ({ dest: nodes[hops]!.nodeId, amount_sat: 1 })),
      };
      const client = async () => {
        while (next < requests) {
          next++;
          const s0 = performance.now();
          const r = await nodes[0]!.api
            .request<{ succeeded: number }>('POST', '/v1/payments/batch', body)
            .catch(() => null);
          const ms = performance.now() - s0;
          failed += perRequest - (r?.succeeded ?? 0);
          for (let k = 0; k < perRequest; k++) lat.push(ms);
        }
      };
      const { seconds, usage } = await meter(nodes.slice(0, hops + 1), () =>
        Promise.all(Array.from({ length: CLIENTS }, client)),
      );
      const after = await snapshot();
      const { p50_ms, p95_ms, p99_ms, max_ms } = summarize(lat);
      return {
        payments_per_s: total / seconds,
        latency: { p50_ms, p95_ms, p99_ms, max_ms },
        verified: failed === 0 && before.every((b, i) => movedExactly(b, after[i]!, BigInt(total), 0n)),
        usage,
      };
    },
  };
}

/** multihop2.batched and multihop3.batched on a line of four nodes. */
export function multihopBatchedStage({ sizes }: BenchConfig): Stage {
  const count = sizes.multihop * 100;
  return stage<Line>({
    title: 'a line of four nodes, batched routed payments',
    async setUp(env) {
      const nodes: Agent[] = [];
      for (let i = 0; i < LENGTH; i++) nodes.push(await env.agent(`mb${i}`));
      const channels: string[] = [];
      for (let i = 0; i + 1 < LENGTH; i++) channels.push(await openFundedChannel(nodes[i]!, nodes[i + 1]!, 50_000_000));
      const line = { nodes, channels };
      await graphReady(line);
      return line;
    },
    tearDown: ({ nodes }, env) => env.stop(nodes),
    scenarios: [batchedScenario(2, count), batchedScenario(3, count)],
  });
}
