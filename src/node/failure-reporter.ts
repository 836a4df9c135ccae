/**
 * Work the host does on its own has no caller to hand an error to, so it would otherwise vanish. Every
 * such failure goes through a reporter: it reaches the observer (logged by src/log/node-log.ts, counted
 * by src/metrics/node-metrics.ts) with the task that failed (background-tasks.ts) and what it was on.
 */
import type { BackgroundTask, FailureDetail } from './background-tasks.ts';
import type { NodeObserver } from './observer.ts';

export type ReportFailure = (task: BackgroundTask, err: unknown, detail?: FailureDetail) => void;

/**
 * A reporter to `observer`. Failures once `stopping()` is true are not reported: stopping terminates the
 * enclave and closes the transport under work still in progress, which then fails by design.
 */
export function failureReporter(
  observer: NodeObserver | undefined,
  stopping: () => boolean = () => false,
): ReportFailure {
  return (task, err, detail) => {
    if (stopping()) return;
    observer?.backgroundFailed?.(task, err instanceof Error ? err.message : String(err), detail ?? {});
  };
}
