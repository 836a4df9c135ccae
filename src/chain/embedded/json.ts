/**
 * JSON for the façade's answers. Core prints amounts as decimal numbers with 8 decimals
 * (`0.00010000`); JSON.stringify of a JS number cannot (it would print `0.0001`, or round large
 * values), so amounts travel as {@link BtcAmount} and are written from their satoshis exactly.
 */
import { satsToBtcString } from '../amounts.ts';

/** An amount to print as a Core BTC number. */
export class BtcAmount {
  constructor(readonly sats: bigint) {}
}

/** Shorthand for a BtcAmount of `sats` (number or bigint satoshis). */
export function btc(sats: number | bigint): BtcAmount {
  return new BtcAmount(typeof sats === 'bigint' ? sats : BigInt(sats));
}

/** Serializes a façade answer; BtcAmount values become bare decimal numbers. */
export function toJson(value: unknown): string {
  if (value instanceof BtcAmount) return satsToBtcString(value.sats);
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return `[${value.map(toJson).join(',')}]`;
  if (typeof value === 'object') {
    const parts: string[] = [];
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v === undefined) continue;
      parts.push(`${JSON.stringify(k)}:${toJson(v)}`);
    }
    return `{${parts.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
