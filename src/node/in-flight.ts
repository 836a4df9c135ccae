/**
 * How the host decides a sent payment's status: only from what the enclave reports. A payment debited at
 * `position` (the channel's cumulative sent total after it) is
 *   - succeeded once the peer's acknowledged total reaches its position (the peer's enclave credited it
 *     durably), or once the settlement that closed the channel pays at least up to its position;
 *   - failed (channel_closed) once the settlement that closed the channel is known to pay less;
 *   - in flight otherwise, including after our own settlement until the chain shows whose settlement
 *     spent the deposits (ours pays everything we sent; a peer's that raced it pays what the peer had
 *     received). Nothing is guessed: when the enclave cannot tell, the payment stays in flight.
 */
export type Outcome = 'succeeded' | 'failed' | 'in_flight';

/** A payment's status from its channel as the enclave shows it now (used to answer a retried key). */
export function outcomeAt(view: { total_acked_sat: string; paid_total_sat: string | null }, position: bigint): Outcome {
  if (BigInt(view.total_acked_sat) >= position) return 'succeeded';
  if (view.paid_total_sat === null) return 'in_flight';
  return position <= BigInt(view.paid_total_sat) ? 'succeeded' : 'failed';
}

/** Sent payments waiting for their outcome, per channel, in position order. */
export class InFlight<P> {
  private readonly byChannel = new Map<string, Array<{ position: bigint; item: P }>>();

  add(channelId: string, position: bigint, item: P): void {
    let list = this.byChannel.get(channelId);
    if (!list) this.byChannel.set(channelId, (list = []));
    list.push({ position, item });
  }

  /** The peer acknowledged `total`: the payments up to it succeeded. */
  acked(channelId: string, total: bigint): P[] {
    const list = this.byChannel.get(channelId);
    if (!list) return [];
    let n = 0;
    while (n < list.length && list[n]!.position <= total) n++;
    return list.splice(0, n).map((e) => e.item);
  }

  /** The settlement that closed the channel pays `paid` of our sent total: every payment is now decided. */
  settled(channelId: string, paid: bigint): { succeeded: P[]; failed: P[] } {
    const list = this.byChannel.get(channelId) ?? [];
    this.byChannel.delete(channelId);
    return {
      succeeded: list.filter((e) => e.position <= paid).map((e) => e.item),
      failed: list.filter((e) => e.position > paid).map((e) => e.item),
    };
  }
}
