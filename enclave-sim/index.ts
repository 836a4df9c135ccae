/**
 * enclave-sim, host side: launch enclaves on a simulated platform, talk to them, verify their quotes.
 * Enclave PROGRAMS import `enclave-sim/runtime.ts` (and interface.ts, quote.ts, quote-verify.ts) instead:
 * this module pulls in esbuild and must not be bundled into an enclave.
 */
export { defineInterface, interfaceFingerprint, type CallSpec, type EnclaveInterface } from './interface.ts';
export { Platform, type LaunchOptions } from './platform.ts';
export { FileSealedStore, SlotSealedStore, type EnclaveHandle, type OcallHandlers, type SealedStore } from './host.ts';
export {
  AttestationService,
  reportDataFor,
  verifyQuote,
  QuoteSchema,
  quoteDigest,
  type Quote,
  type QuoteBody,
  type VerifiedQuote,
  type VerifiedReport,
  type VerifyQuoteOptions,
} from './attestation.ts';
export { bundleEnclave, measureBundle, type EnclaveBundle } from './bundle.ts';
export { inspectSealedBlob, type SealedHeader } from './sealing.ts';
export {
  AttestationError,
  EnclaveCallError,
  EnclaveError,
  PlatformError,
  SealError,
  type AttestationErrorCode,
  type SealErrorCode,
} from './errors.ts';
