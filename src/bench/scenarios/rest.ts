/**
 * Through the REST API: concurrent HTTP clients (autocannon) POST /v1/payments on the bench's first channel,
 * 1 client and 32. A fixed number of requests, not a duration, so the payments made are known exactly.
 */
import autocannon from 'autocannon';
import { totals } from '../cluster.ts';
import type { BenchConfig } from '../config.ts';
import type { ChannelPair, Scenario } from '../scenario.ts';

function restScenario(connections: number, amount: number): Scenario<ChannelPair> {
  return {
    id: connections === 1 ? 'rest.1client' : `rest.${connections}clients`,
    name: `teechain REST POST /v1/payments (${connections} client${connections > 1 ? 's' : ''})`,
    group: 'teechain-rest',
    payments: amount,
    batch: 1,
    note: 'p95 column is autocannon p97.5',
    once: true,
    async measure(ch, meter) {
      const before = await totals(ch.a, ch.b, ch.id);
      const {
        result: r,
        seconds,
        usage,
      } = await meter([ch.a, ch.b], () =>
        autocannon({
          url: `${ch.a.api.restUrl}/v1/payments`,
          method: 'POST',
          connections,
          amount,
          headers: { authorization: `Bearer ${ch.a.api.token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ channel_id: ch.id, amount_sat: 1 }),
        }),
      );
      const after = await totals(ch.a, ch.b, ch.id);
      const paid = after.aSent - before.aSent;
      return {
        payments_per_s: r.requests.total / seconds,
        latency: { p50_ms: r.latency.p50, p95_ms: r.latency.p97_5, p99_ms: r.latency.p99 },
        payments: r.requests.total,
        verified:
          r.non2xx === 0 && r.errors === 0 && paid === BigInt(amount) && after.bReceived - before.bReceived === paid,
        usage,
      };
    },
  };
}

/** rest.1client (a fifth of the requests: one client is slow) and rest.32clients. */
export function restScenarios({ sizes }: BenchConfig): Array<Scenario<ChannelPair>> {
  return [restScenario(1, Math.max(20, Math.round(sizes.rest / 5))), restScenario(32, sizes.rest)];
}
