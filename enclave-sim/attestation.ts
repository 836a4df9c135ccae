/**
 * A STUB of remote attestation, shaped like Intel's: an attestation service with its own signing key
 * signs quotes for enclaves that a platform vouches for, and verifiers trust the service's public key.
 * It proves nothing against the host OS of this simulation (see README, "enclave-sim"): the service key, the
 * platform and the enclave all live in processes the host controls.
 *
 * Enclave-safe: a program may verify a peer's quote inside its enclave.
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { sha256 } from '@noble/hashes/sha2.js';
import { publicKeyOf, randomPrivateKey, signDigest, verifyDigest, isPublicKey } from '../src/crypto/secp256k1.ts';
import { AttestationError } from './errors.ts';
import { bytesEqual, bytesToHex, hexToBytes, isHex, lengthPrefixed, toBytes, utf8ToBytes } from './encoding.ts';
import { QuoteSchema, quoteDigest, type Quote } from './quote.ts';
import { readFileIfExists, writeFileDurably } from './durable-file.ts';

export { AttestationError, type AttestationErrorCode } from './errors.ts';
export { QuoteSchema, quoteDigest, type Quote, type QuoteBody } from './quote.ts';

const checkQuote = TypeCompiler.Compile(QuoteSchema);
const KEY_FILE_FORMAT = 'teechain-enclave-sim/attestation-key/v1';
const REPORT_DATA_DOMAIN = utf8ToBytes('teechain-enclave-sim/report-data/v1');

/** What a platform asks the service to sign, after checking that the enclave is one it launched. */
export interface VerifiedReport {
  measurement: string;
  reportData: Uint8Array;
  nonce: Uint8Array;
  debug: boolean;
  platformId: string;
}

/** The simulated attestation service (like Intel's): one secp256k1 signing key. */
export class AttestationService {
  readonly #privateKey: Uint8Array;
  /** Hex compressed public key: the trust anchor verifiers are configured with. */
  readonly trustAnchor: string;

  private constructor(privateKey: Uint8Array) {
    this.#privateKey = privateKey;
    this.trustAnchor = bytesToHex(publicKeyOf(privateKey));
  }

  /** A service with a fresh random key. */
  static create(): AttestationService {
    return new AttestationService(randomPrivateKey());
  }

  /** @throws Error if the file is missing or not a key file written by `save`. */
  static async load(file: string): Promise<AttestationService> {
    const bytes = await readFileIfExists(file);
    if (!bytes) throw new Error(`attestation key file ${file} not found`);
    const parsed = JSON.parse(new TextDecoder().decode(bytes)) as { format?: unknown; privateKey?: unknown };
    if (parsed.format !== KEY_FILE_FORMAT || !isHex(parsed.privateKey, 32))
      throw new Error(`${file} is not an attestation key file`);
    return new AttestationService(hexToBytes(parsed.privateKey));
  }

  /** Writes the key durably with mode 0600. */
  async save(file: string): Promise<void> {
    const json = JSON.stringify({ format: KEY_FILE_FORMAT, privateKey: bytesToHex(this.#privateKey) });
    await writeFileDurably(file, utf8ToBytes(json), 0o600);
  }

  /**
   * Signs a quote. Called by a Platform once it has checked that the requesting enclave is one it launched
   * (the measurement comes from the platform's own records, never from the enclave's request).
   * @throws TypeError on field sizes a platform would never send.
   */
  issueQuote(report: VerifiedReport): Quote {
    if (report.reportData.length !== 32) throw new TypeError('reportData must be 32 bytes');
    if (report.nonce.length < 1 || report.nonce.length > 64) throw new TypeError('nonce must be 1..64 bytes');
    const body = {
      version: 1 as const,
      measurement: report.measurement,
      reportData: bytesToHex(report.reportData),
      nonce: bytesToHex(report.nonce),
      debug: report.debug,
      platformId: report.platformId,
    };
    return { ...body, signature: bytesToHex(signDigest(quoteDigest(body), this.#privateKey)) };
  }
}

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
