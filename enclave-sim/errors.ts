/**
 * The error classes of enclave-sim. Every failure that crosses a boundary carries a stable `code`
 * (snake_case) so callers branch on codes, never on message text.
 *
 * This module is imported on both sides of the boundary (host and enclave), so it has no dependencies.
 */

/**
 * Thrown inside an enclave handler to answer the host with a stable error code. If the handler throws
 * before it mutates anything, the call has no effect on the enclave's state.
 */
export class EnclaveError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'EnclaveError';
    this.code = code;
  }
}

/** Why a sealed blob was refused (see docs/enclave-sim.md, "Sealed state and rollback"). */
export type SealErrorCode = 'tampered' | 'wrong_enclave' | 'rollback' | 'missing';

/** Thrown by `unsealState()` inside the enclave. An EnclaveError, so an uncaught one answers the host with its code. */
export class SealError extends EnclaveError {
  declare readonly code: SealErrorCode;
  constructor(code: SealErrorCode, message: string) {
    super(code, message);
    this.name = 'SealError';
  }
}

/**
 * Thrown inside the enclave by `ctx.ocall()` when the host answered with an error. `hostCode` is the
 * host's own code; it is untrusted, so it is not promoted to `code`.
 */
export class OcallFailedError extends EnclaveError {
  readonly hostCode: string;
  constructor(ocall: string, hostCode: string, message: string) {
    super('ocall_failed', `ocall ${ocall} failed: ${hostCode}: ${message}`);
    this.name = 'OcallFailedError';
    this.hostCode = hostCode;
  }
}

/**
 * How an ecall failed, as seen by the host. `code` is one of the runtime's codes below, or the code of an
 * EnclaveError the program threw.
 *
 * Runtime codes: `unknown_ecall`, `malformed_args`, `malformed_message`, `shared_memory` (the message held a
 * SharedArrayBuffer or a view of one), `internal_error` (the handler threw
 * something other than an EnclaveError; its message is not forwarded), `invalid_result` (the handler's
 * result failed its schema; not forwarded), `enclave_terminated`, `init_failed`, `interface_mismatch`,
 * `instance_busy`, plus the seal codes when they escape a handler or `init`.
 */
export class EnclaveCallError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'EnclaveCallError';
    this.code = code;
  }
}

/** Why `verifyQuote` refused a quote. */
export type AttestationErrorCode =
  | 'malformed'
  | 'bad_signature'
  | 'measurement_not_allowed'
  | 'stale_nonce'
  | 'report_data_mismatch'
  | 'debug_not_allowed';

/** Thrown by `verifyQuote`. */
export class AttestationError extends Error {
  readonly code: AttestationErrorCode;
  constructor(code: AttestationErrorCode, message: string) {
    super(message);
    this.name = 'AttestationError';
    this.code = code;
  }
}

/** Thrown by the Platform (bad platform dir, corrupt counter file, misuse of the debug hook). */
export class PlatformError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'PlatformError';
    this.code = code;
  }
}
