/**
 * The treasury enclave's interface (our EDL): every call into the enclave and every call out of it,
 * each with a TypeBox schema that enclave-sim checks on both sides of the boundary.
 * The host (src/node) and the enclave program (src/enclave/treasury/program.ts) both import this one file.
 */
import { Type, type Static } from '@sinclair/typebox';
import { defineInterface } from '../../../enclave-sim/interface.ts';
import { QuoteSchema } from '../../../enclave-sim/quote.ts';

const Hex32 = Type.String({ pattern: '^[0-9a-f]{64}$' });
const Hex16 = Type.String({ pattern: '^[0-9a-f]{32}$' });
/** `pay_refs` / `mh_refs`: key hashes the host has journaled, which the enclave may forget first. */
const DropJournaledRefs = Type.Object(
  { drop: Type.Optional(Type.Array(Hex16, { maxItems: 200_000 })) },
  { additionalProperties: false },
);
/** The host's id of a payment (payment-log.ts). */
const PaymentId = Type.String({ pattern: '^[a-z0-9]{1,32}$' });
/** `id`: the host's payment id, kept with the ref so that a committee member promoted later answers the same id. */
const PayRef = Type.Object({ key: Hex16, fp: Hex16, id: Type.Optional(PaymentId) }, { additionalProperties: false });
const Sat = Type.String({ pattern: '^-?(0|[1-9][0-9]{0,18})$', description: 'satoshis, decimal string' });
const Conn = Type.String({ minLength: 1, maxLength: 64 });
const DepositId = Type.String({ minLength: 1, maxLength: 32 });
const Address = Type.String({ minLength: 1, maxLength: 128 });
/** An http(s) URL (checked in full inside the enclave: committee/rest-url.ts). */
const RestUrl = Type.String({ minLength: 1, maxLength: 256, pattern: '^https?://' });
const FeeRate = Type.Integer({ minimum: 1, maximum: 1000 });
const Empty = Type.Object({}, { additionalProperties: false });
const Ok = Type.Null();

export const DepositView = Type.Object({
  deposit_id: Type.String(),
  address: Type.String(),
  witness_script: Type.String(),
  m: Type.Integer(),
  pubkeys: Type.Array(Type.String()),
  status: Type.Union([
    Type.Literal('pending'),
    Type.Literal('free'),
    Type.Literal('in_channel'),
    Type.Literal('spent'),
  ]),
  outpoint: Type.Union([Type.String(), Type.Null()]),
  value_sat: Type.Union([Sat, Type.Null()]),
  channel_id: Type.Union([Type.String(), Type.Null()]),
  spent_by: Type.Union([Type.String(), Type.Null()]),
  release_tx_hex: Type.Union([Type.String(), Type.Null()]),
  /** In a closed channel that may or may not have spent it: spent or free once the chain shows the winning spend. */
  awaiting_chain: Type.Boolean(),
});
export type DepositView = Static<typeof DepositView>;

export const ChannelView = Type.Object({
  channel_id: Hex32,
  /** The session peer: for a committee, the member the channel is bound to now (its primary). */
  peer_id: Type.String(),
  /** The treasury at the other end: a committee's treasury_id whichever member is its primary, else peer_id. */
  peer_treasury_id: Type.String(),
  status: Type.Union([Type.Literal('opening'), Type.Literal('open'), Type.Literal('closed')]),
  initiator: Type.Boolean(),
  local_balance_sat: Sat,
  remote_balance_sat: Sat,
  spendable_sat: Sat,
  local_deposits: Type.Array(
    Type.Object({ deposit_id: Type.String(), outpoint: Type.String(), value_sat: Sat, removing: Type.Boolean() }),
  ),
  remote_deposits: Type.Array(Type.Object({ outpoint: Type.String(), value_sat: Sat })),
  total_sent_sat: Sat,
  total_received_sat: Sat,
  total_acked_sat: Sat,
  /** Of our total_sent_sat, what the settlement that closed the channel pays the peer (null: not known yet). */
  paid_total_sat: Type.Union([Sat, Type.Null()]),
  settlement_txid: Type.Union([Type.String(), Type.Null()]),
  /** The settlement this enclave signed (null when the peer settled), to broadcast again if needed. */
  settlement_tx_hex: Type.Union([Type.String(), Type.Null()]),
  settled_by: Type.Union([Type.Literal('local'), Type.Literal('remote'), Type.Null()]),
  peer_connected: Type.Boolean(),
  /** Closed: our deposits whose fate awaits a confirmed spend of the channel (shown with channel_spent). */
  awaiting_chain: Type.Array(Type.String()),
  /** Closed: the enclave still holds keys of its deposits, forgotten once a spend of it is deep enough. */
  keys_held: Type.Boolean(),
});
export type ChannelView = Static<typeof ChannelView>;

