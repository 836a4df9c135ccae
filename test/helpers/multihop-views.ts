/** What the multi-hop protocol tests look at on a line of treasuries: balances, locks, what each channel moved. */
import assert from 'node:assert/strict';
import { decodeState, localBalance } from '../../src/enclave/treasury/state.ts';
import type { MhCommitted, MhPayment } from '../../src/enclave/treasury/multihop/records.ts';
import type { Mesh, MeshNode } from './treasury-mesh.ts';
import { TreasuryError, type TreasuryErrorCode } from '../../src/enclave/treasury/errors.ts';

/** Each node's balance on each of its channels, as [node][channel] → sat. */
export function balances(nodes: MeshNode[], channels: string[]): Array<Record<string, bigint>> {
  return nodes.map((n) =>
    Object.fromEntries(
      channels
        .filter((c) => n.treasury.state.channels[c])
        .map((c) => [c, localBalance(n.treasury.state, n.treasury.state.channels[c]!)]),
    ),
  );
}

/** Every multi-hop record of every node is resolved (done or aborted). */
export function resolved(nodes: MeshNode[]): boolean {
  return nodes.every((n) =>
    Object.values(n.treasury.state.multihop ?? {}).every((r) => r.phase === 'done' || r.phase === 'aborted'),
  );
}

/** No channel of any node is held by a multi-hop payment. */
export function unlocked(nodes: MeshNode[]): boolean {
  return nodes.every((n) => Object.values(n.treasury.state.channels).every((c) => !c.lockedBy));
}

/** Moved on each channel of a line (0 = old state, the amount = new state), after checking both ends agree. */
export function outcome(nodes: MeshNode[], channels: string[], before: Array<Record<string, bigint>>): bigint[] {
  const now = balances(nodes, channels);
  return channels.map((ch, i) => {
    const payer = nodes[i]!.treasury.channel(ch);
    const payee = nodes[i + 1]!.treasury.channel(ch);
    assert.equal(payer.local_balance_sat, payee.remote_balance_sat, `both ends of channel ${i} agree`);
    assert.equal(payer.remote_balance_sat, payee.local_balance_sat, `both ends of channel ${i} agree`);
    return before[i]![ch]! - now[i]![ch]!;
  });
}

/** The phases of the multi-hop records in a sealed state. */
export const phasesIn = (bytes: Uint8Array) => Object.values(decodeState(bytes).multihop ?? {}).map((r) => r.phase);

/** A node's (first) multi-hop record. */
export const recOf = (n: MeshNode) => Object.values(n.treasury.state.multihop ?? {})[0]!;

/** τ's txid as a record knows it (null before signing). */
export const txidIn = (rec: MhPayment): string | null => ('txid' in rec ? rec.txid : null);

/** τ itself as a record holds it (from signing until the release drops it). */
export const tauIn = (rec: MhPayment): string | undefined => ('tx' in rec ? rec.tx : undefined);

/** The record, checked to be committed (τ complete, every hop described). */
export function committed(rec: MhPayment | undefined): MhCommitted {
  assert.equal(rec?.phase, 'committed');
  return rec as MhCommitted;
}

/** Watches a payment without awaiting it: `ok` is null while it is pending, then whether it succeeded. */
export function watch(payment: Promise<unknown>): { ok: boolean | null } {
  const w: { ok: boolean | null } = { ok: null };
  payment.then(
    () => {
      w.ok = true;
    },
    () => {
      w.ok = false;
    },
  );
  return w;
}

/**
 * Once `sealer` seals a state holding a multi-hop payment in one of `phases`, its frames to `to` are held
 * back (`mesh.deliver` lets them go). Every such seal holds again until the test clears `mesh.onSeal`.
 */
export function holdAfterSeal(mesh: Mesh, sealer: string, phases: string[], to: string): void {
  mesh.onSeal = (name, bytes) => {
    if (name === sealer && phasesIn(bytes).some((p) => phases.includes(p))) mesh.hold(sealer, to);
  };
}

/**
 * The round sizes the crash and settlement tests run with: a lone payment, and a round of many that moves
 * the same total (docs/protocol/multihop.md, "Rounds").
 */
export const ROUND_SIZES = [1, 200] as const;

/** `total` sat split into `size` payments as equal as they come (the first ones take the odd satoshis). */
export function split(total: number, size: number): number[] {
  return Array.from({ length: size }, (_, i) => Math.floor(total / size) + (i < total % size ? 1 : 0));
}

/**
 * Pays `total` sat from `payer` to `dest` in one round of `size` payments. Resolves once every payment
 * succeeded; rejects with the code of the first that failed (a round aborts as a whole: they share it).
 */
export async function payInRound(payer: MeshNode, dest: string, total: number, size: number): Promise<bigint> {
  const r = await payer.treasury.payMultihopRound(
    dest,
    split(total, size).map((amount_sat) => ({ amount_sat })),
    1,
  );
  const failed = r.results.find((x) => !x.ok);
  if (failed && !failed.ok) throw new TreasuryError(failed.code as TreasuryErrorCode, failed.message);
  return r.results.reduce((s, x) => s + (x.ok ? BigInt(x.fee_sat) : 0n), 0n);
}
