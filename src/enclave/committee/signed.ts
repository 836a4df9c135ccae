/**
 * What a member records of what it signed (`CommitteeState.signed`): it never signs a second transaction
 * for the same channel, deposit or multi-hop payment.
 */
import type { CommitteeState, TreasuryState } from '../treasury/state.ts';
import type { SignKind } from './ports.ts';

/**
 * Where `CommitteeState.signed` records what was signed: a channel's or a deposit's id, `tau:<payment id>`
 * for a multi-hop payment's τ (forgotten with the payment's record: forgetTau).
 */
export function signedKey(kind: SignKind, id: string): string {
  return kind === 'tau' ? `tau:${id}` : id;
}

/** A τ signature is remembered while its payment's record is kept; the sealed state does not grow with payments. */
export function forgetTau(c: CommitteeState, multihop: TreasuryState['multihop']): void {
  for (const k of Object.keys(c.signed)) if (k.startsWith('tau:') && !multihop?.[k.slice(4)]) delete c.signed[k];
}