export const TreasuryEventSchema = Type.Union([
  Type.Object({ type: Type.Literal('peer_connected'), conn: Type.String(), peer_id: Type.String() }),
  Type.Object({
    type: Type.Literal('peer_disconnected'),
    conn: Type.String(),
    peer_id: Type.Union([Type.String(), Type.Null()]),
    reason: Type.String(),
  }),
  Type.Object({ type: Type.Literal('pay_acked'), channel_id: Type.String(), total: Sat }),
  Type.Object({
    type: Type.Literal('pay_received'),
    channel_id: Type.String(),
    amounts: Type.Array(Type.Integer()),
    total: Sat,
  }),
  Type.Object({ type: Type.Literal('channel_updated'), channel_id: Type.String(), status: Type.String() }),
  Type.Object({
    type: Type.Literal('channel_settled'),
    channel_id: Type.String(),
    txid: Type.String(),
    by: Type.Union([Type.Literal('local'), Type.Literal('remote')]),
    paid_total: Type.Optional(Sat),
  }),
  /** A settlement we signed: the chain showed which settlement spent the deposits, and what it pays of our sent total. */
  Type.Object({
    type: Type.Literal('settlement_paid'),
    channel_id: Type.String(),
    txid: Type.String(),
    paid_total: Sat,
  }),
  Type.Object({
    type: Type.Literal('committee_roster'),
    members: Type.Array(Type.Object({ node_id: Type.String(), address: Type.String() })),
    index: Type.Integer(),
  }),
  /** This member adopted a new view (a promotion, members changed): its number, its primary, its chain order. */
  Type.Object({
    type: Type.Literal('committee_view'),
    epoch: Type.Integer({ minimum: 0 }),
    primary: Type.String(),
    members: Type.Array(Type.Object({ node_id: Type.String(), address: Type.String() })),
    index: Type.Integer(),
  }),
  Type.Object({ type: Type.Literal('committee_join_refused'), code: Type.String() }),
  /** Backup: a sealed update brought refs of the primary's keyed payments; the host journals them (pay_refs). */
  Type.Object({ type: Type.Literal('pay_refs_held') }),
  /** Primary: a member refused a replication update (the primary goes no further until it is resolved). */
  Type.Object({
    type: Type.Literal('committee_update_refused'),
    member: Type.String(),
    seq: Type.Integer({ minimum: 0 }),
    code: Type.String(),
  }),
  Type.Object({
    type: Type.Literal('peer_roster'),
    peer_id: Type.String(),
    members: Type.Array(Type.Object({ node_id: Type.String(), address: Type.String() }), { maxItems: 15 }),
  }),
  /**
   * One of the enclave's own one-way ocalls failed before leaving it (arguments its schema refuses: a bug in
   * the enclave program); `failures` counts that ocall's failures so far. Sent by program.ts, not the treasury.
   */
  Type.Object({
    type: Type.Literal('ocall_failed'),
    ocall: Type.String(),
    failures: Type.Integer({ minimum: 1 }),
    message: Type.String(),
  }),
  Type.Object({
    type: Type.Literal('roster_refused'),
    peer_id: Type.String(),
    channel_id: Type.String(),
    reason: Type.String(),
  }),
  Type.Object({
    type: Type.Literal('payment_unproven'),
    channel_id: Type.String(),
    total: Type.String(),
    reason: Type.String(),
  }),
  /**
   * A path round this treasury takes part in, at its first record here, when SIGN brings the list of its
   * payments left out, and when it ends (docs/protocol/multihop.md, "Rounds"). `payments` (first record
   * only): each payment of the round as LOCK carries it, its amount delivered and the fee the path charges
   * it, with the host's id at the payer; `dropped`: indices into them of the payments left out.
   */
  Type.Object({
    type: Type.Literal('mh_round'),
    round_id: Type.String(),
    role: Type.Union([Type.Literal('payer'), Type.Literal('intermediary'), Type.Literal('destination')]),
    phase: Type.String(),
    route: Type.Array(Type.String()),
    amounts: Type.Array(Sat),
    txid: Type.Union([Type.String(), Type.Null()]),
    code: Type.Union([Type.String(), Type.Null()]),
    payments: Type.Optional(
      Type.Array(Type.Object({ payment_id: Type.Optional(Type.String()), amount: Sat, fee: Sat }), {
        maxItems: 10_000,
      }),
    ),
    dropped: Type.Optional(Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 10_000 })),
  }),
  Type.Object({
    type: Type.Literal('multihop_commit_unproven'),
    payment_id: Type.String(),
    channel_id: Type.String(),
    reason: Type.String(),
  }),
]);

