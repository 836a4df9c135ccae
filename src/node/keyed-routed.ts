/**
 * Keyed routed payments (POST /v1/payments with `dest` and an idempotency_key) across crashes. The
 * journal holds a routed payment's start (`mh`) before the enclave is asked and its end (`mh_end`) after
 * the round resolves (payment-journal.ts); a crash between the two leaves a start without an end. The
 * enclave keeps each keyed payment's ref with its round, sealed with the round's lock, and the payment's
 * outcome once the round resolves (src/enclave/treasury/multihop/payer-refs.ts). So at start-up, and
 * whenever a round ends while some key still waits, the host completes its journal from the enclave's
 * refs and tells it which it journaled:
 *
 *   - a resolved ref: its outcome is journaled (the enclave's success also wins over a recorded failure:
 *     the host may have given up on a call whose round still went through);
 *   - a pending ref: the round resolves after the restart (the payer's LOCK wait times out, or the peers'
 *     resynchronisation finishes it), and its end is journaled then; until then a retry answers in_flight;
 *   - a start without a ref (at start-up only): the enclave never locked anything for it, so nothing was
 *     paid; it is journaled failed, `payment_not_started`, and never paid again under that key;
 *   - a ref whose key the journal does not know: its start is journaled first, with the payment id the ref
 *     carries. On a committee member these are the refs its enclave adopted from its primary's updates
 *     (src/enclave/committee/update-mh-refs.ts), journaled as they come, so that once promoted it answers a
 *     retried key with the first payment instead of routing it again.
 */
import type { EcallPort, EcallResult } from './enclave-client.ts';
import type { ReportFailure } from './failure-reporter.ts';
import { paymentNumber, type JournalRecord, type PaymentJournal } from './payment-journal.ts';
import type { PaymentLog } from './payment-log.ts';
import { SerialRuns } from './serial-runs.ts';

type EnclaveRef = EcallResult<'mh_refs'>['refs'][number];
type EndRecord = Extract<JournalRecord, { t: 'mh_end' }>;
type StartRecord = Extract<JournalRecord, { t: 'mh' }>;

/** The code a routed payment's key answers when the crash came before the enclave locked anything for it. */
export const NOT_STARTED = 'payment_not_started';

function endOf(kh: string, r: EnclaveRef): EndRecord {
  const at = Date.now();
  if (r.outcome === 'succeeded')
    return { t: 'mh_end', kh, ok: true, ch: r.channel_id, route: r.route ?? [], fee: Number(r.fee_sat ?? 0), at };
  return { t: 'mh_end', kh, ok: false, code: r.code ?? 'internal', at };
}

export class RoutedKeys {
  /** Keys whose start is journaled, whose end is not, and whose round the enclave still has unresolved. */
  private readonly pending = new Set<string>();
  /** The checks of roundEnded, one at a time (one asked for meanwhile runs once more after). */
  private readonly checks = new SerialRuns(() =>
    this.check().catch((err: unknown) => this.report('payment_journal', err, { waiting: this.pending.size })),
  );

  private constructor(
    private readonly journal: PaymentJournal,
    private readonly enclave: EcallPort,
    private readonly report: ReportFailure,
  ) {}

  /** Completes the journal's routed payments from the enclave's refs (start-up, before any request is taken). */
  static async recover(
    journal: PaymentJournal,
    enclave: EcallPort,
    report: ReportFailure,
    payments: PaymentLog,
  ): Promise<RoutedKeys> {
    const keys = new RoutedKeys(journal, enclave, report);
    const held = new Set((await keys.sync(payments)).map((r) => r.key));
    const records: EndRecord[] = [];
    for (const e of journal.unfinishedRouted())
      if (!held.has(e.kh)) records.push({ t: 'mh_end', kh: e.kh, ok: false, code: NOT_STARTED, at: Date.now() });
    await journal.append(records);
    return keys;
  }

  /**
   * Completes the journal from the enclave's refs: at start-up (recover) and, on a committee member,
   * whenever its enclave adopted its primary's rounds (src/enclave/committee/update-mh-refs.ts) and at a
   * view change. A key the journal does not know gets its start, with the id and amount its ref carries
   * (the payment was taken on another member's host, or the key outlived the journal's retention), so that
   * once this member is promoted a retry answers it instead of routing it again; a resolved ref gets its
   * end (the enclave's success also wins over a recorded failure: the host may have given up on a call
   * whose round still went through) and is dropped; a pending one waits for its round (roundEnded, or the
   * next run). Returns the refs it saw.
   */
  async sync(payments: PaymentLog): Promise<EnclaveRef[]> {
    const { refs } = await this.enclave.call('mh_refs', {});
    const records: Array<StartRecord | EndRecord> = [];
    const journaled: string[] = [];
    for (const r of refs) {
      const e = this.journal.get(r.key);
      if (e && !e.mh) {
        // The key names a direct payment here: the journal answers it already; the ref only goes.
        if (r.outcome !== 'pending') journaled.push(r.key);
        continue;
      }
      if (!e) {
        const id = r.payment_id ?? payments.newId();
        payments.reserveIds(paymentNumber(id));
        records.push({ t: 'mh', kh: r.key, fh: r.fp, id, dest: r.dest, amt: Number(r.amount_sat), at: Date.now() });
      }
      if (r.outcome === 'pending') {
        if (!e?.mh?.done || !e.mh.ok) this.pending.add(r.key);
        continue;
      }
      if (!e?.mh?.done || (r.outcome === 'succeeded' && !e.mh.ok)) records.push(endOf(r.key, r));
      journaled.push(r.key);
      this.pending.delete(r.key);
    }
    await this.journal.append(records);
    if (journaled.length) await this.enclave.call('mh_refs', { drop: journaled });
    return refs;
  }

  get waiting(): number {
    return this.pending.size;
  }

  /**
   * A round this node pays ended: if a key recovered at start-up still waits, journal the outcomes the
   * enclave has now. Checks run one at a time; one asked for meanwhile runs once more after.
   */
  roundEnded(): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    return this.checks.request();
  }

  private async check(): Promise<void> {
    if (this.pending.size === 0) return; // the run before this one journaled every key left
    const { refs } = await this.enclave.call('mh_refs', {});
    const records: EndRecord[] = [];
    const journaled: string[] = [];
    for (const r of refs) {
      if (!this.pending.has(r.key) || r.outcome === 'pending') continue;
      records.push(endOf(r.key, r));
      journaled.push(r.key);
    }
    if (records.length === 0) return;
    await this.journal.append(records);
    for (const k of journaled) this.pending.delete(k);
    await this.enclave.call('mh_refs', { drop: journaled });
  }
}
