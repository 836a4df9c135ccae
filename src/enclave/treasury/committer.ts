/**
 * Group commit for the enclave: many state changes, one durable seal, then their messages.
 *
 * Rule the whole treasury follows: a message that reflects a state change leaves the enclave only after a
 * seal covering that change is durable (sealed blob stored with fsync, monotonic counter advanced).
 * Otherwise a crash could lose a debit whose payment the peer already credited, and the restarted
 * enclave would sign a settlement that pays us twice. One message may go ahead of its seal: a lone
 * treasury's multi-hop LOCK, whose loss in a crash is an abort that harms no one, and an intermediary's UNLOCK (multihop/host.ts, sendAhead).
 *
 * Changes made while a seal is in flight go into the next one; the outbox is drained in the same
 * synchronous step as the snapshot, so every drained message reflects state no newer than the snapshot.
 */
export interface CommitterDeps<M> {
  /**
   * Serialise the current state and take the messages queued so far (synchronously, together);
   * `protect: false` if the seal may skip the rollback counter (see credit-only.ts).
   */
  snapshot(): { state: Uint8Array; outbox: M[]; protect: boolean };
  seal(state: Uint8Array, protect: boolean): Promise<void>;
  /** Deliver messages after their seal, in queue order. */
  deliver(outbox: M[]): void;
  /** A seal failed: the in-memory state is now ahead of the durable one and must not be used. */
  onFatal(err: unknown): void;
  /**
   * Called right after each seal; its messages are delivered only when the promise resolves (a committee
   * primary: when the chain's tail has sealed the same update). Seals go on meanwhile (pipelining);
   * deliveries keep their order. A rejection means the seal will never be acknowledged: its messages are
   * dropped and its waiters get the error.
   */
  replicate?(): Promise<void>;
}

export class Committer<M> {
  private waiters: Array<{ resolve: () => void; reject: (e: unknown) => void; local?: boolean }> = [];
  private delivered: Promise<void> = Promise.resolve();
  /** Run once the seal in flight has delivered its messages (see afterInFlight). */
  private afterFlight: Array<() => void> = [];
  private running = false;
  private failed: unknown = undefined;
  /** Number of seals done and the number of commit requests they covered (for metrics and tests). */
  seals = 0;
  covered = 0;

  constructor(private readonly deps: CommitterDeps<M>) {}

  /**
   * Runs `fn` as soon as every message of the seal in flight has been delivered, or now when none is in
   * flight: for a message that may leave ahead of its own seal but must not overtake an earlier seal's.
   * Not for a committer that replicates (its deliveries wait for the backups): callers check.
   */
  afterInFlight(fn: () => void): void {
    if (!this.running) fn();
    else this.afterFlight.push(fn);
  }

  /** Resolves once a seal covering every change made before this call is durable (and replicated) and its messages are sent. */
  commit(): Promise<void> {
    return this.enqueue(false);
  }

  /** Resolves once the local seal covering every change made before this call is durable, replicated or not. */
  commitLocal(): Promise<void> {
    return this.enqueue(true);
  }

  private enqueue(local: boolean): Promise<void> {
    if (this.failed !== undefined) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject, local });
      if (!this.running) void this.loop();
    });
  }

  private async loop(): Promise<void> {
    this.running = true;
    while (this.waiters.length > 0 && this.failed === undefined) {
      const batch = this.waiters;
      this.waiters = [];
      const { state, outbox, protect } = this.deps.snapshot();
      try {
        await this.deps.seal(state, protect);
      } catch (err) {
        this.failed = err;
        this.afterFlight = [];
        for (const w of [...batch, ...this.waiters]) w.reject(err);
        this.waiters = [];
        this.deps.onFatal(err);
        break;
      }
      this.seals += 1;
      this.covered += batch.length;
      for (const w of batch) if (w.local) w.resolve();
      const remote = batch.filter((w) => !w.local);
      if (!this.deps.replicate) {
        this.deps.deliver(outbox);
        const after = this.afterFlight;
        this.afterFlight = [];
        for (const fn of after) fn();
        for (const w of remote) w.resolve();
        continue;
      }
      const replicated = this.deps.replicate();
      // A replication that fails (a newer view took over first) drops the seal's messages for good.
      this.delivered = this.delivered
        .then(() => replicated)
        .then(
          () => {
            this.deps.deliver(outbox);
            for (const w of remote) w.resolve();
          },
          (err: unknown) => {
            for (const w of remote) w.reject(err);
          },
        );
    }
    this.running = false;
  }
}
