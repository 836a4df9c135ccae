// run-tests lane: in-process
/**
 * channel.ts alone: every operation on a channel's totals, deposits, lock and status, and every refusal,
 * with exact amounts and error codes. Plain state objects, no enclave, no peer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  acknowledge,
  addPeerDeposit,
  applyHopCredit,
  applyHopDebit,
  assertOpen,
  assertUsable,
  beginAdd,
  beginRemove,
  cancelAdd,
  cancelRemove,
  completeAdd,
  completeRemove,
  createChannel,
  credit,
  creditable,
  debit,
  heldBy,
  lock,
  markClosed,
  markOpen,
  refusal,
  removePeerDeposit,
  rewindTo,
  unlock,
} from '../src/enclave/treasury/channel.ts';
import { TreasuryError, type TreasuryErrorCode } from '../src/enclave/treasury/errors.ts';
import {
  localBalance,
  remoteBalance,
  spendable,
  type Channel,
  type Deposit,
  type PeerDeposit,
  type TreasuryState,
} from '../src/enclave/treasury/state.ts';

function deposit(id: string, value: bigint): Deposit {
  return {
    id,
    m: 1,
    pubkeys: [],
    privkeys: [],
    witnessScript: '',
    address: '',
    status: 'in_channel',
    outpoint: `${id}:0`,
    value,
    channelId: 'c1',
  };
}

function peerDeposit(outpoint: string, value: bigint): PeerDeposit {
  return { outpoint, value, m: 1, pubkeys: [], privkeys: [], witnessScript: '' };
}

/** An open channel with our deposits d1 (60 000) and d2 (40 000) and a peer deposit of 50 000. */
function scene(): { state: TreasuryState; ch: Channel } {
  const ch = createChannel({ id: 'c1', peerId: 'peer', initiator: false, myPayout: 'aa', peerPayout: 'bb' });
  const state: TreasuryState = {
    version: 1,
    identityKey: '',
    config: { trustAnchor: '', allowedMeasurements: [], minConfirmations: 1, payoutAddress: '' },
    nextDeposit: 3,
    deposits: { d1: deposit('d1', 60_000n), d2: deposit('d2', 40_000n), d3: deposit('d3', 10_000n) },
    channels: { c1: ch },
  };
  ch.myDeposits.push('d1', 'd2');
  addPeerDeposit(ch, peerDeposit('p1:0', 50_000n));
  return { state, ch };
}

