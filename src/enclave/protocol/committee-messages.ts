/**
 * Messages between the members of one committee (docs/protocol/committees.md): replication, key
 * generation, signing, view and roster changes. They travel inside the members' attested sessions and
 * are checked, with every other session message, by messages.ts's compiled schema.
 */
import { Type, type Static } from '@sinclair/typebox';
import { QuoteSchema } from '../../../enclave-sim/quote.ts';
import { Hex32, Hex, SatString, PeerSig, Outpoint, Box, MemberId, Epoch, ViewCertSchema } from './wire-fields.ts';

const Pid = Hex32;
const Req = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const Code = Type.String({ maxLength: 64 });
/** One member's share of a handed-over key, and which split it is from (PeerDeposit.gen; absent: 0). */
const ShareGiven = Type.Object(
  {
    outpoint: Outpoint,
    pubkey: Hex,
    share: Hex,
    gen: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
  },
  { additionalProperties: false },
);
/**
 * Most updates a signing request carries to catch its receiver up (committee/recent-updates.ts): enough for
 * every update a pipelined chain has in flight at once.
 */
export const MAX_CARRIED_UPDATES = 64;

export const SignedUpdateSchema = Type.Object(
  {
    seq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    epoch: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
    body: Type.String({ maxLength: 8_000_000 }),
    sig: Type.String({ pattern: '^[0-9a-f]{128}$' }),
  },
  { additionalProperties: false },
);

