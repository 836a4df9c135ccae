/**
 * Multi-hop payments from the host's side (the protocol itself runs in the enclaves:
 * docs/protocol/multihop.md). Payments to one destination travel in path rounds: what arrives while a
 * round to that destination is being prepared or is in flight goes in the next one, so rounds to one
 * destination follow each other in order and never meet their own locks. A payment refused for a busy
 * channel (a round to another destination holds one it needs: contention is abort-and-retry) waits at
 * the front of its destination's queue and goes again after a random pause, for up to 8 s. A keyed
 * payment's start is journaled before the enclave moves anything, and the enclave is handed its ref
 * (keyed-routed.ts says how a crash before its end is journaled is recovered).
 *
 * Nothing waits on a lone payment's way that it does not need: the fee rate τ is built with is read from
 * the chain at most every few seconds, in the background, not once per round.
 */
import type { ReportFailure } from './failure-reporter.ts';
import type { ChainSource } from './chain-source.ts';
import type { EcallPort } from './enclave-client.ts';
import { NodeError } from './errors.ts';
import type { PaymentLog } from './payment-log.ts';
import type { JournalRecord, KeyRef, PaymentJournal } from './payment-journal.ts';
import type { Payment } from './payment.ts';
import { answerWithin } from './payment-pipeline.ts';

/** How long a payment meeting busy channels keeps retrying. */
const BUSY_RETRY_MS = 8_000;
/** The most payments one round carries (the `mh_pay_round` ecall's bound); a longer queue takes several. */
const MAX_ROUND = 10_000;
/**
 * How long a fee rate read from the chain serves rounds before it is read again. τ is broadcast only
 * when a path is settled from the middle of a round; a rate some seconds old prices it as well as a fresh one.
 */
const FEE_RATE_MAX_AGE_MS = 10_000;

export interface MultihopPayerOptions {
  enclave: EcallPort;
  chain: ChainSource;
  payments: PaymentLog;
  /** The journal of keyed payments, once it is open. */
  journal: () => PaymentJournal | undefined;
  report: ReportFailure;
  stopping: () => boolean;
}

type EndRecord = Omit<Extract<JournalRecord, { t: 'mh_end' }>, 't' | 'kh' | 'at'>;

interface Routed {
  channel_id: string;
  route: string[];
  fee_sat: number;
}

/**
 * Test-only: exit as if killed while a keyed routed payment's start is journaled and its end is not —
 * `journaled`: before the enclave is asked; `locked`: once the enclave has sealed the round's lock (its
 * first `mh_round` event, released with that seal); `answered`: once the enclave has answered the round.
 */
const CRASH_KEYED_ROUTED = process.env.TEECHAIN_TEST_CRASH_KEYED_ROUTED;

/** A payment waiting for its round. */
interface Waiting {
  payment: Payment;
  amount: number;
  maxFeeSat?: number;
  ref?: KeyRef;
  /** Until when a refusal for a busy channel is retried. */
  busyUntil: number;
  resolve: (r: Routed) => void;
  reject: (e: NodeError) => void;
}

export class MultihopPayer {
  /** Per destination, the payments for its next round. */
  private readonly queues = new Map<string, Waiting[]>();
  /** Destinations whose queue is being drained (one round at a time each). */
  private readonly draining = new Set<string>();
  private feeRate: { value: number; at: number } | null = null;
  private feeRateReading: Promise<number> | null = null;
  /** Keys whose end is journaled since the last round: the next one tells the enclave to drop their refs. */
  private journaledRefs: string[] = [];
  /** Payment ids of keyed payments on their way (kept only with the test-only crash switch set). */
  private readonly keyed = new Set<string>();

  constructor(private readonly opts: MultihopPayerOptions) {}

  /**
   * Pays `dest` `amount` sat through a path of channels. Answers after at most `waitMs`, `in_flight` if
   * it is not over by then. `maxFeeSat` bounds this payment's share of what the intermediaries take (the
   * enclave applies a default without it).
   */
  pay(dest: string, amount: number, waitMs: number, maxFeeSat?: number, ref?: KeyRef): Promise<Payment> {
    const { payment, done } = this.start(dest, amount, maxFeeSat, ref);
    return answerWithin(payment, done, waitMs);
  }

