/**
 * How big a bench run is. Three modes: `tiny` (the test suite's smoke run: every scenario, a handful of
 * payments), `quick` (a couple of minutes, one run each) and `full` (the published figures, median of 3).
 */
import { DEFAULT_PROMOTION_TIMEOUT_MS } from '../node/treasury-node.ts';

export type Mode = 'tiny' | 'quick' | 'full';

/** Payments per run of each scenario family, and which variants run. */
export interface Sizes {
  runs: number;
  multihop: number;
  /** Committee lengths (processes per side). */
  committee: number[];
  committeeN: number;
  unbatched: number;
  pipelined: number;
  batched: number;
  both: number;
  rest: number;
  /** Numbers of channel pairs loaded at once. */
  pairs: number[];
  pairN: number;
  ln: number;
  lnBatched: number;
  ldk: number;
  ldkPipelined: number;
}

export const SIZES: Record<Mode, Sizes> = {
  tiny: {
    runs: 1,
    multihop: 10,
    committee: [2],
    committeeN: 40,
    unbatched: 20,
    pipelined: 200,
    batched: 400,
    both: 200,
    rest: 100,
    pairs: [1],
    pairN: 200,
    ln: 20,
    lnBatched: 100,
    ldk: 5,
    ldkPipelined: 40,
  },
  quick: {
    runs: 1,
    multihop: 100,
    committee: [1, 2, 3, 5],
    committeeN: 2_000,
    unbatched: 400,
    pipelined: 30_000,
    batched: 60_000,
    both: 20_000,
    rest: 2_000,
    pairs: [1, 2],
    pairN: 20_000,
    ln: 200,
    lnBatched: 3_000,
    ldk: 50,
    ldkPipelined: 500,
  },
  full: {
    runs: 3,
    multihop: 300,
    committee: [1, 2, 3, 5],
    committeeN: 20_000,
    unbatched: 2_000,
    pipelined: 150_000,
    batched: 300_000,
    both: 100_000,
    rest: 10_000,
    pairs: [1, 2, 4],
    pairN: 100_000,
    ln: 1_000,
    lnBatched: 20_000,
    ldk: 300,
    ldkPipelined: 2_000,
  },
};

const DEFAULT_BATCHES: Record<Mode, number[]> = { tiny: [10], quick: [100, 1000], full: [10, 100, 1000] };

/** A run's shape: the mode's sizes, with the repeat count, batch sizes and pair counts the flags override. */
export interface BenchConfig {
  mode: Mode;
  sizes: Sizes;
  /** Runs per scenario; the row reports their median. */
  runs: number;
  /** Batch sizes of the batched channel and Lightning-model scenarios. */
  batches: number[];
  pairs: number[];
  /**
   * The promotion figure's --promotion-timeout-ms: how long the backups of the killed primary wait before
   * they take over (the node's default, 5,000 ms, unless `--promotion-timeout-ms` says otherwise).
   */
  promotionTimeoutMs: number;
}

export interface ConfigFlags {
  tiny?: boolean;
  quick?: boolean;
  runs?: string;
  batch?: string;
  pairs?: string;
  'promotion-timeout-ms'?: string;
}

/** A bench flag that cannot be run as given: the bench prints the message in one line and exits 2. */
export class BenchUsageError extends Error {}

function positive(flag: string, text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n <= 0)
    throw new BenchUsageError(`--${flag} wants a positive whole number, not "${text}"`);
  return n;
}

const numbers = (flag: string, list: string) => list.split(',').map((item) => positive(flag, item));

export function benchConfig(flags: ConfigFlags): BenchConfig {
  if (flags.tiny && flags.quick) throw new BenchUsageError('--tiny and --quick are two sizes: pick one');
  const mode: Mode = flags.tiny ? 'tiny' : flags.quick ? 'quick' : 'full';
  const sizes = SIZES[mode];
  return {
    mode,
    sizes,
    runs: flags.runs !== undefined ? positive('runs', flags.runs) : sizes.runs,
    batches: flags.batch !== undefined ? numbers('batch', flags.batch) : DEFAULT_BATCHES[mode],
    pairs: flags.pairs !== undefined ? numbers('pairs', flags.pairs) : sizes.pairs,
    promotionTimeoutMs:
      flags['promotion-timeout-ms'] !== undefined
        ? positive('promotion-timeout-ms', flags['promotion-timeout-ms'])
        : DEFAULT_PROMOTION_TIMEOUT_MS,
  };
}
