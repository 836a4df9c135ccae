/**
 * The baseline's peer messages (named after BOLT 2) and their encoding: one message per transport frame,
 * JSON with byte strings as hex and amounts as decimal strings. JSON costs a few microseconds a message,
 * noise next to the signatures; what is on the wire is the same information BOLT 2 messages carry, plus a
 * keysend preimage standing in for the onion payload (see docs/benchmarks.md, "The Lightning-style baseline").
 */
import type { Basepoints, Bytes } from './keys.ts';

/** `balance`: each payment moves the balance directly; `htlc`: each payment is an HTLC added then fulfilled. */
export type LnMode = 'balance' | 'htlc';

export interface OpenChannel {
  type: 'open_channel';
  mode: LnMode;
  capacitySat: bigint;
  fundingTxHash: Bytes;
  fundingVout: number;
  toSelfDelay: number;
  dustLimitSat: bigint;
  feeratePerKw: bigint;
  reserveSat: bigint;
  basepoints: Basepoints;
  /** Per-commitment points of commitments 0 and 1 (BOLT 2 sends the second in channel_ready). */
  firstPoints: Bytes[];
}

export interface AcceptChannel {
  type: 'accept_channel';
  basepoints: Basepoints;
  firstPoints: Bytes[];
}

/** The opener's signature on the acceptor's commitment 0, and the reply. */
export interface FundingCreated {
  type: 'funding_created';
  signature: Bytes;
}
export interface FundingSigned {
  type: 'funding_signed';
  signature: Bytes;
}

/** `balance` mode only (not a BOLT message): pay `amountSat` from opener to acceptor at the next commitment. */
export interface UpdatePay {
  type: 'update_pay';
  id: number;
  amountSat: bigint;
}

export interface UpdateAddHtlc {
  type: 'update_add_htlc';
  id: number;
  amountSat: bigint;
  paymentHash: Bytes;
  cltvExpiry: number;
  /** Stands in for the onion payload of a keysend payment, which carries the preimage to the payee. */
  keysendPreimage: Bytes;
}

export interface UpdateFulfillHtlc {
  type: 'update_fulfill_htlc';
  id: number;
  paymentPreimage: Bytes;
}

export interface CommitmentSigned {
  type: 'commitment_signed';
  signature: Bytes;
  htlcSignatures: Bytes[];
}

export interface RevokeAndAck {
  type: 'revoke_and_ack';
  perCommitmentSecret: Bytes;
  nextPerCommitmentPoint: Bytes;
}

export interface ErrorMessage {
  type: 'error';
  message: string;
}

export type LnMessage =
  | OpenChannel
  | AcceptChannel
  | FundingCreated
  | FundingSigned
  | UpdatePay
  | UpdateAddHtlc
  | UpdateFulfillHtlc
  | CommitmentSigned
  | RevokeAndAck
  | ErrorMessage;

export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireError';
  }
}

/** JSON with Uint8Array as {"$hex": …} and bigint as {"$big": "…"}; used for messages and persisted state. */
export function encodeJson(value: unknown): Uint8Array {
  return Buffer.from(
    JSON.stringify(value, (_k, v: unknown) => {
      if (v instanceof Uint8Array) return { $hex: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') };
      if (typeof v === 'bigint') return { $big: v.toString() };
      return v;
    }),
  );
}

/** Inverse of encodeJson. @throws WireError on malformed input. */
export function decodeJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'),
      (_k, v: unknown) => {
        if (v && typeof v === 'object' && !Array.isArray(v)) {
          const o = v as Record<string, unknown>;
          if (typeof o.$hex === 'string') {
            if (o.$hex.length % 2 !== 0 || !/^[0-9a-f]*$/.test(o.$hex)) throw new WireError('bad hex');
            return new Uint8Array(Buffer.from(o.$hex, 'hex'));
          }
          if (typeof o.$big === 'string') {
            if (!/^-?[0-9]+$/.test(o.$big)) throw new WireError('bad integer');
            return BigInt(o.$big);
          }
        }
        return v;
      },
    );
  } catch (err) {
    throw err instanceof WireError ? err : new WireError(`malformed JSON: ${(err as Error).message}`);
  }
}

type FieldKind = 'int' | 'sat' | 'str' | 'mode' | 'b32' | 'point' | 'sig' | 'sigs' | 'points' | 'basepoints';

const SCHEMAS: { [T in LnMessage['type']]: Record<string, FieldKind> } = {
  open_channel: {
    mode: 'mode',
    capacitySat: 'sat',
    fundingTxHash: 'b32',
    fundingVout: 'int',
    toSelfDelay: 'int',
    dustLimitSat: 'sat',
    feeratePerKw: 'sat',
    reserveSat: 'sat',
    basepoints: 'basepoints',
    firstPoints: 'points',
  },
  accept_channel: { basepoints: 'basepoints', firstPoints: 'points' },
  funding_created: { signature: 'sig' },
  funding_signed: { signature: 'sig' },
  update_pay: { id: 'int', amountSat: 'sat' },
  update_add_htlc: { id: 'int', amountSat: 'sat', paymentHash: 'b32', cltvExpiry: 'int', keysendPreimage: 'b32' },
  update_fulfill_htlc: { id: 'int', paymentPreimage: 'b32' },
  commitment_signed: { signature: 'sig', htlcSignatures: 'sigs' },
  revoke_and_ack: { perCommitmentSecret: 'b32', nextPerCommitmentPoint: 'point' },
  error: { message: 'str' },
};

function isBytes(v: unknown, len: number): boolean {
  return v instanceof Uint8Array && v.length === len;
}

function fieldOk(kind: FieldKind, v: unknown): boolean {
  switch (kind) {
    case 'int':
      return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
    case 'sat':
      return typeof v === 'bigint' && v >= 0n;
    case 'str':
      return typeof v === 'string';
    case 'mode':
      return v === 'balance' || v === 'htlc';
    case 'b32':
      return isBytes(v, 32);
    case 'point':
      return isBytes(v, 33);
    case 'sig':
      return isBytes(v, 64);
    case 'sigs':
      return Array.isArray(v) && v.every((s) => isBytes(s, 64));
    case 'points':
      return Array.isArray(v) && v.length === 2 && v.every((p) => isBytes(p, 33));
    case 'basepoints': {
      if (!v || typeof v !== 'object') return false;
      const b = v as Record<string, unknown>;
      return ['funding', 'revocation', 'payment', 'delayedPayment', 'htlc'].every((k) => isBytes(b[k], 33));
    }
  }
}

export function encodeMessage(m: LnMessage): Uint8Array {
  return encodeJson(m);
}

/** Decodes and shape-checks one frame. @throws WireError */
export function decodeMessage(frame: Uint8Array): LnMessage {
  const v = decodeJson(frame);
  if (!v || typeof v !== 'object') throw new WireError('a message must be an object');
  const m = v as Record<string, unknown>;
  const schema =
    typeof m.type === 'string' && Object.hasOwn(SCHEMAS, m.type) ? SCHEMAS[m.type as LnMessage['type']] : undefined;
  if (!schema) throw new WireError(`unknown message type ${String(m.type)}`);
  for (const [field, kind] of Object.entries(schema)) {
    if (!fieldOk(kind, m[field])) throw new WireError(`${String(m.type)}: bad field ${field}`);
  }
  return m as unknown as LnMessage;
}
