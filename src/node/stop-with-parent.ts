/**
 * A child that must not outlive the process that started it, even one SIGKILLed (which runs no cleanup):
 * the starter gives it a pipe as stdin and sets STOP_WITH_PARENT_ENV (src/cli/processes.ts spawnReady with
 * `ownGroup`); the child stops as on SIGTERM when that pipe closes, which the kernel does when the starter
 * ends, however it ends. Used for processes in a process group of their own, which a Ctrl-C typed in the
 * terminal no longer reaches (`teechain stress --fresh`).
 */

export const STOP_WITH_PARENT_ENV = 'TEECHAIN_STOP_WITH_PARENT';

/** If this process was started so, calls `stop` once its stdin pipe closes. */
export function stopWithParent(stop: () => void): void {
  if (process.env[STOP_WITH_PARENT_ENV] !== '1') return;
  delete process.env[STOP_WITH_PARENT_ENV];
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.on('error', stop);
  process.stdin.resume(); // read (and drop) whatever comes, so that the end is seen
}
