/**
 * Multi-hop payments from the host's side (the protocol itself runs in the enclaves:
 * docs/protocol/multihop.md). Payments to one destination travel in path rounds: what arrives while a
 * round to that destination is being prepared or is in flight goes in the next one, so rounds to one
 * destination follow each other in order and never meet their own locks. A payment refused for a busy
 * channel (a round to another destination holds one it needs: contention is abort-and-retry) waits at
 * the front of its destination's queue and goes again after a random pause, for up to 8 s. A keyed
 * payment's start is journaled before the enclave moves anything.
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

/** A payment waiting for its round. */
interface Waiting {
  payment: Payment;
  amount: number;
  maxFeeSat?: number;
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

  constructor(private readonly opts: MultihopPayerOptions) {}

  /**
   * Pays `dest` `amount` sat through a path of channels. Answers after at most `waitMs`, `in_flight` if
   * it is not over by then. `maxFeeSat` bounds this payment's share of what the intermediaries take (the
   * enclave applies a default without it).
   */
  async pay(dest: string, amount: number, waitMs: number, maxFeeSat?: number, ref?: KeyRef): Promise<Payment> {
    const { payments, report } = this.opts;
    const journal = ref ? this.opts.journal() : undefined;
    const payment = payments.begin('', amount);
    payment.dest = dest;
    if (ref && journal)
      await journal.append([
        { t: 'mh', kh: ref.key, fh: ref.fp, id: payment.payment_id, dest, amt: amount, at: payment.created_at },
      ]);
    const end = (r: EndRecord) => {
      if (!ref || !journal) return;
      // Lost, a retry answers in_flight and pays nothing (payment-journal.ts): at most once still holds.
      journal
        .append([{ t: 'mh_end', kh: ref.key, at: Date.now(), ...r }])
        .catch((err: unknown) => report('payment_journal', err, { payment_id: payment.payment_id }));
    };
    const routed = new Promise<Routed>((resolve, reject) =>
      this.enqueue(dest, { payment, amount, maxFeeSat, busyUntil: Date.now() + BUSY_RETRY_MS, resolve, reject }),
    );
    const done = routed.then(
      (r) => {
        payment.channel_id = r.channel_id;
        payment.route = r.route;
        payment.fee_sat = r.fee_sat;
        payments.succeeded(payment);
        end({ ok: true, ch: r.channel_id, route: r.route, fee: r.fee_sat });
        return payment;
      },
      (err: NodeError) => {
        payments.failed(payment, err.code);
        end({ ok: false, code: err.code });
        throw err;
      },
    );
    payment.status = 'in_flight';
    return answerWithin(payment, done, waitMs);
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

  /** One round: settles each payment of `batch` but those refused for a busy channel, which it returns. */
  private async round(dest: string, batch: Waiting[]): Promise<Waiting[]> {
    const { enclave, chain } = this.opts;
    let answer;
    try {
      if (this.opts.stopping()) throw new NodeError('node_stopping', 'the node is shutting down');
      const feeRate = await chain.feeRate();
      answer = await enclave.call('mh_pay_round', {
        dest,
        fee_rate: feeRate,
        payments: batch.map((w) => ({
          amount_sat: w.amount,
          ...(w.maxFeeSat !== undefined ? { max_fee_sat: w.maxFeeSat } : {}),
        })),
      });
    } catch (err) {
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
