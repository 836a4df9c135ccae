/**
 * The host's payment history: what was asked, what the enclave accepted, what the peer acknowledged,
 * and what was received. Not security-relevant (balances live in the enclave); kept in memory with a
 * bounded size, newest last. Idempotency keys outlive the process through payment-journal.ts.
 */
import { NodeError } from './errors.ts';
import type { NodeObserver } from './observer.ts';
import { keyRef, MAX_KEYS, type KeyRef } from './payment-journal.ts';
import type { Payment } from './payment.ts';

/** Answers a key from durable records (journal, enclave refs): null if unknown, else its first outcome. */
export interface DurableKeys {
  /** Asked only once `ref`'s fingerprint has passed `fingerprintOf` (PaymentLog.checkKey). */
  answer(ref: KeyRef): Promise<Payment> | null;
  /** The request fingerprint (hashed, as in KeyRef.fp) a key was first used for; undefined if unknown. */
  fingerprintOf(ref: KeyRef): string | undefined;
}

export class PaymentLog {
  private readonly list: Payment[] = [];
  private next = 1;
  totals = { sent: 0, received: 0, succeeded: 0, failed: 0 };

  private readonly keys = new Map<string, { fingerprint: string; result: Promise<Payment> }>();
  private durable?: DurableKeys;

  constructor(
    private readonly limit = 100_000,
    private readonly observer?: NodeObserver,
  ) {}

  /**
   * Runs `pay` once per client idempotency key: a retry with the same key and the same request gets the
   * first attempt's outcome (success or failure) instead of paying again.
   * @throws NodeError idempotency_conflict when the key was used for a different request
   */
  idempotent(key: string | undefined, fingerprint: string, pay: (ref?: KeyRef) => Promise<Payment>): Promise<Payment> {
    if (key === undefined) return pay();
    try {
      this.checkKey(key, fingerprint);
    } catch (err) {
      return Promise.reject(err);
    }
    const seen = this.keys.get(key);
    if (seen) return seen.result;
    const ref = this.durable ? keyRef(key, fingerprint) : undefined;
    if (ref) {
      // Answered afresh each time (not cached here): the status follows the enclave's totals as they move.
      let answer: Promise<Payment> | null;
      try {
        answer = this.durable!.answer(ref);
      } catch (err) {
        return Promise.reject(err);
      }
      if (answer) return answer;
    }
    const result = pay(ref);
    this.keys.set(key, { fingerprint, result });
    if (this.keys.size > MAX_KEYS) this.keys.delete(this.keys.keys().next().value!);
    return result;
  }

  /**
   * Throws idempotency_conflict if `key` was used for a request other than `fingerprint`'s, here or in
   * durable storage; checks only. The one conflict rule: `idempotent` runs it first, and a batch runs it on
   * every entry's key before it starts any payment.
   */
  checkKey(key: string, fingerprint: string): void {
    const seen = this.keys.get(key);
    const ref = this.durable ? keyRef(key, fingerprint) : undefined;
    const durable = ref ? this.durable!.fingerprintOf(ref) : undefined;
    if ((seen && seen.fingerprint !== fingerprint) || (ref && durable !== undefined && durable !== ref.fp))
      throw new NodeError('idempotency_conflict', `idempotency key ${key} was used for a different payment`);
  }

  /** From now on keys are answered from, and recorded in, durable storage too (set at boot). */
  useDurableKeys(d: DurableKeys): void {
    this.durable = d;
  }

  /** A fresh payment id; `reserve` skips the ids already handed out before a restart. */
  newId(): string {
    return `p${this.next++}`;
  }

  reserveIds(upTo: number): void {
    this.next = Math.max(this.next, upTo + 1);
  }

  begin(channelId: string, amount: number): Payment {
    return this.add({
      payment_id: this.newId(),
      direction: 'outgoing',
      channel_id: channelId,
      amount_sat: amount,
      status: 'pending',
      failure_code: null,
      created_at: Date.now(),
      resolved_at: null,
    });
  }

  sent(p: Payment): void {
    p.status = 'in_flight';
  }

  succeeded(p: Payment): void {
    p.status = 'succeeded';
    p.resolved_at = Date.now();
    this.totals.sent += p.amount_sat;
    this.totals.succeeded += 1;
    this.observer?.paymentResolved?.(p);
  }

  failed(p: Payment, code: string): void {
    p.status = 'failed';
    p.failure_code = code;
    p.resolved_at = Date.now();
    this.totals.failed += 1;
    this.observer?.paymentResolved?.(p);
  }

  received(channelId: string, amounts: number[]): void {
    const now = Date.now();
    this.observer?.paymentsReceived?.(channelId, amounts);
    for (const a of amounts) {
      this.totals.received += a;
      this.add({
        payment_id: `r${this.next++}`,
        direction: 'incoming',
        channel_id: channelId,
        amount_sat: a,
        status: 'succeeded',
        failure_code: null,
        created_at: now,
        resolved_at: now,
      });
    }
  }

  /** Newest first, `offset` from the newest. */
  page(offset: number, limit: number): { payments: Payment[]; total: number } {
    // The list may hold up to a quarter more than `limit` between trims (see add); show only `limit`.
    const oldest = Math.max(0, this.list.length - this.limit);
    const end = Math.max(oldest, this.list.length - offset);
    const start = Math.max(oldest, end - limit);
    return { payments: this.list.slice(start, end).reverse(), total: this.list.length - oldest };
  }

  private add(p: Payment): Payment {
    this.list.push(p);
    // Trim in chunks: dropping one entry per add from a full 100k-entry array is a 100k-element move each time.
    if (this.list.length > this.limit + this.limit / 4) this.list.splice(0, this.list.length - this.limit);
    return p;
  }
}
