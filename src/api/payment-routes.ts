/**
 * The REST routes that pay: one payment (`POST /v1/payments`, idempotent with a key) and many in one
 * request (`POST /v1/payments/batch`), each on a channel or to a destination, directly when there is an
 * open channel with it, else routed (docs/protocol/multihop.md). A batch's routed entries to one
 * destination are queued in the same tick, so they travel in one path round.
 */
import { Type } from '@sinclair/typebox';
import { NodeError } from '../node/errors.ts';
import type { Payment } from '../node/payment.ts';
import { answerWithin } from '../node/payment-pipeline.ts';
import type { TreasuryNode } from '../node/treasury-node.ts';
import {
  AmountSat,
  BATCH_MAX,
  Hex32,
  MaxFeeSat,
  NodeId,
  Nullable,
  PAYMENT_WAIT_MS,
  PaymentAnswer,
  route,
  type Route,
} from './route.ts';

const Status = Type.Union([
  Type.Literal('pending'),
  Type.Literal('in_flight'),
  Type.Literal('succeeded'),
  Type.Literal('failed'),
]);

type Entry = { channel_id?: string; dest?: string; amount_sat: number; max_fee_sat?: number };

/** One entry's answer, at the entry's position in the request. */
const BatchResult = Type.Object({
  payment_id: Type.String({ minLength: 1 }),
  status: Status,
  failure_code: Nullable(Type.String()),
  /** Why it failed, as the one-payment route would have said it. */
  message: Type.Optional(Type.String()),
  /** The channel it went on (a routed one's first channel), once known. */
  channel_id: Type.Optional(Hex32),
  /** Routed entries that succeeded: the path (node ids, payer first) and this payment's share of its fees. */
  route: Type.Optional(Type.Array(NodeId)),
  fee_sat: Type.Optional(Type.Integer({ minimum: 0 })),
});

export const paymentRoutes: Route[] = [
  route({
    method: 'post',
    path: '/v1/payments',
    access: 'admin',
    status: 201,
    summary:
      'Pay on a channel (channel_id), or to dest: directly to a peer with an open channel, else through a path of channels (multi-hop); answers when acknowledged (status succeeded) or after 10 s (in_flight)',
    body: Type.Object(
      {
        channel_id: Type.Optional(Hex32),
        dest: Type.Optional(NodeId),
        amount_sat: AmountSat,
        max_fee_sat: Type.Optional(MaxFeeSat),
        idempotency_key: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
      },
      { additionalProperties: false },
    ),
    response: PaymentAnswer,
    handler: async ({ node }, body) => {
      // Before the idempotency key is looked up or journaled: a backup keeps no trace of the request.
      await node.requirePrimary();
      return node.payments.idempotent(
        body.idempotency_key,
        JSON.stringify([body.channel_id, body.dest, body.amount_sat, body.max_fee_sat]),
        async (ref) => {
          if (body.channel_id === undefined && body.dest === undefined)
            throw new NodeError('invalid_argument', 'give channel_id or dest');
          const channelId = body.channel_id ?? (await node.channelTo(body.dest!));
          if (channelId === null)
            return node.payMultihop(body.dest!, body.amount_sat, PAYMENT_WAIT_MS, body.max_fee_sat, ref);
          return node.payWithin(channelId, body.amount_sat, PAYMENT_WAIT_MS, ref);
        },
      );
    },
  }),
  route({
    method: 'post',
    path: '/v1/payments/batch',
    access: 'admin',
    status: 201,
    summary:
      "Many payments in one request (client-side batching), each on a channel (channel_id) or to dest (direct if there is an open channel, else routed; a destination's routed entries travel in one path round): answers each entry in the request's order with its own outcome, when all are over or after 10 s",
    // 10,000 entries of at most ~130 bytes each: the one route whose body may exceed the default limit.
    bodyLimit: '2mb',
    body: Type.Object(
      {
        payments: Type.Array(
          Type.Object(
            {
              channel_id: Type.Optional(Hex32),
              dest: Type.Optional(NodeId),
              amount_sat: AmountSat,
              max_fee_sat: Type.Optional(MaxFeeSat),
            },
            { additionalProperties: false },
          ),
          { minItems: 1, maxItems: BATCH_MAX },
        ),
      },
      { additionalProperties: false },
    ),
    response: Type.Object({
      succeeded: Type.Integer({ minimum: 0 }),
      failed: Type.Integer({ minimum: 0 }),
      results: Type.Array(BatchResult),
    }),
    handler: async ({ node }, body) => {
      await node.requirePrimary(); // one not_primary for the batch, not one failed entry per payment
      if (body.payments.some((p) => (p.channel_id === undefined) === (p.dest === undefined))) {
        throw new NodeError('invalid_argument', 'each payment names exactly one of channel_id and dest');
      }
      // One look-up per destination, before the first payment starts.
      const direct = new Map<string, string | null>();
      for (const p of body.payments)
        if (p.dest !== undefined && !direct.has(p.dest)) direct.set(p.dest, await node.channelTo(p.dest));
      const deadline = Date.now() + PAYMENT_WAIT_MS;
      const pay = (p: Entry, to: Parameters<TreasuryNode['startPayment']>[0]) => {
        const { payment, done } = node.startPayment(to, p.amount_sat);
        return answerWithin(payment, done, Math.max(0, deadline - Date.now())).then(entryAnswer, (err: unknown) =>
          entryAnswer(payment, err instanceof NodeError ? err : new NodeError('internal', String(err))),
        );
      };
      const channelOf = (p: Entry) => p.channel_id ?? direct.get(p.dest!) ?? null;
      const results: Array<ReturnType<typeof entryAnswer>> = new Array(body.payments.length);
      // The direct entries first: a round's lock on a channel refuses direct payments on it, and payments
      // not yet acknowledged make the ends' views of it differ, which refuses the lock. Then the routed
      // ones, all in one tick, so that those to one destination go in one round.
      await Promise.all(
        body.payments.map(async (p, i) => {
          const channelId = channelOf(p);
          if (channelId !== null) results[i] = await pay(p, { channelId });
        }),
      );
      await Promise.all(
        body.payments.map(async (p, i) => {
          if (channelOf(p) !== null) return;
          const maxFee = p.max_fee_sat !== undefined ? { maxFeeSat: p.max_fee_sat } : {};
          results[i] = await pay(p, { dest: p.dest!, ...maxFee });
        }),
      );
      return {
        succeeded: results.filter((r) => r.status === 'succeeded').length,
        failed: results.filter((r) => r.status === 'failed').length,
        results,
      };
    },
  }),
];

/** A batch entry's answer from its payment record (and, when it was refused, the refusal). */
function entryAnswer(p: Payment, refusal?: NodeError) {
  return {
    payment_id: p.payment_id,
    status: refusal ? ('failed' as const) : p.status,
    failure_code: refusal ? refusal.code : p.failure_code,
    ...(refusal ? { message: refusal.message } : {}),
    ...(p.channel_id ? { channel_id: p.channel_id } : {}),
    ...(p.route ? { route: p.route } : {}),
    ...(p.fee_sat !== undefined ? { fee_sat: p.fee_sat } : {}),
  };
}
