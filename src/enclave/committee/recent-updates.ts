/**
 * The last updates of the current view a member issued (the primary) or applied (a backup), oldest first.
 *
 * An update is a delta onto exactly its base (deltas.ts), so a member several updates behind can apply
 * the latest one only after those before it. A member that needs another to hold its state (a settler
 * asking for signatures, a member voting for a candidate behind it) sends these, and the other applies
 * in order what follows its own state, every one checked as any update is. Nothing here is trusted: each
 * update still carries the primary's signature and passes the update rules at the member that applies it.
 *
 * Kept in memory only: after a restart a member has its sealed latest update, and a member further
 * behind than the window is caught up by a full snapshot from the primary instead.
 */
import { MAX_CARRIED_UPDATES } from '../protocol/messages.ts';
import type { SignedUpdate } from './update.ts';

/** Their bodies' bytes at most, so that a request that carries them stays a modest frame. */
const MAX_BYTES = 4 * 1024 * 1024;

export class RecentUpdates {
  private list: SignedUpdate[] = [];
  private bytes = 0;

  /**
   * `update` was issued or applied after those kept. A full snapshot holds everything before it, so it
   * starts the window afresh.
   */
  add(update: SignedUpdate, full: boolean): void {
    if (full) {
      this.list = [];
      this.bytes = 0;
    }
    this.list.push(update);
    this.bytes += update.body.length;
    while (this.list.length > 1 && (this.list.length > MAX_CARRIED_UPDATES || this.bytes > MAX_BYTES))
      this.bytes -= this.list.shift()!.body.length;
  }

  /** The updates kept with a sequence number above `seq`, oldest first (all of them by default). */
  after(seq = -1): SignedUpdate[] {
    return this.list.filter((u) => u.seq > seq);
  }

  /** A new view: the old view's updates would only be refused (stale_epoch). */
  clear(): void {
    this.list = [];
    this.bytes = 0;
  }
}
