/**
 * What every route of the REST API is made of: the route record (method, path, access, schemas, handler),
 * the context its handler gets, and the schemas several routes share. routes.ts holds the table; the
 * payment routes are in payment-routes.ts.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { TreasuryNode } from '../node/treasury-node.ts';

export type Access = 'read' | 'admin';

export interface RouteContext {
  node: TreasuryNode;
  params: Record<string, string>;
  /** Set when the node runs on regtest with a faucet (the local network); null otherwise. */
  faucet: RegtestFaucet | null;
}

/** What POST /v1/deposits {fund: true} needs from the chain side (regtest only). */
export interface RegtestFaucet {
  fundAndConfirm(address: string, amountSat: bigint, confirmations: number): Promise<{ txid: string; vout: number }>;
}

export interface Route<B extends TSchema = TSchema, Q extends TSchema = TSchema> {
  method: 'get' | 'post' | 'delete';
  path: string;
  summary: string;
  access: Access;
  body?: B;
  query?: Q;
  /**
   * The JSON Schema of a success answer. In the OpenAPI document every object in it is closed
   * (additionalProperties: false) unless it says otherwise, so an undocumented field is a mismatch.
   */
  response: TSchema;
  /**
   * The error statuses a read route may answer besides those every route may (400, 401, 500, 503);
   * absent (every write route): any status of the error table, since the enclave's refusals vary.
   */
  errors?: number[];
  /** HTTP status of a success answer. */
  status?: number;
  /** JSON body size limit when larger than the default 64 kB (express/body-parser syntax). */
  bodyLimit?: string;
  handler(ctx: RouteContext, body: Static<B>, query: Static<Q>): Promise<unknown>;
}

/** How long POST /v1/payments waits for the peer's acknowledgement before answering `in_flight`. */
export const PAYMENT_WAIT_MS = 10_000;

export const Hex32 = Type.String({ pattern: '^[0-9a-f]{64}$' });
export const NodeId = Type.String({ pattern: '^[0-9a-f]{66}$' });
/** Satoshi amounts in requests: JSON integers (never floats, never strings), within the 21M BTC supply. */
export const AmountSat = Type.Integer({ minimum: 1, maximum: 2_100_000_000_000_000 });
export const DepositId = Type.String({ minLength: 1, maxLength: 32, pattern: '^[a-z0-9]+$' });
/** A routed payment's limit on what the intermediaries take in all (default: 1 % of the amount + 10 sat). */
export const MaxFeeSat = Type.Integer({ minimum: 0, maximum: 2_100_000_000_000_000 });
/** Entries of POST /v1/payments/batch. */
export const BATCH_MAX = 10_000;

// ── Success answers ──
/** Satoshi amounts in answers: decimal strings (JSON numbers would round above 2^53). */
export const SatString = Type.String({ pattern: '^-?(0|[1-9][0-9]{0,18})$', description: 'satoshis, decimal string' });
export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
export const PaymentAnswer = Type.Object({
  payment_id: Type.String({ minLength: 1 }),
  direction: Type.Union([Type.Literal('outgoing'), Type.Literal('incoming')]),
  /** Empty for a multi-hop payment until its first channel is known. */
  channel_id: Type.String({ pattern: '^([0-9a-f]{64})?$' }),
  amount_sat: Type.Integer({ minimum: 1 }),
  status: Type.Union([
    Type.Literal('pending'),
    Type.Literal('in_flight'),
    Type.Literal('succeeded'),
    Type.Literal('failed'),
  ]),
  failure_code: Nullable(Type.String()),
  created_at: Type.Integer({ minimum: 0 }),
  resolved_at: Nullable(Type.Integer({ minimum: 0 })),
  dest: Type.Optional(NodeId),
  route: Type.Optional(Type.Array(Type.String())),
  fee_sat: Type.Optional(Type.Integer({ minimum: 0 })),
});
export function route<B extends TSchema, Q extends TSchema>(r: Route<B, Q>): Route {
  return r as unknown as Route;
}
