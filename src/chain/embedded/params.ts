/**
 * Parameter parsing with Core's errors: wrong JSON types answer -3 ("JSON value of type X is not of
 * expected type Y"), malformed hashes/hex answer -8, like Core's RPCTypeCheck/ParseHashV.
 */
import { RpcCode } from '../rpc-errors.ts';
import { MAX_MONEY_SATS, btcToSats } from '../amounts.ts';
import { RpcFailure, invalidParameter } from './errors.ts';

type JsonType = 'null' | 'bool' | 'number' | 'string' | 'array' | 'object';

function jsonType(v: unknown): JsonType {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return 'number';
  if (typeof v === 'string') return 'string';
  if (Array.isArray(v)) return 'array';
  return 'object';
}

function typeError(v: unknown, expected: JsonType): RpcFailure {
  return new RpcFailure(RpcCode.TYPE_ERROR, `JSON value of type ${jsonType(v)} is not of expected type ${expected}`);
}

/** True when the parameter was omitted (or passed as null, which Core treats the same for optional ones). */
export function absent(v: unknown): boolean {
  return v === undefined || v === null;
}

export function str(v: unknown): string {
  if (typeof v !== 'string') throw typeError(v, 'string');
  return v;
}

export function num(v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw typeError(v, 'number');
  return v;
}

/** An integer parameter (Core reads numbers with getInt, which refuses fractions). */
export function int(v: unknown, name: string): number {
  const n = num(v);
  if (!Number.isSafeInteger(n)) throw invalidParameter(`${name} must be an integer`);
  return n;
}

export function bool(v: unknown): boolean {
  if (typeof v !== 'boolean') throw typeError(v, 'bool');
  return v;
}

export function arr(v: unknown): unknown[] {
  if (!Array.isArray(v)) throw typeError(v, 'array');
  return v;
}

/** Core's verbosity parameters accept a bool (false/true = 0/1) or a number. */
export function verbosity(v: unknown, fallback: number): number {
  if (absent(v)) return fallback;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  throw typeError(v, 'number');
}

/** A 32-byte hash in display hex (ParseHashV): returns it lower-cased. */
export function hash(v: unknown, name: string): string {
  const s = str(v);
  if (s.length !== 64) throw invalidParameter(`${name} must be of length 64 (not ${s.length}, for '${s}')`);
  if (!/^[0-9a-fA-F]{64}$/.test(s)) throw invalidParameter(`${name} must be hexadecimal string (not '${s}')`);
  return s.toLowerCase();
}

/** A BTC amount parameter (number or string), exactly, as satoshis. Core: -3 "Invalid amount" / "Amount out of range". */
export function amountSats(v: unknown): bigint {
  if (typeof v !== 'number' && typeof v !== 'string') throw typeError(v, 'number');
  let sats: bigint;
  try {
    sats = btcToSats(v);
  } catch {
    throw new RpcFailure(RpcCode.TYPE_ERROR, 'Invalid amount');
  }
  if (sats < 0n || sats > MAX_MONEY_SATS) throw new RpcFailure(RpcCode.TYPE_ERROR, 'Amount out of range');
  return sats;
}

/** A fee rate given in BTC/kvB, as satoshis per 1000 virtual bytes. */
export function feeRateSatPerKvb(v: unknown): bigint {
  return amountSats(v);
}
