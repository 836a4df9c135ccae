/**
 * The workload: one sequence of payments (payer, payee, amount) fixed by the seed. A closed loop takes
 * them per payer, so a slow payer does not hold the others back; what each payer pays, and in which order,
 * is still that sequence's, and `--payments N` pays exactly its first N.
 */
import type { AmountSource } from './amounts.ts';
import { makePattern, type PatternName } from './patterns.ts';
import { seededRandom } from './random.ts';

export interface PlannedPayment {
  /** Position in the sequence, from 0: also the idempotency key's suffix. */
  seq: number;
  payer: number;
  payee: number;
  amount: number;
}

export interface WorkloadOptions {
  seed: number;
  pattern: PatternName;
  treasuries: number;
  amount: AmountSource;
  /** The sequence ends after this many; unbounded when absent. */
  limit?: number;
}

/** The sequence itself, lazily. */
export function* paymentSequence(o: WorkloadOptions): Generator<PlannedPayment> {
  const rand = seededRandom(o.seed);
  const pattern = makePattern(o.pattern, o.treasuries, rand);
  for (let seq = 0; o.limit === undefined || seq < o.limit; seq++) {
    const { payer, payee } = pattern(rand);
    yield { seq, payer, payee, amount: o.amount(rand) };
  }
}

/** How far the sequence may be read ahead for one payer while looking for another's next payment. */
const LOOKAHEAD = 20_000;

/**
 * Per-payer queues over the sequence: `nextFor(p)` is p's next payment in sequence order. Payments of
 * other payers read on the way wait in their queues, at most LOOKAHEAD in all; past that, `nextFor`
 * answers null until those are taken (the payer then waits for the slower ones).
 */
export class PerPayerQueues {
  private readonly queues: PlannedPayment[][];
  private buffered = 0;
  private done = false;

  constructor(
    private readonly source: Iterator<PlannedPayment>,
    treasuries: number,
  ) {
    this.queues = Array.from({ length: treasuries }, () => []);
  }

  nextFor(payer: number): PlannedPayment | null {
    const own = this.queues[payer]!;
    while (own.length === 0 && !this.done && this.buffered < LOOKAHEAD) {
      const r = this.source.next();
      if (r.done) {
        this.done = true;
        break;
      }
      this.queues[r.value.payer]!.push(r.value);
      this.buffered++;
    }
    const p = own.shift() ?? null;
    if (p) this.buffered--;
    return p;
  }

  /** Nothing left for anyone. */
  exhausted(): boolean {
    return this.done && this.buffered === 0;
  }

  /** Nothing left for this payer, now or later. */
  exhaustedFor(payer: number): boolean {
    return this.done && this.queues[payer]!.length === 0;
  }
}
