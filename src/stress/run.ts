/**
 * One stress run on a network already there (running or built for it): the load, Ctrl-C, the checks after
 * it and the report (docs/stress.md). `teechain stress` makes one; `--sweep` one per network size (sweep.ts).
 */
import { randomBytes } from 'node:crypto';
import { formatSat } from '../cli/format.ts';
import { runLoad, resolveUnknown } from './load.ts';
import type { StressOptions } from './options.ts';
import { startProgress } from './progress.ts';
import { Recorder } from './recorder.ts';
import { buildReport, workloadOf, type StressReport } from './report.ts';
import { processUsage, treasuryStates } from './snapshot.ts';
import type { Target } from './target.ts';
import { verify } from './verify.ts';
import { Chaos, waitForRecovery } from './chaos.ts';
import { paymentSequence } from './workload.ts';
import { SMALL_PAYMENT_MEDIAN_SAT } from './amounts.ts';
import { Submitter } from './submit.ts';

export interface RunResult {
  /** 0 verified, 1 a check failed, 130 interrupted and verified. */
  code: number;
  report: StressReport;
  interrupted: boolean;
}

/**
 * Loads `target` as `o` says, verifies it and builds the report (printing and writing it is the caller's).
 * A first Ctrl-C (or SIGTERM) during the run stops the load and still verifies.
 */
export async function runStress(o: StressOptions, target: Target, log: (line: string) => void): Promise<RunResult> {
  const { treasuries, network } = target;
  const before = await treasuryStates(treasuries);
  warnIfChannelsSmall(o, before, log);
  const recorder = new Recorder(treasuries.length);
  // Treasury and node ids → treasury index (a payment's route names them).
  const idIndex = new Map<string, number>();
  network.nodes.forEach((n, i) => {
    for (const id of [treasuries[i]!.id, n.nodeId, n.treasuryId, ...(n.backups ?? []).map((b) => b.nodeId)])
      if (id) idIndex.set(id, i);
  });
  // runningTarget asks for the launcher's nemesis with --chaos, and freshTarget always has one.
  if (o.chaos && !target.nemesis)
    throw new Error('--chaos needs a network whose processes can be killed and restarted');
  const chaos =
    o.chaos && target.nemesis
      ? new Chaos({ specs: o.chaos, seed: o.seed, nemesis: target.nemesis, treasuries, recorder, idIndex, log })
      : null;
  // A first Ctrl-C (or SIGTERM) stops the load and still verifies; a second one leaves without them.
  let interrupted = false;
  let onInterrupt: () => void = () => undefined;
  const interruptedP = new Promise<void>((r) => (onInterrupt = r));
  const interrupt = () => {
    // Leaving at once still stops the processes a fresh network started, so none outlives the run.
    if (interrupted) void target.stop().finally(() => process.exit(130));
    interrupted = true;
    log('\ninterrupted: stopping the load, then verifying (Ctrl-C again to leave at once)…');
    onInterrupt();
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  try {
    return await loadAndVerify();
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
  }

  async function loadAndVerify(): Promise<RunResult> {
    const keyPrefix = `stress-${o.seed}-${randomBytes(4).toString('hex')}`;
    log(
      `stress: ${treasuries.length} treasuries, ${o.pattern}, ${o.mode.kind === 'closed' ? `${o.mode.concurrency} in flight per payer` : `${o.mode.rate}/s`}, ${o.payments !== null ? `${o.payments} payments` : ''}${o.payments !== null && o.durationS !== null ? ' or ' : ''}${o.durationS !== null ? `${o.durationS} s` : ''}, seed ${o.seed}`,
    );
    const usageBefore = await processUsage(treasuries);
    const startedAt = new Date();
    const cpu0 = process.cpuUsage();
    const submitter = new Submitter(treasuries, o.batch, directPairs(before));
    const t0 = performance.now();
    const stopProgress = startProgress(recorder);
    chaos?.start();
    let openLoop;
    try {
      openLoop = await runLoad({
        treasuries,
        sequence: paymentSequence({
          seed: o.seed,
          pattern: o.pattern,
          treasuries: treasuries.length,
          amount: o.amount,
          ...(o.payments !== null ? { limit: o.payments } : {}),
        }),
        mode: o.mode,
        ...(o.durationS !== null ? { durationMs: o.durationS * 1000 } : {}),
        recorder,
        interrupted: interruptedP,
        keyPrefix,
        noKeys: o.noKeys,
        submitter,
      });
    } finally {
      stopProgress();
      await chaos?.stop();
    }
    const loadS = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    let recovery: string | null = null;
    if (chaos) {
      log(
        `chaos: ${chaos.faults.length} faults; waiting for every node to answer and every channel's peers to reconnect…`,
      );
      recovery = await waitForRecovery(treasuries);
    }
    const usageAfter = await processUsage(treasuries);
    if (recorder.unknown.size > 0 && o.noKeys)
      log(
        `${recorder.unknown.size} payments whose outcome was not known stay in doubt: without keys they cannot be asked about`,
      );
    else if (recorder.unknown.size > 0) {
      log(`asking again about ${recorder.unknown.size} payments whose outcome was not known (same idempotency keys)…`);
      await resolveUnknown({ treasuries, keyPrefix, recorder });
      // After kills, payments held by a restarted node settle once its peers are back: ask again once a
      // second, for up to 15 s, while any is still unknown.
      const until = Date.now() + 15_000;
      while (chaos && recorder.unknown.size > 0 && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 1_000));
        await resolveUnknown({ treasuries, keyPrefix, recorder });
      }
    }
    recorder.settleDoubts();
    log('verifying: conservation, both ends of every channel, payer and payee histories…');
    const verification = await verify(
      treasuries,
      before,
      recorder,
      undefined,
      chaos ? { treasuries, recorder, keyPrefix, idIndex, restarted: chaos.restarted, recovery } : undefined,
    );
    const report: StressReport = buildReport({
      startedAt,
      loadS,
      interrupted,
      network: {
        source: target.source,
        topology: network.topology ?? 'unknown',
        treasuries: treasuries.map((t) => t.name),
        committee: network.committee ?? 1,
        processes: treasuries.reduce((n, t) => n + t.members.length, 0),
        channels: channelCount(before),
        hosts: target.netns ? 'netns' : 'local',
        // A network file written by hand for nodes started elsewhere names no chain.
        chain: network.chain?.rpcUrl ? new URL(network.chain.rpcUrl).host : null,
        addresses: network.nodes
          .flatMap((n) => [n, ...(n.backups ?? [])])
          .map((n) => ({ name: n.name, address: new URL(n.restUrl).hostname, rest_url: n.restUrl, p2p: n.p2p })),
      },
      workload: workloadOf(o),
      submission: submitter.figures,
      mode: o.mode,
      recorder,
      openLoop,
      usageBefore,
      usageAfter,
      memberNames: treasuries.flatMap((t) => t.members.map((m) => m.name)),
      generatorCpuS: (cpu.user + cpu.system) / 1e6,
      verification,
      chaos: o.chaos ? Object.fromEntries(o.chaos.map((c) => [`${c.kind}_mean_s`, c.meanMs / 1000])) : null,
      faults: chaos?.faults ?? [],
    });
    return { code: !verification.ok ? 1 : interrupted ? 130 : 0, report, interrupted };
  }
}

