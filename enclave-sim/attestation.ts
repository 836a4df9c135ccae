/**
 * A STUB of remote attestation, shaped like Intel's: an attestation service with its own signing key
 * signs quotes for enclaves that a platform vouches for, and verifiers trust the service's public key.
 * It proves nothing against the host OS of this simulation (see docs/enclave-sim.md): the service key, the
 * platform and the enclave all live in processes the host controls.
 *
 * HOST-ONLY (it keeps its key in a file). Enclave programs verify quotes with enclave-sim/quote-verify.ts,
 * which this module re-exports for the host's convenience.
 */
import { publicKeyOf, randomPrivateKey, signDigest } from '../src/crypto/secp256k1.ts';
import { bytesToHex, hexToBytes, isHex, utf8ToBytes } from './encoding.ts';
import { quoteDigest, type Quote } from './quote.ts';
import { readFileIfExists, writeFileDurably } from './durable-file.ts';

export { AttestationError, type AttestationErrorCode } from './errors.ts';
export { QuoteSchema, quoteDigest, type Quote, type QuoteBody } from './quote.ts';
export { reportDataFor, verifyQuote, type VerifiedQuote, type VerifyQuoteOptions } from './quote-verify.ts';

const KEY_FILE_FORMAT = 'teechain-enclave-sim/attestation-key/v1';

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