/** Between members of one committee (docs/protocol/committees.md): replication, key generation, signing. */
export const CommitteeMessage = Type.Union([
  /**
   * `token`: a one-time join token the primary issued (not needed by a member re-joining after a restart).
   * `rest_url`: where clients reach the joiner's host (a hint), with the joiner's signature of it (rest-url.ts).
   */
  Type.Object(
    {
      t: Type.Literal('c_join'),
      address: Type.String({ maxLength: 128 }),
      token: Type.Optional(Type.String({ maxLength: 128 })),
      rest_url: Type.Optional(Type.String({ maxLength: 256 })),
      rest_url_sig: Type.Optional(Type.String({ pattern: '^[0-9a-f]{128}$' })),
    },
    { additionalProperties: false },
  ),
  /** The view change (src/enclave/committee/promotion.ts): heartbeat, proposal, vote, certificate. */
  Type.Object({ t: Type.Literal('c_beat'), epoch: Epoch }, { additionalProperties: false }),
  Type.Object(
    {
      t: Type.Literal('c_propose'),
      epoch: Epoch,
      members: Type.Array(MemberId, { minItems: 2, maxItems: 15 }),
      chain: Type.Integer({ minimum: 1, maximum: 15 }),
      /** A roster change proposed by the primary (roster-change.ts) names the new roster's m. */
      threshold: Type.Optional(Type.Integer({ minimum: 2, maximum: 15 })),
      seq: Req,
    },
    { additionalProperties: false },
  ),
  Type.Object({ t: Type.Literal('c_vote'), epoch: Epoch, seq: Req, sig: PeerSig }, { additionalProperties: false }),
  Type.Object({ t: Type.Literal('c_view'), cert: ViewCertSchema }, { additionalProperties: false }),
  /**
   * Adding a member to a formed committee (src/enclave/committee/admission.ts): the primary tells the node
   * the operator admitted to ask for its place again (`c_admit`), and once the roster change is adopted
   * sends it the certificate, the roster changes before it and the order peers split keys in (`c_welcome`).
   */
  Type.Object({ t: Type.Literal('c_admit') }, { additionalProperties: false }),
  Type.Object(
    {
      t: Type.Literal('c_welcome'),
      cert: ViewCertSchema,
      chain: Type.Array(ViewCertSchema, { maxItems: 64 }),
      share_order: Type.Array(MemberId, { minItems: 2, maxItems: 64 }),
    },
    { additionalProperties: false },
  ),
  /** The primary's answer to a join it refused (nothing changed on its side). */
  Type.Object({ t: Type.Literal('c_join_refused'), code: Code }, { additionalProperties: false }),
  /**
   * `relay`: the primary could not send this update straight to every member, so each passes it on to its
   * successor and acknowledges up the chain as well (replication-backup.ts). A hint of the sender's host-level
   * reach: wrong, it costs liveness only (a hostile host can drop frames anyway), never what is acknowledged.
   */
  Type.Object(
    { t: Type.Literal('c_update'), update: SignedUpdateSchema, relay: Type.Optional(Type.Literal(true)) },
    { additionalProperties: false },
  ),
  /**
   * `sigs`: each member's signature (src/enclave/committee/acks.ts) of what it holds, from the sender down to
   * the tail; `epoch`: the sender's view, which lets the primary take the sender's own word without checking
   * its signature (the authenticated session already says who sent it).
   */
  Type.Object(
    {
      t: Type.Literal('c_ack'),
      seq: Req,
      epoch: Type.Optional(Type.Integer({ minimum: 0 })),
      sigs: Type.Optional(
        Type.Array(
          Type.Object(
            {
              seq: Req,
              /** Left out of the sender's own word straight to its primary (acks.ts); required on every relayed one. */
              sig: Type.Optional(Type.String({ pattern: '^[0-9a-f]{128}$' })),
              /** paid-proof.ts: the member's signed paid totals of the channels its updates up to `seq` moved. */
              held: Type.Optional(
                Type.Array(
                  Type.Object(
                    { ch: Hex32, seq: Req, sent: SatString, sig: Type.String({ pattern: '^[0-9a-f]{128}$' }) },
                    { additionalProperties: false },
                  ),
                  { maxItems: 100_000 },
                ),
              ),
              /** committed-proof.ts: the multi-hop payments those updates showed newly committed, signed. */
              committed: Type.Optional(
                Type.Array(Type.Object({ pid: Pid, sig: PeerSig }, { additionalProperties: false }), {
                  maxItems: 100_000,
                }),
              ),
            },
            { additionalProperties: false },
          ),
          { maxItems: 16 },
        ),
      ),
    },
    { additionalProperties: false },
  ),
  /**
   * An update refused (never acknowledged), relayed up to the primary. With `ch`: this member signed a
   * settlement of that channel (txid, at those totals and fee rate) and refuses every update that moves it;
   * a member that signs also sends it to the primary directly.
   */
  Type.Object(
    {
      t: Type.Literal('c_refuse'),
      seq: Req,
      code: Code,
      ch: Type.Optional(Hex32),
      txid: Type.Optional(Hex32),
      sent: Type.Optional(SatString),
      received: Type.Optional(SatString),
      fee_rate: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    { t: Type.Literal('c_keygen'), req: Req, dep: Type.String({ maxLength: 32 }) },
    { additionalProperties: false },
  ),
  Type.Object({ t: Type.Literal('c_keygen_res'), req: Req, pubkey: Hex }, { additionalProperties: false }),
  Type.Object(
    { t: Type.Literal('c_handover'), req: Req, dep: Type.String({ maxLength: 32 }) },
    { additionalProperties: false },
  ),
  Type.Object({ t: Type.Literal('c_handover_res'), req: Req, pubkey: Hex, box: Hex }, { additionalProperties: false }),
  /** A member's key of a deposit joining a channel with a committee peer: split for the peer's roster. */
  Type.Object(
    {
      t: Type.Literal('c_handover_shares'),
      req: Req,
      pubkey: Hex,
      boxes: Type.Array(Box, { minItems: 2, maxItems: 15 }),
    },
    { additionalProperties: false },
  ),
  /** The primary asks a member for its quote over its node id (the roster proof's evidence). */
  Type.Object({ t: Type.Literal('c_quote_req'), req: Req }, { additionalProperties: false }),
  Type.Object({ t: Type.Literal('c_quote'), req: Req, quote: QuoteSchema }, { additionalProperties: false }),
  Type.Object(
    {
      t: Type.Literal('c_sign'),
      req: Req,
      kind: Type.Union([Type.Literal('settle'), Type.Literal('release'), Type.Literal('tau')]),
      id: Type.String({ maxLength: 64 }),
      fee_rate: Type.Integer({ minimum: 1, maximum: 1000 }),
      txid: Hex32,
      /** The requester's view: a member in a newer one refuses (stale_epoch). */
      epoch: Type.Optional(Epoch),
      /** The requester's latest updates of this view, oldest first, for a member behind it. */
      updates: Type.Optional(Type.Array(SignedUpdateSchema, { maxItems: MAX_CARRIED_UPDATES })),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      t: Type.Literal('c_sign_res'),
      req: Req,
      sigs: Type.Array(
        Type.Object(
          { input: Type.Integer({ minimum: 0, maximum: 10_000 }), pubkey: Hex, sig: Hex },
          { additionalProperties: false },
        ),
        { maxItems: 10_000 },
      ),
      shares: Type.Array(ShareGiven, { maxItems: 10_000 }),
    },
    { additionalProperties: false },
  ),
  /**
   * The primary re-splits the handed-over keys of a channel's peer deposits for a new roster
   * (committee/resharing.ts): each member gives its share of every key whose re-split its replica shows due.
   */
  Type.Object({ t: Type.Literal('c_reshare'), req: Req, ch: Hex32, epoch: Epoch }, { additionalProperties: false }),
  Type.Object(
    { t: Type.Literal('c_reshare_res'), req: Req, shares: Type.Array(ShareGiven, { maxItems: 10_000 }) },
    { additionalProperties: false },
  ),
  Type.Object(
    { t: Type.Literal('c_error'), req: Req, code: Code, message: Type.String({ maxLength: 500 }) },
    { additionalProperties: false },
  ),
]);
export type CommitteeMessage = Static<typeof CommitteeMessage>;
