/**
 * Exact conversion between Bitcoin Core's BTC amounts (JSON numbers with up to 8 decimals) and
 * integer satoshis (bigint). Never multiplies floats: a number goes through its 8-decimal string form.
 */

/** Satoshis in one bitcoin. */
export const SATS_PER_BTC = 100_000_000n;

/** The most satoshis that can ever exist (21 million BTC). */
export const MAX_MONEY_SATS = 21_000_000n * SATS_PER_BTC;

const DECIMAL_BTC = /^(-?)(\d+)(?:\.(\d{1,8}))?$/;

/**
 * Converts a BTC amount to satoshis exactly. A number must be finite and have at most 8 decimal places
 * (as every amount Core prints does); a string must be a plain decimal with at most 8 decimals.
 * Throws a RangeError naming `field` otherwise.
 */
export function btcToSats(btc: number | string, field = 'amount'): bigint {
  let text: string;
  if (typeof btc === 'number') {
    if (!Number.isFinite(btc)) throw new RangeError(`${field} must be a finite number of BTC (got ${btc})`);
    text = btc.toFixed(8);
    // toFixed rounds; a value with more than 8 decimals would be silently changed, so refuse it.
    if (Number(text) !== btc) throw new RangeError(`${field} has more than 8 decimal places (got ${btc})`);
  } else if (typeof btc === 'string') {
    text = btc.trim();
  } else {
    throw new RangeError(`${field} must be a number or decimal string of BTC (got ${typeof btc})`);
  }
  const m = DECIMAL_BTC.exec(text);
  if (!m) throw new RangeError(`${field} is not a decimal BTC amount with at most 8 decimals: ${JSON.stringify(text)}`);
  const sats = BigInt(m[2] as string) * SATS_PER_BTC + BigInt((m[3] ?? '').padEnd(8, '0'));
  return m[1] === '-' ? -sats : sats;
}

/** Satoshis as a BTC decimal string with exactly 8 decimals, e.g. 1000n → "0.00001000". */
export function satsToBtcString(sats: bigint): string {
  if (typeof sats !== 'bigint') throw new RangeError('sats must be a bigint');
  const neg = sats < 0n;
  const abs = neg ? -sats : sats;
  const whole = abs / SATS_PER_BTC;
  const frac = (abs % SATS_PER_BTC).toString().padStart(8, '0');
  return `${neg ? '-' : ''}${whole}.${frac}`;
}

/**
 * Satoshis as a JS number of BTC, for JSON-RPC parameters. Exact in the sense that
 * `btcToSats(satsToBtcNumber(x)) === x` for every amount up to MAX_MONEY_SATS.
 */
export function satsToBtcNumber(sats: bigint): number {
  return Number(satsToBtcString(sats));
}

/** Throws a RangeError naming `field` unless `sats` is a bigint in 0..MAX_MONEY_SATS (or min..MAX). */
export function assertMoneyRange(sats: bigint, field: string, min = 0n): void {
  if (typeof sats !== 'bigint' || sats < min || sats > MAX_MONEY_SATS) {
    throw new RangeError(`${field} must be a bigint number of satoshis in ${min}..${MAX_MONEY_SATS}`);
  }
}
