/** Bitcoin Core JSON-RPC error codes and the client's error classes, split by cause. */

/** Error codes Bitcoin Core answers with (src/rpc/protocol.h). */
export const RpcCode = {
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  PARSE_ERROR: -32700,
  MISC_ERROR: -1,
  TYPE_ERROR: -3,
  WALLET_ERROR: -4,
  INVALID_ADDRESS_OR_KEY: -5,
  WALLET_INSUFFICIENT_FUNDS: -6,
  INVALID_PARAMETER: -8,
  DESERIALIZATION_ERROR: -22,
  VERIFY_ERROR: -25,
  VERIFY_REJECTED: -26,
  VERIFY_ALREADY_IN_CHAIN: -27,
  IN_WARMUP: -28,
  WALLET_NOT_FOUND: -18,
} as const;

/** The node could not be reached or did not answer JSON-RPC over HTTP (refused, timeout, 401, bad status). */
export class RpcTransportError extends Error {
  override readonly name = 'RpcTransportError';
  constructor(
    message: string,
    /** The RPC method that was being called. */
    readonly method: string,
    /** HTTP status, when the server answered at all. */
    readonly httpStatus?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The node answered with a JSON-RPC error (Core's `code` and `message`). */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  constructor(
    readonly method: string,
    readonly code: number,
    /** Core's message verbatim (e.g. a reject reason). */
    readonly rpcMessage: string,
  ) {
    super(`${method}: ${rpcMessage} (code ${code})`);
  }
}

/** The node answered, but the result does not have the shape the method promises. */
export class RpcInvalidDataError extends Error {
  override readonly name = 'RpcInvalidDataError';
  constructor(
    readonly method: string,
    /** Path of the bad field inside the result, e.g. `result.vout[0].value`. */
    readonly field: string,
    detail: string,
  ) {
    super(`${method}: ${field} ${detail}`);
  }
}
