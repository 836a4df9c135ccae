/**
 * A channel's money and life cycle, changed in one place.
 *
 * Everything that moves a channel's cumulative totals (`sent`, `received`, `acked`), the deposits that back
 * its balances, its multi-hop lock (`lockedBy`) or its `status` goes through the operations below; the
 * treasury, the multi-hop engine and the committee adapter call them and never write those fields
 * themselves. Each operation checks what it needs and then writes, so the rules a channel obeys (a held
 * channel takes no other payment, totals only grow, nobody is paid more than their side holds) read as one
 * list instead of being spread over the callers.
 *
 * Sealing, events and messages to the peer stay with the callers: this module is pure state, which is
 * what lets its unit tests drive every operation without an enclave.
 */
import { TreasuryError } from './errors.ts';
import { peerDepositTotal, spendable, type Channel, type PeerDeposit, type TreasuryState } from './state.ts';

/**
 * What a caller wants to do with the channel: `pay` (a direct payment), `deposit` (add or remove a deposit,
 * ours or the peer's), `lock` (a new multi-hop payment takes it, which also needs no deposit joining or
 * leaving: the path settlement is built from the deposits as they are).
 */
export type ChannelUse = 'pay' | 'deposit' | 'lock';

/** The codes a channel refuses a use with (TREASURY_ERRORS). */
export type ChannelRefusal = 'channel_not_open' | 'channel_busy';

/**
 * The one test of whether `ch` can be used for `use` now: null when it can. Peer-message handlers send the
 * code back in their nacks; local calls throw it with `assertUsable`.
 */
export function refusal(ch: Channel, use: ChannelUse): ChannelRefusal | null {
  if (ch.status !== 'open') return 'channel_not_open';
  if (ch.lockedBy) return 'channel_busy';
  if (use === 'lock' && (ch.adding.length > 0 || ch.removing.length > 0)) return 'channel_busy';
  return null;
}

export interface UseChecks {
  /**
   * The caller's check that the peer is reachable, run between the status and the hold tests: refusals
   * come in the order clients have always seen (not open, peer not connected, held, settling).
   */
  reachable?: () => void;
  /** Committee members are settling the channel (the committee adapter knows): no more payments. */
  settling?: boolean;
  /**
   * `debit` only: the caller's own last refusal, run once every channel check has passed and before the
   * write (a full payment-ref table refuses a keyed payment without debiting it).
   */
  reserve?: () => void;
}

/** `refusal` as an exception, with the messages the API has always returned. */
export function assertUsable(ch: Channel, use: ChannelUse, checks: UseChecks = {}): void {
  if (ch.status !== 'open') throw new TreasuryError('channel_not_open', `channel ${ch.id} is ${ch.status}`);
  checks.reachable?.();
  const code = refusal(ch, use);
  if (code) {
    throw new TreasuryError(
      code,
      ch.lockedBy
        ? `channel ${ch.id} is held by a multi-hop payment`
        : `a deposit is joining or leaving channel ${ch.id}`,
    );
  }
  if (checks.settling && use === 'pay')
    throw new TreasuryError('channel_settling', `committee members are settling channel ${ch.id}`);
}

/**
 * A channel named in a local request must be open: settled (`channel_closed`) and still opening
 * (`channel_not_open`) are told apart, since a client retries only the second.
 */
export function assertOpen(ch: Channel): void {
  if (ch.status === 'closed') throw new TreasuryError('channel_closed', `channel ${ch.id} was settled`);
  if (ch.status !== 'open') throw new TreasuryError('channel_not_open', `channel ${ch.id} is ${ch.status}`);
}

/** The multi-hop payment holding `ch`, if any. */
export function heldBy(ch: Channel): string | undefined {
  return ch.lockedBy;
}

// ───────────────────────────── life cycle ─────────────────────────────

export interface NewChannel {
  id: string;
  peerId: string;
  initiator: boolean;
  myPayout: string;
  /** The responder knows the peer's payout from the `open` message; the initiator learns it on `open_ack`. */
  peerPayout?: string;
}

