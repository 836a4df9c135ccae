/**
 * The host's durable record of keyed payments (POST /v1/payments with idempotency_key), so that a
 * retry after any crash answers the first outcome and moves nothing (issue #15).
 *
 * <datadir>/payments.journal (mode 0600) is append-only JSON lines, one record per event of a keyed
 * payment: its debit (channel, amount, position = the channel's sent total after it), its refusal
 * (code), or a multi-hop payment's start and end. Keys are stored as hashes: 16 bytes of SHA-256 of
 * the key and of the request's fingerprint, the same `ref` the enclave seals with the debit
 * (src/enclave/treasury/payment-refs.ts). Records queued while a write is under way go out in one write and
 * one fdatasync (group commit), so the cost is one fdatasync per batch of keyed payments, not per payment.
 *
 * The crash window between the enclave's sealed debit and this journal's record is closed by the
 * enclave: at start-up the host asks it for the refs it still holds and journals those it lacks; only
 * then, and after every durable append, does it tell the enclave to drop them. Statuses are not
 * journaled: they are derived when asked from the enclave's channel totals (src/node/in-flight.ts).
 * A refusal moves nothing; if a crash loses its record the retry runs once more, which is still at most
 * once for money. A multi-hop payment's start is durable before the enclave is asked to pay, and its ref
 * is sealed with the round's lock (src/enclave/treasury/multihop/payer-refs.ts); if a crash loses its end,
 * the host journals it from the enclave's ref at start-up or when the round ends (keyed-routed.ts), and a
 * start with no ref is journaled failed, `payment_not_started`. Until its end is known a retry answers
 * `in_flight`, and no retry ever pays again.
 *
 * Retention: a key is kept for 24 hours and, of those, the newest 1,000,000; older keys are dropped when
 * the journal is compacted at start-up (a retry after that pays again).
 */
import { createHash } from 'node:crypto';
import { open, readFile, rename, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

export const KEY_RETENTION_MS = 24 * 60 * 60 * 1000;
export const MAX_KEYS = 1_000_000;

/** What a keyed payment hands the enclave: hashes of its key and of the request it stands for. */
export interface KeyRef {
  key: string;
  fp: string;
}

export function keyRef(idempotencyKey: string, fingerprint: string): KeyRef {
  const h = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 32);
  return { key: h(`key:${idempotencyKey}`), fp: h(`request:${fingerprint}`) };
}

export type JournalRecord =
  | { t: 'pay'; kh: string; fh: string; id: string; ch: string; amt: number; pos: string; at: number }
  | { t: 'refused'; kh: string; fh: string; id: string; amt: number; code: string; at: number }
  | { t: 'mh'; kh: string; fh: string; id: string; dest: string; amt: number; at: number }
  | { t: 'mh_end'; kh: string; ok: boolean; code?: string; ch?: string; route?: string[]; fee?: number; at: number };

/** Everything known about one key, merged from its records. */
export interface KeyEntry {
  kh: string;
  fh: string;
  id: string;
  amt: number;
  at: number;
  ch?: string;
  pos?: bigint;
  code?: string;
  mh?: { dest: string; done: boolean; ok?: boolean; code?: string; ch?: string; route?: string[]; fee?: number };
}

const HEX16 = /^[0-9a-f]{32}$/;

/** n of a payment id `p<n>` (PaymentLog.newId's form), 0 for any other id. */
export function paymentNumber(id: string): number {
  const m = /^p(\d{1,15})$/.exec(id);
  return m ? Number(m[1]) : 0;
}

export class PaymentJournal {
  private readonly index = new Map<string, KeyEntry>();
  private queue: Array<{ data: string; resolve: () => void; reject: (e: unknown) => void }> = [];
  private writing = false;
  private fd?: FileHandle;

  private constructor(
    readonly file: string,
    private readonly maxKeys: number,
  ) {}

