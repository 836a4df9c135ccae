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
import type { KeyRef } from '../node/payment-journal.ts';
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

/** A client's key for one payment: the same key again asks for the same payment, which is paid at most once. */
const IdempotencyKey = Type.String({ minLength: 1, maxLength: 128 });

const Status = Type.Union([
  Type.Literal('pending'),
  Type.Literal('in_flight'),
  Type.Literal('succeeded'),
  Type.Literal('failed'),
]);

type Entry = { channel_id?: string; dest?: string; amount_sat: number; max_fee_sat?: number; idempotency_key?: string };

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
        idempotency_key: Type.Optional(IdempotencyKey),
      },
      { additionalProperties: false },
    ),
    response: PaymentAnswer,
    handler: async ({ node }, body) => {
      // Before the idempotency key is looked up or journaled: a backup keeps no trace of the request.
      await node.requirePrimary();
      return node.payments.idempotent(body.idempotency_key, fingerprint(body), async (ref) => {
        if (body.channel_id === undefined && body.dest === undefined)
          throw new NodeError('invalid_argument', 'give channel_id or dest');
        const channelId = body.channel_id ?? (await node.channelTo(body.dest!));
        if (channelId === null)
          return node.payMultihop(body.dest!, body.amount_sat, PAYMENT_WAIT_MS, body.max_fee_sat, ref);
        return node.payWithin(channelId, body.amount_sat, PAYMENT_WAIT_MS, ref);
      });
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
              idempotency_key: Type.Optional(IdempotencyKey),
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
      const entries = body.payments;
      if (entries.some((p) => (p.channel_id === undefined) === (p.dest === undefined))) {
        throw new NodeError('invalid_argument', 'each payment names exactly one of channel_id and dest');
      }
      refuseRepeatedKeys(entries);
      // One look-up per destination, before the first payment starts.
      const direct = new Map<string, string | null>();
      for (const p of entries)
        if (p.dest !== undefined && !direct.has(p.dest)) direct.set(p.dest, await node.channelTo(p.dest));
      // Every key is checked before any entry pays, and from here to the last entry's start nothing
      // awaits, so no other request can take one of these keys in between: a conflict changes nothing.
      entries.forEach((p, i) => {
        if (p.idempotency_key === undefined) return;
        try {
          node.payments.checkKey(p.idempotency_key, fingerprint(p));
        } catch (err) {
          if (err instanceof NodeError) err.message = `payments[${i}]: ${err.message}`;
          throw err;
        }
      });
      const deadline = Date.now() + PAYMENT_WAIT_MS;
      const channelOf = (p: Entry) => p.channel_id ?? direct.get(p.dest!) ?? null;
      // The direct entries first: a round's lock on a channel refuses direct payments on it, and payments
      // not yet acknowledged make the ends' views of it differ, which refuses the lock. Then the routed
      // ones, all in one tick, so that those to one destination go in one round.
      let directOver!: () => void;
      const afterDirect = new Promise<void>((resolve) => (directOver = resolve));
      const answers = entries.map((p) => {
        const channelId = channelOf(p);
        const to =
          channelId !== null
            ? { channelId }
            : { dest: p.dest!, ...(p.max_fee_sat !== undefined ? { maxFeeSat: p.max_fee_sat } : {}) };
        const start = (ref?: KeyRef) => {
          const { payment, done } = node.startPayment(to, p.amount_sat, ref);
          return answerWithin(payment, done, Math.max(0, deadline - Date.now()));
        };
        // A keyed entry pays once per key, as a keyed single payment does: a retried batch answers it
        // from its first outcome (kept in memory, and in the payment journal across restarts).
        const answer = node.payments.idempotent(p.idempotency_key, fingerprint(p), (ref) =>
          channelId !== null ? start(ref) : afterDirect.then(() => start(ref)),
        );
        return { routed: channelId === null, result: answer.then((r) => entryAnswer(r), refusedEntry) };
      });
      await Promise.all(answers.filter((a) => !a.routed).map((a) => a.result));
      directOver();
      const results = await Promise.all(answers.map((a) => a.result));
      return {
        succeeded: results.filter((r) => r.status === 'succeeded').length,
        failed: results.filter((r) => r.status === 'failed').length,
        results,
      };
    },
  }),
];

/** What a keyed payment's key stands for: a retry with the same key must ask for the same payment. */
function fingerprint(p: Entry): string {
  return JSON.stringify([p.channel_id, p.dest, p.amount_sat, p.max_fee_sat]);
}

/** Two entries of one batch with one key would be one payment asked twice: the batch is refused whole. */
function refuseRepeatedKeys(entries: Entry[]): void {
  const at = new Map<string, number>();
  entries.forEach((p, i) => {
    const k = p.idempotency_key;
    if (k === undefined) return;
    const first = at.get(k);
    if (first !== undefined)
      throw new NodeError('invalid_argument', `payments[${first}] and payments[${i}] have the same idempotency_key`);
    at.set(k, i);
  });
}

/** A batch entry's answer from its payment record. */
function entryAnswer(p: Payment) {
  return {
    payment_id: p.payment_id,
    status: p.status,
    failure_code: p.failure_code,
    ...(p.channel_id ? { channel_id: p.channel_id } : {}),
    ...(p.route ? { route: p.route } : {}),
    ...(p.fee_sat !== undefined ? { fee_sat: p.fee_sat } : {}),
  };
}

/**
 * A refused entry's answer. Every refusal of a started payment names it (answerWithin, and the journal
 * for a replayed key); one that names none failed before any payment existed, and fails the request.
 */
function refusedEntry(err: unknown): ReturnType<typeof entryAnswer> & { message: string } {
  if (!(err instanceof NodeError) || err.paymentId === undefined) throw err;
  return { payment_id: err.paymentId, status: 'failed', failure_code: err.code, message: err.message };
}
