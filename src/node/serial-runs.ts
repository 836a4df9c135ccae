/**
 * Runs one async job at a time, however often it is asked for: a request while a run is under way is
 * answered by one more run after it (all such requests share that one). For host work that reads the
 * enclave's state and acts on it (journaling the refs it holds), where a run that started before the
 * request might have missed what the request was about.
 */
export class SerialRuns {
  private running: Promise<void> = Promise.resolve();
  private busy = false;
  private again = false;

  /** `job` must not throw: it reports its own failures (a failed run is simply done). */
  constructor(private readonly job: () => Promise<void>) {}

  /** Asks for a run; resolves once a run that started after this call has ended. */
  request(): Promise<void> {
    if (this.busy) {
      this.again = true;
      return this.running;
    }
    this.busy = true;
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.job();
        } while (this.again);
      } finally {
        this.busy = false;
      }
    })();
    return this.running;
  }

  /** Resolves once every run asked for so far has ended. */
  settled(): Promise<void> {
    return this.running;
  }
}