  /** Reads the journal, keeps what the retention allows and rewrites it compacted (a torn last line is dropped). */
  static async open(
    file: string,
    opts: { now?: number; retainMs?: number; maxKeys?: number } = {},
  ): Promise<PaymentJournal> {
    const j = new PaymentJournal(file, opts.maxKeys ?? MAX_KEYS);
    let text = '';
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const line of text.split('\n')) {
      if (!line) continue;
      let rec: unknown;
      try {
        rec = JSON.parse(line);
      } catch {
        continue;
      }
      if (valid(rec)) j.apply(rec);
    }
    const oldest = (opts.now ?? Date.now()) - (opts.retainMs ?? KEY_RETENTION_MS);
    for (const [kh, e] of j.index) if (e.at < oldest) j.index.delete(kh);
    await j.rewrite();
    j.fd = await open(file, 'a', 0o600);
    return j;
  }

  get(kh: string): KeyEntry | undefined {
    return this.index.get(kh);
  }

  /** The routed payments whose start is journaled and whose end is not (a crash came between the two). */
  unfinishedRouted(): KeyEntry[] {
    return [...this.index.values()].filter((e) => e.mh && !e.mh.done);
  }

  get size(): number {
    return this.index.size;
  }

  /** The highest number n of a payment id `p<n>` in the journal (new ids must not reuse them). */
  maxPaymentNumber(): number {
    let max = 0;
    for (const e of this.index.values()) max = Math.max(max, paymentNumber(e.id));
    return max;
  }

  /** Appends records; resolves once they are durable (one write and one fdatasync per group). */
  append(records: JournalRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    for (const r of records) this.apply(r);
    const data = records.map((r) => `${JSON.stringify(r)}\n`).join('');
    return new Promise((resolve, reject) => {
      this.queue.push({ data, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  async close(): Promise<void> {
    while (this.writing) await new Promise((r) => setImmediate(r));
    await this.fd?.close();
    this.fd = undefined;
  }

  private async drain(): Promise<void> {
    this.writing = true;
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        if (!this.fd) throw new Error('payment journal is closed');
        await this.fd.write(batch.map((b) => b.data).join(''));
        await this.fd.datasync();
        for (const b of batch) b.resolve();
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
    this.writing = false;
  }

  private apply(r: JournalRecord): void {
    if (r.t === 'mh_end') {
      const e = this.index.get(r.kh);
      if (e?.mh) Object.assign(e.mh, { done: true, ok: r.ok, code: r.code, ch: r.ch, route: r.route, fee: r.fee });
      return;
    }
    const e: KeyEntry = { kh: r.kh, fh: r.fh, id: r.id, amt: r.amt, at: r.at };
    if (r.t === 'pay') {
      e.ch = r.ch;
      e.pos = BigInt(r.pos);
    }
    if (r.t === 'refused') e.code = r.code;
    if (r.t === 'mh') e.mh = { dest: r.dest, done: false };
    this.index.delete(r.kh); // re-inserted as the newest
    this.index.set(r.kh, e);
    if (this.index.size > this.maxKeys) this.index.delete(this.index.keys().next().value!);
  }

  private async rewrite(): Promise<void> {
    const lines: string[] = [];
    for (const e of this.index.values()) {
      if (e.mh) {
        lines.push(JSON.stringify({ t: 'mh', kh: e.kh, fh: e.fh, id: e.id, dest: e.mh.dest, amt: e.amt, at: e.at }));
        if (e.mh.done)
          lines.push(
            JSON.stringify({
              t: 'mh_end',
              kh: e.kh,
              ok: e.mh.ok,
              code: e.mh.code,
              ch: e.mh.ch,
              route: e.mh.route,
              fee: e.mh.fee,
              at: e.at,
            }),
          );
      } else if (e.code !== undefined) {
        lines.push(JSON.stringify({ t: 'refused', kh: e.kh, fh: e.fh, id: e.id, amt: e.amt, code: e.code, at: e.at }));
      } else {
        lines.push(
          JSON.stringify({
            t: 'pay',
            kh: e.kh,
            fh: e.fh,
            id: e.id,
            ch: e.ch,
            amt: e.amt,
            pos: e.pos!.toString(),
            at: e.at,
          }),
        );
      }
    }
    const tmp = `${this.file}.tmp`;
    const fd = await open(tmp, 'w', 0o600);
    try {
      await fd.write(lines.map((l) => `${l}\n`).join(''));
      await fd.datasync();
    } finally {
      await fd.close();
    }
    await rename(tmp, this.file);
    const dir = await open(dirname(this.file), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

/** A journal line is the host's own file, but checked all the same: a bad line is skipped, never trusted. */
function valid(r: unknown): r is JournalRecord {
  if (typeof r !== 'object' || r === null) return false;
  const o = r as Record<string, unknown>;
  if (typeof o.kh !== 'string' || !HEX16.test(o.kh) || !Number.isSafeInteger(o.at)) return false;
  if (o.t === 'mh_end') return typeof o.ok === 'boolean';
  if (typeof o.fh !== 'string' || !HEX16.test(o.fh) || typeof o.id !== 'string' || !Number.isSafeInteger(o.amt))
    return false;
  switch (o.t) {
    case 'pay':
      return (
        typeof o.ch === 'string' &&
        /^[0-9a-f]{64}$/.test(o.ch) &&
        typeof o.pos === 'string' &&
        /^[0-9]{1,19}$/.test(o.pos)
      );
    case 'refused':
      return typeof o.code === 'string';
    case 'mh':
      return typeof o.dest === 'string';
    default:
      return false;
  }
}
