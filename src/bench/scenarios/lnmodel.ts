/**
 * The Lightning-style model (src/lnmodel): the same transport, durability and real signatures as the
 * treasuries, with Lightning's commitment rounds. 'balance' mode moves balances without HTLC outputs (it
 * favours Lightning: the headline ratio uses it); 'htlc' mode adds one HTLC per payment with its own signature
 * and a fulfil round, as real Lightning does. Each run opens a fresh pair of processes; the model checks
 * the transfer on both parties' durable state.
 */
import { join } from 'node:path';
import { runLnModel } from '../../lnmodel/run.ts';
import type { BenchConfig } from '../config.ts';
import { stage, type Scenario, type Stage } from '../scenario.ts';

interface LnSpec {
  id: string;
  name: string;
  payments: number;
  batchSize: number;
  mode: 'balance' | 'htlc';
}

function lnScenario({ id, name, payments, batchSize, mode }: LnSpec): Scenario<string> {
  let run = 0; // each run its own directory
  return {
    id,
    name,
    group: mode === 'htlc' ? 'lightning-model-htlc' : 'lightning-model',
    payments,
    batch: batchSize,
    async measure(dir) {
      const r = await runLnModel({
        payments,
        batchSize,
        mode,
        // above the dust threshold in htlc mode, so every HTLC gets an output and signatures
        amountSat: mode === 'htlc' ? 1_000 : 1,
        dir: join(dir, `ln-${mode}-${batchSize}-${run++}`),
      });
      return {
        payments_per_s: r.paymentsPerSec,
        latency: { p50_ms: r.latency.p50_ms, p95_ms: r.latency.p95_ms, p99_ms: r.latency.p99_ms },
        verified: r.verified,
        usage: {
          cpu_ms_per_node: [r.processes.payer.cpuMs, r.processes.payee.cpuMs].map(Math.round),
          rss_mb_per_node: [r.processes.payer.rssMb, r.processes.payee.rssMb].map(Math.round),
        },
      };
    },
  };
}

/** lnmodel.unbatched, lnmodel.batch<N> per configured batch size, lnmodel.htlc.unbatched and .batch100. */
export function lnmodelStage({ sizes, batches }: BenchConfig): Stage {
  return stage<string>({
    title: 'the Lightning-style model',
    setUp: (env) => Promise.resolve(env.dir),
    scenarios: [
      lnScenario({
        id: 'lnmodel.unbatched',
        name: 'lightning-model unbatched (1 in flight)',
        payments: sizes.ln,
        batchSize: 1,
        mode: 'balance',
      }),
      ...batches.map((b) =>
        lnScenario({
          id: `lnmodel.batch${b}`,
          name: `lightning-model batch=${b}`,
          payments: Math.max(sizes.lnBatched, b * 4),
          batchSize: b,
          mode: 'balance',
        }),
      ),
      lnScenario({
        id: 'lnmodel.htlc.unbatched',
        name: 'lightning-model htlc unbatched',
        payments: Math.max(10, Math.round(sizes.ln / 2)),
        batchSize: 1,
        mode: 'htlc',
      }),
      lnScenario({
        id: 'lnmodel.htlc.batch100',
        name: 'lightning-model htlc batch=100',
        payments: Math.max(200, Math.round(sizes.lnBatched / 10)),
        batchSize: 100,
        mode: 'htlc',
      }),
    ],
  });
}
