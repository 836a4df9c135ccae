/**
 * What waits for the next seal: messages for peers, the payments debited since the last seal, the
 * credits to acknowledge, multi-hop steps and events for the host. The committer drains it in the same
 * synchronous step as the snapshot (committer.ts), so nothing leaves before the state it reports is durable.
 */
import { paidSig } from './channel-wire.ts';
import type { Outgoing, TreasuryEvent } from './ports.ts';
import type { TreasuryState } from './state.ts';

export class Outbox {
  private messages: Outgoing[] = [];
  /** Multi-hop messages: sent after the seal's payments, so a hop never sees a lock before the payments it describes. */
  private multihop: Outgoing[] = [];
  /** Payments debited since the last snapshot, per channel: sent as one `pay` message per seal. */
  private pays = new Map<string, number[]>();
  private acks = new Set<string>();
  /** Events that may only reach the host once the state they report is durable. */
  private events: TreasuryEvent[] = [];

  /** A message for a peer, sent after the next seal in queue order. */
  push(item: Outgoing): void {
    this.messages.push(item);
  }

  /** A multi-hop message, sent after the next seal's payments. */
  pushMultihop(item: Outgoing): void {
    this.multihop.push(item);
  }

  /** An event for the host, released with the next seal. */
  event(e: TreasuryEvent): void {
    this.events.push(e);
  }

  /** A payment debited on `channelId`: goes out in that channel's one `pay` message of the next seal. */
  debited(channelId: string, amountSat: number): void {
    let list = this.pays.get(channelId);
    if (!list) this.pays.set(channelId, (list = []));
    list.push(amountSat);
  }

  /** The peer's payments on `channelId` were credited: the next seal acknowledges the channel's total. */
  acknowledge(channelId: string): void {
    this.acks.add(channelId);
  }

  /** A closed channel sends no more payments. */
  dropPays(channelId: string): void {
    this.pays.delete(channelId);
  }

  /** Whether anything waits for the next seal that a peer will be sent (events for the host aside). */
  holdsPeerMessages(): boolean {
    return this.messages.length > 0 || this.pays.size > 0 || this.acks.size > 0 || this.multihop.length > 0;
  }

  /** Cheap pre-check before the state comparison: no debits, no multi-hop step, no other message. */
  mayBeOnlyCredits(): boolean {
    return (
      this.messages.length === 0 &&
      this.pays.size === 0 &&
      this.multihop.length === 0 &&
      this.events.every((e) => e.type === 'pay_received')
    );
  }

  /** Everything queued, in delivery order: messages, payments (open channels only), acks, multi-hop, events. */
  drain(state: TreasuryState): Array<Outgoing | TreasuryEvent> {
    const out: Array<Outgoing | TreasuryEvent> = this.messages;
    this.messages = [];
    for (const [chId, amounts] of this.pays) {
      const ch = state.channels[chId];
      if (ch && ch.status === 'open')
        out.push({
          peerId: ch.peerId,
          msg: { t: 'pay', ch: chId, total: ch.sent.toString(), amounts, ...paidSig(state, ch, ch.sent) },
        });
    }
    this.pays = new Map();
    for (const chId of this.acks) {
      const ch = state.channels[chId];
      if (ch) out.push({ peerId: ch.peerId, msg: { t: 'pay_ack', ch: chId, total: ch.received.toString() } });
    }
    this.acks = new Set();
    out.push(...this.multihop);
    this.multihop = [];
    out.push(...this.events);
    this.events = [];
    return out;
  }
}
