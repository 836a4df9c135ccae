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
import {
  Hex32,
  Hex,
  SatString,
  SafeSat,
  PeerSig,
  Outpoint,
  DepositGrant,
  MemberId,
  ViewCertSchema,
  AddedMemberSchema,
  PaidProofSchema,
} from './wire-fields.ts';
import { CommitteeMessage } from './committee-messages.ts';
export { SatString, Outpoint, KeyShares, DepositGrant, ViewCertSchema } from './wire-fields.ts';
export { CommitteeMessage, MAX_CARRIED_UPDATES, SignedUpdateSchema } from './committee-messages.ts';

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

/** The most payments one path round carries (the payer's host groups at most this many). */
export const MAX_ROUND = 10_000;
const DroppedWire = Type.Array(Type.Integer({ minimum: 0, maximum: MAX_ROUND - 1 }), { maxItems: MAX_ROUND });

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
      /** A round: what each payment moves on each channel, and the payments hops so far left out (multihop/parts.ts). */
      parts: Type.Optional(
        Type.Array(Type.Array(SatString, { minItems: 1, maxItems: 19 }), { minItems: 1, maxItems: MAX_ROUND }),
      ),
      dropped: Type.Optional(DroppedWire),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      t: Type.Literal('mh_signed'),
      pid: Pid,
      hops: Type.Array(MhHopWire, { minItems: 1, maxItems: 19 }),
      tx: TxHex,
      /** The payments of the round that did not go on, as the destination signed τ without them. */
      dropped: Type.Optional(DroppedWire),
    },
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
