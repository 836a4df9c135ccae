/**
 * LDK (rust-lightning as WASM, src/ldk): two real LDK nodes on the bench's chain, a channel funded on chain,
 * BOLT 11 invoices paid one at a time and 128 in flight, then a cooperative close checked on chain. A
 * failure (the chain unreachable, the channel not ready in time, a payment lost) becomes a failed row with
 * its message, not a hang and not the end of the bench.
 */
import { join } from 'node:path';
import { LdkPair, type LdkCloseResult } from '../../ldk/run.ts';
import type { BenchConfig } from '../config.ts';
import { stage, type Scenario, type Stage } from '../scenario.ts';

/**
 * A channel holds at most 483 HTLCs each way, counting those whose removal is still being committed, so 256
 * outstanding payments (as the Teechain row) can overflow it, and LDK then finds no route instead of
 * queueing; 128 in flight never does.
 */
const LDK_WINDOW = 128;
/** As the HTLC model: above the dust threshold, so every HTLC gets an output and signatures. */
const AMOUNT_SAT = 1_000n;

function ldkScenario(id: string, name: string, count: number, window: number): Scenario<LdkPair> {
  return {
    id,
    name,
    group: 'ldk',
    payments: count,
    batch: 1,
    async measure(pair) {
      const r = await pair.run(count, window, AMOUNT_SAT);
      if (!r.verified) process.stderr.write(`\n${name}: ${r.verificationError}\n`);
      return {
        payments_per_s: r.paymentsPerSec,
        latency: { p50_ms: r.latency.p50_ms, p95_ms: r.latency.p95_ms, p99_ms: r.latency.p99_ms },
        verified: r.verified,
        usage: { cpu_ms_per_node: r.cpuMs, rss_mb_per_node: r.rssMb },
        note: `${(r.storeWrites / count).toFixed(1)} durable writes per payment (both nodes)`,
      };
    },
  };
}

export interface LdkStage extends Stage {
  /** The cooperative close at the end of the stage; null until then, or if the channel never opened. */
  close(): LdkCloseResult | null;
}

/** ldk.unbatched and ldk.pipelined on one channel (the same channel for every run), then its close. */
export function ldkStage({ sizes }: BenchConfig): LdkStage {
  let close: LdkCloseResult | null = null;
  const s = stage<LdkPair>({
    title: 'ldk channel',
    failuresAreRows: true,
    // 16M sat: under the 2^24-sat channel limit LDK keeps without option_support_large_channel.
    setUp: (env) =>
      LdkPair.start({ dir: join(env.dir, 'ldk'), ...env.chain, capacitySat: 16_000_000n, logLevel: 'warn' }),
    async tearDown(pair) {
      try {
        close = await pair.close().catch((err: Error) => ({
          closingTxid: '',
          payeeOutputSat: 0n,
          payerOutputSat: 0n,
          feeSat: 0n,
          verified: false,
          verificationError: err.message,
        }));
      } finally {
        await pair.stop();
      }
    },
    scenarios: [
      ldkScenario('ldk.unbatched', 'ldk 1ch unbatched (1 in flight)', sizes.ldk, 1),
      ldkScenario('ldk.pipelined', 'ldk 1ch pipelined (128 in flight)', sizes.ldkPipelined, LDK_WINDOW),
    ],
  });
  return { ...s, close: () => close };
}
