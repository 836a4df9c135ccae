/**
 * The report of a stress run: one JSON document (`--out FILE`) and the table printed on stdout, both made
 * from the same object. Amounts are decimal strings (satoshis), times in ms, rates per second.
 */
import type { StressOptions } from './options.ts';
import { cpus, totalmem, platform, release, arch } from 'node:os';
import { summarize } from '../bench/stats.ts';
import { formatSat, table } from '../cli/format.ts';
import type { OpenLoopFigures, LoadMode } from './load.ts';
import type { Recorder, SecondCount } from './recorder.ts';
import type { ProcessUsage } from './snapshot.ts';
import type { Verification } from './verify.ts';
import type { Fault } from './chaos.ts';
import { latencyHistogram, type LatencyHistogram } from './histogram.ts';
import type { SubmissionFigures } from './submit.ts';

export interface StressReport {
  started_at: string;
  duration_s: number;
  interrupted: boolean;
  network: {
    source: 'running' | 'fresh';
    topology: string;
    treasuries: string[];
    committee: number;
    processes: number;
    channels: number;
    /** `netns`: each process in a network namespace of its own (--hosts netns); `local`: as network.json says. */
    hosts: 'netns' | 'local';
    /** Where the chain's JSON-RPC is (host:port); null for a network file that names no chain (nodes started by hand). */
    chain: string | null;
    /** Each process (committee members too): the address it listens on and its REST and peer endpoints. */
    addresses: Array<{ name: string; address: string; rest_url: string; p2p: string }>;
  };
  workload: Workload;
  /** How the payments were submitted: one per request, or a payer's ready ones in batch requests (submit.ts). */
  submission: SubmissionFigures;
  payments_attempted: number;
  payments_ok: number;
  payments_failed: Record<string, number>;
  payments_in_doubt: Record<string, number>;
  /** Attempts refused with channel_busy (nothing moved) and sent again. */
  busy_retries: number;
  payments_per_s: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  max_ms: number;
  /** The succeeded payments' latencies (those timed: not the ones learnt by asking again) on log-spaced buckets. */
  latency_histogram: LatencyHistogram;
  open_loop: (OpenLoopFigures & { achieved_per_s: number; fell_behind: boolean }) | null;
  throughput: SecondCount[];
  /** Per member process, over the load: CPU seconds and share of one core, RSS at the end. */
  nodes: Array<
    | { name: string; cpu_s: number; cpu_pct: number; rss_mb: number }
    | { name: string; unavailable: true; restarted?: true }
  >;
  /** This process, which generates the load on the same machine. */
  generator: { cpu_s: number; cpu_pct: number; rss_mb: number };
  machine: { cpus: number; cpu_model: string; memory_gb: number; os: string; node: string };
  verification: Verification;
  /** `--chaos kill:S,partition:S`: the mean time between faults of each kind given; null without --chaos. */
  chaos: { kill_mean_s?: number; partition_mean_s?: number } | null;
  /** Each fault the nemesis caused, in order. */
  faults: Fault[];
}

