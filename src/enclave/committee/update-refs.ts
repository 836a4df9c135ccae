/**
 * Payment refs across a committee (docs/protocol/committees.md, "Replication"): the refs of keyed
 * payments (treasury/payment-refs.ts) travel with the update that carries their debits, so that every
 * backup knows the keys its primary paid and a member promoted later answers a retried key with the
 * first payment instead of paying again.
 *
 * Refs are not one of the replicated collections: the primary drops each ref once its own host has
 * journaled it, and a drop must not remove the ref from the backups before their hosts have it. So an
 * update lists the refs new since the update before it (a full snapshot: every ref the primary holds),
 * and a backup adds them to its own `payRefs`, sealed with the adoption (so durable before it
 * acknowledges), where they stay until its own host has journaled them and says so (pay_refs `drop`).
 *
 * A ref is the primary's word, like the rest of the update; it moves no money. A compromised primary
 * can list wrong refs or none, which only costs its own users the protection against paying twice. What
 * a backup keeps is still checked (a channel it holds, a position within that channel's sent total), so
 * that a malformed ref never reaches its host's journal; a malformed one is left out, and the update
 * is adopted all the same (refusing it would halt replication over what is only retry protection).
 */
import type { PayRefRecord, TreasuryState } from '../treasury/state.ts';
import { isWellFormedRef, MAX_PAY_REFS } from '../treasury/payment-refs.ts';

/** The refs an update carries, by key hash. */
export type UpdateRefs = Record<string, PayRefRecord>;

/** The primary's side: which of its refs the next update carries (every one unless `issued` holds it). */
export class RefTracker {
  private issued = new Set<string>();

  /** The refs new since the last call (`full`: all of them); remembers what the state holds now. */
  take(state: TreasuryState, full: boolean): UpdateRefs | undefined {
    const refs = state.payRefs ?? {};
    const out: UpdateRefs = {};
    const now = new Set<string>();
    for (const [key, r] of Object.entries(refs)) {
      now.add(key);
      if (full || !this.issued.has(key)) out[key] = r;
    }
    this.issued = now;
    return Object.keys(out).length > 0 ? out : undefined;
  }
}

/**
 * The backup's side: keeps the well-formed refs of an adopted update (`state` is the state after the
 * adoption) in its own payRefs, up to MAX_PAY_REFS; returns how many it added. Called in the same
 * synchronous step as the adoption, so the seal that makes the update durable holds its refs too.
 */
export function keepRefs(state: TreasuryState, refs: unknown): number {
  if (typeof refs !== 'object' || refs === null || Array.isArray(refs)) return 0;
  let room = MAX_PAY_REFS - Object.keys(state.payRefs ?? {}).length;
  let added = 0;
  for (const [key, r] of Object.entries(refs as Record<string, unknown>)) {
    if (room <= 0) break; // its host stopped journaling: the rest go without (only retry protection)
    const ref = wellFormed(state, key, r);
    if (!ref) continue;
    const held = (state.payRefs ??= {});
    if (!held[key]) room -= 1;
    held[key] = ref;
    added += 1;
  }
  return added;
}

/** `r` as a ref this member may keep, or null: hashes, a channel it holds, a debit within that channel's sent total. */
function wellFormed(state: TreasuryState, key: string, r: unknown): PayRefRecord | null {
  if (typeof r !== 'object' || r === null) return null;
  const { ch, pos, amt, fp, id } = r as Record<string, unknown>;
  if (typeof ch !== 'string' || typeof fp !== 'string' || (id !== undefined && typeof id !== 'string')) return null;
  if (!isWellFormedRef(key, fp, id)) return null;
  if (typeof pos !== 'bigint' || typeof amt !== 'number' || !Number.isSafeInteger(amt) || amt < 1) return null;
  const channel = Object.hasOwn(state.channels, ch) ? state.channels[ch] : undefined;
  if (!channel || pos < BigInt(amt) || pos > channel.sent) return null;
  return { ch, pos, amt, fp, ...(id !== undefined ? { id } : {}) };
}
