/**
 * One registry of the child processes a test file starts, so that no failure leaves one running (a live
 * child keeps the file's process, and so the whole suite, from ever ending). Every tracked child is stopped
 * in an `after` hook on the file's root (whatever happened to the test's own cleanup), and SIGKILLed on
 * process exit and on SIGINT/SIGTERM (what the runner sends a file that timed out). A stop is SIGTERM first,
 * then SIGKILL when the child has not exited after a grace period.
 */
import { after } from 'node:test';
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { spawnReady, type ReadyProcess } from '../../src/cli/processes.ts';

/** How long a child gets to end after SIGTERM before it is SIGKILLed (TEST_KILL_GRACE_MS). */
export const KILL_GRACE_MS = Number(process.env.TEST_KILL_GRACE_MS ?? 10_000);

interface Tracked {
  proc: ChildProcess;
  group: boolean;
}
const live = new Set<Tracked>();

const ended = (p: ChildProcess) => p.exitCode !== null || p.signalCode !== null;

/** SIGKILL reaches a group leader's whole group (`network up`'s chain and nodes); other signals only the leader, as Ctrl-C would. */
function send(t: Tracked, signal: NodeJS.Signals): void {
  try {
    if (t.group && signal === 'SIGKILL' && t.proc.pid) process.kill(-t.proc.pid, signal);
    else t.proc.kill(signal);
  } catch {
    /* already gone */
  }
}

/**
 * Puts `proc` in the registry until it exits. `group`: it was spawned with `detached: true`, so it leads a
 * process group; once the leader has exited, whatever is left of its group (children it orphaned) is SIGKILLed.
 */
export function track<P extends ChildProcess>(proc: P, opts: { group?: boolean } = {}): P {
  const t: Tracked = { proc, group: opts.group === true };
  if (ended(proc)) return proc;
  live.add(t);
  proc.once('exit', () => {
    live.delete(t);
    if (t.group && proc.pid) {
      try {
        process.kill(-proc.pid, 'SIGKILL');
      } catch {
        /* the group ended with its leader */
      }
    }
  });
  return proc;
}

/** `spawn` whose child is tracked. `detached: true` in `options` makes it a tracked process group. */
export function spawnTracked(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  return track(spawn(command, args, options), { group: options.detached === true });
}

/**
 * Signals `proc` and waits until it has exited; SIGKILL when `graceMs` passes first. Resolves with how it
 * ended (`signal` is 'SIGKILL' when the grace ran out on a child that ignored the first signal).
 */
export async function stopChild(
  proc: ChildProcess,
  signal: NodeJS.Signals = 'SIGTERM',
  graceMs = KILL_GRACE_MS,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const t = [...live].find((x) => x.proc === proc) ?? { proc, group: false };
  if (!ended(proc)) {
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    send(t, signal);
    if (signal !== 'SIGKILL') {
      const timer = setTimeout(() => send(t, 'SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    } else {
      await exited;
    }
  }
  return { code: proc.exitCode, signal: proc.signalCode };
}

/** The children still running (for tests of this registry). */
export function trackedPids(): number[] {
  return [...live].map((t) => t.proc.pid!).filter((p) => p !== undefined);
}

/** Stops every tracked child (SIGTERM, then SIGKILL after the grace period). */
export async function stopAllTracked(): Promise<number> {
  const left = [...live];
  await Promise.all(left.map((t) => stopChild(t.proc, 'SIGTERM')));
  return left.length;
}

/**
 * src/cli/processes.ts spawnReady (a tsx entry that prints one JSON line when ready), with the child tracked
 * from the moment it exists, so a file stopped while a node is still starting leaves nothing behind.
 */
export async function spawnReadyTracked<T>(
  entry: string,
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 120_000,
): Promise<ReadyProcess<T>> {
  return spawnReady<T>(entry, args, timeoutMs, env, (proc) => track(proc));
}

after(async () => {
  const n = await stopAllTracked();
  if (n > 0)
    process.stderr.write(
      `test/helpers/processes.ts: stopped ${n} child process(es) still running at the end of the file\n`,
    );
});
process.on('exit', () => {
  for (const t of live) send(t, 'SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const t of live) send(t, 'SIGKILL');
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });
}
