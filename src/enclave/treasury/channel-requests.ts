/**
 * What the host asks of our channels: open one, add or remove a deposit (each waits for the peer's
 * answer), and pay (debits sealed before the `pay` message leaves). The peer's side of each exchange is
 * in channel-messages.ts.
 */
import { bytesToHex } from '../../../enclave-sim/encoding.ts';
import { openMessage } from './channel-wire.ts';
import { viewChannel, type TreasuryCore } from './core.ts';
import { TreasuryError } from './errors.ts';
import { grantFor } from './grants.ts';
import { checkAmount, getDeposit, getOpenChannel } from './lookups.ts';
import { assertUsable, beginAdd, beginRemove, cancelAdd, createChannel, debit } from './channel.ts';
import { dropRefs, isWellFormedRef, listRefs, recordRef, refRoom, takeRoom } from './payment-refs.ts';
import type { PayRequest, PayResult } from './ports.ts';
import { payoutScriptFor } from './transactions.ts';

export async function openChannel(t: TreasuryCore, peerId: string, payoutAddress: string) {
  t.assertLive();
  t.assertPrimary();
  t.sessions.requireSession(peerId);
  // Backups check every channel pays our side to the replicated payout address (update-rules.ts).
  if (t.committee && payoutAddress !== t.state.config.payoutAddress) {
    throw new TreasuryError(
      'invalid_argument',
      `a committee treasury's channels pay only its payout address ${t.state.config.payoutAddress}`,
    );
  }
  const proof = t.committee?.rosterProof();
  if (t.committee && !proof)
    throw new TreasuryError('committee_incomplete', 'not every committee member has attested yet');
  const id = bytesToHex(t.ports.random(32));
  const ch = createChannel({ id, peerId, initiator: true, myPayout: bytesToHex(payoutScriptFor(payoutAddress)) });
  t.state.channels[id] = ch;
  // Before `open`: the peer learns we are a committee before it has a channel to add deposits to.
  if (proof) t.outbox.push({ peerId, msg: { t: 'roster', ch: id, ...proof } });
  t.outbox.push({ peerId, msg: openMessage(t.state, 'open', ch, t.committee !== undefined) });
  const reply = t.replies.waitFor(`open:${id}`);
  await t.committer.commit();
  await reply;
  return viewChannel(t, ch);
}

export async function addDeposit(t: TreasuryCore, channelId: string, depositId: string) {
  t.assertLive();
  t.assertPrimary();
  const ch = getOpenChannel(t.state, channelId);
  const dep = getDeposit(t.state, depositId);
  const check = () => {
    if (dep.status === 'in_channel')
      throw new TreasuryError('deposit_in_use', `deposit ${depositId} is already in channel ${dep.channelId}`);
    if (dep.status !== 'free') throw new TreasuryError('deposit_not_free', `deposit ${depositId} is ${dep.status}`);
    assertUsable(ch, 'deposit', { reachable: () => t.sessions.requireSession(ch.peerId) });
  };
  check();
  ch.peerRoster ??= t.peerRosters.verified(ch.peerId);
  if (!ch.peerRoster && t.peerRosters.refusal(ch.peerId) !== undefined) {
    throw new TreasuryError(
      'roster_unknown',
      `the peer announced a committee whose roster does not verify (${t.peerRosters.refusal(ch.peerId)})`,
    );
  }
  // To a committee peer a lone treasury hands its key over only as shares, one per attested member.
  const peerShares = !t.committee && ch.peerRoster ? await t.peerRosters.sharesFor(ch, dep.privkeys) : undefined;
  check();
  if (peerShares) dep.peerShares = peerShares;
  else delete dep.peerShares;
  dep.status = 'in_channel';
  dep.channelId = ch.id;
  beginAdd(ch, dep.id);
  if (t.committee) {
    // Members hand their keys over only once their replica shows the deposit joining this channel.
    try {
      await t.committer.commit();
      const own = await t.committee.sealOwnKey(dep.id, dep.privkeys[0]!);
      const handed = await t.committee.handover(dep.id, dep.pubkeys, own);
      if ('shares' in handed) {
        dep.peerShares = handed.shares;
        delete dep.sealedKeys;
      } else {
        dep.sealedKeys = handed.sealedKeys;
        delete dep.peerShares;
      }
    } catch (err) {
      cancelAdd(ch, dep.id);
      dep.status = 'free';
      delete dep.channelId;
      await t.committer.commitLocal();
      throw err;
    }
  }
  t.outbox.push({ peerId: ch.peerId, msg: { t: 'add_deposit', ch: ch.id, deposit: grantFor(dep) } });
  const reply = t.replies.waitFor(`add:${ch.id}:${dep.outpoint}`);
  await t.committer.commit();
  await reply;
  return viewChannel(t, ch);
}

