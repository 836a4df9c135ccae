// run-tests lane: in-process
/**
 * Threshold sharing of deposit keys (src/enclave/committee/shares.ts): any m of n shares rebuild the secret, no
 * m-1 do, every split draws fresh randomness, and a share's bytes carry nothing of the secret (they look
 * uniformly random whatever the secret is). Secrets are drawn from a seeded PRNG (TEST_SEED replays).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { combineShares, splitSecret } from '../src/enclave/committee/shares.ts';
import { bytesToHex } from '../enclave-sim/encoding.ts';
import { prng, randBytes, testSeed } from './helpers/seeded.ts';

const seed = testSeed('committee.shares');
const rand = prng(seed);

/** Every k-element subset of [0, n). */
function subsets(n: number, k: number): number[][] {
  if (k === 0) return [[]];
  if (n < k) return [];
  return [...subsets(n - 1, k), ...subsets(n - 1, k - 1).map((s) => [...s, n - 1])];
}

/** Pearson's chi-square statistic of a byte histogram against the uniform distribution. */
function chiSquare(bytes: Uint8Array[]): number {
  const counts = new Array<number>(256).fill(0);
  let total = 0;
  for (const b of bytes)
    for (const v of b) {
      counts[v]!++;
      total++;
    }
  const expected = total / 256;
  return counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
}

test('Shamir 3-of-5: every 3, 4 or 5 shares rebuild the secret; no 2 shares do', async () => {
  for (let round = 0; round < 3; round++) {
    const secret = randBytes(rand, 32);
    const shares = await splitSecret(secret, 5, 3);
    assert.equal(shares.length, 5);
    for (const k of [3, 4, 5]) {
      for (const pick of subsets(5, k)) {
        assert.deepEqual(
          await combineShares(pick.map((i) => shares[i]!)),
          secret,
          `shares ${pick} rebuild the secret (seed ${seed})`,
        );
      }
    }
    for (const pick of subsets(5, 2)) {
      const rebuilt = await combineShares(pick.map((i) => shares[i]!));
      assert.notEqual(
        bytesToHex(rebuilt),
        bytesToHex(secret),
        `shares ${pick} (below the threshold) must not rebuild the secret (seed ${seed})`,
      );
    }
  }
  await assert.rejects(combineShares([(await splitSecret(randBytes(rand, 32), 3, 2))[0]!]), /at least two/);
  await assert.rejects(splitSecret(randBytes(rand, 32), 3, 1), /2 ≤ m ≤ n/);
  await assert.rejects(splitSecret(randBytes(rand, 32), 2, 3), /2 ≤ m ≤ n/);
});

test('Shamir: two splits of the same secret share nothing, and no share contains the secret', async () => {
  const secret = randBytes(rand, 32);
  const first = await splitSecret(secret, 5, 3);
  const second = await splitSecret(secret, 5, 3);
  const hex = new Set<string>();
  for (const s of [...first, ...second]) {
    const y = bytesToHex(s.subarray(0, secret.length));
    assert.notEqual(y, bytesToHex(secret), `a share's value is the secret itself (seed ${seed})`);
    hex.add(y);
  }
  assert.equal(hex.size, 10, `the ten shares of two splits of one secret are all distinct (seed ${seed})`);
  // Mixing shares of two splits rebuilds nothing: each split drew its own polynomial. Each split draws its
  // own x coordinates too (a share's last byte), so the third share is one whose x the first two lack:
  // combining needs distinct x, and a collision across splits is otherwise a 1-in-100 chance.
  const x = (share: Uint8Array) => share[share.length - 1];
  const third = second.find((s) => x(s) !== x(first[0]!) && x(s) !== x(first[1]!))!;
  const mixed = await combineShares([first[0]!, first[1]!, third]);
  assert.notEqual(
    bytesToHex(mixed),
    bytesToHex(secret),
    `shares from two different splits rebuilt the secret (seed ${seed})`,
  );
});

test('Shamir: share bytes are uniformly distributed whatever the secret (a share reveals nothing)', async () => {
  // 120 splits x 3 shares x 32 bytes = 11 520 bytes per secret: a chi-square over 256 byte values has
  // 255 degrees of freedom (mean 255, sd ~22.6); 400 is > 6 sd above the mean. A secret leaking into
  // its shares (all-zero and all-0xff secrets) would push the statistic into the thousands.
  for (const secret of [new Uint8Array(32), new Uint8Array(32).fill(0xff), randBytes(rand, 32)]) {
    const values: Uint8Array[] = [];
    for (let i = 0; i < 120; i++) {
      for (const s of await splitSecret(secret, 3, 2)) values.push(s.subarray(0, secret.length));
    }
    const chi = chiSquare(values);
    assert.ok(
      chi < 400,
      `share bytes of secret ${bytesToHex(secret).slice(0, 8)}… are far from uniform: chi-square ${chi.toFixed(1)} (seed ${seed})`,
    );
  }
});
