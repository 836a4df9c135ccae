/**
 * Treasury-to-treasury protocol messages: what travels inside an attested, encrypted session.
 *
 * Plain JSON (one message per frame), checked against a compiled TypeBox schema by the receiving
 * enclave before anything is applied. Satoshi amounts that can exceed 2^53 in principle (cumulative
 * totals) travel as decimal strings; single payment amounts are safe integers (21e6 BTC < 2^53 sat).
 *
 * Payments are expressed as cumulative totals ("I have now paid you T in all on channel C"), so a
 * retransmitted or resynchronised message is idempotent: the receiver credits T - (what it had), and an
 * old total credits nothing. See docs/protocol/channels.md.
 */
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { QuoteSchema } from '../../../enclave-sim/quote.ts';

const Hex32 = Type.String({ pattern: '^[0-9a-f]{64}$' });
const Hex = Type.String({ pattern: '^([0-9a-f]{2})*$', maxLength: 20_000 });
/** A non-negative satoshi amount as a decimal string (bigint on both ends). */
export const SatString = Type.String({ pattern: '^(0|[1-9][0-9]{0,18})$' });
const SafeSat = Type.Integer({ minimum: 1, maximum: 2_100_000_000_000_000 });
/** A peer-sigs.ts signature by the sender's identity key (compact, 64 bytes). */
const PeerSig = Type.String({ pattern: '^[0-9a-f]{128}$' });

/** Outpoint as `txid:vout`. */
export const Outpoint = Type.String({ pattern: '^[0-9a-f]{64}:[0-9]{1,6}$' });

const Box = Type.String({ pattern: '^([0-9a-f]{2})+$', maxLength: 400 });
/** One handed-over key as secret shares: its public key and one sealed share per member of the receiving committee. */
export const KeyShares = Type.Object(
  { pubkey: Hex, boxes: Type.Array(Box, { minItems: 2, maxItems: 15 }) },
  { additionalProperties: false },
);

/** A deposit handed to the counterparty: everything its enclave needs to check it on chain and spend it. */
export const DepositGrant = Type.Object(
  {
    outpoint: Outpoint,
    value: SatString,
    /** m-of-n: the public keys of the deposit's multisig witness script, and m. */
    m: Type.Integer({ minimum: 1, maximum: 15 }),
    pubkeys: Type.Array(Hex, { minItems: 1, maxItems: 15 }),
    /** The private keys that let the receiving enclave sign for the deposit alone (Teechain's key handover). */
    privkeys: Type.Array(Hex, { maxItems: 15 }),
    /**
     * From a committee: each member's key sealed to the receiving enclave (src/crypto/ecies.ts), so the
     * sender's primary, which relays them, never holds more than its own.
     */
    sealed_keys: Type.Optional(
      Type.Array(Type.String({ pattern: '^([0-9a-f]{2})+$', maxLength: 400 }), { maxItems: 15 }),
    ),
    /**
     * To a committee: each key split m-of-n, share i sealed to the peer's roster member i, so no single
     * member (its primary included) ever receives a whole key. `privkeys` is then empty.
     */
    shares: Type.Optional(Type.Array(KeyShares, { maxItems: 15 })),
  },
  { additionalProperties: false },
);
export type DepositGrant = Static<typeof DepositGrant>;

const MemberId = Type.String({ pattern: '^[0-9a-f]{66}$' });
const Epoch = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
/** A committee view and the votes that made it (src/enclave/committee/view.ts). */
export const ViewCertSchema = Type.Object(
  {
    treasury_id: MemberId,
    epoch: Epoch,
    members: Type.Array(MemberId, { minItems: 2, maxItems: 15 }),
    chain: Type.Integer({ minimum: 1, maximum: 15 }),
    /** Present only in a roster change (src/enclave/committee/roster-change.ts): m of the new roster. */
    threshold: Type.Optional(Type.Integer({ minimum: 2, maximum: 15 })),
    votes: Type.Array(Type.Object({ node_id: MemberId, sig: PeerSig }, { additionalProperties: false }), {
      maxItems: 15,
    }),
  },
  { additionalProperties: false },
);

/** A member a roster change added, with its quote over its node id (roster.ts MEMBER_QUOTE_NONCE). */
const AddedMemberSchema = Type.Object(
  { node_id: Type.String({ pattern: '^[0-9a-f]{66}$' }), quote: QuoteSchema },
  { additionalProperties: false },
);