/**
 * A channel with no deposit and zero totals: `opening` for the side that asked for it (until the peer's
 * `open_ack`), `open` at once for the side that accepted.
 */
export function createChannel(c: NewChannel): Channel {
  return {
    id: c.id,
    peerId: c.peerId,
    status: c.initiator ? 'opening' : 'open',
    initiator: c.initiator,
    myPayout: c.myPayout,
    ...(c.peerPayout !== undefined ? { peerPayout: c.peerPayout } : {}),
    myDeposits: [],
    removing: [],
    adding: [],
    peerDeposits: [],
    sent: 0n,
    received: 0n,
    acked: 0n,
  };
}

/** The peer accepted the channel we asked for; false if it was no longer opening (a repeated `open_ack`). */
export function markOpen(ch: Channel, peerPayout: string): boolean {
  if (ch.status !== 'opening') return false;
  ch.status = 'open';
  ch.peerPayout = peerPayout;
  return true;
}

/** The channel is settled, by us or by the peer: closed for good, never to move again. */
export function markClosed(ch: Channel, settlement: NonNullable<Channel['settlement']>): void {
  ch.status = 'closed';
  ch.settlement = settlement;
}

// ───────────────────────────── payments ─────────────────────────────

/**
 * We pay `amount` to the peer: refused unless the channel is usable for a payment and our spendable
 * balance (deposits leaving the channel excluded) covers it. Returns the new cumulative `sent`.
 */
export function debit(state: TreasuryState, ch: Channel, amount: bigint, checks: UseChecks = {}): bigint {
  assertUsable(ch, 'pay', checks);
  const available = spendable(state, ch);
  if (available < amount)
    throw new TreasuryError('insufficient_funds', `channel balance ${available} sat < ${amount} sat`);
  checks.reserve?.();
  ch.sent += amount;
  return ch.sent;
}

/**
 * Whether the peer's cumulative paid `total` is news: the channel is open and the total is higher than
 * what we already credited (older and repeated totals are ignored, which makes crediting idempotent).
 */
export function creditable(ch: Channel, total: bigint): boolean {
  return ch.status === 'open' && total > ch.received;
}

/**
 * The peer has paid `total` in all: credit it and return the difference (0 if it is not news). Defence in
 * depth: an honest peer enclave never overdraws, so a total its side cannot cover ends the session.
 */
export function credit(ch: Channel, total: bigint): bigint {
  if (!creditable(ch, total)) return 0n;
  if (peerDepositTotal(ch) - total + ch.sent < 0n)
    throw new TreasuryError('session_failed', 'peer payment exceeds its balance');
  const delta = total - ch.received;
  ch.received = total;
  return delta;
}

/** The peer acknowledged our cumulative `total`; false (and nothing changes) unless it is new and not above `sent`. */
export function acknowledge(ch: Channel, total: bigint): boolean {
  if (total <= ch.acked || total > ch.sent) return false;
  ch.acked = total;
  return true;
}

/**
 * Committee members signed a settlement at `totals`: a primary's replicas are never ahead of it, so the
 * totals can only be lower (debits never acknowledged, credits not replicated), never below what the peer
 * acknowledged. Sets them and keeps them if `accept` (which sees the channel at those totals) says so;
 * otherwise puts the channel back as it was. False if the totals could not be what members signed.
 */
export function rewindTo(ch: Channel, totals: { sent: bigint; received: bigint }, accept: () => boolean): boolean {
  if (ch.status === 'closed' || totals.sent > ch.sent || totals.received > ch.received || totals.sent < ch.acked)
    return false;
  const was = { sent: ch.sent, received: ch.received };
  ch.sent = totals.sent;
  ch.received = totals.received;
  let keep = false;
  try {
    keep = accept();
  } finally {
    if (!keep) {
      ch.sent = was.sent;
      ch.received = was.received;
    }
  }
  return keep;
}

// ───────────────────────────── multi-hop ─────────────────────────────

