/**
 * The peer's side of every channel message, one handler per message type: opening, payments and their
 * acknowledgements, deposits joining and leaving, the peer's settlement, and `sync`, the totals each side
 * re-sends after a reconnection so that a lost message is never lost for good. Every handler is
 * idempotent: the host may repeat, drop or reorder frames across sessions.
 */
import { bytesToHex } from '../../../enclave-sim/encoding.ts';
import type { ChannelMessage, DepositGrant } from '../protocol/messages.ts';
import { paidProofProblem, type PaidProof } from '../committee/paid-proof.ts';
import { verifyPaid, verifyPayout } from '../protocol/peer-sigs.ts';
import {
  acknowledge,
  addPeerDeposit,
  cancelAdd,
  cancelRemove,
  completeAdd,
  completeRemove,
  createChannel,
  credit,
  creditable,
  heldBy,
  markOpen,
  refusal,
  removePeerDeposit,
} from './channel.ts';
import { openMessage, paidSig, settledMessage } from './channel-wire.ts';
import type { TreasuryCore } from './core.ts';
import { TreasuryError, type TreasuryErrorCode } from './errors.ts';
import { grantFor, verifyGrant } from './grants.ts';
import { outpointInUse } from './lookups.ts';
import { closeChannel } from './settlement.ts';
import type { Channel, PeerDeposit } from './state.ts';
import { payoutScriptFor } from './transactions.ts';

