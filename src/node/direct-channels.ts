/**
 * Which treasuries this node has open channels with, as the host last heard from its enclave, so that a
 * payment naming only `dest` learns whether it goes directly or is routed without listing every channel
 * first (that `list_channels` ecall sat on every routed payment's critical path). The enclave stays the
 * authority on money: the view only picks the way, and the enclave refuses a payment the view got wrong
 * (a channel closed a moment ago) as it did when the list was read per payment. The view is read again
 * from the enclave after any event that may change it: a channel opened, changed status or closed, a peer
 * (re)connected or a committee peer's roster or our own committee view changed (which member a channel is
 * bound to).
 */
import type { ChannelView, TreasuryEventMsg } from '../enclave/treasury/interface.ts';

/** Peer id or treasury id → the ids of the open channels with it. */
type View = Map<string, string[]>;

export class DirectChannels {
  private view: View | null = null;
  /**
   * Every channel's status in the newest list read, to tell an update that changes nothing here (a
   * payment moved it) from one that does. Statuses only move forward (opening, open, closed), so an
   * update naming the status this shows says nothing new, even while a list is being read again.
   */
  private readonly status = new Map<string, string>();
  /** Bumped by every event that may change the view: a list read before it is not kept. */
  private generation = 0;
  private loading: { generation: number; view: Promise<View> } | null = null;

  constructor(private readonly list: () => Promise<ChannelView[]>) {}

  /**
   * The open channel to pay `dest` on, or null when there is none (the payment is then routed). Several
   * open channels with `dest`: the one that can pay the most now, read afresh from the enclave.
   */
  async channelTo(dest: string): Promise<string | null> {
    const ids = (await this.current()).get(dest) ?? [];
    if (ids.length <= 1) return ids[0] ?? null;
    const open = (await this.list()).filter(
      (c) => (c.peer_id === dest || c.peer_treasury_id === dest) && c.status === 'open',
    );
    if (open.length === 0) return null;
    open.sort((a, b) => (BigInt(b.spendable_sat) > BigInt(a.spendable_sat) ? 1 : -1));
    return open[0]!.channel_id;
  }

  onEvent(e: TreasuryEventMsg): void {
    switch (e.type) {
      case 'channel_updated':
        // Every routed payment sends one for each channel it moves: no reason to read the list again.
        if (this.status.get(e.channel_id) === e.status) return;
        break;
      case 'channel_settled':
      case 'settlement_paid':
      case 'peer_connected':
      case 'peer_roster':
      case 'committee_roster':
      case 'committee_view':
        break;
      default:
        return;
    }
    this.generation++;
    this.view = null;
  }

  private current(): Promise<View> {
    if (this.view) return Promise.resolve(this.view);
    if (this.loading?.generation === this.generation) return this.loading.view;
    const generation = this.generation;
    const view = this.list().then((channels) => {
      const v: View = new Map();
      for (const c of channels) {
        this.status.set(c.channel_id, c.status);
        if (c.status !== 'open') continue;
        for (const id of new Set([c.peer_id, c.peer_treasury_id])) v.set(id, [...(v.get(id) ?? []), c.channel_id]);
      }
      // An event since the list was read may have changed it: answer this caller, keep nothing.
      if (generation === this.generation) this.view = v;
      return v;
    });
    this.loading = { generation, view };
    const clear = () => {
      if (this.loading?.view === view) this.loading = null;
    };
    view.then(clear, clear);
    return view;
  }
}
