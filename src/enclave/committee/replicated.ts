/**
 * The collections of the treasury's state that a committee replicates record by record, and how each record
 * looks to the members: what must never leave the primary's enclave (its private keys) is stripped.
 *
 * Updates carry these collections generically (update.ts, deltas.ts), so that a further collection is one
 * more entry here, plus its update rules (update-rules.ts) and how a backup adopts it (replication-backup.ts).
 */
import type { TreasuryState } from '../treasury/state.ts';

export const REPLICATED = ['deposits', 'channels', 'multihop'] as const;
export type Collection = (typeof REPLICATED)[number];
export type RecordOf<K extends Collection> = NonNullable<TreasuryState[K]>[string];
export type Records = { [K in Collection]: Record<string, RecordOf<K>> };

/** Each collection's record as members see it. */
const FOR_MEMBERS: { [K in Collection]: (r: RecordOf<K>) => RecordOf<K> } = {
  deposits: (d) => ({ ...d, privkeys: [] }),
  channels: (ch) => ({ ...ch, peerDeposits: ch.peerDeposits.map((p) => ({ ...p, privkeys: [] })) }),
  // A multi-hop payment's record holds no key (τ, once signed, is in it: any m members can settle with it).
  multihop: (r) => r,
};

export function forMembers<K extends Collection>(k: K, record: RecordOf<K>): RecordOf<K> {
  return (FOR_MEMBERS[k] as (r: RecordOf<K>) => RecordOf<K>)(record);
}

/** The records of collection `k` in `state` (a collection that is optional in the state reads as empty). */
export function recordsOf<K extends Collection>(state: TreasuryState, k: K): Record<string, RecordOf<K>> {
  return (state[k] ?? {}) as Record<string, RecordOf<K>>;
}
