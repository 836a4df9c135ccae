/**
 * A channel's end: settling it alone (one transaction paying both sides their latest balances), learning
 * that it was spent on chain (by the peer, or by whichever of two racing settlements won), and closing
 * it for good. A committee's settlement is gathered from its members (committee-adapter.ts) and closes
 * the channel through `closeChannel` here too.
 */
import { hexToBytes } from '../../../enclave-sim/encoding.ts';
import { heldBy, markClosed } from './channel.ts';
import { settledMessage } from './channel-wire.ts';
import { viewChannel, type TreasuryCore } from './core.ts';
import {
  channelKeysHeld,
  decidingDepth,
  finalDepth,
  forgetChannelKeys,
  inputOutpoints,
  learnSpend,
  settleDepositsAtClose,
} from './deposit-fate.ts';
import { TreasuryError } from './errors.ts';
import { asSpendable, getChannel } from './lookups.ts';
import type { TauSettlement } from './multihop/settlement.ts';
import { paidBySettlement } from './settlement-outcome.ts';
import { localBalance, remoteBalance, type Channel } from './state.ts';
import { buildSettlementTx, txidOf, verifyDepositSpend } from './transactions.ts';

/**
 * Settles the channel alone: one transaction spending every deposit in it (both sides'), paying each
 * side its latest balance; we pay the fee from our side. The channel is closed for good: this
 * enclave never signs for it again.
 */
/** A settle call's answer when a multi-hop payment's τ is what settles the channel (alone or in a committee). */
export function tauSettled(ch: Channel, tau: TauSettlement) {
  return {
    channel_id: ch.id,
    txid: tau.txid,
    tx_hex: tau.hex,
    fee_sat: tau.fee.toString(),
    local_balance_sat: tau.local.toString(),
    remote_balance_sat: tau.remote.toString(),
  };
}

export async function settleAlone(t: TreasuryCore, ch: Channel, feeRate: number) {
  const channelId = ch.id;
  if (ch.status === 'closed')
    throw new TreasuryError(
      'channel_closed',
      `channel ${channelId} was already settled${ch.settlement ? ` by ${ch.settlement.txid}` : ''}`,
    );
  if (heldBy(ch)) {
    // Held by a multi-hop payment: before its commit the old state (the payment aborts); committed, only τ
    // (for the host to broadcast; the channels close when the chain shows it).
    const tau = await t.multihop.localSettle(ch);
    if (tau) return tauSettled(ch, tau);
    if ((ch.status as string) === 'closed')
      throw new TreasuryError('channel_closed', `channel ${channelId} was already settled`);
  }
  const inputs = [
    ...ch.myDeposits.map((id) => asSpendable(t.state.deposits[id]!)),
    ...ch.peerDeposits.map((d) => ({
      outpoint: d.outpoint,
      value: d.value,
      m: d.m,
      pubkeys: d.pubkeys,
      privkeys: d.privkeys,
      witnessScript: d.witnessScript,
    })),
  ];
  let settlement: { txid: string; hex: string; fee: bigint } | null = null;
  if (inputs.length > 0) {
    settlement = buildSettlementTx({
      inputs,
      local: { script: hexToBytes(ch.myPayout), value: localBalance(t.state, ch) },
      remote: { script: ch.peerPayout ? hexToBytes(ch.peerPayout) : null, value: remoteBalance(ch) },
      feeRate,
    });
  }
  const txid = settlement?.txid ?? '0'.repeat(64);
  closeChannel(t, ch, { txid, by: 'local', ...(settlement ? { hex: settlement.hex } : {}) });
  if (heldBy(ch)) t.multihop.closedLocally(ch);
  t.outbox.push({ peerId: ch.peerId, msg: settledMessage(ch) });
  await t.committer.commit();
  return {
    channel_id: ch.id,
    txid: settlement ? txid : null,
    tx_hex: settlement?.hex ?? null,
    fee_sat: (settlement?.fee ?? 0n).toString(),
    local_balance_sat: localBalance(t.state, ch).toString(),
    remote_balance_sat: remoteBalance(ch).toString(),
  };
}

