/**
 * Who pays whom: a pattern draws a payer and a payee (two different treasuries, by index) for each payment.
 *
 * - uniform: any payer, any other treasury as payee; every channel is used both ways alike, so balances
 *   wander but do not drift.
 * - zipf: popular payees, as merchants are: the payee of rank k (a ranking fixed by the seed) is chosen with
 *   probability proportional to 1/k; payers uniform. Money drifts towards the popular ones.
 * - hub: one treasury (the first: the centre of a star) is on one side of every payment, like an exchange
 *   with deposits and withdrawals: half the payments it receives from a uniform payer, half it pays to a
 *   uniform payee.
 */
import { randomIndex, type Rand } from './random.ts';

export const PATTERNS = ['uniform', 'zipf', 'hub'] as const;
export type PatternName = (typeof PATTERNS)[number];

export type Pattern = (rand: Rand) => { payer: number; payee: number };

/** @throws Error when there are fewer than two treasuries (nobody to pay). */
export function makePattern(name: PatternName, treasuries: number, rand: Rand): Pattern {
  if (treasuries < 2) throw new Error('a stress run needs at least two treasuries');
  const other = (r: Rand, not: number) => {
    const i = randomIndex(r, treasuries - 1);
    return i >= not ? i + 1 : i;
  };
  if (name === 'uniform')
    return (r) => {
      const payer = randomIndex(r, treasuries);
      return { payer, payee: other(r, payer) };
    };
  if (name === 'hub')
    return (r) => {
      const leaf = other(r, 0);
      return r() < 0.5 ? { payer: leaf, payee: 0 } : { payer: 0, payee: leaf };
    };
  // zipf: ranks shuffled once by the seed, then cumulative weights 1/k.
  const ranked = Array.from({ length: treasuries }, (_, i) => i);
  for (let i = ranked.length - 1; i > 0; i--) {
    const j = randomIndex(rand, i + 1);
    [ranked[i], ranked[j]] = [ranked[j]!, ranked[i]!];
  }
  const cumulative: number[] = [];
  let sum = 0;
  for (let k = 1; k <= treasuries; k++) cumulative.push((sum += 1 / k));
  return (r) => {
    const x = r() * sum;
    const k = cumulative.findIndex((c) => x < c);
    const payee = ranked[k < 0 ? treasuries - 1 : k]!;
    return { payer: other(r, payee), payee };
  };
}