/**
 * A committee primary's proof that a paid total is replicated (src/enclave/committee/paid-proof.ts): each
 * replicating backup's signature of the total it holds durably on this channel, in chain order.
 */
const PaidProofSchema = Type.Object(
  {
    epoch: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    held: Type.Array(
      Type.Object(
        { seq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), sent: SatString, sig: PeerSig },
        { additionalProperties: false },
      ),
      { maxItems: 14 },
    ),
  },
  { additionalProperties: false },
);

export const ChannelMessage = Type.Union([
  /**
   * `sig`: the sender's signature of its payout (src/enclave/protocol/peer-sigs.ts); `want_sigs`: the sender is a
   * committee and asks for a signature of every paid total (its backups check them).
   */
  Type.Object(
    {
      t: Type.Literal('open'),
      ch: Hex32,
      payout: Hex,
      sig: Type.Optional(PeerSig),
      want_sigs: Type.Optional(Type.Boolean()),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      t: Type.Literal('open_ack'),
      ch: Hex32,
      payout: Hex,
      sig: Type.Optional(PeerSig),
      want_sigs: Type.Optional(Type.Boolean()),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    { t: Type.Literal('open_nack'), ch: Hex32, code: Type.String({ maxLength: 64 }) },
    { additionalProperties: false },
  ),
  Type.Object({ t: Type.Literal('add_deposit'), ch: Hex32, deposit: DepositGrant }, { additionalProperties: false }),
  Type.Object({ t: Type.Literal('add_deposit_ack'), ch: Hex32, outpoint: Outpoint }, { additionalProperties: false }),
  Type.Object(
    { t: Type.Literal('add_deposit_nack'), ch: Hex32, outpoint: Outpoint, code: Type.String({ maxLength: 64 }) },
    { additionalProperties: false },
  ),
  Type.Object({ t: Type.Literal('remove_deposit'), ch: Hex32, outpoint: Outpoint }, { additionalProperties: false }),
  Type.Object(
    { t: Type.Literal('remove_deposit_ack'), ch: Hex32, outpoint: Outpoint },
    { additionalProperties: false },
  ),
  Type.Object(
    { t: Type.Literal('remove_deposit_nack'), ch: Hex32, outpoint: Outpoint, code: Type.String({ maxLength: 64 }) },
    { additionalProperties: false },
  ),
  /**
   * `total`: all the sender has ever paid on `ch`; `amounts`: the payments added since its last pay message;
   * `sig`: the sender's signature of `total`, when the receiver asked for it (`want_sigs`); `proof`: from a
   * committee, that every replicating backup holds `total` (a peer that verified its roster credits nothing else).
   */
  Type.Object(
    {
      t: Type.Literal('pay'),
      ch: Hex32,
      total: SatString,
      amounts: Type.Array(SafeSat, { maxItems: 1_000_000 }),
      sig: Type.Optional(PeerSig),
      proof: Type.Optional(PaidProofSchema),
    },
    { additionalProperties: false },
  ),
  /** `total`: all the receiver has durably credited on `ch`. */
  Type.Object({ t: Type.Literal('pay_ack'), ch: Hex32, total: SatString }, { additionalProperties: false }),
  /** `sent` / `received`: the settler's totals in what it settled (tells a multi-hop hop which state it was). */
  Type.Object(
    {
      t: Type.Literal('settled'),
      ch: Hex32,
      txid: Hex32,
      sent: Type.Optional(SatString),
      received: Type.Optional(SatString),
    },
    { additionalProperties: false },
  ),
  /** A committee primary's roster proof (src/enclave/committee/roster.ts): whom the peer seals key shares to. */
  Type.Object(
    {
      t: Type.Literal('roster'),
      ch: Hex32,
      threshold: Type.Integer({ minimum: 0, maximum: 15 }),
      members: Type.Array(
        Type.Object(
          {
            node_id: Type.String({ pattern: '^[0-9a-f]{66}$' }),
            quote: QuoteSchema,
            /** Where the member's host listens: a hint for the peer's host, which attestation then checks. */
            address: Type.Optional(Type.String({ maxLength: 128 })),
          },
          { additionalProperties: false },
        ),
        { maxItems: 15 },
      ),
      /** Past the founding view: the sender's view and how to reach it from `members`, as in `view`. */
      cert: Type.Optional(ViewCertSchema),
      chain: Type.Optional(Type.Array(ViewCertSchema, { maxItems: 64 })),
      added: Type.Optional(Type.Array(AddedMemberSchema, { maxItems: 64 })),
    },
    { additionalProperties: false },
  ),
  /** A committee peer's new primary shows the view that made it primary, before it resynchronises the channels. */
  Type.Object(
    {
      t: Type.Literal('view'),
      cert: ViewCertSchema,
      /** The committee's roster changes since formation (roster-change.ts): how a peer reaches `cert`'s roster. */
      chain: Type.Optional(Type.Array(ViewCertSchema, { maxItems: 64 })),
      /** Each member those roster changes added, with its quote over its node id: no peer follows an unattested one. */
      added: Type.Optional(Type.Array(AddedMemberSchema, { maxItems: 64 })),
    },
    { additionalProperties: false },
  ),
  /** Sent after every handshake: each side's cumulative totals, so lost messages are made good. */
  Type.Object(
    {
      t: Type.Literal('sync'),
      channels: Type.Array(
        Type.Object(
          {
            ch: Hex32,
            sent: SatString,
            received: SatString,
            closed: Type.Boolean(),
            sig: Type.Optional(PeerSig),
            proof: Type.Optional(PaidProofSchema),
          },
          { additionalProperties: false },
        ),
        { maxItems: 100_000 },
      ),
    },
    { additionalProperties: false },
  ),
]);
export type ChannelMessage = Static<typeof ChannelMessage>;

const NodeIdHex = Type.String({ pattern: '^[0-9a-f]{66}$' });
const TxHex = Type.String({ pattern: '^([0-9a-f]{2})+$', maxLength: 400_000 });
const Pid = Hex32;

/** One channel of a multi-hop path, described by its paying side (docs/protocol/multihop.md). */
export const MhHopWire = Type.Object(
  {
    ch: Hex32,
    from: NodeIdHex,
    to: NodeIdHex,
    amount: SatString,
    from_old: SatString,
    to_old: SatString,
    from_payout: Hex,
    to_payout: Hex,
    inputs: Type.Array(
      Type.Object({ outpoint: Outpoint, value: SatString, script: Hex }, { additionalProperties: false }),
      { maxItems: 200 },
    ),
  },
  { additionalProperties: false },
);
export type MhHopWire = Static<typeof MhHopWire>;

/** A node's signed channel announcement, flooded to every treasury for routing. */
export const AnnouncementWire = Type.Object(
  {
    node: NodeIdHex,
    seq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    fee_base: Type.Integer({ minimum: 0, maximum: 2_100_000_000_000_000 }),
    fee_ppm: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
    channels: Type.Array(Type.Object({ ch: Hex32, peer: NodeIdHex, cap: SatString }, { additionalProperties: false }), {
      maxItems: 10_000,
    }),
  },
  { additionalProperties: false },
);
export type AnnouncementWire = Static<typeof AnnouncementWire>;

/**
 * Why an announcement for a committee is signed by a member other than its founding primary (its
 * treasury_id): the committee's roster proof (the founding primary first, every member attested) and the
 * certificate of the view whose first member signed, with the roster changes that lead to it from that
 * roster (src/enclave/treasury/multihop/speakers.ts).
 */
export const SpeakerProof = Type.Object(
  {
    threshold: Type.Integer({ minimum: 2, maximum: 15 }),
    members: Type.Array(Type.Object({ node_id: MemberId, quote: QuoteSchema }, { additionalProperties: false }), {
      minItems: 2,
      maxItems: 15,
    }),
    cert: ViewCertSchema,
    chain: Type.Optional(Type.Array(ViewCertSchema, { maxItems: 64 })),
  },
  { additionalProperties: false },
);
export type SpeakerProof = Static<typeof SpeakerProof>;

/** Multi-hop payments and routing gossip (docs/protocol/multihop.md). */
export const MultiHopMessage = Type.Union([
  Type.Object(
    {
      t: Type.Literal('mh_lock'),
      pid: Pid,
      ch: Hex32,
      route: Type.Array(NodeIdHex, { minItems: 2, maxItems: 20 }),
      amounts: Type.Array(SatString, { minItems: 1, maxItems: 19 }),
      hops: Type.Array(MhHopWire, { minItems: 1, maxItems: 19 }),
      fee_rate: Type.Integer({ minimum: 1, maximum: 1000 }),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    { t: Type.Literal('mh_signed'), pid: Pid, hops: Type.Array(MhHopWire, { minItems: 1, maxItems: 19 }), tx: TxHex },
    { additionalProperties: false },
  ),
  /**
   * `sig`: the sender's signature of the total it will have paid on the channel once this payment is
   * applied, for a committee peer (its backups credit only totals the payer signed); `proof`: from a
   * committee, that every replicating backup holds the payment committed (committed-proof.ts).
   */
  Type.Object(
    {
      t: Type.Literal('mh_commit'),
      pid: Pid,
      tx: TxHex,
      sig: Type.Optional(PeerSig),
      proof: Type.Optional(
        Type.Object(
          {
            epoch: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
            sigs: Type.Array(PeerSig, { maxItems: 14 }),
          },
          { additionalProperties: false },
        ),
      ),
    },
    { additionalProperties: false },
  ),
  Type.Object({ t: Type.Literal('mh_release'), pid: Pid }, { additionalProperties: false }),
  /** The payer has released, so no enclave holds τ any more: the path channels may move again. */
  Type.Object({ t: Type.Literal('mh_unlock'), pid: Pid }, { additionalProperties: false }),
  Type.Object(
    { t: Type.Literal('mh_abort'), pid: Pid, code: Type.String({ maxLength: 64 }) },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      t: Type.Literal('gossip'),
      ann: AnnouncementWire,
      sig: Type.String({ pattern: '^[0-9a-f]{128}$' }),
      /** Present when the signer is not `ann.node` itself: a committee's promoted primary. */
      by: Type.Optional(SpeakerProof),
    },
    { additionalProperties: false },
  ),
]);
export type MultiHopMessage = Static<typeof MultiHopMessage>;

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
  Type.Object({ t: Type.Literal('c_update'), update: SignedUpdateSchema }, { additionalProperties: false }),
  /** `sigs`: each member's signature (src/enclave/committee/acks.ts) of what it holds, from the sender down to the tail. */
  Type.Object(
    {
      t: Type.Literal('c_ack'),
      seq: Req,
      sigs: Type.Optional(
        Type.Array(
          Type.Object(
            {
              seq: Req,
              sig: Type.String({ pattern: '^[0-9a-f]{128}$' }),
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
/** Everything that travels inside a session: channel messages between treasuries, committee messages within one. */
export const SessionMessage = Type.Union([ChannelMessage, CommitteeMessage, MultiHopMessage]);
export type SessionMessage = Static<typeof SessionMessage>;

/** Handshake messages travel in the clear: their authenticity comes from the quotes they carry. */
export const HandshakeMessage = Type.Union([
  Type.Object({ t: Type.Literal('hs_hello'), id: Hex, eph: Hex, nonce: Hex32 }, { additionalProperties: false }),
  Type.Object(
    { t: Type.Literal('hs_reply'), id: Hex, eph: Hex, nonce: Hex32, quote: Type.Unknown() },
    { additionalProperties: false },
  ),
  Type.Object({ t: Type.Literal('hs_finish'), quote: Type.Unknown() }, { additionalProperties: false }),
]);
export type HandshakeMessage = Static<typeof HandshakeMessage>;

const channelCheck = TypeCompiler.Compile(SessionMessage);
const handshakeCheck = TypeCompiler.Compile(HandshakeMessage);

/** Parses and schema-checks a decrypted channel message; null when it is not one. */
export function parseChannelMessage(bytes: Uint8Array): SessionMessage | null {
  const v = parseJson(bytes);
  return channelCheck.Check(v) ? v : null;
}

/** Parses and schema-checks a clear-text handshake message; null when it is not one. */
export function parseHandshakeMessage(bytes: Uint8Array): HandshakeMessage | null {
  const v = parseJson(bytes);
  return handshakeCheck.Check(v) ? v : null;
}

export function encodeMessage(msg: SessionMessage | HandshakeMessage): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(msg));
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch {
    return undefined;
  }
}
