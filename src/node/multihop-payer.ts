/**
 * Multi-hop payments from the host's side (the protocol itself runs in the enclaves: docs/protocol/multihop.md). The enclave answers a payment that meets a channel held by another multi-hop payment with
 * `channel_busy`; contention is abort-and-retry, so such a payment is tried again after a random pause
 * for up to 8 s. A keyed payment's start is journaled before the enclave moves anything.
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

export class MultihopPayer {
  constructor(private readonly opts: MultihopPayerOptions) {}

  /**
   * Pays `dest` `amount` sat through a path of channels. Answers after at most `waitMs`, `in_flight` if
   * it is not over by then. `maxFeeSat` bounds what the intermediaries may take in all (the enclave
   * applies a default without it).
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
    const done = this.run(payment, dest, amount, maxFeeSat).then(
      (r) => {
        end({ ok: true, ch: r.channel_id, route: r.route, fee: r.fee_sat });
        return payment;
      },
      (err: NodeError) => {
        end({ ok: false, code: err.code });
        throw err;
      },
    );
    payment.status = 'in_flight';
    return answerWithin(payment, done, waitMs);
  }

  /** Calls mh_pay until it is not refused for a busy channel (or the retry time is over); records the outcome. */
  private async run(payment: Payment, dest: string, amount: number, maxFeeSat?: number) {
    const { enclave, chain, payments } = this.opts;
    const deadline = Date.now() + BUSY_RETRY_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        if (this.opts.stopping()) throw new NodeError('node_stopping', 'the node is shutting down');
        const feeRate = await chain.feeRate();
        const r = await enclave.call('mh_pay', {
          dest,
          amount_sat: amount,
          fee_rate: feeRate,
          ...(maxFeeSat !== undefined ? { max_fee_sat: maxFeeSat } : {}),
        });
        payment.channel_id = r.channel_id;
        payment.route = r.route;
        payment.fee_sat = Number(r.fee_sat);
        payments.succeeded(payment);
        return { channel_id: r.channel_id, route: r.route, fee_sat: payment.fee_sat };
      } catch (err) {
        const e = err instanceof NodeError ? err : new NodeError('internal', String(err));
        if (e.code === 'channel_busy' && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, Math.min(400, 10 + Math.random() * 40 * (attempt + 1))));
          continue;
        }
        payments.failed(payment, e.code);
        throw e;
      }
    }
  }
}
