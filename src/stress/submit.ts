/**
 * How a stress run's payments leave for their payers' nodes. With `--batch 1`, each in a request of its
 * own (`POST /v1/payments`). Otherwise the payments a payer has ready in the same tick (a closed loop's
 * slots refilled by one answer, an open loop's payments due in one step) go together in one
 * `POST /v1/payments/batch`, up to `--batch N` entries a request, each entry with its own idempotency key
 * as a single payment has; a lone ready payment still goes alone. This is what a client with many payments
 * waiting would do, and the node groups payments per tick anyway (payment-pipeline.ts, multihop-payer.ts):
 * the batch saves the HTTP request per payment, not any work of the protocol.
 *
 * A payer's direct payments (the payee is its channel peer) and routed ones go in separate requests: a
 * batch starts its routed entries only once its direct ones are over and answers when all are, so mixed
 * in one request the direct ones would wait for a path round they have no part in.
 */
import type { Treasury } from './target.ts';
import { sendBatch, sendPayment, type Outcome, type PaymentRequest } from './pay.ts';

/** What the report says about how payments were submitted. */
export interface SubmissionFigures {
  /** The most entries one request carried (1: every payment in a request of its own). */
  max_per_request: number;
  /** Requests of one payment (`POST /v1/payments`), and batch requests with the payments they carried. */
  single_requests: number;
  batch_requests: number;
  batched_payments: number;
}

interface Ready {
  body: PaymentRequest;
  resolve: (o: Outcome) => void;
}

export class Submitter {
  readonly figures: SubmissionFigures;
  /** Per payer and kind (direct or routed), the payments ready to leave in this tick. */
  private readonly ready = new Map<string, { payer: number; items: Ready[] }>();

  /**
   * `direct(payer, payee)`: whether the payer has a channel to the payee (its payment is not routed);
   * it only decides which payments share a request.
   */
  constructor(
    private readonly treasuries: Treasury[],
    maxPerRequest: number,
    private readonly direct: (payer: number, payee: number) => boolean,
  ) {
    this.figures = { max_per_request: maxPerRequest, single_requests: 0, batch_requests: 0, batched_payments: 0 };
  }

  /** Sends `body` for `payer` (to `payee`); resolves with its own entry's outcome. */
  send(payer: number, payee: number, body: PaymentRequest): Promise<Outcome> {
    if (this.figures.max_per_request === 1) return this.single(payer, body);
    const key = `${payer}:${this.direct(payer, payee) ? 'direct' : 'routed'}`;
    return new Promise<Outcome>((resolve) => {
      const group = this.ready.get(key);
      if (group) return void group.items.push({ body, resolve });
      this.ready.set(key, { payer, items: [{ body, resolve }] });
      // Everything made ready in this tick (microtasks included) joins the group before it leaves.
      setImmediate(() => this.flush(key));
    });
  }

  private flush(key: string): void {
    const group = this.ready.get(key);
    this.ready.delete(key);
    if (!group) return;
    const max = this.figures.max_per_request;
    for (let i = 0; i < group.items.length; i += max) {
      const chunk = group.items.slice(i, i + max);
      if (chunk.length === 1) {
        void this.single(group.payer, chunk[0]!.body).then(chunk[0]!.resolve);
        continue;
      }
      this.figures.batch_requests++;
      this.figures.batched_payments += chunk.length;
      void sendBatch(
        this.treasuries[group.payer]!.api,
        chunk.map((r) => r.body),
      ).then((outcomes) => chunk.forEach((r, k) => r.resolve(outcomes[k]!)));
    }
  }

  private single(payer: number, body: PaymentRequest): Promise<Outcome> {
    this.figures.single_requests++;
    return sendPayment(this.treasuries[payer]!.api, body);
  }
}
