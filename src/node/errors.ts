/**
 * The one error table of the node host and its REST API: every stable code, what it means and the
 * HTTP status it maps to. The enclave's codes come from src/enclave/treasury/errors.ts (not repeated here);
 * the record type makes the compiler insist every one of them has a status.
 */
import { TREASURY_ERRORS, type TreasuryErrorCode } from '../enclave/treasury/errors.ts';

const HOST_ERRORS = {
  peer_unreachable: 'the peer address did not answer',
  wrong_measurement: 'the node attested, but runs other code than this treasury (another measurement)',
  node_unreachable: 'a node of the local network did not answer the dashboard',
  broadcast_failed: 'the chain refused the transaction',
  chain_unavailable: 'the chain node did not answer',
  node_stopping: 'the node is shutting down',
  not_found: 'no such resource',
  no_committee: 'this treasury has no committee',
  unauthorized: 'missing or wrong bearer token',
  forbidden: 'this token may not do that',
  idempotency_conflict: 'the idempotency key was used for a different request',
  payment_not_started:
    'the first request with this idempotency key was cut off by a crash before anything moved: nothing was paid (a new key pays)',
  enclave_failed: 'the enclave refused or failed the call',
  internal: 'internal error',
} as const;

export type HostErrorCode = keyof typeof HOST_ERRORS;
export type ErrorCode = TreasuryErrorCode | HostErrorCode;

export const ERROR_MESSAGES: Record<ErrorCode, string> = { ...TREASURY_ERRORS, ...HOST_ERRORS };

/** HTTP status for every code: 4xx where the request (or the state it meets) is at fault. */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  invalid_argument: 400,
  not_initialized: 503,
  unknown_channel: 404,
  unknown_deposit: 404,
  unknown_peer: 404,
  not_found: 404,
  no_committee: 404,
  peer_not_connected: 409,
  self_connection: 400,
  channel_not_open: 409,
  channel_closed: 409,
  insufficient_funds: 409,
  deposit_not_free: 409,
  deposit_in_use: 409,
  deposit_unconfirmed: 409,
  funding_not_found: 422,
  funding_mismatch: 422,
  funding_spent: 422,
  fee_exceeds_balance: 409,
  dust_output: 409,
  peer_refused: 409,
  idempotency_conflict: 409,
  payment_not_started: 409,
  attestation_failed: 502,
  session_failed: 502,
  not_primary: 409,
  committee_incomplete: 409,
  roster_unknown: 409,
  committee_unavailable: 503,
  stale_update: 409,
  forged_update: 409,
  base_mismatch: 409,
  stale_epoch: 409,
  view_unknown: 409,
  state_mismatch: 409,
  already_signed: 409,
  channel_settled: 409,
  channel_settling: 409,
  join_token_required: 403,
  join_token_invalid: 403,
  join_token_used: 403,
  committee_full: 409,
  not_a_member: 404,
  already_a_member: 409,
  join_not_requested: 409,
  wrong_measurement: 403,
  roster_too_small: 409,
  roster_change_busy: 409,
  roster_change_refused: 409,
  channel_busy: 409,
  unknown_destination: 404,
  no_route: 409,
  insufficient_capacity: 409,
  multihop_in_doubt: 409,
  // Definite, as the other refusals of a routed payment by the state of its path (channel_busy,
  // peer_not_connected, insufficient_capacity): every hop kept the old state. Not 5xx, which clients
  // (src/stress/pay.ts among them) read as "the outcome may be unknown".
  path_timeout: 409,
  fee_insufficient: 409,
  fee_limit_exceeded: 409,
  peer_unreachable: 502,
  node_unreachable: 502,
  broadcast_failed: 502,
  chain_unavailable: 503,
  // Only where the outcome really is unknown: a peer's answer to an open or a deposit change that did not
  // come in time, the request still pending in the enclave and re-sent on reconnection (replies.ts).
  timeout: 504,
  node_stopping: 503,
  unauthorized: 401,
  forbidden: 403,
  enclave_failed: 500,
  internal: 500,
};

/** The current primary of a committee, as a backup's replica names it: where a client sends writes instead. */
export interface PrimaryHint {
  node_id: string;
  /** Its REST URL as the roster lists it (a hint its own enclave signed, not attested); null if it listed none. */
  rest_url: string | null;
}

export class NodeError extends Error {
  readonly code: ErrorCode;
  /** `not_primary` only: the committee's current primary (absent while this backup does not know it yet). */
  readonly primary?: PrimaryHint;
  /** The payment this refuses, when there is one (see forPayment). */
  paymentId?: string;
  constructor(code: string, message?: string, primary?: PrimaryHint) {
    const known = (code in HTTP_STATUS ? code : 'enclave_failed') as ErrorCode;
    super(message ?? ERROR_MESSAGES[known]);
    this.code = known;
    this.name = 'NodeError';
    if (primary) this.primary = primary;
  }

  get status(): number {
    return HTTP_STATUS[this.code];
  }

  /**
   * This refusal as the outcome of payment `id`: a copy, since one refusal (a failed enclave call) may
   * fail many payments at once. A batch entry replayed by its idempotency key answers with that id.
   */
  forPayment(id: string): NodeError {
    const e = new NodeError(this.code, this.message, this.primary);
    e.paymentId = id;
    return e;
  }
}

/** Maps an enclave call failure (enclave-sim's EnclaveCallError carries the enclave's code) to a NodeError. */
export function fromEnclaveError(err: unknown): NodeError {
  if (err instanceof NodeError) return err;
  const code = (err as { code?: unknown }).code;
  const message = (err as { message?: unknown }).message;
  if (typeof code === 'string' && code in HTTP_STATUS)
    return new NodeError(code, typeof message === 'string' ? message : undefined);
  return new NodeError('enclave_failed', typeof message === 'string' ? message : String(err));
}
