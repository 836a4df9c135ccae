/** The error a façade method throws to answer with a Core JSON-RPC error. */
import { RpcCode } from '../rpc-errors.ts';

/** A JSON-RPC error answer: Core's code and message. */
export class RpcFailure extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** Core's RPC_INVALID_PARAMETER (-8). */
export function invalidParameter(message: string): RpcFailure {
  return new RpcFailure(RpcCode.INVALID_PARAMETER, message);
}

/** Core's RPC_INVALID_ADDRESS_OR_KEY (-5). */
export function invalidAddressOrKey(message: string): RpcFailure {
  return new RpcFailure(RpcCode.INVALID_ADDRESS_OR_KEY, message);
}
