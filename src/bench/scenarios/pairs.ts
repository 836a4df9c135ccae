/**
 * Many channels: N independent pairs of nodes (the bench's first channel and N - 1 new ones), each payer
 * pipelining 256 payments at once, all loaded together. Shows how throughput scales with processes on one
 * machine. Run once: each run is N times the largest single load.
 */
import { median } from '../stats.ts';
import { movedExactly, openFundedChannel, totals } from '../cluster.ts';
import type { BenchConfig } from '../config.ts';
import { stage, type ChannelPair, type Scenario, type Stage } from '../scenario.ts';

function pairsScenario(n: number, count: number): Scenario<ChannelPair[]> {
  return {
    id: `pairs${n}`,
    name: `teechain ${n} channel pair${n > 1 ? 's' : ''} (${2 * n} processes)`,
    group: 'teechain-scale',
    payments: n * count,
    batch: 1,
    once: true,
    async measure(pairs, meter) {
      const snapshot = () => Promise.all(pairs.map((p) => totals(p.a, p.b, p.id)));
      const before = await snapshot();
      const { result, seconds, usage } = await meter(
        pairs.flatMap((p) => [p.a, p.b]),
        () => Promise.all(pairs.map((p) => p.a.load({ channelId: p.id, count, batch: 1, window: 256, amountSat: 1 }))),
      );
      const after = await snapshot();
      return {
        payments_per_s: (n * count) / seconds,
        // the typical pair's median and p95, the worst pair's p99
        latency: {
          p50_ms: median(result.map((r) => r.latency.p50_ms)),
          p95_ms: median(result.map((r) => r.latency.p95_ms)),
          p99_ms: Math.max(...result.map((r) => r.latency.p99_ms)),
        },
        verified:
          result.every((r) => r.failed === 0) &&
          pairs.every((_, i) => movedExactly(before[i]!, after[i]!, BigInt(count), 0n)),
        usage,
      };
    },
  };
}

/** pairs<N>: the first channel plus N - 1 new pairs, stopped again afterwards. */
export function pairsStage({ sizes }: BenchConfig, n: number): Stage {
  return stage<ChannelPair[]>({
    title: `${n} channel pairs`,
    async setUp(env) {
      const pairs = [env.main];
      for (let i = 1; i < n; i++) {
        const a = await env.agent(`p${n}-${i}a`);
        const b = await env.agent(`p${n}-${i}b`);
        pairs.push({ a, b, id: await openFundedChannel(a, b, 50_000_000) });
      }
      return pairs;
    },
    tearDown: (pairs, env) => env.stop(pairs.slice(1).flatMap((p) => [p.a, p.b])),
    scenarios: [pairsScenario(n, sizes.pairN)],
  });
}