export interface ReportInput {
  startedAt: Date;
  loadS: number;
  interrupted: boolean;
  network: StressReport['network'];
  workload: StressReport['workload'];
  submission: SubmissionFigures;
  mode: LoadMode;
  recorder: Recorder;
  openLoop: OpenLoopFigures | null;
  usageBefore: Array<ProcessUsage | null>;
  usageAfter: Array<ProcessUsage | null>;
  memberNames: string[];
  generatorCpuS: number;
  verification: Verification;
  chaos: StressReport['chaos'];
  faults: Fault[];
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

export function buildReport(i: ReportInput): StressReport {
  const r = i.recorder;
  const lat = summarize(r.latencySamples());
  const perS = r.ok / Math.max(1e-3, i.loadS);
  const cpu = (model: string) => model.replace(/\s+/g, ' ').trim();
  return {
    started_at: i.startedAt.toISOString(),
    duration_s: round(i.loadS, 2),
    interrupted: i.interrupted,
    network: i.network,
    workload: i.workload,
    submission: i.submission,
    payments_attempted: r.attempted,
    payments_ok: r.ok,
    payments_failed: Object.fromEntries(r.failedByCode),
    payments_in_doubt: Object.fromEntries(r.inDoubtByCode),
    busy_retries: r.busyRetries,
    payments_per_s: round(perS),
    p50_ms: lat.p50_ms,
    p95_ms: lat.p95_ms,
    p99_ms: lat.p99_ms,
    max_ms: lat.max_ms,
    latency_histogram: latencyHistogram(r.latencySamples()),
    open_loop: i.openLoop
      ? {
          ...i.openLoop,
          achieved_per_s: round(perS),
          // Behind: payments due could not leave, or answers came in clearly slower than they were offered.
          fell_behind: i.openLoop.not_offered > 0 || perS < 0.9 * i.openLoop.offered_per_s,
        }
      : null,
    throughput: r.seconds,
    nodes: i.memberNames.map((name, k) => {
      const a = i.usageBefore[k];
      const b = i.usageAfter[k];
      // A process killed and restarted counts its CPU from its restart: not the run's figure.
      if (i.faults.some((f) => f.kind === 'kill' && f.node === name))
        return { name, unavailable: true as const, restarted: true as const };
      if (!a || !b) return { name, unavailable: true as const };
      const cpuS = b.cpu_s - a.cpu_s;
      return {
        name,
        cpu_s: round(cpuS, 2),
        cpu_pct: round((100 * cpuS) / Math.max(1e-3, i.loadS)),
        rss_mb: round(b.rss_mb),
      };
    }),
    generator: {
      cpu_s: round(i.generatorCpuS, 2),
      cpu_pct: round((100 * i.generatorCpuS) / Math.max(1e-3, i.loadS)),
      rss_mb: round(process.memoryUsage().rss / 2 ** 20),
    },
    machine: {
      cpus: cpus().length,
      cpu_model: cpu(cpus()[0]?.model ?? 'unknown'),
      memory_gb: round(totalmem() / 2 ** 30),
      os: `${platform()} ${release()} ${arch()}`,
      node: process.version,
    },
    verification: i.verification,
    chaos: i.chaos,
    faults: i.faults,
  };
}

/** The table for people: the run, the figures, each process, then the verification's verdict. */
export function reportTable(r: StressReport): string {
  const codes = (m: Record<string, number>) =>
    Object.entries(m)
      .map(([c, n]) => `${c} ${n}`)
      .join(', ') || '-';
  const failed = Object.values(r.payments_failed).reduce((a, b) => a + b, 0);
  const doubt = Object.values(r.payments_in_doubt).reduce((a, b) => a + b, 0);
  const w = r.workload;
  const rows: string[][] = [
    [
      'network',
      `${r.network.treasuries.length} treasuries (${r.network.source}), ${r.network.topology}, ${r.network.channels} channels${r.network.committee > 1 ? `, committees of ${r.network.committee}` : ''}`,
    ],
    [
      'workload',
      `${w.pattern}, ${w.mode === 'closed' ? `closed loop, ${w.concurrency_per_payer} in flight per payer` : `open loop, ${w.rate_per_s}/s offered`}, seed ${w.seed}`,
    ],
    [
      'amounts',
      'fixed_sat' in w.amounts
        ? `${formatSat(w.amounts.fixed_sat as number)} sat each`
        : `log-normal μ ${w.amounts.mu as number}, σ ${w.amounts.sigma as number}, at most ${formatSat(w.amounts.max_sat as number)} sat`,
    ],
    ['submitted', `${submissionLine(r.submission)}${r.workload.idempotency_keys ? '' : '; no idempotency keys'}`],
    ['duration', `${r.duration_s} s${r.interrupted ? ' (interrupted)' : ''}`],
    ['payments ok', formatSat(r.payments_ok)],
    ['payments failed', `${formatSat(failed)} (${codes(r.payments_failed)})`],
    ['busy, retried', `${formatSat(r.busy_retries)} attempts refused with channel_busy and sent again`],
    ['in doubt', `${formatSat(doubt)}${doubt ? ` (${codes(r.payments_in_doubt)})` : ''}`],
    ['payments/s', String(r.payments_per_s)],
    ['latency', `p50 ${r.p50_ms} ms, p95 ${r.p95_ms} ms, p99 ${r.p99_ms} ms, max ${r.max_ms} ms`],
  ];
  rows.splice(1, 0, ['hosts', hostsLine(r.network)]);
  if (r.open_loop)
    rows.push([
      'open loop',
      `offered ${r.open_loop.offered_per_s}/s, achieved ${r.open_loop.achieved_per_s}/s, not offered ${r.open_loop.not_offered}${r.open_loop.fell_behind ? ': the network fell behind' : ''}`,
    ]);
  if (r.chaos) {
    const kinds = [
      ...(r.chaos.kill_mean_s !== undefined
        ? [`kill:${r.chaos.kill_mean_s}s, a node process killed every ${r.chaos.kill_mean_s} s on average`]
        : []),
      ...(r.chaos.partition_mean_s !== undefined
        ? [
            `partition:${r.chaos.partition_mean_s}s, a node's link off the bridge every ${r.chaos.partition_mean_s} s on average`,
          ]
        : []),
    ];
    rows.push(['chaos', `${kinds.join('; ')}: ${r.faults.length} faults`]);
    for (const f of r.faults) rows.push(['fault', faultLine(f)]);
  }
  const v = r.verification;
  if (v.chaos)
    rows.push(
      [
        'recovery',
        v.chaos.recovered
          ? "every process answers, every channel's peers connected again"
          : `NOT within 60 s: ${v.chaos.recovery_problem}`,
      ],
      [
        'restarted',
        v.chaos.restarted.length
          ? `${v.chaos.restarted.join(', ')}: ${v.chaos.asked_again_by_key} succeeded payments found by key, ${v.chaos.balance_checked - v.chaos.balance_mismatched} of ${v.chaos.balance_checked} balances what they were paid`
          : 'no primary was killed',
      ],
    );
  rows.push(
    [
      'conservation',
      `${v.conservation.holds ? 'holds' : 'BROKEN'}: ${formatSat(v.conservation.before_sat)} sat in channels before, ${formatSat(v.conservation.after_sat)} after`,
    ],
    ['channel ends', `${v.channels_checked - v.channels_disagreeing} of ${v.channels_checked} agree`],
    [
      'payer histories',
      `${v.payer_history.checked - v.payer_history.missing} of ${v.payer_history.checked} succeeded payments found by id`,
    ],
    [
      'payee histories',
      `${v.payee_history.treasuries_checked - v.payee_history.mismatched} of ${v.payee_history.treasuries_checked} received what they were paid`,
    ],
    ['verified', v.ok ? 'yes' : 'NO'],
  );
  const procs = table(
    ['process', 'CPU s', 'CPU % of a core', 'RSS MB'],
    [
      ...r.nodes.map((n) =>
        'unavailable' in n ? [n.name, '-', '-', '-'] : [n.name, String(n.cpu_s), String(n.cpu_pct), String(n.rss_mb)],
      ),
      ['stress (this)', String(r.generator.cpu_s), String(r.generator.cpu_pct), String(r.generator.rss_mb)],
    ],
  );
  const lines = [table(['', ''], rows).split('\n').slice(2).join('\n'), '', procs];
  if (v.unchecked.length) lines.push('', ...v.unchecked.map((u) => `not checked: ${u}`));
  if (v.mismatches.length) lines.push('', ...v.mismatches.map((m) => `MISMATCH ${m}`));
  lines.push(
    '',
    `machine: ${r.machine.cpus} × ${r.machine.cpu_model}, ${r.machine.memory_gb} GB, ${r.machine.os}, node ${r.machine.node}`,
  );
  return lines.join('\n');
}

/** What load a run put on the network: who paid whom, how much, how fast, for how long. */
export interface Workload {
  pattern: string;
  seed: number;
  amounts: Record<string, unknown>;
  mode: 'closed' | 'open';
  concurrency_per_payer?: number;
  rate_per_s?: number;
  /** `--batch N`: the most payments one request carries (1: one request per payment). */
  max_per_request: number;
  /** Whether each payment carried an idempotency key of its own (false with `--no-keys`). */
  idempotency_keys: boolean;
  payments_limit: number | null;
  duration_limit_s: number | null;
}

/** The workload `o` asks for, as the report (and a sweep's) records it. */
export function workloadOf(o: StressOptions): Workload {
  return {
    pattern: o.pattern,
    seed: o.seed,
    amounts: o.amountSpec,
    mode: o.mode.kind,
    ...(o.mode.kind === 'closed' ? { concurrency_per_payer: o.mode.concurrency } : { rate_per_s: o.mode.rate }),
    max_per_request: o.batch,
    idempotency_keys: !o.noKeys,
    payments_limit: o.payments,
    duration_limit_s: o.durationS,
  };
}

/** `netns: alice 10.1.2.2, bob 10.1.2.3; chain 10.1.2.1:PORT`, or the addresses of a network on one host. */
function hostsLine(n: StressReport['network']): string {
  const each = n.addresses.map((a) => `${a.name} ${a.address}`).join(', ');
  if (n.hosts === 'netns') return `netns: ${each}${chainPart(n.chain)}`;
  const distinct = [...new Set(n.addresses.map((a) => a.address))];
  return distinct.length === 1
    ? `local: every node on ${distinct[0]}${n.chain ? `, chain ${n.chain}` : ''}`
    : `local: ${each}${chainPart(n.chain)}`;
}

/** `4.5 s: kill bob, back at 7.1 s, …` or `4.5 s: partition bob, healed at 9 s, …`. */
function faultLine(f: Fault): string {
  const back = f.kind === 'kill' ? f.restarted_at : f.healed_at;
  const state =
    back !== null && back !== undefined
      ? `${f.kind === 'kill' ? 'back' : 'healed'} at ${back} s`
      : `${f.kind === 'kill' ? 'not restarted' : 'not healed'} (${f.error ?? 'unknown'})`;
  const recovered =
    f.recovered_after_ms !== null
      ? `a payment through it succeeded ${formatSat(f.recovered_after_ms)} ms after the ${f.kind}`
      : 'no payment through it succeeded after';
  return `${f.at} s: ${f.kind} ${f.node}, ${state}, ${recovered}`;
}

/** `batches of up to 1,000 (…): 120 requests carried 95,000 payments, 40 payments alone`. */
function submissionLine(s: SubmissionFigures): string {
  if (s.max_per_request === 1)
    return `one request per payment (POST /v1/payments): ${formatSat(s.single_requests)} requests`;
  const mean = s.batch_requests ? Math.round(s.batched_payments / s.batch_requests) : 0;
  return `a payer's ready payments in POST /v1/payments/batch, up to ${formatSat(s.max_per_request)} a request: ${formatSat(s.batch_requests)} batches carried ${formatSat(s.batched_payments)} (${formatSat(mean)} each on average), ${formatSat(s.single_requests)} went alone`;
}

const chainPart = (chain: string | null) => (chain ? `; chain ${chain}` : '');
