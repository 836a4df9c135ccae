/**
 * `teechain stress` options, checked once: anything wrong is a UsageError, one line, exit code 2.
 */
import { parseArgs } from 'node:util';
import type { Topology } from '../cli/network.ts';
import { BATCH_MAX } from '../api/route.ts';
import { NODE_NAMES } from '../cli/network.ts';
import { fixedAmount, smallPaymentAmount, SMALL_PAYMENT_FIT, type AmountSource } from './amounts.ts';
import type { ChaosSpec } from './chaos.ts';
import type { LoadMode } from './load.ts';
import { PATTERNS, type PatternName } from './patterns.ts';

export const STRESS_USAGE = `usage: teechain stress [--datadir DIR] [--fresh [--nodes N] [--topology star|ring|line|full|random] [--committee N] [--deposit-sat N]]
                       [--duration S | --payments N] [--concurrency C | --rate R] [--batch N] [--no-keys] [--pattern uniform|zipf|hub]
                       [--amount SAT] [--seed N] [--out FILE] [--chart FILE.svg] [--chaos kill:S,partition:S] [--fresh --sweep nodes=2,4,8]
                       [--fresh --hosts netns]

Puts a payment workload on the running local network (network.json in --datadir, $TEECHAIN_HOME or
./.teechain; written by network up, or by hand for nodes on any machine), or with --fresh on a network it builds (default 4 treasuries in a star, in a temporary data
dir, on free ports) and stops at the end. Payments go to dest (routed where there is no channel), one
idempotency key each (unless --no-keys), by POST /v1/payments, or those a payer has ready at once in
POST /v1/payments/batch. Then it verifies the network and prints the report (see docs/stress.md).

  --duration S      stop issuing after S seconds (default 10, unless --payments is given)
  --payments N      stop after the first N payments of the sequence
  --concurrency C   closed loop: C payments in flight per payer (default 4)
  --rate R          open loop: R payments per second in total, answered or not
  --batch N         at most N payments in one request (default 1000): a payer's payments ready at once go
                    in one POST /v1/payments/batch; --batch 1 sends each in a request of its own
  --no-keys         payments without idempotency keys (cheaper for the nodes); one whose outcome is not
                    known stays in doubt, never asked again
  --pattern P       who pays whom: uniform (default), zipf (popular payees), hub (the first treasury on one side)
  --amount SAT      every payment this amount (default: a log-normal shaped like small Bitcoin payments)
  --seed N          the same seed, the same sequence of (payer, payee, amount) and the same --topology random
                    (default: random, printed)
  --out FILE        the report as JSON
  --chart FILE.svg  a chart of the run: payments per second over time, the latency distribution (a sweep:
                    payments/s per size)
  --chaos kill:S    SIGKILL a random node process every S on average (30s, 30, 500ms), restart it 2-4 s later;
                    the report lists each fault and the recovery after it (a network the run builds, or one
                    that \`teechain network up\` runs on this machine: its launcher kills and restarts them)
  --chaos partition:S  with --hosts netns: take a random node's link off the bridge every S on average, for
                    2-6 s; with kill:S too, comma-separated (--chaos kill:30s,partition:20s)
  --sweep nodes=L   with --fresh: the same run on a fresh network of each size in the list (2,4,8), one after
                    the other; one table of them (throughput, latency, failures, verified, the busiest process)
  --hosts netns     with --fresh: every node process in a Linux network namespace of its own, on a bridge
                    this run creates and removes (needs root or CAP_NET_ADMIN); default local (127.0.0.1)
exit code: 0 verified, 1 a check failed (each mismatch printed), 2 usage or a network that does not answer,
130 interrupted (Ctrl-C) and verified`;

export class UsageError extends Error {}

/**
 * Payments in flight per payer at most. A path round carries every payment waiting for its destination,
 * so a routed workload needs thousands in flight to fill its rounds; the bound keeps a typo from asking
 * for millions of pending requests.
 */
const MAX_CONCURRENCY = 50_000;
/** Entries per batch request by default; the route takes up to BATCH_MAX. */
const DEFAULT_BATCH = 1_000;

