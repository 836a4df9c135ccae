/**
 * Payment amounts for a stress run: a fixed amount, or draws from a log-normal shaped like small Bitcoin
 * payments on a payment-channel network.
 *
 * The fit: a routing node operator's published figures for three months of routed Lightning payments
 * (Diamond Hands node, "Lightning Routing Report", January 2022: median 47,298 sat, mean 103,962 sat). For a
 * log-normal the median is e^μ and the mean e^(μ + σ²/2), so μ = ln 47,298 ≈ 10.764 and
 * σ = √(2 ln(103,962 / 47,298)) ≈ 1.255. Draws above MAX_SMALL_PAYMENT_SAT are drawn again: Teechain's own
 * evaluation replayed only Bitcoin payments under about $100, and the cap keeps the tail from draining a
 * channel in a few payments. River's Lightning report (August 2023, mean 44,700 sat) puts the same kind of
 * traffic within a factor of about two. docs/stress.md says the same, with what the fit leaves out.
 */
import { standardNormal, type Rand } from './random.ts';

export const SMALL_PAYMENT_MEDIAN_SAT = 47_298;
export const SMALL_PAYMENT_MEAN_SAT = 103_962;
export const MAX_SMALL_PAYMENT_SAT = 1_000_000;
const MU = Math.log(SMALL_PAYMENT_MEDIAN_SAT);
const SIGMA = Math.sqrt(2 * Math.log(SMALL_PAYMENT_MEAN_SAT / SMALL_PAYMENT_MEDIAN_SAT));

/** Draws whole satoshis, at least 1. */
export type AmountSource = (rand: Rand) => number;

export function fixedAmount(sat: number): AmountSource {
  return () => sat;
}

/** The log-normal of small payments above, in whole satoshis within [1, MAX_SMALL_PAYMENT_SAT]. */
export function smallPaymentAmount(): AmountSource {
  return (rand) => {
    for (;;) {
      const sat = Math.round(Math.exp(MU + SIGMA * standardNormal(rand)));
      if (sat >= 1 && sat <= MAX_SMALL_PAYMENT_SAT) return sat;
    }
  };
}

/** The distribution's parameters, for the report. */
export const SMALL_PAYMENT_FIT = {
  distribution: 'log-normal',
  mu: Math.round(MU * 1000) / 1000,
  sigma: Math.round(SIGMA * 1000) / 1000,
  max_sat: MAX_SMALL_PAYMENT_SAT,
  source: 'Diamond Hands Lightning routing report, Jan 2022: median 47,298 sat, mean 103,962 sat',
};
