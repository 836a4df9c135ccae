/**
 * The path as every hop sees it: channel descriptions (ours, for the next hop to check, and the sender's,
 * checked against our own view), their wire form, the path settlement τ they determine, and the keys this
 * enclave may sign τ's inputs with. Pure functions of the treasury's state: no message, no seal.
 */
import type { MhHopWire } from '../../protocol/messages.ts';
import { refusal } from '../channel.ts';
import { localBalance, remoteBalance, type Channel, type TreasuryState } from '../state.ts';
import { planPathSettlement, type PathInput, type SpendPlan } from '../transactions.ts';
import { peerTreasury } from './identities.ts';
import type { MhHop } from './records.ts';

/** A channel a new multi-hop payment may lock: no other payment holds it, no deposit is joining or leaving. */
export function isFree(c: Channel): boolean {
  return refusal(c, 'lock') === null;
}

/** Our open channels to treasury `peer` whose payout the peer has given (so a τ can pay it). */
export function openChannelsTo(state: TreasuryState, peer: string): Channel[] {
  return Object.values(state.channels).filter((c) => c.status === 'open' && peerTreasury(c) === peer && c.peerPayout);
}

/** Our outgoing channel as the next hop will check it. */
export function describe(state: TreasuryState, nodeId: string, ch: Channel, amount: bigint): MhHop {
  return {
    ch: ch.id,
    from: nodeId,
    to: peerTreasury(ch),
    amount,
    fromOld: localBalance(state, ch),
    toOld: remoteBalance(ch),
    fromPayout: ch.myPayout,
    toPayout: ch.peerPayout!,
    inputs: [
      ...ch.myDeposits.map((id) => {
        const d = state.deposits[id]!;
        return { outpoint: d.outpoint!, value: d.value!, witnessScript: d.witnessScript };
      }),
      ...ch.peerDeposits.map((d) => ({ outpoint: d.outpoint, value: d.value, witnessScript: d.witnessScript })),
    ],
  };
}

/** Whether the sender's description of our incoming channel is exactly our own view of it. */
export function matches(state: TreasuryState, nodeId: string, hop: MhHop, ch: Channel): boolean {
  const mine = describe(state, nodeId, ch, hop.amount);
  const key = (h: MhHop) =>
    h.inputs
      .map((d) => `${d.outpoint}|${d.value}|${d.witnessScript}`)
      .sort()
      .join(',');
  return (
    mine.fromOld === hop.toOld &&
    mine.toOld === hop.fromOld &&
    mine.fromPayout === hop.toPayout &&
    mine.toPayout === hop.fromPayout &&
    hop.fromOld >= hop.amount &&
    key(mine) === key(hop)
  );
}

/** τ: every deposit of the path in, every side of every channel paid its new balance; the payer pays the fee. */
export function plan(hops: MhHop[], feeRate: number): SpendPlan {
  const outputs = hops.flatMap((h) => [
    { script: h.fromPayout, value: h.fromOld - h.amount },
    { script: h.toPayout, value: h.toOld + h.amount },
  ]);
  return planPathSettlement({ inputs: pathInputs(hops), outputs, payerScript: hops[0]!.fromPayout, feeRate });
}

/** Keys of a deposit of an open channel only: a closed channel's deposits are never signed for again. */
export function keysFor(state: TreasuryState, outpoint: string): { m: number; privkeys: string[] } | null {
  const own = Object.values(state.deposits).find((d) => d.outpoint === outpoint && d.status === 'in_channel');
  if (own && own.channelId && state.channels[own.channelId]?.status === 'open')
    return { m: own.m, privkeys: own.privkeys };
  for (const c of Object.values(state.channels)) {
    if (c.status !== 'open') continue;
    const d = c.peerDeposits.find((x) => x.outpoint === outpoint);
    if (d) return { m: d.m, privkeys: d.privkeys };
  }
  return null;
}

export function pathInputs(hops: MhHop[]): PathInput[] {
  return hops.flatMap((h) => h.inputs);
}

export function sameHop(a: MhHop, b: MhHop): boolean {
  return JSON.stringify(toWire(a)) === JSON.stringify(toWire(b));
}

export function toWire(h: MhHop): MhHopWire {
  return {
    ch: h.ch,
    from: h.from,
    to: h.to,
    amount: h.amount.toString(),
    from_old: h.fromOld.toString(),
    to_old: h.toOld.toString(),
    from_payout: h.fromPayout,
    to_payout: h.toPayout,
    inputs: h.inputs.map((d) => ({ outpoint: d.outpoint, value: d.value.toString(), script: d.witnessScript })),
  };
}

export function fromWire(w: MhHopWire): MhHop {
  return {
    ch: w.ch,
    from: w.from,
    to: w.to,
    amount: BigInt(w.amount),
    fromOld: BigInt(w.from_old),
    toOld: BigInt(w.to_old),
    fromPayout: w.from_payout,
    toPayout: w.to_payout,
    inputs: w.inputs.map((d) => ({ outpoint: d.outpoint, value: BigInt(d.value), witnessScript: d.script })),
  };
}
