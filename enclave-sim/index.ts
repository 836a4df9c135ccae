/**
 * enclave-sim, host side: launch enclaves on a simulated platform, talk to them, verify their quotes.
 * Enclave PROGRAMS import `enclave-sim/runtime.ts` (and interface.ts, quote.ts, attestation.ts) instead:
 * this module pulls in esbuild and must not be bundled into an enclave.
 */
export { defineInterface, interfaceFingerprint, type CallSpec, type EnclaveInterface } from './interface';
export { Platform, type LaunchOptions } from './platform';
export { FileSealedStore, SlotSealedStore, type EnclaveHandle, type OcallHandlers, type SealedStore } from './host';
export {
  AttestationService, reportDataFor, verifyQuote, QuoteSchema, quoteDigest,
  type Quote, type QuoteBody, type VerifiedQuote, type VerifiedReport, type VerifyQuoteOptions,
} from './attestation';
export { bundleEnclave, measureBundle, type EnclaveBundle } from './bundle';
export { inspectSealedBlob, type SealedHeader } from './sealing';
export {
  AttestationError, EnclaveCallError, EnclaveError, PlatformError, SealError,
  type AttestationErrorCode, type SealErrorCode,
} from './errors';