function refused(code: TreasuryErrorCode, message?: string) {
  return (err: unknown) => {
    assert.ok(err instanceof TreasuryError, `expected a TreasuryError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (message !== undefined) assert.equal(err.message, message);
    return true;
  };
}

test('createChannel: the initiator starts opening, the responder open; zero totals, no deposit', () => {
  const mine = createChannel({ id: 'a', peerId: 'p', initiator: true, myPayout: '00' });
  assert.deepEqual(mine, {
    id: 'a',
    peerId: 'p',
    status: 'opening',
    initiator: true,
    myPayout: '00',
    myDeposits: [],
    removing: [],
    adding: [],
    peerDeposits: [],
    sent: 0n,
    received: 0n,
    acked: 0n,
  });
  assert.equal('peerPayout' in mine, false);
  const theirs = createChannel({ id: 'b', peerId: 'p', initiator: false, myPayout: '00', peerPayout: '11' });
  assert.equal(theirs.status, 'open');
  assert.equal(theirs.peerPayout, '11');
});

test('markOpen opens an opening channel once; markClosed closes for good', () => {
  const ch = createChannel({ id: 'a', peerId: 'p', initiator: true, myPayout: '00' });
  assert.equal(refusal(ch, 'pay'), 'channel_not_open');
  assert.equal(markOpen(ch, '11'), true);
  assert.equal(ch.status, 'open');
  assert.equal(ch.peerPayout, '11');
  assert.equal(markOpen(ch, '22'), false);
  assert.equal(ch.peerPayout, '11');
  markClosed(ch, { txid: 'ff', by: 'local' });
  assert.equal(ch.status, 'closed');
  assert.deepEqual(ch.settlement, { txid: 'ff', by: 'local' });
  assert.equal(markOpen(ch, '33'), false);
  assert.equal(ch.status, 'closed');
});

test('refusal: not open, held by a multi-hop payment, and (to lock only) a deposit joining or leaving', () => {
  const { state, ch } = scene();
  for (const use of ['pay', 'deposit', 'lock'] as const) assert.equal(refusal(ch, use), null);
  beginAdd(ch, 'd3');
  assert.equal(refusal(ch, 'pay'), null);
  assert.equal(refusal(ch, 'deposit'), null);
  assert.equal(refusal(ch, 'lock'), 'channel_busy');
  cancelAdd(ch, 'd3');
  beginRemove(state, ch, 'd2');
  assert.equal(refusal(ch, 'lock'), 'channel_busy');
  cancelRemove(ch, 'd2');
  lock(ch, 'pid1');
  for (const use of ['pay', 'deposit', 'lock'] as const) assert.equal(refusal(ch, use), 'channel_busy');
  unlock(ch);
  markClosed(ch, { txid: 'ff', by: 'remote' });
  for (const use of ['pay', 'deposit', 'lock'] as const) assert.equal(refusal(ch, use), 'channel_not_open');
});

test("assertUsable: status, then the caller's reachability, then the hold, then a committee settlement", () => {
  const { ch } = scene();
  const order: string[] = [];
  assertUsable(ch, 'pay', { reachable: () => order.push('reachable') });
  assert.deepEqual(order, ['reachable']);
  lock(ch, 'pid1');
  assert.throws(
    () => assertUsable(ch, 'pay', { settling: true }),
    refused('channel_busy', 'channel c1 is held by a multi-hop payment'),
  );
  // An unreachable peer is reported before the hold.
  assert.throws(
    () =>
      assertUsable(ch, 'deposit', {
        reachable: () => {
          throw new TreasuryError('peer_not_connected');
        },
      }),
    refused('peer_not_connected'),
  );
  unlock(ch, 'pid1');
  assert.throws(
    () => assertUsable(ch, 'pay', { settling: true }),
    refused('channel_settling', 'committee members are settling channel c1'),
  );
  assertUsable(ch, 'deposit', { settling: true }); // settling stops payments only
  beginAdd(ch, 'd3');
  assert.throws(() => assertUsable(ch, 'lock'), refused('channel_busy', 'a deposit is joining or leaving channel c1'));
  markClosed(ch, { txid: 'ff', by: 'local' });
  let reached = false;
  assert.throws(
    () => assertUsable(ch, 'pay', { reachable: () => (reached = true) }),
    refused('channel_not_open', 'channel c1 is closed'),
  );
  assert.equal(reached, false);
});

test('assertOpen tells a settled channel from one still opening', () => {
  const ch = createChannel({ id: 'a', peerId: 'p', initiator: true, myPayout: '00' });
  assert.throws(() => assertOpen(ch), refused('channel_not_open', 'channel a is opening'));
  markOpen(ch, '11');
  assertOpen(ch);
  markClosed(ch, { txid: 'ff', by: 'local' });
  assert.throws(() => assertOpen(ch), refused('channel_closed', 'channel a was settled'));
});

test('debit: pays up to the spendable balance, exactly, and not a satoshi more', () => {
  const { state, ch } = scene();
  assert.equal(debit(state, ch, 30_000n), 30_000n);
  assert.equal(debit(state, ch, 70_000n), 100_000n);
  assert.equal(localBalance(state, ch), 0n);
  assert.equal(remoteBalance(ch), 150_000n);
  assert.throws(() => debit(state, ch, 1n), refused('insufficient_funds', 'channel balance 0 sat < 1 sat'));
  assert.equal(ch.sent, 100_000n);
});

test('debit: a deposit leaving the channel is not spendable; the reserve hook runs last and can refuse', () => {
  const { state, ch } = scene();
  beginRemove(state, ch, 'd2');
  assert.equal(spendable(state, ch), 60_000n);
  assert.throws(
    () => debit(state, ch, 60_001n),
    refused('insufficient_funds', 'channel balance 60000 sat < 60001 sat'),
  );
  let reserved = 0;
  assert.throws(
    () =>
      debit(state, ch, 1_000n, {
        reserve: () => {
          reserved += 1;
          throw new TreasuryError('invalid_argument', 'full');
        },
      }),
    refused('invalid_argument', 'full'),
  );
  assert.equal(reserved, 1);
  assert.equal(ch.sent, 0n);
  assert.equal(debit(state, ch, 60_000n, { reserve: () => (reserved += 1) }), 60_000n);
  assert.equal(reserved, 2);
});

test('debit: refused on a held, settling or closed channel, with nothing written', () => {
  const { state, ch } = scene();
  lock(ch, 'pid1');
  assert.throws(() => debit(state, ch, 1n), refused('channel_busy', 'channel c1 is held by a multi-hop payment'));
  unlock(ch, 'pid1');
  assert.throws(() => debit(state, ch, 1n, { settling: true }), refused('channel_settling'));
  markClosed(ch, { txid: 'ff', by: 'local' });
  assert.throws(() => debit(state, ch, 1n), refused('channel_not_open', 'channel c1 is closed'));
  assert.equal(ch.sent, 0n);
});

test("credit: cumulative totals, idempotent for old and repeated ones, never past the peer's side", () => {
  const { state, ch } = scene();
  assert.equal(creditable(ch, 0n), false);
  assert.equal(credit(ch, 20_000n), 20_000n);
  assert.equal(credit(ch, 20_000n), 0n);
  assert.equal(credit(ch, 5_000n), 0n);
  assert.equal(ch.received, 20_000n);
  assert.equal(credit(ch, 50_000n), 30_000n);
  assert.equal(remoteBalance(ch), 0n);
  assert.equal(localBalance(state, ch), 150_000n);
  assert.throws(() => credit(ch, 50_001n), refused('session_failed', 'peer payment exceeds its balance'));
  assert.equal(ch.received, 50_000n);
  // What we paid the peer is the peer's to pay back.
  debit(state, ch, 7_000n);
  assert.equal(credit(ch, 57_000n), 7_000n);
  assert.throws(() => credit(ch, 57_001n), refused('session_failed'));
});

test('credit: nothing is credited on a channel that is not open', () => {
  const { ch } = scene();
  markClosed(ch, { txid: 'ff', by: 'remote' });
  assert.equal(creditable(ch, 1_000n), false);
  assert.equal(credit(ch, 1_000n), 0n);
  assert.equal(ch.received, 0n);
  const opening = createChannel({ id: 'a', peerId: 'p', initiator: true, myPayout: '00' });
  assert.equal(credit(opening, 1n), 0n);
});

test('acknowledge: only a new total, and never above what we sent', () => {
  const { state, ch } = scene();
  debit(state, ch, 5_000n);
  assert.equal(acknowledge(ch, 0n), false);
  assert.equal(acknowledge(ch, 5_001n), false);
  assert.equal(ch.acked, 0n);
  assert.equal(acknowledge(ch, 3_000n), true);
  assert.equal(acknowledge(ch, 3_000n), false);
  assert.equal(acknowledge(ch, 2_000n), false);
  assert.equal(acknowledge(ch, 5_000n), true);
  assert.equal(ch.acked, 5_000n);
});

test('rewindTo: lower totals kept only if accepted; never above ours, below the acked, or on a closed channel', () => {
  const { state, ch } = scene();
  debit(state, ch, 9_000n);
  acknowledge(ch, 4_000n);
  credit(ch, 3_000n);
  const seen: Array<[bigint, bigint]> = [];
  const look = (keep: boolean) => () => {
    seen.push([ch.sent, ch.received]);
    return keep;
  };
  assert.equal(rewindTo(ch, { sent: 10_000n, received: 0n }, look(true)), false);
  assert.equal(rewindTo(ch, { sent: 5_000n, received: 3_001n }, look(true)), false);
  assert.equal(rewindTo(ch, { sent: 3_999n, received: 0n }, look(true)), false);
  assert.deepEqual(seen, []);
  assert.equal(rewindTo(ch, { sent: 5_000n, received: 1_000n }, look(false)), false);
  assert.deepEqual([ch.sent, ch.received], [9_000n, 3_000n]);
  assert.throws(() =>
    rewindTo(ch, { sent: 5_000n, received: 1_000n }, () => {
      throw new Error('plan failed');
    }),
  );
  assert.deepEqual([ch.sent, ch.received], [9_000n, 3_000n]);
  assert.equal(rewindTo(ch, { sent: 4_000n, received: 1_000n }, look(true)), true);
  assert.deepEqual(seen, [
    [5_000n, 1_000n],
    [4_000n, 1_000n],
  ]);
  assert.deepEqual([ch.sent, ch.received, ch.acked], [4_000n, 1_000n, 4_000n]);
  markClosed(ch, { txid: 'ff', by: 'local' });
  assert.equal(rewindTo(ch, { sent: 4_000n, received: 0n }, look(true)), false);
});

test('lock and unlock: one payment at a time; unlock by another payment leaves the lock', () => {
  const { ch } = scene();
  assert.equal(heldBy(ch), undefined);
  lock(ch, 'pid1');
  assert.equal(heldBy(ch), 'pid1');
  assert.throws(() => lock(ch, 'pid2'), refused('channel_busy'));
  unlock(ch, 'pid2');
  assert.equal(heldBy(ch), 'pid1');
  unlock(ch, 'pid1');
  assert.equal(heldBy(ch), undefined);
  assert.equal('lockedBy' in ch, false);
  lock(ch, 'pid3');
  unlock(ch);
  assert.equal(heldBy(ch), undefined);
  beginAdd(ch, 'd3');
  assert.throws(() => lock(ch, 'pid4'), refused('channel_busy'));
  cancelAdd(ch, 'd3');
  markClosed(ch, { txid: 'ff', by: 'local' });
  assert.throws(() => lock(ch, 'pid5'), refused('channel_busy'));
  assert.equal(heldBy(ch), undefined);
});

test('applyHopCredit / applyHopDebit: a committed multi-hop payment moves the totals by its amount', () => {
  const { state, ch } = scene();
  debit(state, ch, 1_000n);
  lock(ch, 'pid1');
  applyHopCredit(ch, 2_500n);
  assert.equal(ch.received, 2_500n);
  applyHopDebit(ch, 700n, false);
  assert.deepEqual([ch.sent, ch.acked], [1_700n, 0n]);
  applyHopDebit(ch, 300n, true);
  assert.deepEqual([ch.sent, ch.acked], [2_000n, 2_000n]);
  assert.equal(localBalance(state, ch), 100_000n - 2_000n + 2_500n);
  assert.equal(heldBy(ch), 'pid1');
});

test('our deposits: an addition counts once acknowledged; a refused one never did', () => {
  const { state, ch } = scene();
  beginAdd(ch, 'd3');
  assert.deepEqual(ch.adding, ['d3']);
  assert.equal(localBalance(state, ch), 100_000n);
  completeAdd(ch, 'd3');
  assert.deepEqual(ch.adding, []);
  assert.deepEqual(ch.myDeposits, ['d1', 'd2', 'd3']);
  assert.equal(localBalance(state, ch), 110_000n);
  const other = scene();
  beginAdd(other.ch, 'd3');
  cancelAdd(other.ch, 'd3');
  assert.deepEqual(other.ch.adding, []);
  assert.deepEqual(other.ch.myDeposits, ['d1', 'd2']);
});

test('our deposits: a removal backs the channel until acknowledged, and is not spendable meanwhile', () => {
  const { state, ch } = scene();
  let reached = 0;
  beginRemove(state, ch, 'd2', () => (reached += 1));
  assert.equal(reached, 1);
  assert.deepEqual(ch.removing, ['d2']);
  assert.equal(localBalance(state, ch), 100_000n);
  assert.equal(spendable(state, ch), 60_000n);
  cancelRemove(ch, 'd2');
  assert.deepEqual(ch.removing, []);
  beginRemove(state, ch, 'd2');
  completeRemove(ch, 'd2');
  assert.deepEqual(ch.removing, []);
  assert.deepEqual(ch.myDeposits, ['d1']);
  assert.equal(localBalance(state, ch), 60_000n);
});

test('beginRemove refusals, in order: not in the channel, already leaving, held, not covered, unreachable', () => {
  const { state, ch } = scene();
  const unreachable = () => {
    throw new TreasuryError('peer_not_connected');
  };
  assert.throws(() => beginRemove(state, ch, 'd3'), refused('unknown_deposit', 'deposit d3 is not in channel c1'));
  lock(ch, 'pid1');
  assert.throws(
    () => beginRemove(state, ch, 'd1', unreachable),
    refused('channel_busy', 'channel c1 is held by a multi-hop payment'),
  );
  unlock(ch, 'pid1');
  beginRemove(state, ch, 'd2');
  assert.throws(() => beginRemove(state, ch, 'd2'), refused('deposit_in_use', 'deposit d2 is already being removed'));
  // d2 is leaving: 60 000 spendable, all of it d1's, so d1 may still go, but not after a payment.
  debit(state, ch, 1n);
  assert.throws(
    () => beginRemove(state, ch, 'd1', unreachable),
    refused('insufficient_funds', 'balance 59999 does not cover deposit d1 (60000)'),
  );
  credit(ch, 1n);
  assert.throws(() => beginRemove(state, ch, 'd1', unreachable), refused('peer_not_connected'));
  assert.deepEqual(ch.removing, ['d2']);
  markClosed(ch, { txid: 'ff', by: 'local' });
  assert.throws(() => beginRemove(state, ch, 'd1'), refused('channel_not_open', 'channel c1 is closed'));
});

test("the peer's deposits: added, and removed only while the channel is usable and its side covers it", () => {
  const { state, ch } = scene();
  const p2 = peerDeposit('p2:0', 30_000n);
  addPeerDeposit(ch, p2);
  assert.equal(remoteBalance(ch), 80_000n);
  credit(ch, 40_000n);
  const p1 = ch.peerDeposits[0]!;
  assert.equal(removePeerDeposit(ch, p1), 'insufficient_funds');
  assert.equal(removePeerDeposit(ch, p2), null);
  assert.deepEqual(
    ch.peerDeposits.map((d) => d.outpoint),
    ['p1:0'],
  );
  debit(state, ch, 10_000n);
  addPeerDeposit(ch, p2);
  lock(ch, 'pid1');
  assert.equal(removePeerDeposit(ch, p2), 'channel_busy');
  unlock(ch, 'pid1');
  assert.equal(removePeerDeposit(ch, p2), null);
  assert.equal(remoteBalance(ch), 20_000n);
  credit(ch, 60_000n);
  assert.equal(remoteBalance(ch), 0n);
  addPeerDeposit(ch, p2);
  markClosed(ch, { txid: 'ff', by: 'remote' });
  assert.equal(removePeerDeposit(ch, p2), 'channel_not_open');
  assert.equal(ch.peerDeposits.length, 2);
});
