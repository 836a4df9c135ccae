/**
 * What the host may see of channels and deposits: the JSON the ecalls return (interface.ts), computed
 * from the state. No keys leave through a view, only public data, balances and transactions to broadcast.
 */
import { channelKeysHeld } from './deposit-fate.ts';
import { awaitingChain } from './lookups.ts';
import { peerTreasury } from './multihop/identities.ts';
import { localBalance, remoteBalance, spendable, type Channel, type Deposit, type TreasuryState } from './state.ts';

export function channelView(state: TreasuryState, ch: Channel, peerConnected: boolean) {
  return {
    channel_id: ch.id,
    peer_id: ch.peerId,
    peer_treasury_id: peerTreasury(ch),
    status: ch.status,
    initiator: ch.initiator,
    local_balance_sat: localBalance(state, ch).toString(),
    remote_balance_sat: remoteBalance(ch).toString(),
    spendable_sat: spendable(state, ch).toString(),
    local_deposits: ch.myDeposits.map((id) => ({
      deposit_id: id,
      outpoint: state.deposits[id]?.outpoint ?? '',
      value_sat: (state.deposits[id]?.value ?? 0n).toString(),
      removing: ch.removing.includes(id),
    })),
    remote_deposits: ch.peerDeposits.map((d) => ({ outpoint: d.outpoint, value_sat: d.value.toString() })),
    total_sent_sat: ch.sent.toString(),
    total_received_sat: ch.received.toString(),
    total_acked_sat: ch.acked.toString(),
    paid_total_sat: ch.settlement?.paid !== undefined ? ch.settlement.paid.toString() : null,
    settlement_txid: ch.settlement?.txid ?? null,
    settlement_tx_hex: ch.settlement?.hex ?? null,
    settled_by: ch.settlement?.by ?? null,
    peer_connected: peerConnected,
    awaiting_chain: [...(ch.undecided ?? [])],
    keys_held: ch.status === 'closed' && channelKeysHeld(state, ch),
  };
}

export type ChannelView = ReturnType<typeof channelView>;

export function depositView(state: TreasuryState, d: Deposit) {
  return {
    deposit_id: d.id,
    address: d.address,
    witness_script: d.witnessScript,
    m: d.m,
    pubkeys: d.pubkeys,
    status: d.status,
    outpoint: d.outpoint ?? null,
    value_sat: d.value !== undefined ? d.value.toString() : null,
    channel_id: d.channelId ?? null,
    spent_by: d.spentBy ?? null,
    release_tx_hex: d.releaseHex ?? null,
    awaiting_chain: awaitingChain(state, d),
  };
}

export type DepositView = ReturnType<typeof depositView>;
