/**
 * The primary's side of deltas: which records changed since the last update it issued, so that an update
 * carries those and not the whole state (docs/protocol/committees.md, "Replication").
 *
 * A record has changed when its members' view (replicated.ts) serialises differently from the one last
 * issued. Comparing serialisations cannot miss a change, wherever in the treasury it was made; it costs one
 * serialisation per record per update, the same order of work as the seal's own encoding of the state,
 * while the update's size, and the backups' checks, follow only what changed.
 */
import type { TreasuryState } from '../treasury/state.ts';
import { forMembers, recordsOf, REPLICATED, type Collection, type RecordOf, type Records } from './replicated.ts';
import { bigintAware, replicaOf, scalarsOf, type ReplicaBody } from './update.ts';

export class DeltaTracker {
  /** Each collection's records as last issued, serialised, by id. */
  private issued = new Map<Collection, Map<string, string>>();
  private issuedQuotes = '';
  /** The next update is a full snapshot: at start (the chain may hold anything up to our seal) and on request. */
  private fullDue = true;
  /** The sequence number of the last full snapshot issued. */
  lastFull = 0;

  /** Makes the next update a full snapshot (a member missed updates, or joined). */
  wantFull(): void {
    this.fullDue = true;
  }

  get fullPending(): boolean {
    return this.fullDue;
  }

  /** The body of update `seq`, following update `base`: a delta, or a full snapshot when one is due. */
  bodyFor(state: TreasuryState, seq: number, base: number): ReplicaBody {
    if (this.fullDue) return this.full(state, seq);
    const records = {} as Record<Collection, Record<string, unknown>>;
    const gone: Partial<Record<Collection, string[]>> = {};
    for (const k of REPLICATED) {
      const was = this.issued.get(k) ?? new Map<string, string>();
      const now = new Map<string, string>();
      const changed: Record<string, RecordOf<typeof k>> = {};
      for (const [id, r] of Object.entries(recordsOf(state, k))) {
        const view = forMembers(k, r);
        const json = JSON.stringify(view, bigintAware);
        now.set(id, json);
        if (was.get(id) !== json) changed[id] = view;
      }
      const removed = [...was.keys()].filter((id) => !now.has(id));
      if (removed.length > 0) gone[k] = removed;
      records[k] = changed;
      this.issued.set(k, now);
    }
    const { quotes, ...scalars } = scalarsOf(state);
    const quotesJson = JSON.stringify(quotes ?? {});
    const quotesChanged = quotesJson !== this.issuedQuotes;
    this.issuedQuotes = quotesJson;
    return {
      seq,
      base,
      ...(Object.keys(gone).length > 0 ? { gone } : {}),
      ...scalars,
      ...(quotesChanged ? { quotes } : {}),
      ...(records as Records),
    };
  }

  private full(state: TreasuryState, seq: number): ReplicaBody {
    const body = replicaOf(state, seq);
    for (const k of REPLICATED) {
      const now = new Map<string, string>();
      for (const [id, r] of Object.entries(body[k])) now.set(id, JSON.stringify(r, bigintAware));
      this.issued.set(k, now);
    }
    this.issuedQuotes = JSON.stringify(body.quotes ?? {});
    this.fullDue = false;
    this.lastFull = seq;
    return body;
  }
}
