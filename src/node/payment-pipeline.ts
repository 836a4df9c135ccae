/**
 * How channel payments reach the enclave and how their outcomes come back. Requests made in the same
 * tick are queued and go to the enclave in one `pay` call (one sealed state, one message to the peer);
 * each accepted payment then waits, in flight, at its position in the channel's sent total until the
 * peer acknowledges that total or the settlement that closed the channel decides it (in-flight.ts).
 * Keyed payments are journaled in one group write per batch (payment-journal.ts).
 *
 * A channel held by a multi-hop round refuses direct payments (`channel_busy`) until the round ends
 * there. That is ordinary contention, not the user's error: such a payment waits here, nothing moved,
 * and goes again, ahead of newer ones, when a round ends at this node (or every 100 ms, should that word
 * not come), for up to 8 s; only then is it refused with `channel_busy`.
 */
import type { ReportFailure } from './failure-reporter.ts';
import type { EcallPort, EcallResult } from './enclave-client.ts';
import { NodeError } from './errors.ts';
import { InFlight } from './in-flight.ts';
import type { PaymentLog } from './payment-log.ts';
import type { JournalRecord, KeyRef, PaymentJournal } from './payment-journal.ts';
import type { Payment } from './payment.ts';

/** The most payments one `pay` ecall carries; a longer queue goes out in several flushes. */
const MAX_BATCH = 50_000;

/** How long a direct payment waits for a channel held by a multi-hop round before it is refused. */
export const BUSY_WAIT_MS = 8_000;
/** How often waiting payments go again when no round end was heard meanwhile. */
const BUSY_RETRY_MS = 100;

/** Test-only: exit as if killed right after the enclave sealed a keyed debit, before the journal has it. */
const CRASH_AFTER_KEYED_PAY = process.env.TEECHAIN_TEST_CRASH_AFTER_KEYED_PAY === '1';

interface PendingPay {
  channelId: string;
  amount: number;
  resolve: (p: Payment) => void;
  reject: (e: NodeError) => void;
  payment: Payment;
  ref?: KeyRef;
  /** Until when a refusal for a channel held by a multi-hop round waits and goes again. */
  busyUntil: number;
}

type PayOutcome = EcallResult<'pay'>['results'][number] | { ok: false; code: string; message?: string };

export interface PaymentPipelineOptions {
  enclave: EcallPort;
  payments: PaymentLog;
  report: ReportFailure;
  stopping: () => boolean;
  /** How long a payment meeting a held channel waits (BUSY_WAIT_MS unless given). */
  busyWaitMs?: number;
}

export class PaymentPipeline {
  private queue: PendingPay[] = [];
  /** Payments refused for a channel a multi-hop round holds, waiting to go again (oldest first). */
  private waiting: PendingPay[] = [];
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private flushScheduled = false;
  /** Sent payments waiting for the peer's acknowledgement or the settlement's outcome. */
  private readonly inFlight = new InFlight<PendingPay>();
  private journal?: PaymentJournal;
  /** Refs journaled since the last pay call: the next one tells the enclave to drop them. */
  private journaledRefs: string[] = [];

  constructor(private readonly opts: PaymentPipelineOptions) {}

  /** From now on keyed payments are journaled here (set at boot, once the journal is recovered). */
  useJournal(journal: PaymentJournal): void {
    this.journal = journal;
  }

  /**
   * Queues a payment for the next flush. `payment` is its live record; `done` resolves when the peer's
   * enclave has durably credited it and rejects with the NodeError that failed it.
   */
  submit(channelId: string, amount: number, ref?: KeyRef): { payment: Payment; done: Promise<Payment> } {
    const { payments } = this.opts;
    const payment = payments.begin(channelId, amount);
    if (this.opts.stopping()) {
      payments.failed(payment, 'node_stopping');
      return { payment, done: Promise.reject(new NodeError('node_stopping', 'the node is shutting down')) };
    }
    const done = new Promise<Payment>((resolve, reject) => {
      const busyUntil = Date.now() + (this.opts.busyWaitMs ?? BUSY_WAIT_MS);
      this.queue.push({ channelId, amount, resolve, reject, payment, busyUntil, ...(ref ? { ref } : {}) });
      this.scheduleFlush();
    });
    return { payment, done };
  }

  /** The peer acknowledged `total` of our sent total on a channel (pay_acked): payments up to it succeeded. */
  acked(channelId: string, total: bigint): void {
    for (const pay of this.inFlight.acked(channelId, total)) this.succeed(pay);
  }

  /** The settlement that closed the channel pays `paid` of our sent total: each in-flight payment is decided. */
  settled(channelId: string, paid: bigint): void {
    const { succeeded, failed } = this.inFlight.settled(channelId, paid);
    for (const pay of succeeded) this.succeed(pay);
    for (const pay of failed)
      this.fail(
        pay,
        new NodeError('channel_closed', 'the settlement that closed the channel does not pay this payment'),
      );
  }