/**
 * The host saw a deposit of an open channel spent on chain (the peer settled, and its message may never
 * come: it may be gone for good). Closed only if the transaction really spends one of the channel's
 * deposits with valid signatures, which only an enclave holding its keys can make; a host that lies
 * gets `funding_mismatch` and the channel stays open.
 */
export async function spentOnChain(t: TreasuryCore, channelId: string, txHex: string) {
  t.assertLive();
  const ch = getChannel(t.state, channelId);
  // A channel closed on the peer's word while the path settlement τ is out still waits for the chain, as do
  // deposits whose fate the confirmed spend decides, keys that go once it is final, and the outcome of a
  // settlement we signed (ours, or a peer's that raced it).
  const awaitsTau = ch.status === 'closed' && t.multihop.awaitsChain(ch);
  const outcomeUnknown = ch.status === 'closed' && ch.settlement?.by === 'local' && ch.settlement.paid === undefined;
  if (ch.status === 'closed' && !awaitsTau && !outcomeUnknown && !ch.undecided?.length && !channelKeysHeld(t.state, ch))
    return viewChannel(t, ch);
  const own = [...new Set([...ch.myDeposits, ...(ch.undecided ?? [])])].map((id) => asSpendable(t.state.deposits[id]!));
  const txid = [...own, ...ch.peerDeposits].map((d) => verifyDepositSpend(txHex, d)).find((id) => id !== null);
  if (!txid)
    throw new TreasuryError('funding_mismatch', 'the transaction does not validly spend a deposit of this channel');
  if (outcomeUnknown) {
    const paid = paidBySettlement(ch, txid);
    if (paid !== undefined) {
      ch.settlement!.paid = paid;
      t.outbox.event({ type: 'settlement_paid', channel_id: ch.id, txid, paid_total: paid.toString() });
    }
  }
  if (ch.lockedBy && (ch.status !== 'closed' || awaitsTau))
    t.multihop.settledElsewhere(ch, txid, (_rec, hop) => t.multihop.paysNewState(txHex, ch, hop), true);
  if ((ch.status as string) !== 'closed') closeChannel(t, ch, { txid, by: 'remote' });
  await learnFromSpend(t, ch, txHex, txid);
  await t.committer.commit();
  return viewChannel(t, ch);
}

/**
 * A closed channel, and a valid spend of it: its depth (the host's word, as for deposits) decides the
 * deposits awaiting the chain once it is confirmed, and, once final, lets the channel's keys go.
 */
async function learnFromSpend(t: TreasuryCore, ch: Channel, txHex: string, txid: string): Promise<void> {
  const info = await t.ports.getTxOut(txid, 0);
  const depth = info && txidOf(info.txHex) === txid ? info.confirmations : 0;
  const minConf = t.state.config.minConfirmations;
  if (ch.status !== 'closed' || depth < decidingDepth(minConf)) return;
  learnSpend(t.state, ch, inputOutpoints(txHex), txid);
  // A committee settlement still being gathered needs the shares, unless the final spend is that very
  // settlement; nothing else ever signs for a closed channel.
  const signing =
    t.committee !== undefined && ch.settlement?.by === 'local' && !ch.settlement.hex && ch.settlement.txid !== txid;
  if (depth >= finalDepth(minConf) && !signing) forgetChannelKeys(t.state, ch);
}

/** `paidTotal`: what of our sent total the settlement is known to pay (default: `settlement.paid`), for the event. */
export function closeChannel(
  t: TreasuryCore,
  ch: Channel,
  settlement: NonNullable<Channel['settlement']>,
  paidTotal = settlement.paid,
): void {
  markClosed(ch, settlement);
  // Deposits added or removed without the peer's acknowledgement may or may not be in the settlement that
  // wins: they wait for the chain (deposit-fate.ts). A remote settlement with no input spends none of them.
  settleDepositsAtClose(t.state, ch, settlement.txid, settlement.by === 'remote' && settlement.txid === '0'.repeat(64));
  t.outbox.dropPays(ch.id);
  t.outbox.event({
    type: 'channel_settled',
    channel_id: ch.id,
    txid: settlement.txid,
    by: settlement.by,
    ...(paidTotal !== undefined ? { paid_total: paidTotal.toString() } : {}),
  });
}
