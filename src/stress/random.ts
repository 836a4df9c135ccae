/**
 * Seeded randomness: the same seed gives the same sequence, so a stress run (or a randomised test, through
 * test/helpers/seeded.ts) that found something replays exactly. mulberry32: fast, 32-bit, and plenty for
 * choosing payers, payees, amounts and interleavings; not for anything secret.
 */

export type Rand = () => number;

/** A generator of numbers in [0, 1), the same sequence for the same seed. */
export function seededRandom(seed: number): Rand {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [0, n). */
export function randomIndex(rand: Rand, n: number): number {
  return Math.min(n - 1, Math.floor(rand() * n));
}

/** A standard normal deviate (Box–Muller; the second deviate of the pair is dropped to keep the stream simple). */
export function standardNormal(rand: Rand): number {
  const u = 1 - rand(); // (0, 1]: log(0) never happens
  const v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
