/**
 * This member's place in its committee chain, read afresh from its own (sealed) state on every call:
 * its role, its index, its neighbours. Every part of the coordinator asks here, so none keeps a copy
 * that an applied update could make stale.
 */
import type { CommitteeState } from '../treasury/state.ts';
import type { CommitteeHost } from './ports.ts';
import { formationOrder } from './share-holders.ts';

export class Membership {
  private rosterEventDue = false;

  constructor(private readonly host: CommitteeHost) {}

  get c(): CommitteeState {
    return this.host.state.committee!;
  }

  get isPrimary(): boolean {
    return this.c.role === 'primary';
  }

  /** This member knows its committee (a backup: from a first update) and every place in it is taken. */
  get known(): boolean {
    return this.c.size > 0 && this.formed;
  }

  /** Every place in the chain is taken (quotes may still be missing: see Joining.rosterProof). */
  get formed(): boolean {
    return this.c.members.length === this.c.size;
  }

  /** The current view's number (docs/protocol/committees.md); 0 until the first view change. */
  get epoch(): number {
    return this.c.epoch ?? 0;
  }

  /** The committee's stable identity: the founding primary's node id, whoever is primary now. */
  get treasuryId(): string {
    return this.c.treasuryId ?? this.c.primaryId ?? this.c.members[0]?.node_id ?? this.host.nodeId;
  }

  get index(): number {
    return this.c.members.findIndex((m) => m.node_id === this.host.nodeId);
  }

  /** How many members, from the primary on, replicate and acknowledge; the others stand by (view.ts). */
  get chainLength(): number {
    return Math.min(this.c.view?.chain ?? this.c.members.length, this.c.members.length);
  }

  /** The replicating members, primary first: every update is acknowledged by all of them. */
  get chainMembers() {
    return this.c.members.slice(0, this.chainLength);
  }

  /** The member order peers split handed-over keys in (CommitteeState.shareOrder; share-holders.ts). */
  get shareOrder(): string[] {
    return formationOrder(this.c);
  }

  /** Every other member of the roster, in chain order (the replicating ones first, then those standing by). */
  others(): string[] {
    return this.c.members.map((m) => m.node_id).filter((id) => id !== this.host.nodeId);
  }

  /** The member `offset` places after this one in the chain (−1: the predecessor, towards the primary). */
  neighbour(offset: number): string | undefined {
    const i = this.index;
    return i < 0 ? undefined : this.c.members[i + offset]?.node_id;
  }

  /** Whether `peerId` is in the roster, or is this backup's primary (which may not have listed it yet). */
  isMember(peerId: string): boolean {
    return this.c.members.some((m) => m.node_id === peerId) || peerId === this.c.primaryId;
  }

  /**
   * Tells the host the roster changed (it emits a `committee_roster` event), once per turn of the event
   * loop however many changes that turn made, and with the roster as it stands when the event goes out.
   */
  rosterChanged(): void {
    this.rosterEventDue = true;
    queueMicrotask(() => {
      if (!this.rosterEventDue) return;
      this.rosterEventDue = false;
      this.host.rosterChanged(this.c.members, this.index);
    });
  }
}
