/**
 * Payment refs: the enclave's half of idempotency keys that survive crashes (docs/api.md), for direct
 * payments; routed ones keep theirs with their round (multihop/payer-refs.ts).
 *
 * The host journals every keyed payment (src/node/payment-journal.ts), but it can crash after the
 * enclave's debit is sealed and before its journal record is durable; a retry would then pay again.
 * So a keyed payment carries a `ref` (16-byte hashes of the key and of the request) and the enclave
 * keeps ref → {channel, position} in its state, sealed in the very seal that makes the debit durable:
 * no debit of a keyed payment exists without its ref. The host lists the refs at start-up to recover
 * what its journal lost, and says which refs it has journaled so the enclave can drop them (at the next
 * seal): the state holds only the refs of the last batch or two, never the key history.
 *
 * In a committee the primary's updates carry its new refs, and each backup keeps them until its own
 * host has journaled them (committee/update-refs.ts), so that a member promoted later knows the keys.
 *
 * A hostile host gains nothing here: it can omit or drop refs, which only costs its own user the
 * protection against paying twice; a ref never moves money or changes a balance.
 */
import { TreasuryError } from './errors.ts';
import type { TreasuryState } from './state.ts';

export interface PayRefInput {
  key: string;
  fp: string;
  /** The host's payment id, kept for a committee member that answers the key after a promotion. */
  id?: string;
}

const HEX16 = /^[0-9a-f]{32}$/;
const PAYMENT_ID = /^[a-z0-9]{1,32}$/;

/**
 * Whether a ref has the shape every ref must have, whoever hands it over (the host for a payment, the
 * primary in an update, the host for a routed payment): two 16-byte hex hashes and, if any, a payment id.
 */
export function isWellFormedRef(key: unknown, fp: unknown, id?: unknown): boolean {
  return (
    typeof key === 'string' &&
    HEX16.test(key) &&
    typeof fp === 'string' &&
    HEX16.test(fp) &&
    (id === undefined || (typeof id === 'string' && PAYMENT_ID.test(id)))
  );
}

/** How many refs the state may hold before keyed payments are refused (the host acknowledges them per batch). */
export const MAX_PAY_REFS = 100_000;

/** Records the ref of a debit just made (called in the same step as the debit, before the seal). */
export function recordRef(
  state: TreasuryState,
  ref: PayRefInput,
  channelId: string,
  position: bigint,
  amount: number,
): void {
  const refs = (state.payRefs ??= {});
  refs[ref.key] = { ch: channelId, pos: position, amt: amount, fp: ref.fp, ...(ref.id ? { id: ref.id } : {}) };
}

/** How many more refs fit (counted once per pay call: keyed payments come in batches of thousands). */
export function refRoom(state: TreasuryState): { left: number } {
  return { left: MAX_PAY_REFS - (state.payRefs ? Object.keys(state.payRefs).length : 0) };
}

/** Refused before the debit: a full table means the host stopped acknowledging refs. */
export function takeRoom(room: { left: number }): void {
  if (room.left <= 0)
    throw new TreasuryError(
      'invalid_argument',
      `${MAX_PAY_REFS} payment refs are not journaled yet: acknowledge them first`,
    );
  room.left -= 1;
}

/** The host has these refs durably in its journal: forget them (persisted by the next seal). */
export function dropRefs(state: TreasuryState, keys: readonly string[]): void {
  const refs = state.payRefs;
  if (!refs) return;
  for (const k of keys) delete refs[k];
  if (Object.keys(refs).length === 0) delete state.payRefs;
}

export function listRefs(
  state: TreasuryState,
): Array<{ key: string; fp: string; channel_id: string; position: string; amount_sat: number; payment_id?: string }> {
  return Object.entries(state.payRefs ?? {}).map(([key, r]) => ({
    key,
    fp: r.fp,
    channel_id: r.ch,
    position: r.pos.toString(),
    amount_sat: r.amt,
    ...(r.id ? { payment_id: r.id } : {}),
  }));
}
