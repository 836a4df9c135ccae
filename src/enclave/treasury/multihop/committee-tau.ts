/**
 * τ at a committee hop: what each member signs of a multi-hop payment's path settlement, rebuilt from its
 * own replica. A committee signs only its own deposits' inputs, each with m members' signatures; the
 * deposits its channel peers handed over are left to those peers, who are on the path and sign them as
 * their own. Rebuilding a peer's handed-over keys from shares (as a settlement does, once, when the
 * channel closes) would leave them whole in one member while the channel stays open.
 */
import type { Planned, PlannedInput } from '../../committee/ports.ts';
import { TreasuryError } from '../errors.ts';
import type { TreasuryState } from '../state.ts';
import { pathInputs, plan } from './path.ts';
import { inPhase } from './records.ts';

/** The τ of payment `pid` as this member's replica describes it, with the inputs this committee signs. */
export function planTau(state: TreasuryState, pid: string): Planned {
  const rec = state.multihop?.[pid];
  if (!rec || !inPhase(rec, 'signed'))
    throw new TreasuryError('state_mismatch', `payment ${pid} is not at its signing step here`);
  const mine = [rec.hops[rec.index - 1]?.ch, rec.hops[rec.index]?.ch].filter((x): x is string => !!x);
  const own = new Map<string, PlannedInput>();
  for (const id of mine) {
    const ch = state.channels[id];
    if (!ch || ch.status !== 'open' || ch.lockedBy !== pid)
      throw new TreasuryError('state_mismatch', `channel ${id} is not held by payment ${pid} here`);
    for (const d of ch.myDeposits) {
      const dep = state.deposits[d];
      if (dep?.outpoint) own.set(dep.outpoint, { kind: 'own', depositId: dep.id, m: dep.m, pubkeys: dep.pubkeys });
    }
  }
  return {
    plan: plan(rec.hops, rec.feeRate),
    inputs: pathInputs(rec.hops).map((d) => own.get(d.outpoint) ?? { kind: 'other' }),
  };
}

/** The indexes of τ's inputs this committee signs. */
export function ownInputs(planned: Planned): number[] {
  return planned.inputs.flatMap((x, i) => (x.kind === 'own' ? [i] : []));
}