export const CommitteeView = Type.Object({
  /** The committee's stable identity (its founding primary's node id), the same on every member. */
  treasury_id: Type.String(),
  /** The view number: 0 at formation, one more at every view change. */
  epoch: Type.Integer({ minimum: 0 }),
  role: Type.Union([Type.Literal('primary'), Type.Literal('backup')]),
  size: Type.Integer(),
  threshold: Type.Integer(),
  /** This member's place in the chain (0 = primary; −1 for a backup not yet admitted). */
  index: Type.Integer(),
  /** Primary: last update issued; backup: last applied. */
  seq: Type.Integer(),
  /** Primary: the last update every backup acknowledged; backup: the last it acknowledged itself. */
  acked_seq: Type.Integer(),
  formed: Type.Boolean(),
  /** Primary: updates issued since its enclave started, and the bytes of their bodies (deltas or snapshots). */
  issued: Type.Optional(Type.Object({ updates: Type.Integer({ minimum: 0 }), bytes: Type.Integer({ minimum: 0 }) })),
  /** rest_url: where clients reach that member's REST API, as the member's host said (a hint, not attested). */
  members: Type.Array(
    Type.Object({
      node_id: Type.String(),
      address: Type.String(),
      rest_url: Type.Optional(Type.String()),
      connected: Type.Boolean(),
    }),
  ),
});
export type CommitteeView = Static<typeof CommitteeView>;

export const PayResultSchema = Type.Union([
  Type.Object({ ok: Type.Literal(true), channel_id: Hex32, position: Sat }),
  Type.Object({ ok: Type.Literal(false), code: Type.String(), message: Type.String() }),
]);