/** Payment `pid` holds the channel: no other payment or deposit change until it unlocks. */
export function lock(ch: Channel, pid: string): void {
  if (refusal(ch, 'lock')) throw new TreasuryError('channel_busy', `channel ${ch.id} cannot be locked for ${pid}`);
  ch.lockedBy = pid;
}

/** Lets the channel go: only from `pid` when given (another payment's lock stays), from any payment otherwise. */
export function unlock(ch: Channel, pid?: string): void {
  if (pid === undefined || ch.lockedBy === pid) delete ch.lockedBy;
}

/** A committed multi-hop payment pays us `amount` on this channel (the hop before us). */
export function applyHopCredit(ch: Channel, amount: bigint): void {
  ch.received += amount;
}

/**
 * A committed multi-hop payment has us pay `amount` on this channel (the hop after us). `acknowledged`:
 * the peer released it, so it holds every total we sent, this payment included.
 */
export function applyHopDebit(ch: Channel, amount: bigint, acknowledged: boolean): void {
  ch.sent += amount;
  if (acknowledged) ch.acked = ch.sent;
}

// ───────────────────────────── deposits ─────────────────────────────

/** Our deposit `id` is offered to the peer: not in our balance until it acknowledges. */
export function beginAdd(ch: Channel, id: string): void {
  ch.adding.push(id);
}

/** The offer of our deposit `id` is withdrawn (refused, or the committee could not hand its keys over). */
export function cancelAdd(ch: Channel, id: string): void {
  ch.adding = ch.adding.filter((d) => d !== id);
}

/** The peer acknowledged our deposit `id`: it backs our balance from now on. */
export function completeAdd(ch: Channel, id: string): void {
  ch.adding = ch.adding.filter((d) => d !== id);
  ch.myDeposits.push(id);
}

/**
 * We ask to take our deposit `id` out: refused unless it is in the channel, not already leaving, the
 * channel is usable for a deposit change, and our spendable balance without it stays ≥ 0. `reachable` runs
 * last, after the balance check, as it always has for removals.
 */
export function beginRemove(state: TreasuryState, ch: Channel, id: string, reachable?: () => void): void {
  if (!ch.myDeposits.includes(id))
    throw new TreasuryError('unknown_deposit', `deposit ${id} is not in channel ${ch.id}`);
  if (ch.removing.includes(id)) throw new TreasuryError('deposit_in_use', `deposit ${id} is already being removed`);
  assertUsable(ch, 'deposit');
  const value = state.deposits[id]?.value;
  if (spendable(state, ch) < (value ?? 0n))
    throw new TreasuryError(
      'insufficient_funds',
      `balance ${spendable(state, ch)} does not cover deposit ${id} (${value})`,
    );
  reachable?.();
  ch.removing.push(id);
}

/** The peer refused the removal of our deposit `id`: it stays in the channel. */
export function cancelRemove(ch: Channel, id: string): void {
  ch.removing = ch.removing.filter((d) => d !== id);
}

/** The peer acknowledged the removal of our deposit `id`: it no longer backs the channel. */
export function completeRemove(ch: Channel, id: string): void {
  ch.removing = ch.removing.filter((d) => d !== id);
  ch.myDeposits = ch.myDeposits.filter((d) => d !== id);
}

/** The peer's deposit, verified against the chain, backs its side from now on. */
export function addPeerDeposit(ch: Channel, deposit: PeerDeposit): void {
  ch.peerDeposits.push(deposit);
}

/**
 * The peer takes its deposit out: refused (the nack's code) unless the channel is usable for a deposit
 * change and the peer's side still covers what it owes us without it. Null once removed.
 */
export function removePeerDeposit(ch: Channel, deposit: PeerDeposit): ChannelRefusal | 'insufficient_funds' | null {
  const code = refusal(ch, 'deposit');
  if (code) return code;
  if (peerDepositTotal(ch) - deposit.value - ch.received + ch.sent < 0n) return 'insufficient_funds';
  ch.peerDeposits = ch.peerDeposits.filter((d) => d !== deposit);
  return null;
}