export async function removeDeposit(t: TreasuryCore, channelId: string, depositId: string) {
  t.assertLive();
  t.assertPrimary();
  const ch = getOpenChannel(t.state, channelId);
  const dep = getDeposit(t.state, depositId);
  beginRemove(t.state, ch, depositId, () => t.sessions.requireSession(ch.peerId));
  t.outbox.push({ peerId: ch.peerId, msg: { t: 'remove_deposit', ch: ch.id, outpoint: dep.outpoint! } });
  const reply = t.replies.waitFor(`remove:${ch.id}:${dep.outpoint}`);
  await t.committer.commit();
  await reply;
  return viewChannel(t, ch);
}

/**
 * Debits each payment, in order, and queues it for the peer. Resolves when the debits are sealed and
 * the `pay` message is on its way; each result's `position` is the channel's cumulative total after
 * that payment, which the peer's `pay_ack` total reaches once the payment is final.
 */
export async function pay(
  t: TreasuryCore,
  requests: PayRequest[],
  journaled?: readonly string[],
): Promise<PayResult[]> {
  t.assertLive();
  t.committee?.assertReady();
  if (journaled) dropRefs(t.state, journaled);
  const room = refRoom(t.state);
  const results: PayResult[] = [];
  for (const r of requests) {
    try {
      results.push(debitOne(t, r, room));
    } catch (err) {
      if (!(err instanceof TreasuryError)) throw err;
      results.push({ ok: false, code: err.code, message: err.message });
    }
  }
  if (results.some((r) => r.ok)) await t.committer.commit();
  return results;
}

function debitOne(t: TreasuryCore, r: PayRequest, room: { left: number }): PayResult {
  checkAmount(r.amount_sat);
  if (r.ref && !isWellFormedRef(r.ref.key, r.ref.fp, r.ref.id))
    throw new TreasuryError('invalid_argument', 'a payment ref is two 16-byte hex hashes and a payment id');
  // A key this enclave holds a debit for (its own, or its primary's adopted before a promotion) was paid:
  // a host that asks again has lost track of it, and the answer is the first payment, never a second.
  if (r.ref && t.state.payRefs && Object.hasOwn(t.state.payRefs, r.ref.key))
    throw new TreasuryError('invalid_argument', `payment ref ${r.ref.key} is held for a payment already`);
  const ch = getOpenChannel(t.state, r.channel_id);
  debit(t.state, ch, BigInt(r.amount_sat), {
    reachable: () => t.sessions.requireSession(ch.peerId),
    settling: t.committee?.isSettling(ch.id) ?? false,
    ...(r.ref ? { reserve: () => takeRoom(room) } : {}),
  });
  t.outbox.debited(ch.id, r.amount_sat);
  if (r.ref)
    recordRef(
      t.state,
      { key: r.ref.key, fp: r.ref.fp, ...(r.ref.id ? { id: r.ref.id } : {}) },
      ch.id,
      ch.sent,
      r.amount_sat,
    );
  return { ok: true, channel_id: ch.id, position: ch.sent.toString() };
}

/** Refs of keyed payments not journaled by the host yet; `drop` first forgets those it now has. */
export function payRefs(t: TreasuryCore, drop?: readonly string[]) {
  if (drop) dropRefs(t.state, drop);
  return listRefs(t.state);
}
