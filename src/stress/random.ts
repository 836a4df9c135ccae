/**
 * Seeded randomness for a stress run: the same seed gives the same sequence of payments, so a run that
 * found something can be replayed exactly. xoshiro128** (Blackman and Vigna, 2018) seeded through
 * splitmix32; fast, 32-bit, and plenty for choosing payers, payees and amounts.
 */

export type Rand = () => number;

/** A generator of numbers in [0, 1), the same sequence for the same seed. */
export function seededRandom(seed: number): Rand {
  let x = seed >>> 0;
  const splitmix = () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = splitmix();
  return () => {
    const result = Math.imul(rotl(Math.imul(b, 5) >>> 0, 7), 9) >>> 0;
    const t = (b << 9) >>> 0;
    c = (c ^ a) >>> 0;
    d = (d ^ b) >>> 0;
    b = (b ^ c) >>> 0;
    a = (a ^ d) >>> 0;
    c = (c ^ t) >>> 0;
    d = rotl(d, 11);
    return result / 4294967296;
  };
}

function rotl(v: number, k: number): number {
  return ((v << k) | (v >>> (32 - k))) >>> 0;
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