export interface StressOptions {
  datadir?: string;
  fresh: boolean;
  nodes: number;
  topology: Topology;
  committee: number;
  depositSat: number;
  durationS: number | null;
  payments: number | null;
  mode: LoadMode;
  /** `--batch N`: the most payments one request carries (submit.ts); 1 for one request per payment. */
  batch: number;
  /** `--no-keys`: payments carry no idempotency key (load.ts requestOf). */
  noKeys: boolean;
  pattern: PatternName;
  amount: AmountSource;
  amountSpec: Record<string, unknown>;
  seed: number;
  out?: string;
  /** `--chart FILE.svg`: the run's chart (chart.ts). */
  chart?: string;
  /** `--chaos kill:S,partition:S`: each kind of fault, at most once, with its mean time between faults (chaos.ts). */
  chaos: ChaosSpec[] | null;
  /** `--sweep nodes=2,4,8`: the network sizes to run in turn (sweep.ts); null for one run. */
  sweep: number[] | null;
  /** `--hosts netns`: every node of the fresh network in a network namespace of its own (netns.ts). */
  hosts: 'local' | 'netns';
  help: boolean;
}

const TOPOLOGIES = ['star', 'ring', 'line', 'full', 'random'] as const;

function whole(v: string | undefined, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[0-9]{1,16}$/.test(v) || Number(v) < min || Number(v) > max)
    throw new UsageError(
      `${what} must be a whole number from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}`,
    );
  return Number(v);
}

export function parseStressArgs(argv: string[]): StressOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        datadir: { type: 'string' },
        fresh: { type: 'boolean' },
        nodes: { type: 'string' },
        topology: { type: 'string' },
        committee: { type: 'string' },
        'deposit-sat': { type: 'string' },
        duration: { type: 'string' },
        payments: { type: 'string' },
        concurrency: { type: 'string' },
        rate: { type: 'string' },
        batch: { type: 'string' },
        'no-keys': { type: 'boolean' },
        pattern: { type: 'string' },
        amount: { type: 'string' },
        seed: { type: 'string' },
        out: { type: 'string' },
        chart: { type: 'string' },
        chaos: { type: 'string' },
        sweep: { type: 'string' },
        hosts: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]!);
  }
  const topology = values.topology ?? 'star';
  if (!(TOPOLOGIES as readonly string[]).includes(topology))
    throw new UsageError(`unknown topology ${topology}: --topology is ${TOPOLOGIES.join(', ')}`);
  const pattern = values.pattern ?? 'uniform';
  if (!(PATTERNS as readonly string[]).includes(pattern))
    throw new UsageError(`unknown pattern ${pattern}: --pattern is ${PATTERNS.join(', ')}`);
  const sweep = values.sweep === undefined ? null : parseSweep(values.sweep);
  if (sweep && !values.fresh)
    throw new UsageError('--sweep builds a fresh network of each size: add --fresh (a running network has one size)');
  if (sweep && values.nodes !== undefined) throw new UsageError('--sweep nodes=… gives the sizes: drop --nodes');
  const hosts = values.hosts ?? 'local';
  if (hosts !== 'local' && hosts !== 'netns')
    throw new UsageError(
      `unknown --hosts ${hosts}: --hosts netns (each node in a network namespace of its own) or local`,
    );
  if (hosts === 'netns' && !values.fresh)
    throw new UsageError(
      '--hosts netns starts each node in a network namespace of its own: add --fresh (a running network keeps its hosts)',
    );
  const freshOnly = (['nodes', 'topology', 'committee', 'deposit-sat'] as const).filter((k) => values[k] !== undefined);
  if (!values.fresh && freshOnly.length)
    throw new UsageError(
      `--${freshOnly[0]} shapes a network built for the run: add --fresh (a running network keeps its own)`,
    );
  if (values.rate !== undefined && values.concurrency !== undefined)
    throw new UsageError('--rate (open loop) and --concurrency (closed loop) exclude each other');
  const chaos = values.chaos === undefined ? null : parseChaosList(values.chaos);
  if (chaos?.some((c) => c.kind === 'partition') && hosts !== 'netns')
    throw new UsageError(
      "--chaos partition takes a node's link off the bridge of its network namespace: it needs --fresh --hosts netns",
    );
  if (values['no-keys'] && chaos)
    throw new UsageError(
      '--no-keys leaves nothing to ask a restarted node about its payments by: --chaos needs the idempotency keys',
    );
  const rate = whole(values.rate, '--rate', 1);
  const payments = whole(values.payments, '--payments', 1) ?? null;
  const duration = whole(values.duration, '--duration', 1) ?? (payments === null ? 10 : null);
  const amount = whole(values.amount, '--amount', 1, 2_100_000_000_000_000);
  const seed = whole(values.seed, '--seed', 0, 2 ** 32 - 1) ?? Math.floor(Math.random() * 2 ** 31);
  return {
    datadir: values.datadir,
    fresh: values.fresh === true,
    nodes: whole(values.nodes, '--nodes', 2, NODE_NAMES.length) ?? 4,
    topology: topology as Topology,
    committee: whole(values.committee, '--committee', 1, 7) ?? 1,
    depositSat: whole(values['deposit-sat'], '--deposit-sat', 1_000) ?? 100_000_000,
    durationS: duration,
    payments,
    mode:
      rate !== undefined
        ? { kind: 'open', rate }
        : { kind: 'closed', concurrency: whole(values.concurrency, '--concurrency', 1, MAX_CONCURRENCY) ?? 4 },
    batch: whole(values.batch, '--batch', 1, BATCH_MAX) ?? DEFAULT_BATCH,
    noKeys: values['no-keys'] === true,
    pattern: pattern as PatternName,
    amount: amount !== undefined ? fixedAmount(amount) : smallPaymentAmount(),
    amountSpec: amount !== undefined ? { fixed_sat: amount } : SMALL_PAYMENT_FIT,
    seed,
    out: values.out,
    chart: values.chart,
    chaos,
    sweep,
    hosts,
    help: values.help === true,
  };
}

