/**
 * Following a committee peer through its view changes (docs/protocol/committees.md, "View change").
 *
 * A channel with a committee is bound to the member that was its primary when the channel opened. When
 * another member takes over, it shows the certificate of its view (`view`); this side rebinds the channel
 * to it only if the session peer is the certificate's first member, a member of the roster this side
 * verified and stored when the channel opened (attested quotes), the certificate carries q valid votes of
 * that roster and its epoch is above any this side adopted; a member a roster change added is taken only
 * with its attested quote (roster-change.ts followPeerView). Then both sides resynchronise with their
 * cumulative totals (`sync`), so every payment in flight is counted once or retried, never twice.
 */
import { followPeerView } from '../committee/roster-change.ts';
import type { ViewCert } from '../committee/view.ts';
import { resync } from './channel-messages.ts';
import type { TreasuryCore } from './core.ts';

/** New primary: its view, to each channel peer that is connected, ahead of the channels' resynchronisation. */
export function announceView(t: TreasuryCore, peerId?: string): void {
  const proof = t.committee?.isPrimary ? t.committee.viewProof() : undefined;
  if (!proof) return;
  const peers = new Set<string>();
  for (const ch of Object.values(t.state.channels))
    if (ch.status !== 'closed' && (peerId === undefined || ch.peerId === peerId)) peers.add(ch.peerId);
  // With the roster changes before it, and every member they added with its quote: a peer follows an
  // addition only with it.
  const { cert, chain, added } = proof;
  for (const p of peers)
    t.outbox.push({ peerId: p, msg: { t: 'view', cert, ...(chain ? { chain } : {}), ...(added ? { added } : {}) } });
  // Right after a promotion the sessions that are up resynchronise now; a new session does so on its own.
  if (peerId === undefined) for (const p of peers) if (t.sessions.connected(p)) resync(t, p);
}

/**
 * A committee peer's member shows the view that made it primary: the channels of that committee are
 * rebound to it if the certificate proves it. Returns the number of channels rebound.
 */
export async function applyPeerView(
  t: TreasuryCore,
  peerId: string,
  raw: ViewCert,
  chain: readonly unknown[] = [],
  added: ReadonlyArray<{ node_id: string; quote: unknown }> = [],
): Promise<number> {
  const evidence = {
    quotes: Object.fromEntries(added.map((m) => [m.node_id, m.quote])),
    trust: t.state.config,
  };
  let rebound = 0;
  for (const ch of Object.values(t.state.channels)) {
    const roster = ch.peerRoster;
    const current = roster?.view?.members ?? roster?.members;
    if (ch.status === 'closed' || !roster || !current?.includes(peerId)) continue;
    let followed: ReturnType<typeof followPeerView>;
    try {
      followed = followPeerView(roster, raw, chain, evidence);
    } catch {
      continue;
    }
    const cert = followed.cert;
    if (cert.members[0] !== peerId) continue;
    ch.peerId = peerId;
    if (followed.links.length) roster.changes = [...(roster.changes ?? []), ...followed.links];
    // An added member's checked quote is kept with the links: the peer's backups check it again.
    for (const m of followed.added)
      if (!roster.added?.some((p) => p.node_id === m.node_id)) roster.added = [...(roster.added ?? []), m];
    roster.view = cert;
    rebound += 1;
  }
  if (rebound === 0) return 0;
  await t.committer.commit();
  t.peerRosters.rebound(peerId, Object.values(t.state.channels).find((c) => c.peerId === peerId)?.peerRoster);
  // The new primary speaks for the committee on our paths from now on (multihop/identities.ts): it gets
  // what the old one may have missed, multi-hop steps included, and the graph (as a backup it kept none).
  resync(t, peerId);
  t.multihop.gossip(peerId);
  return rebound;
}