  /**
   * Queues a payment to `dest` for its destination's next round (in this tick when it carries no key, so
   * that every entry of one batch request meets in one round). `payment` is its live record, in the
   * history from now on; `done` settles with its outcome.
   */
  start(dest: string, amount: number, maxFeeSat?: number, ref?: KeyRef): { payment: Payment; done: Promise<Payment> } {
    const { payments, report } = this.opts;
    const journal = ref ? this.opts.journal() : undefined;
    const payment = payments.begin('', amount);
    payment.dest = dest;
    payment.status = 'in_flight';
    let journaled = false;
    // A keyed payment's outcome is journaled before it is answered, so that a retry after a crash answers
    // the same outcome (one group write for a round's payments). Should the write fail, a retry answers
    // in_flight and pays nothing, and the enclave keeps the ref (it is dropped only once the end is
    // durable), so the next start-up journals the outcome from it (keyed-routed.ts).
    const end = async (r: EndRecord): Promise<void> => {
      if (!ref || !journal || !journaled) return;
      this.keyed.delete(payment.payment_id);
      await journal.append([{ t: 'mh_end', kh: ref.key, at: Date.now(), ...r }]).then(
        () => void this.journaledRefs.push(ref.key),
        (err: unknown) => report('payment_journal', err, { payment_id: payment.payment_id }),
      );
    };
    const queue = () =>
      new Promise<Routed>((resolve, reject) => {
        // Only a journaled start gives the enclave the ref: a payment it keeps a ref for always has a start here.
        const keyed = journaled ? { ref: ref! } : {};
        if (journaled && CRASH_KEYED_ROUTED) this.keyed.add(payment.payment_id);
        this.enqueue(dest, {
          payment,
          amount,
          maxFeeSat,
          ...keyed,
          busyUntil: Date.now() + BUSY_RETRY_MS,
          resolve,
          reject,
        });
      });
    // A keyed payment's start is durable before the enclave can move anything for it.
    const routed =
      ref && journal
        ? journal
            .append([
              { t: 'mh', kh: ref.key, fh: ref.fp, id: payment.payment_id, dest, amt: amount, at: payment.created_at },
            ])
            .then(() => {
              journaled = true;
              if (CRASH_KEYED_ROUTED === 'journaled') process.exit(137);
              return queue();
            })
        : queue();
    const done = routed.then(
      async (r) => {
        payment.channel_id = r.channel_id;
        payment.route = r.route;
        payment.fee_sat = r.fee_sat;
        payments.succeeded(payment);
        await end({ ok: true, ch: r.channel_id, route: r.route, fee: r.fee_sat });
        return payment;
      },
      async (err: unknown) => {
        const e = err instanceof NodeError ? err : new NodeError('internal', String(err));
        payments.failed(payment, e.code);
        await end({ ok: false, code: e.code });
        throw e;
      },
    );
    return { payment, done };
  }

  /** The enclave told of a round (`mh_round`); only the test-only crash switch listens. */
  roundEvent(e: { role: string; phase: string; payments?: Array<{ payment_id?: string }> }): void {
    if (CRASH_KEYED_ROUTED !== 'locked' || e.role !== 'payer' || e.phase !== 'locked') return;
    if (e.payments?.some((p) => p.payment_id !== undefined && this.keyed.has(p.payment_id))) process.exit(137);
  }

  private enqueue(dest: string, w: Waiting): void {
    const queue = this.queues.get(dest) ?? [];
    queue.push(w);
    this.queues.set(dest, queue);
    if (this.draining.has(dest)) return;
    this.draining.add(dest);
    // What arrives in this tick joins the first round.
    setImmediate(() => void this.drain(dest));
  }

  /** Rounds to `dest`, one after the other, until its queue is empty. */
  private async drain(dest: string): Promise<void> {
    for (let busyRounds = 0; ;) {
      const queue = this.queues.get(dest) ?? [];
      const batch = queue.splice(0, MAX_ROUND);
      if (batch.length === 0) {
        this.queues.delete(dest);
        this.draining.delete(dest);
        return;
      }
      const busy = await this.round(dest, batch);
      if (busy.length === 0) {
        busyRounds = 0;
        continue;
      }
      queue.unshift(...busy);
      busyRounds++;
      await new Promise((r) => setTimeout(r, Math.min(400, 10 + Math.random() * 40 * busyRounds)));
    }
  }

  /** The fee rate for τ: the last one read if recent; when stale, still that one while it is read again. */
  private roundFeeRate(): Promise<number> | number {
    const known = this.feeRate;
    if (known && Date.now() - known.at < FEE_RATE_MAX_AGE_MS) return known.value;
    const reading = (this.feeRateReading ??= this.readFeeRate());
    return known ? known.value : reading;
  }

  private async readFeeRate(): Promise<number> {
    try {
      const value = await this.opts.chain.feeRate();
      this.feeRate = { value, at: Date.now() };
      return value;
    } catch (err) {
      if (!this.feeRate) throw err;
      // The rounds keep the last rate; the next stale round tries again.
      this.opts.report('fee_rate', err);
      return this.feeRate.value;
    } finally {
      this.feeRateReading = null;
    }
  }

  /** One round: settles each payment of `batch` but those refused for a busy channel, which it returns. */
  private async round(dest: string, batch: Waiting[]): Promise<Waiting[]> {
    const { enclave } = this.opts;
    let answer;
    let journaled: string[] = [];
    try {
      if (this.opts.stopping()) throw new NodeError('node_stopping', 'the node is shutting down');
      const feeRate = await this.roundFeeRate();
      journaled = this.journaledRefs.splice(0);
      answer = await enclave.call('mh_pay_round', {
        dest,
        fee_rate: feeRate,
        payments: batch.map((w) => ({
          amount_sat: w.amount,
          payment_id: w.payment.payment_id,
          ...(w.maxFeeSat !== undefined ? { max_fee_sat: w.maxFeeSat } : {}),
          ...(w.ref ? { ref: { key: w.ref.key, fp: w.ref.fp } } : {}),
        })),
        ...(journaled.length ? { journaled } : {}),
      });
      if (CRASH_KEYED_ROUTED === 'answered' && batch.some((w) => w.ref)) process.exit(137);
    } catch (err) {
      // Dropping a ref twice is harmless: the next round tells the enclave again.
      this.journaledRefs.push(...journaled);
      const e = err instanceof NodeError ? err : new NodeError('internal', String(err));
      for (const w of batch) w.reject(e);
      return [];
    }
    const busy: Waiting[] = [];
    answer.results.forEach((r, i) => {
      const w = batch[i]!;
      if (r.ok) w.resolve({ channel_id: r.channel_id, route: answer.route, fee_sat: Number(r.fee_sat) });
      else if (r.code === 'channel_busy' && Date.now() < w.busyUntil) busy.push(w);
      else w.reject(new NodeError(r.code, r.message));
    });
    return busy;
  }
}
