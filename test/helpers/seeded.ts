/**
 * Seeded randomness for tests: a failing randomised test replays exactly from its seed.
 *
 *   const seed = testSeed('my test');      // TEST_SEED=<n> replays; otherwise a fresh seed, printed
 *   const rand = prng(seed);               // () => number in [0, 1)
 */
import { randomIndex, seededRandom } from '../../src/stress/random.ts';

/**
 * The seed for a randomised test: the first of the given environment variables that is set (TEST_SEED is
 * always the last one tried), or a fresh random one. It is printed with the test's name, so a failure replays.
 */
export function testSeed(name = 'test', ...envNames: string[]): number {
  for (const env of [...envNames, 'TEST_SEED']) {
    const raw = process.env[env];
    if (raw !== undefined && raw !== '') {
      const seed = Number(raw);
      if (!Number.isInteger(seed)) throw new Error(`${env}=${raw} is not an integer seed`);
      process.stdout.write(`# ${name}: seed ${seed} (from ${env})\n`);
      return seed >>> 0;
    }
  }
  const seed = Math.floor(Math.random() * 2 ** 31);
  process.stdout.write(`# ${name}: seed ${seed} (replay with ${[...envNames, 'TEST_SEED'][0]}=${seed})\n`);
  return seed;
}

/** A seeded PRNG: numbers in [0, 1), the same sequence for the same seed (the one stress runs use). */
export const prng = seededRandom;

/** An integer in [0, n) drawn from rand. */
export const randInt = randomIndex;

/** n bytes drawn from rand. */
export function randBytes(rand: () => number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => randInt(rand, 256));
}
