/**
 * The fields that more than one kind of session message uses (messages.ts, committee-messages.ts): hex
 * strings, satoshi amounts, outpoints, signatures, handed-over keys, committee views and proofs.
 */
import { Type, type Static } from '@sinclair/typebox';
import { QuoteSchema } from '../../../enclave-sim/quote.ts';

export const Hex32 = Type.String({ pattern: '^[0-9a-f]{64}$' });
export const Hex = Type.String({ pattern: '^([0-9a-f]{2})*$', maxLength: 20_000 });
/** A non-negative satoshi amount as a decimal string (bigint on both ends). */
export const SatString = Type.String({ pattern: '^(0|[1-9][0-9]{0,18})$' });
export const SafeSat = Type.Integer({ minimum: 1, maximum: 2_100_000_000_000_000 });
/** A peer-sigs.ts signature by the sender's identity key (compact, 64 bytes). */
export const PeerSig = Type.String({ pattern: '^[0-9a-f]{128}$' });

/** Outpoint as `txid:vout`. */
export const Outpoint = Type.String({ pattern: '^[0-9a-f]{64}:[0-9]{1,6}$' });

export const Box = Type.String({ pattern: '^([0-9a-f]{2})+$', maxLength: 400 });
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

export const MemberId = Type.String({ pattern: '^[0-9a-f]{66}$' });
export const Epoch = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
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
export const AddedMemberSchema = Type.Object(
  { node_id: Type.String({ pattern: '^[0-9a-f]{66}$' }), quote: QuoteSchema },
  { additionalProperties: false },
);

/**
 * A committee primary's proof that a paid total is replicated (src/enclave/committee/paid-proof.ts): each
 * replicating backup's signature of the total it holds durably on this channel, in chain order.
 */
export const PaidProofSchema = Type.Object(
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
