/**
 * The channel messages this treasury builds from its own state, for the several places that send the
 * same message (a request, its re-send after a reconnection, a committee's settlement).
 */
import type { ChannelMessage } from '../protocol/messages.ts';
import { signPaid, signPayout } from '../protocol/peer-sigs.ts';
import type { Channel, TreasuryState } from './state.ts';

/**
 * open / open_ack: our payout, signed (a committee peer's backups check it), and whether we want paid
 * totals signed (a committee does: its backups credit only signed totals).
 */
export function openMessage(
  state: TreasuryState,
  t: 'open' | 'open_ack',
  ch: Channel,
  isCommittee: boolean,
): ChannelMessage {
  return {
    t,
    ch: ch.id,
    payout: ch.myPayout,
    sig: signPayout(state.identityKey, ch.id, ch.myPayout),
    ...(isCommittee ? { want_sigs: true } : {}),
  };
}

/** The signature of a paid total, for a peer that asked for it (a committee). */
export function paidSig(state: TreasuryState, ch: Channel, total: bigint): { sig?: string } {
  return ch.signPays ? { sig: signPaid(state.identityKey, ch.id, total) } : {};
}

/** Our settlement of a closed channel, with the totals it pays (the peer learns what it was paid). */
export function settledMessage(ch: Channel): ChannelMessage {
  return {
    t: 'settled',
    ch: ch.id,
    txid: ch.settlement!.txid,
    sent: ch.sent.toString(),
    received: ch.received.toString(),
  };
}
