/**
 * Requests from one member to others and the gathering of their answers. Each request carries a fresh
 * number (`req`); an answer is matched to its request by that number alone, and only from a member the
 * request went to, once per member.
 */
import type { CommitteeMessage } from '../protocol/messages.ts';
import { TreasuryError, type TreasuryErrorCode } from '../treasury/errors.ts';
import type { CommitteeHost } from './ports.ts';

interface Collector {
  onMessage(peerId: string, msg: CommitteeMessage): void;
}

export class Requests {
  private nextReq = 1;
  private readonly collectors = new Map<number, Collector>();

  constructor(private readonly host: CommitteeHost) {}

  /** An answer to one of our requests (a message with no handler of its own); unknown numbers are dropped. */
  deliver(peerId: string, msg: CommitteeMessage & { req: number }): void {
    this.collectors.get(msg.req)?.onMessage(peerId, msg);
  }

  /**
   * Sends `msg` (with a fresh request number) to each of `to` and gathers answers until `needed` have
   * come, `done()` says so, or the timeout passes (then rejects with committee_unavailable).
   */
  ask<T>(
    to: string[],
    msg: CommitteeMessage & { req: number },
    needed: number,
    read: (msg: CommitteeMessage, from: string) => T | null,
    done?: () => boolean,
  ): Promise<Map<string, T>> {
    const req = this.nextReq++;
    const answers = new Map<string, T>();
    return new Promise((resolve, reject) => {
      const finish = (err?: TreasuryError) => {
        clearTimeout(timer);
        this.collectors.delete(req);
        if (err) reject(err);
        else resolve(answers);
      };
      const timer = setTimeout(
        () =>
          finish(
            new TreasuryError(
              'committee_unavailable',
              `${answers.size} of ${needed} committee members answered in time`,
            ),
          ),
        this.host.timeoutMs,
      );
      this.collectors.set(req, {
        onMessage: (from, m) => {
          if (!to.includes(from) || answers.has(from)) return;
          const v = read(m, from);
          if (v === null && m.t === 'c_error') {
            finish(new TreasuryError(m.code as TreasuryErrorCode, m.message));
            return;
          }
          if (v === null) return;
          answers.set(from, v);
          if (answers.size >= needed || done?.()) finish();
        },
      });
      if (needed === 0 || done?.()) {
        finish();
        return;
      }
      const reachable = to.filter((p) => this.host.connected(p));
      if (reachable.length < needed && !done) {
        finish(
          new TreasuryError(
            'committee_unavailable',
            `${reachable.length} of ${needed} committee members are connected`,
          ),
        );
        return;
      }
      for (const p of reachable) this.host.sendNow(p, { ...msg, req } as CommitteeMessage);
      if (reachable.length === 0)
        finish(new TreasuryError('committee_unavailable', 'no other committee member is connected'));
    });
  }
}