/**
 * `kill:30s`, `kill:30` (seconds), `kill:500ms`, and `partition:` the same: one kind of fault and the mean
 * time between two of them, more than zero.
 */
export function parseChaos(spec: string): ChaosSpec {
  const m = /^(kill|partition):([0-9]{1,9})(ms|s)?$/.exec(spec);
  if (!m)
    throw new UsageError(
      `unknown --chaos ${spec}: --chaos kill:S or partition:S, S seconds on average between faults (30s, 30, 500ms)`,
    );
  const meanMs = Number(m[2]) * (m[3] === 'ms' ? 1 : 1000);
  const what = m[1] === 'kill' ? 'kills' : 'partitions';
  if (meanMs <= 0) throw new UsageError(`--chaos ${spec}: the time between ${what} must be more than zero`);
  return { kind: m[1] as ChaosSpec['kind'], meanMs };
}

/** `kill:30s,partition:20s`: one spec per kind, each at most once. */
export function parseChaosList(list: string): ChaosSpec[] {
  const specs = list.split(',').map(parseChaos);
  if (new Set(specs.map((c) => c.kind)).size !== specs.length)
    throw new UsageError(`--chaos ${list}: each kind of fault once (kill:S,partition:S)`);
  return specs;
}

/** `nodes=2,4,8`: network sizes from 2 to the launcher's limit, each once, in the order given. */
export function parseSweep(spec: string): number[] {
  const m = /^([a-z_-]*)=(.*)$/.exec(spec);
  if (!m || m[1] !== 'nodes')
    throw new UsageError(`unknown --sweep ${spec}: --sweep nodes=2,4,8 (network sizes; nodes is the only key)`);
  const items = m[2]!.split(',');
  const max = NODE_NAMES.length;
  const sizes = items.map((x) => {
    if (!/^[0-9]{1,3}$/.test(x) || Number(x) < 2 || Number(x) > max)
      throw new UsageError(
        `--sweep ${spec}: each size is a whole number from 2 to ${max}${x === '' ? ' (an empty size)' : `, not ${x}`}`,
      );
    return Number(x);
  });
  if (new Set(sizes).size !== sizes.length) throw new UsageError(`--sweep ${spec}: each size once`);
  return sizes;
}
