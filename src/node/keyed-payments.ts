/**
 * Keyed payments (POST /v1/payments with idempotency_key) across crashes: at start-up the journal is
 * completed from the refs the enclave sealed with its debits, and afterwards a retried key is answered
 * from the journal and the channel's totals as the enclave shows them then (payment-journal.ts explains
 * the records, in-flight.ts the statuses).
 */
import type { EcallPort } from './enclave-client.ts';
import { NodeError } from './errors.ts';
import { outcomeAt } from './in-flight.ts';
import type { DurableKeys, PaymentLog } from './payment-log.ts';
import { PaymentJournal, paymentNumber, type JournalRecord, type KeyRef } from './payment-journal.ts';
import { SerialRuns } from './serial-runs.ts';
import type { Payment } from './payment.ts';

/**
 * Replays the journal of keyed payments and recovers, from the refs the enclave sealed with its
 * debits, those whose journal record a crash lost; then tells the enclave to drop the refs now journaled.
 */
export async function openJournal(file: string, enclave: EcallPort, payments: PaymentLog): Promise<PaymentJournal> {
  const journal = await PaymentJournal.open(file);
  payments.reserveIds(journal.maxPaymentNumber());
  await journalRefs(journal, enclave, payments);
  return journal;
}

/**
 * Journals the refs the enclave holds that the journal does not know yet, then has the enclave drop
 * them: at start-up, and on a committee member whenever its enclave adopted refs of its primary's keyed
 * payments (committee/update-refs.ts), so that once promoted it answers their keys.
 */
async function journalRefs(journal: PaymentJournal, enclave: EcallPort, payments: PaymentLog): Promise<void> {
  const { refs } = await enclave.call('pay_refs', {});
  const lost: JournalRecord[] = [];
  for (const r of refs) {
    const known = journal.get(r.key);
    // The enclave's ref proves a debit: it wins over a missing record and over a recorded refusal.
    if (known && known.pos !== undefined) continue;
    // The id the payment got where it was taken (another member's host, before a promotion), if known.
    const id = known?.id ?? r.payment_id ?? payments.newId();
    payments.reserveIds(paymentNumber(id));
    lost.push({
      t: 'pay',
      kh: r.key,
      fh: r.fp,
      id,
      ch: r.channel_id,
      amt: r.amount_sat,
      pos: r.position,
      at: known?.at ?? Date.now(),
    });
  }
  await journal.append(lost);
  if (refs.length) await enclave.call('pay_refs', { drop: refs.map((r) => r.key) });
}

/**
 * A committee member's runs of journalRefs while the node runs, one at a time: each `pay_refs_held` event
 * asks for one (those that come while one runs share the next), and a view change too. `settled()` is what a
 * keyed payment waits for on a member just promoted: every ref its enclave held is in the journal by then.
 */
export class RefJournaling {
  private readonly runs: SerialRuns;

  /** `routed`: the same for the refs of keyed routed payments (keyed-routed.ts, RoutedKeys.sync). */
  constructor(
    journal: PaymentJournal,
    enclave: EcallPort,
    payments: PaymentLog,
    report: (err: unknown) => void,
    routed: () => Promise<void> = () => Promise.resolve(),
  ) {
    // A failed run leaves the refs sealed in the enclave: the next run (or the next start) journals them.
    this.runs = new SerialRuns(() => journalRefs(journal, enclave, payments).then(routed).catch(report));
  }

  /** Journals what the enclave holds now (after the run under way, if any). */
  request(): void {
    void this.runs.request();
  }

  /** Resolves once every run asked for so far is done. */
  settled(): Promise<void> {
    return this.runs.settled();
  }
}

/** Answers retried keys from `journal`, with statuses read from the enclave's channel totals. */
export function journalKeys(journal: PaymentJournal, enclave: EcallPort): DurableKeys {
  return { answer: (ref) => answerKey(journal, enclave, ref), fingerprintOf: (ref) => journal.get(ref.key)?.fh };
}

/**
 * A retried key's first outcome; null if the journal does not know the key. Its fingerprint was checked
 * already (PaymentLog.checkKey, through fingerprintOf).
 */
function answerKey(journal: PaymentJournal, enclave: EcallPort, ref: KeyRef): Promise<Payment> | null {
  const e = journal.get(ref.key);
  if (!e) return null;
  const base: Payment = {
    payment_id: e.id,
    direction: 'outgoing',
    channel_id: e.ch ?? e.mh?.ch ?? '',
    amount_sat: e.amt,
    status: 'in_flight',
    failure_code: null,
    created_at: e.at,
    resolved_at: null,
  };
  if (e.code !== undefined)
    return Promise.reject(
      new NodeError(e.code, `the first request with this idempotency key was refused (${e.code})`).forPayment(e.id),
    );
  if (e.mh) {
    if (!e.mh.done) return Promise.resolve({ ...base, dest: e.mh.dest });
    if (!e.mh.ok)
      return Promise.reject(
        new NodeError(
          e.mh.code ?? 'internal',
          `the first request with this idempotency key failed (${e.mh.code})`,
        ).forPayment(e.id),
      );
    return Promise.resolve({
      ...base,
      dest: e.mh.dest,
      status: 'succeeded',
      route: e.mh.route ?? [],
      fee_sat: e.mh.fee ?? 0,
    });
  }
  return enclave.call('get_channel', { channel_id: e.ch! }).then((view) => {
    const status = outcomeAt(view, e.pos!);
    return { ...base, status, failure_code: status === 'failed' ? 'channel_closed' : null };
  });
}
