/**
 * What a node host reports about itself as it works, for metrics and logs (src/metrics, src/log).
 * The host calls these hooks and never waits for them; an observer must not throw, and must never be
 * handed a secret (the host has none to give: keys stay in the enclave, tokens in the API layer).
 */
import type { TreasuryEventMsg } from '../enclave/treasury/interface.ts';
import type { BackgroundTask, FailureDetail } from './background-tasks.ts';
import type { Payment } from './payment.ts';

export interface NodeObserver {
  /** An outgoing payment reached its end: succeeded (the peer acknowledged) or failed. */
  paymentResolved?(p: Readonly<Payment>): void;
  /** Payments credited to us on a channel, one amount each. */
  paymentsReceived?(channelId: string, amounts: readonly number[]): void;
  /** The host wrote a sealed blob to disk (durable when this is called). */
  sealedWrite?(seconds: number, bytes: number, ok: boolean): void;
  /** Every event the enclave reports (peers, channels, payments). */
  enclaveEvent?(e: TreasuryEventMsg): void;
  /** The host's handler of a one-way ocall (send frames, an event) failed; the enclave does not hear of it. */
  ocallFailed?(name: string, message: string): void;
  /** Work the host does on its own failed (failure-reporter.ts): which task, why, and on what. */
  backgroundFailed?(task: BackgroundTask, message: string, detail: FailureDetail): void;
}

/** One observer that calls each of `list` in turn; one failing hook does not stop the others. */
export function combineObservers(...list: Array<NodeObserver | undefined>): NodeObserver {
  const present = list.filter((o): o is NodeObserver => o !== undefined);
  const each =
    <K extends keyof NodeObserver>(k: K) =>
    (...args: Parameters<NonNullable<NodeObserver[K]>>) => {
      for (const o of present) {
        try {
          (o[k] as ((...a: unknown[]) => void) | undefined)?.(...args);
        } catch {
          // observing must never break the node
        }
      }
    };
  return {
    paymentResolved: each('paymentResolved'),
    paymentsReceived: each('paymentsReceived'),
    sealedWrite: each('sealedWrite'),
    enclaveEvent: each('enclaveEvent'),
    ocallFailed: each('ocallFailed'),
    backgroundFailed: each('backgroundFailed'),
  };
}
