/**
 * The load loop. Closed loop: each payer keeps `concurrency` payments in flight, taking its next one from
 * the sequence as soon as one is answered. Open loop: payments leave at `rate` per second in total,
 * whatever the answers; when the network answers slower than that, in-flight payments pile up to a bound
 * and the ones that cannot leave are counted as not offered (the report says the network fell behind).
 */
import { sendPayment, type PaymentRequest } from './pay.ts';
import type { Recorder } from './recorder.ts';
import type { Submitter } from './submit.ts';
import type { Treasury } from './target.ts';
import { PerPayerQueues, type PlannedPayment } from './workload.ts';

export type LoadMode = { kind: 'closed'; concurrency: number } | { kind: 'open'; rate: number };

export interface LoadOptions {
  treasuries: Treasury[];
  sequence: Iterator<PlannedPayment>;
  mode: LoadMode;
  /** Stop issuing after this long (ms); payments in flight are still awaited. */
  durationMs?: number;
  recorder: Recorder;
  /** Resolves when the run is to stop early (Ctrl-C). */
  interrupted: Promise<void>;
  /** A run's own prefix for idempotency keys: two runs never share a key. */
  keyPrefix: string;
  /**
   * `--no-keys`: payments carry no idempotency key. A payment whose outcome is not known then cannot be
   * asked about again (a second request would be a second payment): it stays in doubt.
   */
  noKeys?: boolean;
  /** How the payments leave: one request each, or grouped in batch requests (submit.ts). */
  submitter: Submitter;
}

export interface OpenLoopFigures {
  offered_per_s: number;
  issued: number;
  /** Payments due that could not leave because `maxInFlight` were already waiting. */
  not_offered: number;
  max_in_flight: number;
}

/**
 * Bound on payments waiting for an answer in the open loop, so a stalled network cannot exhaust memory.
 * Batched, a network answers thousands a second a few seconds after they leave: the bound is the closed
 * loop's most per payer, so that it is the network, not this bound, that falls behind.
 */
export const OPEN_LOOP_MAX_IN_FLIGHT = 50_000;

/** Each attempt its own key: a refused attempt changed nothing, and a key answers its first outcome for good. */
export function requestOf(
  o: Pick<LoadOptions, 'treasuries' | 'keyPrefix' | 'noKeys'>,
  p: PlannedPayment,
  attempt: number,
): PaymentRequest {
  if (o.noKeys) return { dest: o.treasuries[p.payee]!.id, amount_sat: p.amount };
  const key = `${o.keyPrefix}-${p.seq}${attempt > 0 ? `.${attempt}` : ''}`;
  return { dest: o.treasuries[p.payee]!.id, amount_sat: p.amount, idempotency_key: key };
}

/**
 * `channel_busy` (a multi-hop payment holds the channel) says "retry shortly" and changed nothing: the
 * payment is sent again, as a patient client would, up to this many times, a little later each time.
 */
export const BUSY_RETRIES = 10;

async function one(o: LoadOptions, p: PlannedPayment): Promise<void> {
  const t0 = performance.now();
  for (let attempt = 0; ; attempt++) {
    const outcome = await o.submitter.send(p.payer, p.payee, requestOf(o, p, attempt));
    if (outcome.kind === 'failed' && outcome.code === 'channel_busy' && attempt < BUSY_RETRIES) {
      o.recorder.busyRetries++;
      await new Promise((r) => setTimeout(r, 5 * (attempt + 1) + Math.random() * 10 * (attempt + 1)));
      continue;
    }
    o.recorder.record(p, outcome, performance.now() - t0, attempt);
    // The payer's node is down (killed by --chaos): its payers pause before their next payment, as a client would.
    if (outcome.kind === 'failed' && outcome.code === 'connection_refused')
      await new Promise((r) => setTimeout(r, 100));
    return;
  }
}

/** Runs the load until the sequence ends, the duration passes or the run is interrupted. */
export async function runLoad(o: LoadOptions): Promise<OpenLoopFigures | null> {
  let stop = false;
  void o.interrupted.then(() => {
    stop = true;
  });
  const deadline = o.durationMs === undefined ? Infinity : performance.now() + o.durationMs;
  const over = () => stop || performance.now() >= deadline;
  if (o.mode.kind === 'closed') {
    await closedLoop(o, o.mode.concurrency, over);
    return null;
  }
  return openLoop(o, o.mode.rate, over);
}

async function closedLoop(o: LoadOptions, concurrency: number, over: () => boolean): Promise<void> {
  const queues = new PerPayerQueues(o.sequence, o.treasuries.length);
  // A payer whose next payment is beyond the look-ahead waits for any answer, then looks again.
  let wake: () => void = () => undefined;
  let answered = new Promise<void>((r) => (wake = r));
  const answer = () => {
    const w = wake;
    answered = new Promise<void>((r) => (wake = r));
    w();
  };
  const worker = async (payer: number) => {
    while (!over()) {
      const p = queues.nextFor(payer);
      if (p === null) {
        if (queues.exhaustedFor(payer)) return;
        await answered;
        continue;
      }
      await one(o, p);
      answer();
    }
  };
  const workers: Array<Promise<void>> = [];
  for (let payer = 0; payer < o.treasuries.length; payer++)
    for (let i = 0; i < concurrency; i++) workers.push(worker(payer));
  // A worker waiting for the look-ahead must not outlive the run: wake them all once it is over.
  const ticker = setInterval(() => over() && answer(), 100);
  await Promise.all(workers);
  clearInterval(ticker);
}

async function openLoop(o: LoadOptions, rate: number, over: () => boolean): Promise<OpenLoopFigures> {
  const figures: OpenLoopFigures = { offered_per_s: rate, issued: 0, not_offered: 0, max_in_flight: 0 };
  const inFlight = new Set<Promise<void>>();
  const start = performance.now();
  let due = 0;
  let ended = false;
  while (!over() && !ended) {
    const shouldHave = Math.floor(((performance.now() - start) / 1000) * rate);
    for (; due < shouldHave; due++) {
      if (inFlight.size >= OPEN_LOOP_MAX_IN_FLIGHT) {
        figures.not_offered++;
        continue;
      }
      const next = o.sequence.next();
      if (next.done) {
        ended = true;
        break;
      }
      figures.issued++;
      const sent = one(o, next.value).finally(() => inFlight.delete(sent));
      inFlight.add(sent);
    }
    figures.max_in_flight = Math.max(figures.max_in_flight, inFlight.size);
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(inFlight);
  return figures;
}

/**
 * Asks again, with the same idempotency key, about every payment whose outcome is unknown: the node
 * answers the first attempt's outcome (or, for one that never arrived, makes it, once).
 */
export async function resolveUnknown(o: Pick<LoadOptions, 'treasuries' | 'keyPrefix' | 'recorder'>): Promise<void> {
  const pending = [...o.recorder.unknown.values()];
  const batch = 64;
  for (let i = 0; i < pending.length; i += batch)
    await Promise.all(
      pending.slice(i, i + batch).map(async ({ planned, attempt }) => {
        const outcome = await sendPayment(o.treasuries[planned.payer]!.api, requestOf(o, planned, attempt));
        o.recorder.record(planned, outcome, null, attempt);
      }),
    );
}