function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/** A channel message from `peerId` (committee and multi-hop messages go to their engines first: Treasury.apply). */
export async function handleChannelMessage(
  t: TreasuryCore,
  peerId: string,
  msg: Exclude<ChannelMessage, { t: 'view' }>,
): Promise<void> {
  if (msg.t === 'sync') {
    for (const s of msg.channels) applySync(t, peerId, s);
    return;
  }
  if (msg.t === 'roster') {
    await t.peerRosters.apply(peerId, msg);
    return;
  }
  const ch = t.state.channels[msg.ch];
  if (msg.t === 'open') {
    if (ch && ch.peerId !== peerId) return; // not this peer's channel: ignore, never reveal
    const proof = t.committee?.rosterProof();
    if (t.committee && !proof) {
      t.outbox.push({ peerId, msg: { t: 'open_nack', ch: msg.ch, code: 'committee_incomplete' } });
      void t.committer.commit().catch(() => undefined);
      return;
    }
    // Before `open_ack`: the peer knows we are a committee before its channel opens.
    if (proof) t.outbox.push({ peerId, msg: { t: 'roster', ch: msg.ch, ...proof } });
    if (!ch) {
      // A committee's backups accept the peer's payout only with the peer's signature of it.
      if (t.committee && !verifyPayout(peerId, msg.ch, msg.payout, msg.sig)) {
        t.outbox.push({ peerId, msg: { t: 'open_nack', ch: msg.ch, code: 'invalid_argument' } });
        void t.committer.commit().catch(() => undefined);
        return;
      }
      t.state.channels[msg.ch] = {
        ...createChannel({
          id: msg.ch,
          peerId,
          initiator: false,
          myPayout: bytesToHex(payoutScriptFor(t.state.config.payoutAddress)),
          peerPayout: msg.payout,
        }),
        ...(msg.want_sigs ? { signPays: true } : {}),
        ...(t.committee ? { peerPayoutSig: msg.sig! } : {}),
      };
      t.outbox.event({ type: 'channel_updated', channel_id: msg.ch, status: 'open' });
    }
    const mine = t.state.channels[msg.ch]!;
    // The initiator's roster came just before its `open`: keep it with the channel, sealed.
    if (mine.status !== 'closed') mine.peerRoster ??= t.peerRosters.verified(peerId);
    t.outbox.push({ peerId, msg: openMessage(t.state, 'open_ack', mine, t.committee !== undefined) });
    void t.committer.commit().catch(() => undefined);
    return;
  }
  if (!ch || ch.peerId !== peerId) return;
  switch (msg.t) {
    case 'open_ack':
      if (ch.status === 'opening') {
        if (t.committee && !verifyPayout(peerId, ch.id, msg.payout, msg.sig)) {
          t.replies.reject(`open:${ch.id}`, new TreasuryError('peer_refused', 'the peer did not sign its payout'));
          return;
        }
        markOpen(ch, msg.payout);
        if (msg.want_sigs) ch.signPays = true;
        if (t.committee) ch.peerPayoutSig = msg.sig!;
        t.outbox.event({ type: 'channel_updated', channel_id: ch.id, status: 'open' });
        await t.committer.commit();
      }
      t.replies.resolve(`open:${ch.id}`);
      return;
    case 'open_nack':
      t.replies.reject(`open:${ch.id}`, new TreasuryError('peer_refused', `peer refused the channel: ${msg.code}`));
      return;
    case 'pay':
      applyPay(t, ch, BigInt(msg.total), msg.amounts, msg.sig, msg.proof);
      return;
    case 'pay_ack':
      applyPayAck(t, ch, BigInt(msg.total));
      return;
    case 'add_deposit':
      await applyAddDeposit(t, peerId, ch, msg.deposit);
      return;
    case 'add_deposit_ack':
      await applyAddDepositAck(t, ch, msg.outpoint);
      return;
    case 'add_deposit_nack':
      applyAddDepositNack(t, ch, msg.outpoint, msg.code);
      return;
    case 'remove_deposit':
      applyRemoveDeposit(t, peerId, ch, msg.outpoint);
      return;
    case 'remove_deposit_ack':
      await applyRemoveDepositAck(t, ch, msg.outpoint);
      return;
    case 'remove_deposit_nack': {
      const dep = Object.values(t.state.deposits).find((d) => d.outpoint === msg.outpoint);
      if (dep) cancelRemove(ch, dep.id);
      await t.committer.commit();
      t.replies.reject(
        `remove:${ch.id}:${msg.outpoint}`,
        new TreasuryError('peer_refused', `peer refused the removal: ${msg.code}`),
      );
      return;
    }
    case 'settled':
      if (ch.status !== 'closed' && heldBy(ch)) {
        // The peer's totals tell which state it settled: ours plus the payment, or ours as it was.
        t.multihop.settledElsewhere(ch, msg.txid, (_rec, hop) =>
          hop.from === t.multihop.self
            ? msg.received !== undefined && BigInt(msg.received) === ch.sent + hop.amount
            : msg.sent !== undefined && BigInt(msg.sent) === ch.received + hop.amount,
        );
      }
      if (ch.status !== 'closed') {
        // The peer's enclave says what it received of ours: that is what its settlement pays.
        const paid = msg.received !== undefined ? minBig(BigInt(msg.received), ch.sent) : undefined;
        closeChannel(t, ch, { txid: msg.txid, by: 'remote', ...(paid !== undefined ? { paid } : {}) });
        await t.committer.commit();
      } else if (
        ch.settlement?.by === 'local' &&
        ch.settlement.paid === undefined &&
        msg.txid !== ch.settlement.txid &&
        !ch.settlement.peer
      ) {
        // Both sides settled: which one the chain takes decides what is paid (spentOnChain).
        ch.settlement.peer = {
          txid: msg.txid,
          ...(msg.received !== undefined ? { received: BigInt(msg.received) } : {}),
        };
        await t.committer.commit();
      }
      return;
  }
}

