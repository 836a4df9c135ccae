/**
 * Verifying a quote, and the report data that binds a key into one: the enclave-safe half of the
 * attestation stub (no Node-only imports), so a program verifies its peers' quotes inside its enclave. The
 * service that signs quotes, and keeps its key in a file, is host-only: enclave-sim/attestation.ts.
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { sha256 } from '@noble/hashes/sha2.js';
import { verifyDigest, isPublicKey } from '../src/crypto/secp256k1.ts';
import { AttestationError } from './errors.ts';
import { bytesEqual, hexToBytes, lengthPrefixed, toBytes, utf8ToBytes } from './encoding.ts';
import { QuoteSchema, quoteDigest, type Quote } from './quote.ts';

export type { Quote } from './quote.ts';

const checkQuote = TypeCompiler.Compile(QuoteSchema);
const REPORT_DATA_DOMAIN = utf8ToBytes('teechain-enclave-sim/report-data/v1');

/**
 * The 32 bytes of report data that bind a public key (and optional extra context) into a quote:
 * SHA-256 over length-prefixed `"teechain-enclave-sim/report-data/v1" | publicKey | extra`.
 */
export function reportDataFor(publicKey: Uint8Array, extra: Uint8Array = new Uint8Array(0)): Uint8Array {
  return sha256(lengthPrefixed(REPORT_DATA_DOMAIN, publicKey, extra));
}

/** What a verifier learns from a good quote. */
export interface VerifiedQuote {
  measurement: string;
  reportData: string;
  debug: boolean;
  platformId: string;
}

/** Options of `verifyQuote`. Hex strings may be upper or lower case. */
export interface VerifyQuoteOptions {
  /** Hex public key of the attestation service. */
  trustAnchor: string;
  /** Hex measurements of the enclave code the verifier trusts (from `measureBundle`). */
  allowedMeasurements: string[];
  /** The nonce the verifier sent for this quote. */
  expectedNonce: Uint8Array | string;
  /** If given, the quote's report data must equal it (usually `reportDataFor(theKeyYouWillUse)`). */
  expectedReportData?: Uint8Array | string;
  /** Accept quotes from debug enclaves (whose secrets the platform can read). Tests only. */
  allowDebug?: boolean;
}

/**
 * Checks a quote received from anywhere (typically JSON from the network). Checks run in this order, and
 * the first failure is thrown: shape, signature against the trust anchor, debug attribute, measurement
 * allow-list, nonce, report data.
 * @throws AttestationError with code 'malformed' | 'bad_signature' (also for a quote from another
 *   attestation service) | 'debug_not_allowed' | 'measurement_not_allowed' | 'stale_nonce' | 'report_data_mismatch'
 * @throws TypeError if `opts` are invalid (a bad trust anchor, nonce or report data encoding).
 */
export function verifyQuote(quote: unknown, opts: VerifyQuoteOptions): VerifiedQuote {
  const anchor = toBytes(opts.trustAnchor, 'trustAnchor');
  if (!isPublicKey(anchor)) throw new TypeError('trustAnchor is not a public key');
  const expectedNonce = toBytes(opts.expectedNonce, 'expectedNonce');
  const expectedReportData =
    opts.expectedReportData === undefined ? undefined : toBytes(opts.expectedReportData, 'expectedReportData');

  if (!checkQuote.Check(quote)) throw new AttestationError('malformed', 'not a version 1 quote');
  const q: Quote = quote;
  const { signature, ...body } = q;
  if (!verifyDigest(hexToBytes(signature), quoteDigest(body), anchor)) {
    throw new AttestationError('bad_signature', 'quote signature does not verify against the trust anchor');
  }
  if (q.debug && !opts.allowDebug) throw new AttestationError('debug_not_allowed', 'quote is from a debug enclave');
  if (!opts.allowedMeasurements.some((m) => m.toLowerCase() === q.measurement)) {
    throw new AttestationError('measurement_not_allowed', `measurement ${q.measurement} is not allowed`);
  }
  if (!bytesEqual(hexToBytes(q.nonce), expectedNonce))
    throw new AttestationError('stale_nonce', 'quote nonce is not the expected one');
  if (expectedReportData && !bytesEqual(hexToBytes(q.reportData), expectedReportData)) {
    throw new AttestationError('report_data_mismatch', 'quote report data does not bind the expected key');
  }
  return { measurement: q.measurement, reportData: q.reportData, debug: q.debug, platformId: q.platformId };
}
