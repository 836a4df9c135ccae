/**
 * One channel, one direction: alice pays bob 1 sat at a time on the bench's first channel, unbatched (one
 * payment in flight), pipelined (256 in flight) or in batches (one enclave call, one sealed state and one
 * message per batch, 4 batches in flight). The agent times its own load, from first submission to last ack.
 */
import type { BenchConfig } from '../config.ts';
import { movedExactly, totals } from '../cluster.ts';
import type { ChannelPair, Scenario } from '../scenario.ts';

interface OneWay {
  id: string;
  name: string;
  count: number;
  batch: number;
  /** Batches in flight at once. */
  window: number;
}

/** `count` payments from a to b; checked: b credited, and a debited, by exactly `count` sat. */
export function oneWay({ id, name, count, batch, window }: OneWay): Scenario<ChannelPair> {
  return {
    id,
    name,
    group: 'teechain',
    payments: count,
    batch,
    async measure(ch, meter) {
      const before = await totals(ch.a, ch.b, ch.id);
      const { result, usage } = await meter([ch.a, ch.b], () =>
        ch.a.load({ channelId: ch.id, count, batch, window, amountSat: 1 }),
      );
      const after = await totals(ch.a, ch.b, ch.id);
      return {
        payments_per_s: count / result.seconds,
        latency: result.latency,
        verified: result.failed === 0 && movedExactly(before, after, BigInt(count), 0n),
        usage,
      };
    },
  };
}

/** channel.unbatched, channel.pipelined and channel.batch<N> for each configured batch size. */
export function channelScenarios({ sizes, batches }: BenchConfig): Array<Scenario<ChannelPair>> {
  return [
    oneWay({
      id: 'channel.unbatched',
      name: 'teechain 1ch unbatched (1 in flight)',
      count: sizes.unbatched,
      batch: 1,
      window: 1,
    }),
    oneWay({
      id: 'channel.pipelined',
      name: 'teechain 1ch pipelined (256 in flight)',
      count: sizes.pipelined,
      batch: 1,
      window: 256,
    }),
    ...batches.map((b) =>
      oneWay({
        id: `channel.batch${b}`,
        name: `teechain 1ch batch=${b}`,
        // at least 4 batches, so the 4 in flight are all full
        count: Math.max(sizes.batched, b * 4),
        batch: b,
        window: 4,
      }),
    ),
  ];
}
