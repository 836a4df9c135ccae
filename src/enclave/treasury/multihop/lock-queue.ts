/**
 * LOCKs waiting at an intermediary for its channel to the next hop (docs/protocol/multihop.md,
 * "Concurrency"). A round that reaches a hop whose every channel onward is held by another round used
 * to be refused at once with `channel_busy`: an abort back along the path, a seal at every hop that had
 * locked, a random pause at the payer and a new LOCK, to find the channel free a few milliseconds later.
 * Here such a LOCK waits instead, in the enclave's memory, holding nothing at this hop, and is handled
 * again, in arrival order, as soon as a round here unlocks its channels; past its bounded wait it is
 * refused as before.
 *
 * Why this cannot deadlock for good: a waiting round holds its channels upstream of this hop, so rounds
 * waiting at different hops can wait for each other in a cycle (on a ring). The wait is bounded (a
 * fraction of the payer's own timeout), after which the LOCK is refused and the cycle breaks as
 * abort-and-retry. Destinations and refusals for any other reason never wait.
 *
 * Nothing here is sealed. A restart forgets the waiting LOCKs; the upstream hop re-sends its LOCK when it
 * reconnects (phases.ts, `resend_lock`), as it does for one lost on the wire.
 */
import type { MultiHopMessage } from '../../protocol/messages.ts';

type Lock = Extract<MultiHopMessage, { t: 'mh_lock' }>;

/** The most LOCKs that wait at once; more are refused at once. */
const MAX_WAITING = 1_024;

interface Waiting {
  peerId: string;
  msg: Lock;
}

export class LockQueue {
  /** By payment id, in arrival order (a Map keeps insertion order). */
  private readonly waiting = new Map<string, Waiting>();
  /** When each payment's wait ends, from its first refusal until it is decided (kept across re-waits). */
  private readonly deadlines = new Map<string, number>();
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();
  private waking = false;
  private wakeAgain = false;

  /**
   * @param retry handles a waiting LOCK again (HopMessages.onLock), which either decides it or waits again.
   * @param waitMs how long a LOCK may wait in all.
   * @param live whether this treasury still runs the protocol (a committee member no longer primary does not).
   */
  constructor(
    private readonly retry: (peerId: string, msg: Lock) => Promise<void>,
    private readonly waitMs: () => number,
    private readonly live: () => boolean,
  ) {}

  /**
   * `msg`, from `peerId`, found every channel onward held: true if it now waits (the caller does nothing
   * more), false if its wait is over or too many wait (the caller refuses it).
   */
  wait(peerId: string, msg: Lock): boolean {
    const now = Date.now();
    const deadline = this.deadlines.get(msg.pid) ?? now + this.waitMs();
    if (now >= deadline || (!this.waiting.has(msg.pid) && this.waiting.size >= MAX_WAITING)) {
      this.forget(msg.pid);
      return false;
    }
    this.deadlines.set(msg.pid, deadline);
    this.waiting.set(msg.pid, { peerId, msg });
    // At the deadline it is handled once more: then it goes on, or is refused.
    if (!this.timers.has(msg.pid))
      this.timers.set(
        msg.pid,
        setTimeout(() => {
          this.timers.delete(msg.pid);
          const w = this.waiting.get(msg.pid);
          if (w) void this.handle(msg.pid, w);
        }, deadline - now),
      );
    return true;
  }

  /** An ABORT from upstream for `pid`: true if it was waiting here (it is dropped: nothing was locked). */
  drop(pid: string): boolean {
    const was = this.waiting.has(pid);
    this.forget(pid);
    return was;
  }

  /** A round here unlocked its channels: every waiting LOCK is handled again, oldest first. */
  wake(): void {
    if (this.waiting.size === 0) return;
    if (this.waking) {
      this.wakeAgain = true;
      return;
    }
    this.waking = true;
    // After the handler that unlocked has finished its own changes.
    setTimeout(() => void this.drain(), 0);
  }

  private async drain(): Promise<void> {
    try {
      do {
        this.wakeAgain = false;
        for (const [pid, w] of [...this.waiting]) if (this.waiting.get(pid) === w) await this.handle(pid, w);
      } while (this.wakeAgain && this.waiting.size > 0);
    } finally {
      this.waking = false;
    }
  }

  private async handle(pid: string, w: Waiting): Promise<void> {
    this.waiting.delete(pid);
    if (!this.live()) {
      this.forget(pid);
      return;
    }
    try {
      await this.retry(w.peerId, w.msg);
    } finally {
      // Not waiting again: decided (locked and forwarded, or refused).
      if (!this.waiting.has(pid)) this.forget(pid);
    }
  }

  private forget(pid: string): void {
    this.waiting.delete(pid);
    this.deadlines.delete(pid);
    const t = this.timers.get(pid);
    if (t) clearTimeout(t);
    this.timers.delete(pid);
  }
}