  /** A multi-hop round ended here (its channels are unlocked): the payments waiting for one go again. */
  roundEnded(): void {
    if (this.waiting.length === 0) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.opts.stopping()) {
      for (const p of this.waiting.splice(0)) this.fail(p, new NodeError('node_stopping', 'the node is shutting down'));
      return;
    }
    // Ahead of what came meanwhile: they were sent first.
    this.queue.unshift(...this.waiting.splice(0));
    this.scheduleFlush();
  }

  /** `p` met a channel held by a multi-hop round: it waits for a round's end (or the next retry). */
  private waitForChannel(p: PendingPay): void {
    this.waiting.push(p);
    this.retryTimer ??= setTimeout(() => {
      this.retryTimer = null;
      this.roundEnded();
    }, BUSY_RETRY_MS);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    this.flushScheduled = false;
    const batch = this.queue.splice(0, MAX_BATCH);
    if (this.queue.length > 0) this.scheduleFlush();
    if (batch.length === 0) return;
    let results: PayOutcome[];
    const journaled = this.journaledRefs.splice(0);
    try {
      results = (
        await this.opts.enclave.call('pay', {
          payments: batch.map((p) => ({
            channel_id: p.channelId,
            amount_sat: p.amount,
            // With its id: a committee member promoted later answers a retried key with it (update-refs.ts).
            ...(p.ref ? { ref: { ...p.ref, id: p.payment.payment_id } } : {}),
          })),
          ...(journaled.length ? { journaled } : {}),
        })
      ).results;
    } catch (err) {
      const e = err instanceof NodeError ? err : new NodeError('internal', String(err));
      this.journalBatch(
        batch,
        batch.map(() => ({ ok: false as const, code: e.code })),
      );
      for (const p of batch) this.fail(p, e);
      return;
    }
    if (CRASH_AFTER_KEYED_PAY && batch.some((p) => p.ref)) process.exit(137);
    // Refused for a held channel, in time to wait: nothing moved and nothing is journaled; it goes again.
    const now = Date.now();
    const waits = results.map((r, i) => !r.ok && r.code === 'channel_busy' && now < batch[i]!.busyUntil);
    this.journalBatch(
      batch.filter((_, i) => !waits[i]),
      results.filter((_, i) => !waits[i]),
    );
    results.forEach((r, i) => {
      const p = batch[i]!;
      if (waits[i]) return this.waitForChannel(p);
      if (!r.ok) return this.fail(p, new NodeError(r.code, r.message));
      this.inFlight.add(r.channel_id, BigInt(r.position), p);
      this.opts.payments.sent(p.payment);
    });
  }

  /** Journals a batch's keyed payments in one group write; once durable, the enclave may drop their refs. */
  private journalBatch(batch: PendingPay[], results: PayOutcome[]): void {
    if (!this.journal) return;
    const records: JournalRecord[] = [];
    const refs: string[] = [];
    batch.forEach((p, i) => {
      const r = results[i]!;
      if (!p.ref) return;
      const base = { kh: p.ref.key, fh: p.ref.fp, id: p.payment.payment_id, amt: p.amount, at: p.payment.created_at };
      if (r.ok) {
        records.push({ t: 'pay', ...base, ch: r.channel_id, pos: r.position });
        refs.push(p.ref.key);
      } else {
        records.push({ t: 'refused', ...base, code: r.code });
      }
    });
    // If the write fails the refs stay sealed in the enclave and are recovered at the next start.
    if (records.length)
      this.journal.append(records).then(
        () => {
          this.journaledRefs.push(...refs);
        },
        (err: unknown) => this.opts.report('payment_journal', err, { records: records.length }),
      );
  }

  private succeed(p: PendingPay): void {
    this.opts.payments.succeeded(p.payment);
    p.resolve(p.payment);
  }

  private fail(p: PendingPay, err: NodeError): void {
    this.opts.payments.failed(p.payment, err.code);
    p.reject(err);
  }
}

/**
 * Answers after at most `waitMs`: with the payment `done` resolved with, or with its live record, still
 * `in_flight`, whose outcome comes later. A refusal before then rejects with its NodeError.
 */
export async function answerWithin(payment: Payment, done: Promise<Payment>, waitMs: number): Promise<Payment> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), waitMs);
  });
  const first = await Promise.race([done, late])
    .catch((err: unknown) => {
      throw (err instanceof NodeError ? err : new NodeError('internal', String(err))).forPayment(payment.payment_id);
    })
    .finally(() => clearTimeout(timer));
  // Answered in flight: the outcome, failure included, is recorded in the payment log when it comes,
  // and no one else awaits `done`, so its rejection is handled by being ignored here.
  if (first === null) done.catch(() => undefined);
  // The live record: a keyed retry answers its status as it is then, not as it was at the first answer.
  return first ?? payment;
}