export const TreasuryInterface = defineInterface({
  ecalls: {
    /** First call after launch: restores the sealed state, or creates a new treasury with this config. */
    init: {
      args: Type.Object(
        {
          trust_anchor: Type.String({ pattern: '^[0-9a-f]{66}$' }),
          allowed_measurements: Type.Array(Type.String({ pattern: '^[0-9a-f]{64}$' }), { minItems: 1, maxItems: 64 }),
          min_confirmations: Type.Integer({ minimum: 0, maximum: 1000 }),
          payout_address: Address,
          /** Where clients reach this node's REST API (a hint): a committee primary lists it in its roster. */
          rest_url: Type.Optional(RestUrl),
          /** Only for a new treasury (a restored one keeps its sealed role). */
          committee: Type.Optional(
            Type.Union([
              Type.Object(
                {
                  role: Type.Literal('primary'),
                  size: Type.Integer({ minimum: 2, maximum: 15 }),
                  threshold: Type.Optional(Type.Integer({ minimum: 2, maximum: 15 })),
                  address: Address,
                },
                { additionalProperties: false },
              ),
              Type.Object({ role: Type.Literal('backup') }, { additionalProperties: false }),
            ]),
          ),
          /** A committee backup suspects a primary it has not heard from for this long (0: never); at every launch. */
          promotion_timeout_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 3_600_000 })),
        },
        { additionalProperties: false },
      ),
      /** join_tokens: a new committee primary's one-time join tokens, one per backup; given out only here, once. */
      result: Type.Object({
        node_id: Type.String(),
        restored: Type.Boolean(),
        join_tokens: Type.Optional(Type.Array(Type.String({ pattern: '^[0-9a-f]{64}$' }), { maxItems: 14 })),
      }),
    },
    get_info: {
      args: Empty,
      result: Type.Object({
        node_id: Type.String(),
        /** The identity channel peers and routing know this treasury by: a committee's, or the node's own. */
        treasury_id: Type.String(),
        peers: Type.Array(Type.String()),
        num_channels: Type.Integer(),
        min_confirmations: Type.Integer(),
        /** Where settlements and releases pay this treasury's side (a committee's, on every member). */
        payout_address: Type.String(),
        seals: Type.Integer(),
        committee: Type.Union([CommitteeView, Type.Null()]),
      }),
    },
    /** A backup asks the primary it is connected to (by node id) for a place in its committee chain. */
    committee_join: {
      args: Type.Object(
        {
          primary_id: Type.String({ pattern: '^[0-9a-f]{66}$' }),
          address: Address,
          token: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
          /** Where clients reach this backup's REST API: sent to the primary, signed, for the roster (a hint). */
          rest_url: Type.Optional(RestUrl),
        },
        { additionalProperties: false },
      ),
      result: Ok,
    },
    /** A fresh quote binding the node id (report data = H(node id)) to a caller's nonce. */
    attest: {
      args: Type.Object({ nonce: Type.String({ pattern: '^([0-9a-f]{2}){1,64}$' }) }, { additionalProperties: false }),
      result: Type.Object({ node_id: Type.String(), quote: QuoteSchema }),
    },
    deposit_new: { args: Empty, result: DepositView },
    deposit_funded: {
      args: Type.Object(
        { deposit_id: DepositId, txid: Hex32, vout: Type.Integer({ minimum: 0, maximum: 100_000 }) },
        { additionalProperties: false },
      ),
      result: DepositView,
    },
    deposit_release: {
      args: Type.Object(
        { deposit_id: DepositId, address: Type.Optional(Address), fee_rate: FeeRate },
        { additionalProperties: false },
      ),
      result: Type.Object({ deposit_id: Type.String(), txid: Hex32, tx_hex: Type.String(), fee_sat: Sat }),
    },
    list_deposits: { args: Empty, result: Type.Object({ deposits: Type.Array(DepositView) }) },
    list_channels: { args: Empty, result: Type.Object({ channels: Type.Array(ChannelView) }) },
    get_channel: { args: Type.Object({ channel_id: Hex32 }, { additionalProperties: false }), result: ChannelView },
    channel_open: {
      args: Type.Object(
        { peer_id: Type.String({ pattern: '^[0-9a-f]{66}$' }), payout_address: Address },
        { additionalProperties: false },
      ),
      result: ChannelView,
    },
    channel_add_deposit: {
      args: Type.Object({ channel_id: Hex32, deposit_id: DepositId }, { additionalProperties: false }),
      result: ChannelView,
    },
    channel_remove_deposit: {
      args: Type.Object({ channel_id: Hex32, deposit_id: DepositId }, { additionalProperties: false }),
      result: ChannelView,
    },
    /**
     * A transaction the host found spending a deposit of the channel: closes an open channel; for a closed
     * one, once confirmed it decides the deposits awaiting the chain, and once final the keys are forgotten.
     */
    channel_spent: {
      args: Type.Object(
        { channel_id: Hex32, tx_hex: Type.String({ pattern: '^([0-9a-f]{2})+$', maxLength: 400_000 }) },
        { additionalProperties: false },
      ),
      result: ChannelView,
    },
    channel_settle: {
      args: Type.Object({ channel_id: Hex32, fee_rate: FeeRate }, { additionalProperties: false }),
      result: Type.Object({
        channel_id: Hex32,
        txid: Type.Union([Hex32, Type.Null()]),
        tx_hex: Type.Union([Type.String(), Type.Null()]),
        fee_sat: Sat,
        local_balance_sat: Sat,
        remote_balance_sat: Sat,
      }),
    },
    pay: {
      args: Type.Object(
        {
          payments: Type.Array(
            Type.Object(
              {
                channel_id: Hex32,
                amount_sat: Type.Integer({ minimum: 1, maximum: 2_100_000_000_000_000 }),
                /** A keyed payment: hashes of its idempotency key and request, sealed with the debit (payment-refs.ts). */
                ref: Type.Optional(PayRef),
              },
              { additionalProperties: false },
            ),
            { minItems: 1, maxItems: 100_000 },
          ),
          /** Key hashes of refs the host has journaled: the enclave forgets them. */
          journaled: Type.Optional(Type.Array(Hex16, { maxItems: 200_000 })),
        },
        { additionalProperties: false },
      ),
      result: Type.Object({ results: Type.Array(PayResultSchema) }),
    },
    /** Refs of keyed payments the host has not journaled (start-up recovery); `drop` forgets journaled ones first. */
    pay_refs: {
      args: DropJournaledRefs,
      result: Type.Object({
        refs: Type.Array(
          Type.Object({
            key: Hex16,
            fp: Hex16,
            channel_id: Hex32,
            position: Sat,
            amount_sat: Type.Integer({ minimum: 1 }),
            /** The id the host that took the payment gave it (absent for refs sealed before ids were kept). */
            payment_id: Type.Optional(PaymentId),
          }),
        ),
      }),
    },
    /** Pays `dest` through a path of channels (docs/protocol/multihop.md); answers once released or aborted. */
    mh_pay: {
      args: Type.Object(
        {
          dest: Type.String({ pattern: '^[0-9a-f]{66}$' }),
          amount_sat: Type.Integer({ minimum: 1, maximum: 2_100_000_000_000_000 }),
          fee_rate: FeeRate,
          /** The most the intermediaries may charge in all; default 1 % of the amount + 10 sat (routing.ts defaultMaxFee). */
          max_fee_sat: Type.Optional(Type.Integer({ minimum: 0, maximum: 2_100_000_000_000_000 })),
        },
        { additionalProperties: false },
      ),
      result: Type.Object({
        payment_id: Hex32,
        route: Type.Array(Type.String()),
        amounts: Type.Array(Sat),
        fee_sat: Sat,
        channel_id: Hex32,
      }),
    },
    /**
     * Pays every payment to `dest` in one path round (docs/protocol/multihop.md, "Rounds"); answers once
     * the round is released or aborted, each payment with its own outcome, in the order asked.
     */
    mh_pay_round: {
      args: Type.Object(
        {
          dest: Type.String({ pattern: '^[0-9a-f]{66}$' }),
          payments: Type.Array(
            Type.Object(
              {
                amount_sat: Type.Integer({ minimum: 1, maximum: 2_100_000_000_000_000 }),
                max_fee_sat: Type.Optional(Type.Integer({ minimum: 0, maximum: 2_100_000_000_000_000 })),
                /** The host's id of this payment, only echoed in the round's `mh_round` event. */
                payment_id: Type.Optional(Type.String({ pattern: '^[a-z0-9]{1,32}$' })),
                /** A keyed payment: hashes of its idempotency key and request, sealed with the round's lock (multihop/payer-refs.ts). */
                ref: Type.Optional(PayRef),
              },
              { additionalProperties: false },
            ),
            { minItems: 1, maxItems: 10_000 },
          ),
          fee_rate: FeeRate,
          /** Key hashes of keyed routed payments whose outcome the host has journaled: the enclave forgets them. */
          journaled: Type.Optional(Type.Array(Hex16, { maxItems: 200_000 })),
        },
        { additionalProperties: false },
      ),
      result: Type.Object({
        payment_id: Type.Union([Hex32, Type.Null()]),
        route: Type.Array(Type.String()),
        results: Type.Array(
          Type.Union([
            Type.Object({ ok: Type.Literal(true), fee_sat: Sat, channel_id: Hex32 }),
            Type.Object({ ok: Type.Literal(false), code: Type.String(), message: Type.String() }),
          ]),
        ),
      }),
    },
    /**
     * Keyed routed payments this treasury pays whose outcome the host has not journaled (start-up recovery,
     * and after a round ends); `drop` first forgets journaled ones (resolved ones only).
     */
    mh_refs: {
      args: DropJournaledRefs,
      result: Type.Object({
        refs: Type.Array(
          Type.Object({
            key: Hex16,
            fp: Hex16,
            round_id: Hex32,
            amount_sat: Sat,
            /** The id the host that took the payment gave it (absent for refs sealed before ids were kept). */
            payment_id: Type.Optional(PaymentId),
            /** The round's destination (the last node of its route). */
            dest: Type.String(),
            outcome: Type.Union([Type.Literal('pending'), Type.Literal('succeeded'), Type.Literal('failed')]),
            channel_id: Type.Optional(Hex32),
            route: Type.Optional(Type.Array(Type.String())),
            fee_sat: Type.Optional(Sat),
            code: Type.Optional(Type.String()),
          }),
        ),
      }),
    },
    /** Announces our channels if they changed and, with `peer_id`, sends that peer the whole channel graph. */
    mh_gossip: {
      args: Type.Object(
        { peer_id: Type.Optional(Type.String({ pattern: '^[0-9a-f]{66}$' })) },
        { additionalProperties: false },
      ),
      result: Ok,
    },
    /** The channel graph as this enclave knows it, and the multi-hop payments it takes part in. */
    mh_view: {
      args: Empty,
      result: Type.Object({
        nodes: Type.Array(
          Type.Object({
            node_id: Type.String(),
            seq: Type.Integer(),
            fee_base_sat: Type.Integer(),
            fee_ppm: Type.Integer(),
            channels: Type.Array(Type.Object({ channel_id: Type.String(), peer_id: Type.String(), capacity_sat: Sat })),
          }),
        ),
        payments: Type.Array(
          Type.Object({
            payment_id: Type.String(),
            role: Type.String(),
            phase: Type.String(),
            route: Type.Array(Type.String()),
            amounts: Type.Array(Sat),
            txid: Type.Union([Type.String(), Type.Null()]),
            code: Type.Union([Type.String(), Type.Null()]),
          }),
        ),
      }),
    },
    committee_add: {
      args: Type.Object(
        {
          node_id: Type.String({ pattern: '^(02|03)[0-9a-f]{64}$' }),
          address: Type.String({ minLength: 3, maxLength: 128 }),
        },
        { additionalProperties: false },
      ),
      result: Type.Object({ epoch: Type.Integer(), members: Type.Array(Type.String()) }),
    },
    committee_remove: {
      args: Type.Object(
        { node_id: Type.String({ pattern: '^(02|03)[0-9a-f]{64}$' }) },
        { additionalProperties: false },
      ),
      result: Type.Object({ epoch: Type.Integer(), members: Type.Array(Type.String()) }),
    },
    set_fees: {
      args: Type.Object(
        {
          base_sat: Type.Integer({ minimum: 0, maximum: 2_100_000_000_000_000 }),
          ppm: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
        },
        { additionalProperties: false },
      ),
      result: Type.Object({ base_sat: Type.Integer(), ppm: Type.Integer() }),
    },
    peer_connect: { args: Type.Object({ conn: Conn }, { additionalProperties: false }), result: Ok },
    peer_accept: { args: Type.Object({ conn: Conn }, { additionalProperties: false }), result: Ok },
    peer_recv: {
      args: Type.Object(
        { conn: Conn, frames: Type.Array(Type.Uint8Array({ maxByteLength: 16 * 1024 * 1024 }), { maxItems: 100_000 }) },
        { additionalProperties: false },
      ),
      result: Ok,
    },
    peer_disconnected: { args: Type.Object({ conn: Conn }, { additionalProperties: false }), result: Ok },
  },
  ocalls: {
    // Notifications: the enclave never waits for them (one crossing each, no answer).
    net_send: { args: Type.Object({ conn: Conn, frames: Type.Array(Type.Uint8Array()) }), result: Ok, oneway: true },
    net_close: { args: Type.Object({ conn: Conn, reason: Type.String() }), result: Ok, oneway: true },
    event: { args: Type.Object({ event: TreasuryEventSchema }), result: Ok, oneway: true },
    chain_get_txout: {
      args: Type.Object({ txid: Hex32, vout: Type.Integer({ minimum: 0 }) }),
      result: Type.Union([
        Type.Null(),
        Type.Object({ tx_hex: Type.String(), confirmations: Type.Integer({ minimum: 0 }), unspent: Type.Boolean() }),
      ]),
    },
  },
});

export type TreasuryInterface = typeof TreasuryInterface;
export type TreasuryEventMsg = Static<typeof TreasuryEventSchema>;