/** After every handshake: re-send what the peer may have missed, from durable state. */
export function resync(t: TreasuryCore, peerId: string): void {
  const channels = Object.values(t.state.channels).filter((ch) => ch.peerId === peerId);
  t.outbox.push({
    peerId,
    msg: {
      t: 'sync',
      channels: channels.map((ch) => ({
        ch: ch.id,
        sent: ch.sent.toString(),
        received: ch.received.toString(),
        closed: ch.status === 'closed',
        ...paidSig(t.state, ch, ch.sent),
      })),
    },
  });
  const proof = t.committee?.rosterProof();
  for (const ch of channels) {
    if (proof && ch.status !== 'closed') t.outbox.push({ peerId, msg: { t: 'roster', ch: ch.id, ...proof } });
    if (ch.status === 'opening' && ch.initiator)
      t.outbox.push({ peerId, msg: openMessage(t.state, 'open', ch, t.committee !== undefined) });
    if (ch.status === 'closed' && ch.settlement?.by === 'local') t.outbox.push({ peerId, msg: settledMessage(ch) });
    if (ch.status !== 'open') continue;
    for (const id of ch.adding)
      t.outbox.push({
        peerId,
        msg: { t: 'add_deposit', ch: ch.id, deposit: grantFor(t.state.deposits[id]!) },
      });
    for (const id of ch.removing)
      t.outbox.push({
        peerId,
        msg: { t: 'remove_deposit', ch: ch.id, outpoint: t.state.deposits[id]!.outpoint! },
      });
  }
  t.multihop.resync(peerId);
  void t.committer.commit().catch(() => undefined);
}

function applySync(
  t: TreasuryCore,
  peerId: string,
  s: { ch: string; sent: string; received: string; closed: boolean; sig?: string; proof?: PaidProof },
): void {
  const ch = t.state.channels[s.ch];
  if (!ch || ch.peerId !== peerId) return;
  applyPay(t, ch, BigInt(s.sent), null, s.sig, s.proof);
  applyPayAck(t, ch, BigInt(s.received));
}

/**
 * The peer has now paid `total` in all: credit the difference (idempotent for old or repeated totals). A
 * committee's total counts only with its backups' proof that they hold it (paid-proof.ts): without it
 * nothing is credited or acknowledged (`payment_unproven`), and the channel stays open at what was proven,
 * which our settlement pays.
 */
function applyPay(
  t: TreasuryCore,
  ch: Channel,
  total: bigint,
  amounts: number[] | null,
  sig?: string,
  proof?: PaidProof,
): void {
  if (!creditable(ch, total)) return;
  const unproven = ch.peerRoster && paidProofProblem(ch.peerRoster, ch.id, total, proof);
  if (unproven) {
    // Not credited, not acknowledged, and the session stays up: an honest primary whose backup lied about
    // what it holds (or withheld its statement) sends its next total proven, and totals are cumulative, so
    // the next proven one credits what this one carried. Tearing the session down instead would let one
    // compromised backup cut the peer off for good (each reconnection's totals unproven again).
    t.ports.emit({ type: 'payment_unproven', channel_id: ch.id, total: total.toString(), reason: unproven });
    return;
  }
  // A committee credits only totals the payer signed: its backups refuse any other (update-rules.ts).
  if (t.committee && !verifyPaid(ch.peerId, ch.id, total, sig))
    throw new TreasuryError('session_failed', "paid total without the payer's signature");
  if (heldBy(ch)) t.multihop.peerPaidOnLocked(ch);
  // Refuses a total that would overdraw the peer (defence in depth: an honest peer enclave never does).
  const delta = credit(ch, total);
  if (t.committee) ch.peerPaid = { total, sig: sig! };
  let listed = 0n;
  for (const a of amounts ?? []) listed += BigInt(a);
  const shown = amounts && listed === delta ? amounts : [Number(delta)];
  t.outbox.event({ type: 'pay_received', channel_id: ch.id, amounts: shown, total: total.toString() });
  t.outbox.acknowledge(ch.id);
  void t.committer.commit().catch(() => undefined);
}

function applyPayAck(t: TreasuryCore, ch: Channel, total: bigint): void {
  if (!acknowledge(ch, total)) return;
  t.ports.emit({ type: 'pay_acked', channel_id: ch.id, total: total.toString() });
}

