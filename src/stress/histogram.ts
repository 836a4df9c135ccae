/**
 * The latency distribution of a stress run's succeeded payments as a histogram on log-spaced buckets (four a
 * decade: 1, 1.78, 3.16, 5.62, 10 ms, …), from the bucket below the fastest payment to the one above the
 * slowest. The report carries it (`latency_histogram`) and its chart is drawn from it (chart.ts).
 */

export interface LatencyHistogram {
  /** Bucket edges in ms, ascending: bucket i holds the latencies in [bounds_ms[i], bounds_ms[i + 1]). */
  bounds_ms: number[];
  /** Payments per bucket (one fewer than the edges); they add up to the succeeded payments timed. */
  counts: number[];
}

/** Buckets per decade of latency. */
export const BUCKETS_PER_DECADE = 4;
/** Latencies below this (ms) count in the lowest bucket, whose lower edge it is at least. */
const FLOOR_MS = 0.01;

/** The edge k of the log scale, rounded to 4 significant digits (the same edge every run). */
function edge(k: number): number {
  return Number((10 ** (k / BUCKETS_PER_DECADE)).toPrecision(4));
}

export function latencyHistogram(samples: ArrayLike<number>): LatencyHistogram {
  if (samples.length === 0) return { bounds_ms: [], counts: [] };
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < samples.length; i++) {
    const x = Math.max(FLOOR_MS, samples[i]!);
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  let k0 = Math.floor(Math.log10(lo) * BUCKETS_PER_DECADE);
  while (edge(k0) > lo) k0--; // rounding may put an edge just above the fastest
  let k1 = k0 + 1;
  while (edge(k1) <= hi) k1++;
  const bounds = Array.from({ length: k1 - k0 + 1 }, (_, j) => edge(k0 + j));
  const counts = new Array<number>(bounds.length - 1).fill(0);
  for (let i = 0; i < samples.length; i++) {
    const x = Math.max(FLOOR_MS, samples[i]!);
    let b = Math.min(counts.length - 1, Math.max(0, Math.floor(Math.log10(x) * BUCKETS_PER_DECADE) - k0));
    while (b > 0 && x < bounds[b]!) b--;
    while (b < counts.length - 1 && x >= bounds[b + 1]!) b++;
    counts[b]!++;
  }
  return { bounds_ms: bounds, counts };
}
