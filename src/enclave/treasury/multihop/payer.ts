/**
 * The payer's side: route, lock our first channel, send LOCK, and wait for the payment to be released
 * (the call resolves) or aborted (it rejects). Everything after the LOCK is the hops' protocol (hop.ts).
 */
import { bytesToHex } from '../../../../enclave-sim/encoding.ts';
import { lock } from '../channel.ts';
import { TreasuryError } from '../errors.ts';
import { findRoute } from '../routing.ts';
import { spendable } from '../state.ts';
import type { MultiHopResult } from './host.ts';
import { peerTreasury } from './identities.ts';
import type { Payments } from './payments.ts';
import { isFree, openChannelsTo } from './path.ts';
import type { MhLocked } from './records.ts';

export async function pay(
  p: Payments,
  graph: Parameters<typeof findRoute>[0]['graph'],
  dest: string,
  amount: bigint,
  feeRate: number,
  maxFee: bigint,
): Promise<MultiHopResult> {
  const h = p.h;
  const local = Object.values(h.state.channels)
    .filter((c) => c.status === 'open' && c.peerPayout && h.connected(peerTreasury(c)))
    .map((c) => ({ peer: peerTreasury(c), cap: spendable(h.state, c) }));
  const { route, amounts } = findRoute({ self: h.nodeId, dest, amount, graph, local, maxFee });
  const candidates = openChannelsTo(h.state, route[1]!);
  const free = candidates.filter(isFree);
  const ch = free
    .filter((c) => spendable(h.state, c) >= amounts[0]!)
    .sort((a, b) => (spendable(h.state, b) > spendable(h.state, a) ? 1 : -1))[0];
  if (!ch)
    throw new TreasuryError(
      free.length < candidates.length ? 'channel_busy' : 'insufficient_capacity',
      `no free channel to ${route[1]!.slice(0, 16)}… can carry ${amounts[0]} sat`,
    );
  const pid = bytesToHex(h.random(32));
  const rec: MhLocked = {
    pid,
    route,
    index: 0,
    amounts,
    hops: [p.describe(ch, amounts[0]!)],
    feeRate,
    phase: 'locked',
  };
  lock(ch, pid);
  p.put(rec);
  h.queue(route[1]!, p.lockMessage(rec));
  const done = p.wait(pid, ch.id);
  done.catch(() => undefined); // it may settle while the seal below is in flight; the caller gets it below
  p.arm(rec);
  await h.commit();
  return done;
}
