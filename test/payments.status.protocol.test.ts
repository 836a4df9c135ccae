// run-tests lane: in-process
/**
 * Payment statuses around settlement (issue #15): they follow what the enclaves and the chain say.
 * Two enclave cores in one process; the host's rule (src/node/in-flight.ts) is fed the payer's events.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makePair, openFundedPair, type Side, waitFor } from './helpers/treasury-pair.ts';
import { InFlight, outcomeAt, type Outcome } from '../src/node/in-flight.ts';
import type { TreasuryEvent } from '../src/enclave/treasury/ports.ts';
import { TreasuryError } from '../src/enclave/treasury/errors.ts';

// Slow seals, so that changes made while one is under way share the next one.
const openFunded = () => openFundedPair({ pair: { sealDelayMs: 20 } });

async function pay(side: Side, ch: string, amount: number): Promise<bigint> {
  const [r] = await side.treasury.pay([{ channel_id: ch, amount_sat: amount }]);
  assert.ok(r?.ok, JSON.stringify(r));
  return BigInt(r.position);
}

/** What the host concludes from the payer's events, for payments sent at these positions. */
function hostStatuses(events: TreasuryEvent[], ch: string, positions: bigint[]): Outcome[] {
  const inFlight = new InFlight<number>();
  const status: Outcome[] = positions.map(() => 'in_flight');
  positions.forEach((p, i) => inFlight.add(ch, p, i));
  for (const e of events) {
    if (e.type === 'pay_acked') for (const i of inFlight.acked(e.channel_id, BigInt(e.total))) status[i] = 'succeeded';
    if (e.type !== 'settlement_paid' && e.type !== 'channel_settled') continue;
    if (e.paid_total !== undefined) {
      const { succeeded, failed } = inFlight.settled(e.channel_id, BigInt(e.paid_total));
      for (const i of succeeded) status[i] = 'succeeded';
      for (const i of failed) status[i] = 'failed';
    }
  }
  return status;
}

/** Frames from a to b are held (never delivered) from now on; returns the held frames. */
function holdAtoB(pair: Awaited<ReturnType<typeof makePair>>): Uint8Array[] {
  const held: Uint8Array[] = [];
  pair.wire.tamper = (dir, frames) => (dir === 'ab' ? (held.push(...frames), []) : frames);
  return held;
}

test('the peer settles while payments are in flight: those it credited succeed, the others fail', async () => {
  const { pair, channelId: ch } = await openFunded();
  const { a, b } = pair;
  const p1 = await pay(a, ch, 1_000);
  await waitFor(() => a.treasury.channel(ch).total_acked_sat === '1000');
  const held = holdAtoB(pair);
  const p2 = await pay(a, ch, 2_000);
  await waitFor(() => held.length > 0);
  const toB = held.splice(0);
  const p3 = await pay(a, ch, 4_000); // never reaches b
  await waitFor(() => held.length > 0);

  // b credits p2 while a seal is under way, and settles before that credit's seal: its `settled`
  // message leaves in the same group as the acknowledgement, ahead of it.
  const busy = b.treasury.commit();
  await b.treasury.receive(b.conn, toB);
  assert.equal(b.treasury.channel(ch).total_received_sat, '3000');
  // The link then drops after the `settled` frame: the acknowledgement never reaches a.
  pair.wire.tamper = (dir, frames) => (dir === 'ab' ? [] : frames.slice(0, 1));
  await Promise.all([busy, b.treasury.settle(ch, 2)]);
  // The event reaches the host once a's seal of the closed channel is durable.
  await waitFor(() => a.events.some((e) => e.type === 'channel_settled'));

  const settled = a.events.find((e) => e.type === 'channel_settled');
  assert.deepEqual(settled && { by: settled.by, paid_total: settled.paid_total }, { by: 'remote', paid_total: '3000' });
  assert.equal(a.treasury.channel(ch).total_acked_sat, '1000', 'p2 was never acknowledged');
  assert.deepEqual(hostStatuses(a.events, ch, [p1, p2, p3]), ['succeeded', 'succeeded', 'failed']);
  // After a restart the host answers retried keys from the channel view: the same statuses.
  const view = a.treasury.channel(ch);
  assert.equal(view.paid_total_sat, '3000');
  assert.deepEqual(
    [p1, p2, p3].map((p) => outcomeAt(view, p)),
    ['succeeded', 'succeeded', 'failed'],
  );
});

test('we settle with unacknowledged payments: in flight until the chain shows our settlement, then succeeded', async () => {
  const { pair, channelId: ch } = await openFunded();
  const { a } = pair;
  const p1 = await pay(a, ch, 1_000);
  await waitFor(() => a.treasury.channel(ch).total_acked_sat === '1000');
  const held = holdAtoB(pair);
  const p2 = await pay(a, ch, 2_000);
  await waitFor(() => held.length > 0);
  const s = await a.treasury.settle(ch, 2);
  assert.ok(s.tx_hex);

  assert.deepEqual(hostStatuses(a.events, ch, [p1, p2]), ['succeeded', 'in_flight']);
  assert.equal(outcomeAt(a.treasury.channel(ch), p2), 'in_flight');

  // A host that shows a transaction not spending the deposits changes nothing.
  await assert.rejects(a.treasury.spentOnChain(ch, '00'.repeat(60)), (e: unknown) => e instanceof TreasuryError);
  assert.equal(a.treasury.channel(ch).paid_total_sat, null);

  await a.treasury.spentOnChain(ch, s.tx_hex);
  await waitFor(() => a.events.some((e) => e.type === 'settlement_paid'));
  assert.deepEqual(
    a.events.filter((e) => e.type === 'settlement_paid').map((e) => (e as { paid_total: string }).paid_total),
    ['3000'],
  );
  assert.deepEqual(hostStatuses(a.events, ch, [p1, p2]), ['succeeded', 'succeeded']);
  assert.equal(outcomeAt(a.treasury.channel(ch), p2), 'succeeded');
});

test("we settle, but the peer's racing settlement confirms: what it did not credit fails", async () => {
  const { pair, channelId: ch } = await openFunded();
  const { a, b } = pair;
  const p1 = await pay(a, ch, 1_000);
  await waitFor(() => a.treasury.channel(ch).total_acked_sat === '1000');
  const held = holdAtoB(pair);
  const p2 = await pay(a, ch, 2_000); // never reaches b
  await waitFor(() => held.length > 0);
  await a.treasury.settle(ch, 2);
  const theirs = await b.treasury.settle(ch, 2);
  assert.ok(theirs.tx_hex);
  // b's `settled` message (with what it received) reaches a, whose channel is already closed.
  await waitFor(() => a.treasury.state.channels[ch]!.settlement?.peer !== undefined);
  assert.deepEqual(hostStatuses(a.events, ch, [p1, p2]), ['succeeded', 'in_flight']);

  await a.treasury.spentOnChain(ch, theirs.tx_hex);
  await waitFor(() => a.events.some((e) => e.type === 'settlement_paid'));
  assert.equal(a.treasury.channel(ch).paid_total_sat, '1000');
  assert.deepEqual(hostStatuses(a.events, ch, [p1, p2]), ['succeeded', 'failed']);
  assert.equal(outcomeAt(a.treasury.channel(ch), p2), 'failed');
});
