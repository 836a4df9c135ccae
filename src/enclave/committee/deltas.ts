/**
 * The primary's side of deltas: which records changed since the last update it issued, so that an update
 * carries those and not the whole state (docs/protocol/committees.md, "Replication").
 *
 * A record has changed when a field of its members' view (replicated.ts) serialises differently from the
 * one last issued. Comparing serialisations cannot miss a change, wherever in the treasury it was made; it
 * costs one serialisation of the state per update, the same order of work as the seal's own encoding of
 * it, while the update's size, and the backups' checks, follow only what changed.
 */
import type { TreasuryState } from '../treasury/state.ts';
import { forMembers, recordsOf, REPLICATED, type Collection, type RecordOf, type Records } from './replicated.ts';
import { bigintAware, replicaOf, scalarsOf, type ReplicaBody } from './update.ts';
import { RefTracker } from './update-refs.ts';
import { MhRefTracker } from './update-mh-refs.ts';

/** One record as last issued: each top-level field serialised. */
type Fields = Map<string, string>;

function fieldsOf(record: object): Fields {
  const out: Fields = new Map();
  for (const [f, v] of Object.entries(record)) if (v !== undefined) out.set(f, JSON.stringify(v, bigintAware));
  return out;
}

export class DeltaTracker {
  /** Each collection's records as last issued, by id. */
  private issued = new Map<Collection, Map<string, Fields>>();
  private issuedQuotes = '';
  /** Which payment refs went out already: each travels once, with the first update after its debit. */
  private readonly refs = new RefTracker();
  /** Which rounds of keyed routed payments went out as they are now: each again whenever its refs change. */
  private readonly mhRefs = new MhRefTracker();
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

  /**
   * The body of update `seq`, following update `base`: a delta, or a full snapshot when one is due. A record
   * new since `base` travels whole; a changed one as a patch of the fields that changed (a channel's totals,
   * not its peer's roster and deposits), so that even a changed record costs what changed in it.
   */
  bodyFor(state: TreasuryState, seq: number, base: number): ReplicaBody {
    if (this.fullDue) return this.full(state, seq);
    const records = {} as Record<Collection, Record<string, unknown>>;
    const gone: Partial<Record<Collection, string[]>> = {};
    const patched: Partial<Record<Collection, Record<string, string[]>>> = {};
    for (const k of REPLICATED) {
      const was = this.issued.get(k) ?? new Map<string, Fields>();
      const now = new Map<string, Fields>();
      const changed: Record<string, unknown> = {};
      const patches: Record<string, string[]> = {};
      for (const [id, r] of Object.entries(recordsOf(state, k))) {
        const view = forMembers(k, r) as RecordOf<typeof k>;
        const fields = fieldsOf(view);
        now.set(id, fields);
        const before = was.get(id);
        if (!before) {
          changed[id] = view;
          continue;
        }
        const patch: Record<string, unknown> = {};
        for (const [f, json] of fields)
          if (before.get(f) !== json) patch[f] = (view as unknown as Record<string, unknown>)[f];
        const unset = [...before.keys()].filter((f) => !fields.has(f));
        if (Object.keys(patch).length === 0 && unset.length === 0) continue;
        changed[id] = patch;
        patches[id] = unset;
      }
      const removed = [...was.keys()].filter((id) => !now.has(id));
      if (removed.length > 0) gone[k] = removed;
      if (Object.keys(patches).length > 0) patched[k] = patches;
      records[k] = changed;
      this.issued.set(k, now);
    }
    const { quotes, ...scalars } = scalarsOf(state);
    const quotesJson = JSON.stringify(quotes ?? {});
    const quotesChanged = quotesJson !== this.issuedQuotes;
    this.issuedQuotes = quotesJson;
    const refs = this.refs.take(state, false);
    const mhRefs = this.mhRefs.take(state, false);
    return {
      seq,
      base,
      ...(Object.keys(gone).length > 0 ? { gone } : {}),
      ...(Object.keys(patched).length > 0 ? { patched } : {}),
      ...scalars,
      ...(quotesChanged ? { quotes } : {}),
      ...(refs ? { refs } : {}),
      ...(mhRefs ? { mhRefs } : {}),
      ...(records as Records),
    };
  }

  private full(state: TreasuryState, seq: number): ReplicaBody {
    const body = replicaOf(state, seq);
    for (const k of REPLICATED) {
      const now = new Map<string, Fields>();
      for (const [id, r] of Object.entries(body[k])) now.set(id, fieldsOf(r));
      this.issued.set(k, now);
    }
    this.issuedQuotes = JSON.stringify(body.quotes ?? {});
    const refs = this.refs.take(state, true);
    if (refs) body.refs = refs;
    const mhRefs = this.mhRefs.take(state, true);
    if (mhRefs) body.mhRefs = mhRefs;
    this.fullDue = false;
    this.lastFull = seq;
    return body;
  }
}
