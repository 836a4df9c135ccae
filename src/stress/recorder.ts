/**
 * What a stress run saw: every payment's outcome as the API answered it, latencies of the succeeded ones,
 * counts per second (the throughput over time) and per failure code, and per payer and payee what the
 * checks after the load compare with the nodes' own records.
 */
import type { Outcome } from './pay.ts';
import type { PlannedPayment } from './workload.ts';

export interface SecondCount {
  /** Seconds since the load started. */
  t: number;
  ok: number;
  failed: number;
}

export class Recorder {
  readonly started = performance.now();
  attempted = 0;
  ok = 0;
  readonly failedByCode = new Map<string, number>();
  /** Payments still unknown after being asked again, by their last code: they may or may not have moved money. */
  readonly inDoubtByCode = new Map<string, number>();
  /** Payments whose outcome is still not known (each `unknown` answer, until it is asked again). */
  readonly unknown = new Map<number, { planned: PlannedPayment; code: string; attempt: number }>();
  /** Attempts refused with channel_busy and sent again (load.ts BUSY_RETRIES). */
  busyRetries = 0;
  /** Succeeded payments per payer: payment id → amount, for the payer's history. */
  readonly succeededByPayer: Array<Map<string, number>>;
  /** Succeeded payments per payer: payment id → the planned payment and the attempt (its key) it came from. */
  readonly succeededKeys: Array<Map<string, { planned: PlannedPayment; attempt: number }>>;
  /** Satoshis per payee: acknowledged, and in doubt (unknown to the end). */
  readonly paidTo: bigint[];
  readonly doubtTo: bigint[];
  /** Satoshis per payer of its succeeded payments, and the routing fees they reported. */
  readonly paidBy: bigint[];
  readonly feesBy: bigint[];
  /** Succeeded payments that paid a routing fee: the fee and the route it went to. */
  readonly feeRoutes: Array<{ payer: number; payee: number; fee: number; route: string[] }> = [];
  /** The payments still unknown after the last attempt to learn them (settleDoubts). */
  readonly doubts: PlannedPayment[] = [];
  /** Called on every succeeded payment with when (ms since the load started) its first attempt left. */
  onSucceeded?: (p: PlannedPayment, outcome: Extract<Outcome, { kind: 'succeeded' }>, sentAtMs: number) => void;
  private latencies = new Float64Array(1 << 16);
  private latencyCount = 0;
  readonly seconds: SecondCount[] = [];
  /** Latencies of the current second, for the live line. */
  recent: number[] = [];

  constructor(treasuries: number) {
    this.succeededByPayer = Array.from({ length: treasuries }, () => new Map());
    this.succeededKeys = Array.from({ length: treasuries }, () => new Map());
    this.paidBy = Array.from({ length: treasuries }, () => 0n);
    this.feesBy = Array.from({ length: treasuries }, () => 0n);
    this.paidTo = Array.from({ length: treasuries }, () => 0n);
    this.doubtTo = Array.from({ length: treasuries }, () => 0n);
  }

  elapsedS(): number {
    return (performance.now() - this.started) / 1000;
  }

  /**
   * A payment's final answer; `ms` is from its first attempt to it, `attempt` the attempt (and so the
   * idempotency key) it came from. A payment asked again after the load is passed with ms null.
   */
  record(p: PlannedPayment, outcome: Outcome, ms: number | null, attempt = 0): void {
    if (ms !== null) this.attempted++;
    else this.unknown.delete(p.seq);
    if (outcome.kind === 'unknown') {
      this.unknown.set(p.seq, { planned: p, code: outcome.code, attempt });
      return;
    }
    const second = this.second();
    if (outcome.kind === 'succeeded') {
      this.ok++;
      second.ok++;
      this.succeededByPayer[p.payer]!.set(outcome.paymentId, p.amount);
      this.succeededKeys[p.payer]!.set(outcome.paymentId, { planned: p, attempt });
      this.paidTo[p.payee]! += BigInt(p.amount);
      this.paidBy[p.payer]! += BigInt(p.amount);
      const fee = outcome.feeSat ?? 0;
      this.feesBy[p.payer]! += BigInt(fee);
      if (fee > 0) this.feeRoutes.push({ payer: p.payer, payee: p.payee, fee, route: outcome.route ?? [] });
      if (ms !== null) this.latency(ms);
      if (ms !== null) this.onSucceeded?.(p, outcome, performance.now() - this.started - ms);
    } else {
      second.failed++;
      this.failedByCode.set(outcome.code, (this.failedByCode.get(outcome.code) ?? 0) + 1);
    }
  }

  /** After the last attempt to learn them: what is still unknown is in doubt, by its last code. */
  settleDoubts(): void {
    for (const { planned, code } of this.unknown.values()) {
      this.doubts.push(planned);
      this.doubtTo[planned.payee]! += BigInt(planned.amount);
      this.inDoubtByCode.set(code, (this.inDoubtByCode.get(code) ?? 0) + 1);
    }
  }

  failed(): number {
    let n = 0;
    for (const c of this.failedByCode.values()) n += c;
    return n;
  }

  latencySamples(): Float64Array {
    return this.latencies.subarray(0, this.latencyCount);
  }

  private latency(ms: number): void {
    if (this.latencyCount === this.latencies.length) {
      const grown = new Float64Array(this.latencies.length * 2);
      grown.set(this.latencies);
      this.latencies = grown;
    }
    this.latencies[this.latencyCount++] = ms;
    this.recent.push(ms);
  }

  private second(): SecondCount {
    const t = Math.floor(this.elapsedS());
    while (this.seconds.length <= t) this.seconds.push({ t: this.seconds.length, ok: 0, failed: 0 });
    return this.seconds[t]!;
  }
}
