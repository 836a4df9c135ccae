/**
 * Multi-hop: a line m0 – m1 – m2 – m3; m0 pays m2 (2 hops) and m3 (3 hops) through the REST API, naming only
 * the destination. One payment in flight: a multi-hop payment holds every channel of its path until it is
 * released, so pipelining on one path would only queue. The same 2-hop payment through a line of three
 * committees of 3 (nine processes; each step replicated at every hop, τ signed by two members at each)
 * is `committee3.multihop2.single`, to set beside `multihop2.single` of the same run.
 */
import { movedExactly, openFundedChannel, totals, type Agent } from '../cluster.ts';
import type { BenchConfig } from '../config.ts';
import { stage, type Group, type Latency, type Scenario, type Stage } from '../scenario.ts';
import { side } from './committee.ts';

interface Line {
  nodes: Agent[];
  /** channels[i] joins nodes[i] and nodes[i + 1]. */
  channels: string[];
}

const LENGTH = 4;

/** Waits until m0 sees every channel announced by both ends with its deposits' capacity. */
async function waitForGraph(line: Line, length = LENGTH): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    // An announcement made between a channel's opening and its deposits says 0, and a payment routed on it fails.
    const g = await line.nodes[0]!.api.request<{ nodes: Array<{ channels: Array<{ capacity_sat: string }> }> }>(
      'GET',
      '/v1/graph',
    );
    const caps = g.nodes.flatMap((x) => x.channels.map((c) => BigInt(c.capacity_sat)));
    if (g.nodes.length === length && caps.length >= 2 * line.channels.length && caps.every((c) => c > 0n)) return;
    if (Date.now() > deadline) throw new Error('multi-hop: the channel graph did not reach m0 within 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Latency percentiles of one run's samples, nearest-rank from below, to 0.01 ms. */
function percentiles(samples: number[]): Latency {
  const s = [...samples].sort((a, b) => a - b);
  const q = (x: number) => Math.round(s[Math.min(s.length - 1, Math.floor(x * s.length))]! * 100) / 100;
  return { p50_ms: q(0.5), p95_ms: q(0.95), p99_ms: q(0.99) };
}

interface Variant {
  id: string;
  name: string;
  group: Group;
  note: string;
}

const lone = (hops: number): Variant => ({
  id: `multihop${hops}.single`,
  name: `teechain multi-hop ${hops} hops (1 in flight, REST)`,
  group: 'teechain-multihop',
  note: `${hops + 1} node processes; lock, sign, commit, release: 4 sealed steps per hop; every channel of the path checked to move by exactly the sum paid`,
});

function hopsScenario(hops: number, count: number, v: Variant = lone(hops)): Scenario<Line> {
  return {
    id: v.id,
    name: v.name,
    group: v.group,
    payments: count,
    batch: 1,
    note: v.note,
    async measure({ nodes, channels }, meter) {
      const path = channels.slice(0, hops);
      const snapshot = () => Promise.all(path.map((c, i) => totals(nodes[i]!, nodes[i + 1]!, c)));
      const before = await snapshot();
      const lat: number[] = [];
      let failed = 0;
      const { seconds, usage } = await meter(nodes.slice(0, hops + 1), async () => {
        for (let k = 0; k < count; k++) {
          const s0 = performance.now();
          const p = await nodes[0]!.api
            .request<{ status: string }>('POST', '/v1/payments', { dest: nodes[hops]!.nodeId, amount_sat: 1 })
            .catch(() => null);
          if (p?.status !== 'succeeded') failed++;
          lat.push(performance.now() - s0);
        }
      });
      const after = await snapshot();
      return {
        payments_per_s: count / seconds,
        latency: percentiles(lat),
        verified: failed === 0 && before.every((b, i) => movedExactly(b, after[i]!, BigInt(count), 0n)),
        usage,
      };
    },
  };
}

/** multihop2.single and multihop3.single on one line of four nodes. */
export function multihopStage({ sizes }: BenchConfig): Stage {
  return stage<Line>({
    title: 'a line of four nodes',
    async setUp(env) {
      const nodes: Agent[] = [];
      for (let i = 0; i < LENGTH; i++) nodes.push(await env.agent(`m${i}`));
      const channels: string[] = [];
      for (let i = 0; i + 1 < LENGTH; i++) channels.push(await openFundedChannel(nodes[i]!, nodes[i + 1]!, 50_000_000));
      const line = { nodes, channels };
      await waitForGraph(line);
      return line;
    },
    tearDown: ({ nodes }, env) => env.stop(nodes),
    scenarios: [hopsScenario(2, sizes.multihop), hopsScenario(3, sizes.multihop)],
  });
}

/** committee3.multihop2.single: m0 → m1 → m2, each a committee of 3 (a primary and two backups, 2-of-3). */
export function committeeMultihopStage({ sizes }: BenchConfig): Stage {
  return stage<Line & { members: Agent[] }>({
    title: 'a line of three committees of 3',
    async setUp(env) {
      const sides: Agent[][] = [];
      for (let i = 0; i < 3; i++) sides.push(await side(env, `cm${i}`, 3));
      const nodes = sides.map((s) => s[0]!);
      const channels: string[] = [];
      for (let i = 0; i + 1 < nodes.length; i++)
        channels.push(await openFundedChannel(nodes[i]!, nodes[i + 1]!, 50_000_000));
      const line = { nodes, channels, members: sides.flat() };
      await waitForGraph(line, nodes.length);
      return line;
    },
    tearDown: ({ members }, env) => env.stop(members),
    scenarios: [
      hopsScenario(2, sizes.multihop, {
        id: 'committee3.multihop2.single',
        name: 'teechain multi-hop 2 hops, committees of 3 at every hop (1 in flight, REST)',
        group: 'teechain-committee',
        note: '9 node processes: every hop a primary and 2 backups, 2-of-3; each step replicated before its message leaves; compare multihop2.single',
      }),
    ],
  });
}
