/**
 * Threshold secret sharing of the keys a committee must keep but no single member may hold alone:
 * the private keys a channel counterparty hands over for its deposits (docs/protocol/committees.md).
 *
 * Shamir's scheme over GF(256) from the shamir-secret-sharing package (audited, small, no
 * dependencies); this module only fixes the shapes we use and refuses the degenerate cases the
 * package would otherwise reject with a less useful message.
 */
import { combine, split } from 'shamir-secret-sharing';

/** Splits `secret` into `n` shares, any `m` of which rebuild it (2 ≤ m ≤ n ≤ 255). */
export async function splitSecret(secret: Uint8Array, n: number, m: number): Promise<Uint8Array[]> {
  if (!Number.isInteger(n) || !Number.isInteger(m) || m < 2 || m > n || n > 255) {
    throw new RangeError(`threshold sharing needs 2 ≤ m ≤ n ≤ 255, got ${m}-of-${n}`);
  }
  return split(secret, n, m);
}

/** Rebuilds a secret from shares. With fewer than the threshold the result is unrelated to the secret. */
export async function combineShares(shares: Uint8Array[]): Promise<Uint8Array> {
  if (shares.length < 2) throw new RangeError('at least two shares are needed');
  return combine(shares);
}
