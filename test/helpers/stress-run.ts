/** `teechain stress …` as a real process, to its end: its exit code and everything it printed. */
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
