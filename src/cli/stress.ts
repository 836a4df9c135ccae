/**
 * `teechain stress` (`npm run stress -- …`): a payment workload on a whole network, watched live, then
 * verified against the nodes' own records, and reported (docs/stress.md). The parts live in src/stress/;
 * this is the command: options, the network, one run (src/stress/run.ts) or a sweep of network sizes
 * (src/stress/sweep.ts), the report, the exit code.
 */
import { writeFile } from 'node:fs/promises';
import { defaultDatadir } from '../node/datadir.ts';
import { parseStressArgs, STRESS_USAGE, UsageError, type StressOptions } from '../stress/options.ts';
import { reportChart } from '../stress/chart.ts';
import { reportTable } from '../stress/report.ts';
import { runStress } from '../stress/run.ts';
import { runSweep } from '../stress/sweep.ts';
import { freshTarget, runningTarget, TargetError, type Target } from '../stress/target.ts';

/** Runs the command; resolves with its exit code (errors are printed here, on one line). */
export async function stressMain(argv: string[]): Promise<number> {
  let o: StressOptions;
  try {
    o = parseStressArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`teechain stress: ${err.message}\nrun \`teechain stress --help\` for usage\n`);
    return 2;
  }
  if (o.help) {
    process.stdout.write(`${STRESS_USAGE}\n`);
    return 0;
  }
  const log = (line: string) => process.stderr.write(`${line}\n`);
  if (o.sweep) return runSweep(o, o.sweep, log);
  let target: Target;
  // A Ctrl-C while the fresh network is being built stops what was started of it; nothing was run (130).
  const building = new AbortController();
  const interrupt = () => building.abort();
  if (o.fresh) process.on('SIGINT', interrupt).on('SIGTERM', interrupt);
  try {
    target = o.fresh
      ? await freshTarget({ ...o, log, signal: building.signal })
      : await runningTarget(o.datadir ?? defaultDatadir(), o.chaos !== null);
  } catch (err) {
    process.stderr.write(`teechain stress: ${(err as Error).message.split('\n')[0]}\n`);
    return building.signal.aborted ? 130 : err instanceof TargetError ? 2 : 1;
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
  }
  try {
    const { code, report } = await runStress(o, target, log);
    if (o.out) await writeFile(o.out, `${JSON.stringify(report, null, 2)}\n`);
    if (o.chart) await writeFile(o.chart, reportChart(report));
    process.stdout.write(`${reportTable(report)}\n`);
    return code;
  } catch (err) {
    process.stderr.write(`teechain stress: ${(err as Error).message}\n`);
    return 1;
  } finally {
    if (target.source === 'fresh') log('stopping the network built for this run…');
    await target.stop();
  }
}
