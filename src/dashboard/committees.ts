/**
 * The dashboard's view of each committee treasury: every member (the backups listed in network.json
 * too, not only the founding primary), each with its role, its sessions, its replication sequence numbers,
 * its view number and REST URL, and the view changes (promotions) as they are seen happen.
 *
 * Each member is asked for its own GET /v1/committee: a member's seq / acked_seq / epoch are its own, and
 * the roster, roles and "connected" come from the view of the first member that answers with the highest
 * epoch (the newest view; a member that is down or behind does not hide a promotion).
 */
import type { NetworkFile, NetworkNode } from '../cli/client.ts';
import type { CommitteeView } from '../enclave/treasury/interface.ts';
import type { Logger } from '../log/logger.ts';
import { NodeApi } from './node-api.ts';
import type { CommitteeMemberSnapshot, CommitteeSnapshot, ViewChange } from './protocol.ts';

/** View changes kept for the page. */
const VIEW_CHANGES_KEPT = 20;

export class CommitteeWatch {
  readonly viewChanges: ViewChange[] = [];
  private readonly treasuries: Array<{ name: string; members: NodeApi[] }>;
  private readonly seen = new Map<string, { epoch: number; primary: string }>();
  private readonly names = new Map<string, string>();
  /** Treasuries that answered 404 no_committee: not asked again until the dashboard restarts. */
  private readonly lone = new Set<string>();

  constructor(
    network: NetworkFile,
    private readonly logger: Logger,
  ) {
    const all = (n: NetworkNode) => [n, ...(n.backups ?? [])];
    for (const n of network.nodes) for (const m of all(n)) this.names.set(m.nodeId, m.name);
    this.treasuries = network.nodes.map((n) => ({ name: n.name, members: all(n).map((m) => new NodeApi(m)) }));
  }

  async poll(): Promise<CommitteeSnapshot[]> {
    const out = await Promise.all(this.treasuries.map((t) => this.read(t)));
    return out.filter((c): c is CommitteeSnapshot => c !== null);
  }

  private nameOf(nodeId: string): string {
    return this.names.get(nodeId) ?? nodeId;
  }

  private async read(t: { name: string; members: NodeApi[] }): Promise<CommitteeSnapshot | null> {
    if (this.lone.has(t.name)) return null;
    const answers = await Promise.all(t.members.map((a) => a.request('GET', '/v1/committee', undefined, 5_000)));
    if (answers[0]!.status === 404 && t.members.length === 1) {
      this.lone.add(t.name);
      return null;
    }
    const views = new Map<string, CommitteeView>();
    answers.forEach((r, i) => {
      if (r.status === 200 && Array.isArray(r.body?.members)) views.set(t.members[i]!.node.nodeId, r.body);
    });
    // The newest view any member holds: a promoted primary's, not a dead or lagging member's.
    let best: CommitteeView | undefined;
    for (const v of views.values()) if (!best || v.epoch > best.epoch) best = v;
    if (!best) return null;
    const primaryId = best.members[0]?.node_id ?? '';
    const members: CommitteeMemberSnapshot[] = best.members.map((m, i) => {
      const own = views.get(m.node_id);
      return {
        name: this.nameOf(m.node_id),
        node_id: m.node_id,
        role: i === 0 ? 'primary' : 'backup',
        connected: m.connected,
        reachable: own !== undefined,
        seq: own?.seq ?? null,
        acked_seq: own?.acked_seq ?? null,
        epoch: own?.epoch ?? null,
        rest_url: m.rest_url ?? null,
      };
    });
    this.noteView(t.name, best.epoch, this.nameOf(primaryId));
    const up = members.filter((m) => m.connected).length;
    return {
      node: t.name,
      committee_id: best.treasury_id,
      epoch: best.epoch,
      primary: this.nameOf(primaryId),
      members,
      detail: `${best.threshold}-of-${best.size}, ${up}/${members.length} up, view ${best.epoch}`,
    };
  }

  /** Records a view change the first time a newer view (or another primary) shows up for a treasury. */
  private noteView(node: string, epoch: number, primary: string): void {
    const last = this.seen.get(node);
    this.seen.set(node, { epoch, primary });
    if (!last || (last.epoch === epoch && last.primary === primary) || epoch < last.epoch) return;
    this.viewChanges.unshift({ node, epoch, primary, at: Date.now() });
    this.viewChanges.splice(VIEW_CHANGES_KEPT);
    this.logger.warn({ node, epoch, primary, was: last.primary }, 'committee view changed');
  }
}
