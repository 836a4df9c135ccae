/**
 * The quote format and its signed message. Enclave-safe (no Node-only imports), so enclave programs can
 * put `QuoteSchema` in their interfaces and verify their peers' quotes inside the enclave.
 */
import { Type, type Static } from '@sinclair/typebox';
import { sha256 } from '@noble/hashes/sha2.js';
import { hexToBytes, lengthPrefixed, utf8ToBytes } from './encoding.ts';

const Hex = (bytes: number) => Type.String({ pattern: `^[0-9a-f]{${bytes * 2}}$` });

/**
 * A quote: the attestation service's signature over (measurement, reportData, nonce, debug, platformId).
 * All binary fields are lower-case hex, so a quote survives JSON (TCP, REST) unchanged.
 */
export const QuoteSchema = Type.Object(
  {
    version: Type.Literal(1),
    measurement: Hex(32),
    reportData: Hex(32),
    nonce: Type.String({ pattern: '^([0-9a-f]{2}){1,64}$' }),
    debug: Type.Boolean(),
    platformId: Hex(16),
    signature: Hex(64),
  },
  { additionalProperties: false },
);
export type Quote = Static<typeof QuoteSchema>;

/** The quote fields the signature covers. */
export type QuoteBody = Omit<Quote, 'signature'>;

const QUOTE_DOMAIN = utf8ToBytes('teechain-enclave-sim/quote/v1');

/**
 * The 32-byte digest the attestation service signs: SHA-256 over the length-prefixed parts
 * `"teechain-enclave-sim/quote/v1" | version (1 byte) | measurement | reportData | nonce | debug (1 byte) | platformId`.
 * The domain tag keeps these signatures from ever being valid for another message type of the same key.
 */
export function quoteDigest(body: QuoteBody): Uint8Array {
  return sha256(
    lengthPrefixed(
      QUOTE_DOMAIN,
      Uint8Array.of(body.version),
      hexToBytes(body.measurement),
      hexToBytes(body.reportData),
      hexToBytes(body.nonce),
      Uint8Array.of(body.debug ? 1 : 0),
      hexToBytes(body.platformId),
    ),
  );
}
