/**
 * One channel, both directions at once: alice pays bob and bob pays alice, each 256 payments in flight, on
 * the bench's first channel. Throughput counts both directions; latency is the worse side's.
 */
import type { BenchConfig } from '../config.ts';
import { movedExactly, totals } from '../cluster.ts';
import { worstLatency, type ChannelPair, type Scenario } from '../scenario.ts';

export function bothDirections({ sizes }: BenchConfig): Scenario<ChannelPair> {
  const count = sizes.both;
  return {
    id: 'channel.both_directions',
    name: 'teechain 1ch both directions (pipelined)',
    group: 'teechain',
    payments: 2 * count,
    batch: 1,
    async measure(ch, meter) {
      const before = await totals(ch.a, ch.b, ch.id);
      const load = { channelId: ch.id, count, batch: 1, window: 256, amountSat: 1 };
      const { result, seconds, usage } = await meter([ch.a, ch.b], () =>
        Promise.all([ch.a.load(load), ch.b.load(load)]),
      );
      const after = await totals(ch.a, ch.b, ch.id);
      const [ra, rb] = result;
      return {
        payments_per_s: (2 * count) / seconds,
        latency: worstLatency([ra.latency, rb.latency]),
        verified: ra.failed + rb.failed === 0 && movedExactly(before, after, BigInt(count), BigInt(count)),
        usage,
      };
    },
  };
}
