/**
 * Routing gossip: each treasury announces its channels (capacity, fees), signed with its identity key, and
 * floods the announcements it learns; the payer routes over the graph this builds (routing.ts). Gossip is
 * not state: it is sent at once, outside any seal, and rebuilt after a restart. A committee announces
 * under its treasury id whoever is primary; a primary of a later view signs with its own key and carries
 * the proof that it speaks for the committee (speakers.ts), and the newest view's announcement wins.
 */
import type { AnnouncementWire, SpeakerProof } from '../../protocol/messages.ts';
import { signAnnouncement, verifyAnnouncement } from '../routing.ts';
import { spendable } from '../state.ts';
import type { MultiHopHost } from './host.ts';
import { peerTreasury } from './identities.ts';
import { Speakers } from './speakers.ts';

/** An announcement as kept and flooded: `epoch` is the view of its signer (speakers.ts), 0 without `by`. */
interface Known {
  ann: AnnouncementWire;
  sig: string;
  by?: SpeakerProof;
  epoch: number;
}

export class Gossip {
  readonly graph = new Map<string, Known>();
  private readonly speakers: Speakers;
  private announced = '';
  /** Channels, fees and capacities of the last announcement, and when it was made. */
  private announcedShape = '';
  private announcedCaps = new Map<string, bigint>();
  private announcedAt = 0;
  private seq = 0;
  /**
   * Capacity moves with every payment; re-announcing it each time would cost a signature here and a
   * verification at every node (about 2 ms each with @noble/secp256k1) twice a second under load, which
   * shows up in payment latency. Small capacity changes (under an eighth of what was announced) wait this
   * long; new channels, fees, and larger moves (a deposit added, a channel drained) go out at once.
   */
  capacityRefreshMs = 5_000;

  constructor(private readonly h: MultiHopHost) {
    this.speakers = new Speakers(() => h.state.config);
  }

  /** Announces our channels if they changed (or always to `peer`), and gives `peer` the whole graph. */
  announce(peer?: string): void {
    if (!this.h.takesPart()) return; // a committee's backup: its primary announces the committee's channels
    const fees = this.h.state.config.fees ?? { base: 0, ppm: 0 };
    const channels = Object.values(this.h.state.channels)
      .filter((c) => c.status === 'open' && c.peerPayout)
      .map((c) => ({
        ch: c.id,
        peer: peerTreasury(c),
        cap: (() => {
          const s = spendable(this.h.state, c);
          return (s > 0n ? s : 0n).toString();
        })(),
      }));
    const key = JSON.stringify([fees, channels]);
    const shape = JSON.stringify([fees, channels.map((c) => [c.ch, c.peer])]);
    const now = Date.now();
    const bigMove = channels.some((c) => {
      const before = this.announcedCaps.get(c.ch) ?? 0n;
      const diff = BigInt(c.cap) - before;
      return (diff < 0n ? -diff : diff) * 8n >= before && diff !== 0n;
    });
    if (
      key !== this.announced &&
      (shape !== this.announcedShape || bigMove || now - this.announcedAt >= this.capacityRefreshMs)
    ) {
      this.announced = key;
      this.announcedShape = shape;
      this.announcedCaps = new Map(channels.map((c) => [c.ch, BigInt(c.cap)]));
      this.announcedAt = now;
      this.seq = Math.max(this.seq + 1, now);
      const ann: AnnouncementWire = {
        node: this.h.nodeId,
        seq: this.seq,
        fee_base: fees.base,
        fee_ppm: fees.ppm,
        channels,
      };
      const sig = signAnnouncement(ann, this.h.identityKey());
      const by = this.h.speakerProof();
      const own: Known = { ann, sig, ...(by ? { by } : {}), epoch: by?.cert.epoch ?? 0 };
      this.graph.set(this.h.nodeId, own);
      for (const p of this.h.peers()) this.h.sendNow(p, message(own));
    }
    if (peer) for (const k of this.graph.values()) this.h.sendNow(peer, message(k));
  }

  /**
   * A neighbour's announcement (or one it floods on): kept if its signer speaks for `ann.node` (speakers.ts),
   * it is of a newer view or newer in the same view, and validly signed; then flooded further.
   */
  receive(peer: string, ann: AnnouncementWire, sig: string, by?: SpeakerProof): void {
    if (ann.node === this.h.nodeId) return;
    const known = this.graph.get(ann.node);
    const epoch = by?.cert.epoch ?? 0;
    if (known && (known.epoch > epoch || (known.epoch === epoch && known.ann.seq >= ann.seq))) return;
    const speaker = this.speakers.check(ann.node, by);
    if (!speaker || !verifyAnnouncement(ann, sig, speaker.signer)) return;
    const k: Known = { ann, sig, ...(by ? { by } : {}), epoch: speaker.epoch };
    this.graph.set(ann.node, k);
    for (const p of this.h.peers()) if (p !== peer && p !== ann.node) this.h.sendNow(p, message(k));
  }

  view() {
    return [...this.graph.values()].map(({ ann }) => ({
      node_id: ann.node,
      seq: ann.seq,
      fee_base_sat: ann.fee_base,
      fee_ppm: ann.fee_ppm,
      channels: ann.channels.map((c) => ({ channel_id: c.ch, peer_id: c.peer, capacity_sat: c.cap })),
    }));
  }
}

function message(k: Known) {
  return { t: 'gossip' as const, ann: k.ann, sig: k.sig, ...(k.by ? { by: k.by } : {}) };
}
