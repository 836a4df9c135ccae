/** `teechain stress …` as a real process, to its end: its exit code and everything it printed. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { CLI } from './launcher.ts';
import { spawnTracked } from './network.ts';

/**
 * `teechain stress ARGS`: its exit code, stdout and stderr. `onStart` gets the process as soon as it runs,
 * and a reader of its stderr so far (to act on a progress line, say).
 */
export function runStress(
  args: string[],
  onStart?: (proc: ReturnType<typeof spawnTracked>, stderrSoFar: () => string) => void,
  /** `detached`: the stress process leads a process group of its own, as a command typed in a terminal does. */
  opts: { detached?: boolean } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawnTracked(process.execPath, ['--import', 'tsx', CLI, 'stress', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached === true,
  });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  onStart?.(proc, () => stderr);
  return new Promise((resolve) => proc.once('exit', (code) => resolve({ code, stdout, stderr })));
}

/** The sum of a report's counts by code. */
export const sumOf = (m: Record<string, number>) => Object.values(m).reduce((a, b) => a + b, 0);

/**
 * What every verified run with faults must show in its report: the checks passed, the network back, the
 * `beforeSat` in channels conserved, every succeeded payment looked for and found, and every attempted
 * payment counted once (succeeded, failed or in doubt).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the report's JSON as the test reads it
export function assertFaultRunVerified(r: any, beforeSat: bigint): void {
  const v = r.verification;
  assert.equal(v.ok, true, v.mismatches.join('\n'));
  assert.equal(v.chaos.recovered, true);
  assert.equal(v.conservation.holds, true);
  assert.equal(v.conservation.before_sat, String(beforeSat));
  assert.equal(v.payer_history.checked, r.payments_ok);
  assert.equal(v.payer_history.missing, 0);
  assert.equal(r.payments_attempted, r.payments_ok + sumOf(r.payments_failed) + sumOf(r.payments_in_doubt));
}

/** The pids of the processes whose command line names `dir` (a network's processes name their data dirs). */
export function processesNaming(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (
        readFileSync(`/proc/${entry}/cmdline`, 'utf8')
          .split('\0')
          .some((a) => a.includes(dir))
      )
        pids.push(Number(entry));
    } catch {
      /* ended while listed */
    }
  }
  return pids;
}
