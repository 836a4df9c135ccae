/**
 * Requests waiting for a peer's answer (open, add / remove a deposit), keyed by what they ask. A request
 * that times out stays pending in the state: it is re-sent when the peer reconnects (resync).
 */
import { TreasuryError } from './errors.ts';

interface Waiter {
  resolve: () => void;
  reject: (e: TreasuryError) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class PeerReplies {
  private readonly waiters = new Map<string, Waiter>();

  /** `timeoutMs` is read at each request (the ports' `replyTimeoutMs`, default 10 s). */
  constructor(private readonly timeoutMs: () => number) {}

  /** Resolves when `key` is answered; a newer request for the same key supersedes this one. */
  waitFor(key: string): Promise<void> {
    const existing = this.waiters.get(key);
    // Both rejections are `timeout` (504) on purpose: the outcome is not known. The request stays pending in
    // the state and the peer may still accept it (a newer request for the same key carries it on).
    if (existing) {
      clearTimeout(existing.timer);
      existing.reject(new TreasuryError('timeout', 'superseded by a newer request'));
    }
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(key);
        reject(
          new TreasuryError(
            'timeout',
            'the peer did not answer in time; the request stays pending and is retried when the peer reconnects',
          ),
        );
      }, this.timeoutMs());
      this.waiters.set(key, { resolve, reject, timer });
    });
  }

  resolve(key: string): void {
    const w = this.waiters.get(key);
    if (!w) return;
    this.waiters.delete(key);
    clearTimeout(w.timer);
    w.resolve();
  }

  reject(key: string, err: TreasuryError): void {
    const w = this.waiters.get(key);
    if (!w) return;
    this.waiters.delete(key);
    clearTimeout(w.timer);
    w.reject(err);
  }
}