async function applyAddDeposit(t: TreasuryCore, peerId: string, ch: Channel, grant: DepositGrant): Promise<void> {
  const nack = (code: TreasuryErrorCode) => {
    t.outbox.push({ peerId, msg: { t: 'add_deposit_nack', ch: ch.id, outpoint: grant.outpoint, code } });
    void t.committer.commit().catch(() => undefined);
  };
  if (ch.peerDeposits.some((d) => d.outpoint === grant.outpoint)) {
    t.outbox.push({ peerId, msg: { t: 'add_deposit_ack', ch: ch.id, outpoint: grant.outpoint } });
    void t.committer.commit().catch(() => undefined);
    return;
  }
  const refused = refusal(ch, 'deposit');
  if (refused) return nack(refused);
  if (outpointInUse(t.state, grant.outpoint)) return nack('deposit_in_use');
  let deposit: PeerDeposit;
  try {
    deposit = await verifyGrant(t, grant);
  } catch (err) {
    return nack(err instanceof TreasuryError ? err.code : 'funding_mismatch');
  }
  // Re-check after the chain look-up: the channel may have closed or the outpoint been used meanwhile.
  const refusedNow = refusal(ch, 'deposit');
  if (refusedNow) return nack(refusedNow);
  if (outpointInUse(t.state, grant.outpoint)) return nack('deposit_in_use');
  addPeerDeposit(ch, deposit);
  t.outbox.push({ peerId, msg: { t: 'add_deposit_ack', ch: ch.id, outpoint: grant.outpoint } });
  t.outbox.event({ type: 'channel_updated', channel_id: ch.id, status: ch.status });
  await t.committer.commit();
  // A peer splits for the committee's formation roster: after a roster change its shares are re-split.
  t.committee?.reshareSoon();
}

async function applyAddDepositAck(t: TreasuryCore, ch: Channel, outpoint: string): Promise<void> {
  const id = ch.adding.find((d) => t.state.deposits[d]?.outpoint === outpoint);
  if (id) {
    completeAdd(ch, id);
    t.outbox.event({ type: 'channel_updated', channel_id: ch.id, status: ch.status });
    await t.committer.commit();
  }
  t.replies.resolve(`add:${ch.id}:${outpoint}`);
}

function applyAddDepositNack(t: TreasuryCore, ch: Channel, outpoint: string, code: string): void {
  const id = ch.adding.find((d) => t.state.deposits[d]?.outpoint === outpoint);
  if (id) {
    cancelAdd(ch, id);
    const dep = t.state.deposits[id]!;
    dep.status = 'free';
    delete dep.channelId;
    void t.committer.commit().catch(() => undefined);
  }
  t.replies.reject(`add:${ch.id}:${outpoint}`, new TreasuryError('peer_refused', `peer refused the deposit: ${code}`));
}

function applyRemoveDeposit(t: TreasuryCore, peerId: string, ch: Channel, outpoint: string): void {
  const dep = ch.peerDeposits.find((d) => d.outpoint === outpoint);
  if (dep) {
    // The owner checked its own (conservative) balance; we check ours too before forgetting the keys.
    const code = removePeerDeposit(ch, dep);
    if (code) {
      t.outbox.push({ peerId, msg: { t: 'remove_deposit_nack', ch: ch.id, outpoint, code } });
      void t.committer.commit().catch(() => undefined);
      return;
    }
    t.outbox.event({ type: 'channel_updated', channel_id: ch.id, status: ch.status });
  }
  t.outbox.push({ peerId, msg: { t: 'remove_deposit_ack', ch: ch.id, outpoint } });
  void t.committer.commit().catch(() => undefined);
}

async function applyRemoveDepositAck(t: TreasuryCore, ch: Channel, outpoint: string): Promise<void> {
  const id = ch.removing.find((d) => t.state.deposits[d]?.outpoint === outpoint);
  // Once closed, our own settlement may spend it even though the peer dropped it: the chain decides.
  if (id && ch.status !== 'closed') {
    completeRemove(ch, id);
    const dep = t.state.deposits[id]!;
    dep.status = 'free';
    delete dep.channelId;
    t.outbox.event({ type: 'channel_updated', channel_id: ch.id, status: ch.status });
    await t.committer.commit();
  }
  t.replies.resolve(`remove:${ch.id}:${outpoint}`);
}