/** Whether two treasuries share an open channel (seen from both ends): a payment between them is direct. */
function directPairs(states: Awaited<ReturnType<typeof treasuryStates>>): (a: number, b: number) => boolean {
  const ends = new Map<string, number[]>();
  states.forEach((s, i) => {
    for (const c of s.channels) if (c.status === 'open') ends.set(c.channel_id, [...(ends.get(c.channel_id) ?? []), i]);
  });
  const pairs = new Set<string>();
  for (const [a, b] of ends.values()) if (b !== undefined) pairs.add(`${a}:${b}`).add(`${b}:${a}`);
  return (a, b) => pairs.has(`${a}:${b}`);
}

/** Channels seen from either end, once each. */
function channelCount(states: Awaited<ReturnType<typeof treasuryStates>>): number {
  return new Set(states.flatMap((s) => s.channels.map((c) => c.channel_id))).size;
}

/** Default amounts on channels that hold few of them would measure refusals, not payments: say so first. */
function warnIfChannelsSmall(
  o: StressOptions,
  states: Awaited<ReturnType<typeof treasuryStates>>,
  log: (line: string) => void,
): void {
  if (!('mu' in o.amountSpec)) return;
  const sides = states.flatMap((s) => s.channels.filter((c) => c.status === 'open').map((c) => c.local));
  if (sides.length === 0) return;
  const smallest = sides.reduce((a, b) => (b < a ? b : a));
  if (smallest < BigInt(SMALL_PAYMENT_MEDIAN_SAT * 100))
    log(
      `note: a channel side holds only ${formatSat(smallest)} sat, about ${smallest / BigInt(SMALL_PAYMENT_MEDIAN_SAT)} median payments of the default amounts: expect insufficient_funds; try --amount SAT, or --fresh --deposit-sat N`,
    );
}
