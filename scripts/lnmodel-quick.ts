/**
 * Quick measurement of the Lightning-style baseline (src/lnmodel) alone: payments/s and latency for a few
 * batch sizes, in both modes. `npx tsx scripts/lnmodel-quick.ts [--payments N] [--modes balance,htlc]
 * [--batches 1,10,100,1000] [--amount-sat 1000] [--runs 1] [--window 1] [--cpu-only]` (htlc batches are
 * capped at 483). --cpu-only runs both parties in this process with no disk and no network: the protocol's
 * CPU cost alone (both parties' work on one core). The benchmark harness (scripts/bench.ts) is the real thing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openInMemoryPair } from '../src/lnmodel/memory-pair.ts';
import { runLnModel } from '../src/lnmodel/run.ts';
import type { LnMode } from '../src/lnmodel/wire.ts';

const { values } = parseArgs({
  options: {
    payments: { type: 'string' },
    modes: { type: 'string', default: 'balance,htlc' },
    batches: { type: 'string', default: '1,10,100,1000' },
    'amount-sat': { type: 'string', default: '1000' },
    runs: { type: 'string', default: '1' },
    window: { type: 'string', default: '1' },
    'cpu-only': { type: 'boolean', default: false },
  },
});

const modes = values.modes.split(',') as LnMode[];
const batches = values.batches.split(',').map(Number);
const runs = Number(values.runs);
process.stdout.write(`${cpus().length} x ${cpus()[0]?.model ?? '?'}, Node ${process.version}\n`);
if (values['cpu-only']) {
  process.stdout.write(
    'mode     batch  batches  ms/batch  payments/s (one core, both parties, no I/O; htlc: 2 rounds a batch)\n',
  );
  for (const mode of modes) {
    for (const requested of batches) {
      const batchSize = mode === 'htlc' ? Math.min(requested, 483) : requested;
      const rounds = Math.max(20, Math.round(2_000 / batchSize));
      const pair = openInMemoryPair(mode, 10n ** 12n);
      const amounts = Array.from({ length: batchSize }, () => BigInt(values['amount-sat']));
      for (let i = 0; i < 5; i++) pair.pay(amounts); // warm-up
      const t0 = performance.now();
      for (let i = 0; i < rounds; i++) pair.pay(amounts);
      const ms = performance.now() - t0;
      process.stdout.write(
        `${mode.padEnd(8)} ${String(batchSize).padStart(5)} ${String(rounds).padStart(8)} ${(ms / rounds).toFixed(3).padStart(9)} ${Math.round(
          (rounds * batchSize * 1000) / ms,
        )
          .toLocaleString('en-US')
          .padStart(11)}\n`,
      );
    }
  }
  process.exit(0);
}
process.stdout.write(
  'mode     batch  payments  payments/s   p50 ms   p99 ms  payer cpu%  payee cpu%  fsyncs payer/payee  verified\n',
);
const root = await mkdtemp(join(tmpdir(), 'lnmodel-quick-'));
try {
  for (const mode of modes) {
    for (const requested of batches) {
      const batchSize = mode === 'htlc' ? Math.min(requested, 483) : requested;
      // Enough rounds for a stable rate without taking long at batch 1.
      const payments = Number(values.payments ?? Math.max(400, batchSize * 20));
      for (let r = 0; r < runs; r++) {
        const res = await runLnModel({
          payments,
          batchSize,
          amountSat: BigInt(values['amount-sat']),
          mode,
          window: Number(values.window),
          dir: join(root, `${mode}-${batchSize}-${r}`),
        });
        const p = res.processes;
        process.stdout.write(
          `${mode.padEnd(8)} ${String(batchSize).padStart(5)} ${String(payments).padStart(9)} ${Math.round(res.paymentsPerSec).toLocaleString('en-US').padStart(11)} ${res.latency.p50_ms.toFixed(2).padStart(8)} ${res.latency.p99_ms.toFixed(2).padStart(8)} ${String(p.payer.cpuPercent).padStart(11)} ${String(p.payee.cpuPercent).padStart(11)} ${`${p.payer.persists}/${p.payee.persists}`.padStart(20)}  ${res.verified ? 'yes' : `NO: ${res.verificationError}`}\n`,
        );
      }
    }
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
