/**
 * Members removed and added (docs/protocol/committees.md, "Roster change"): a roster change is a view
 * change. The primary proposes view e + 1 whose members are the next roster and whose threshold is named
 * in what the voters sign; q = max(m, ⌊n/2⌋ + 1) members of the CURRENT roster must vote for it. Because
 * every view, whatever it changes, needs a quorum of the roster before it, a channel peer (or a member
 * that was away) that knows some earlier roster reaches the current one by checking each certificate of
 * the way against the roster the previous one established (followCerts).
 *
 * What a primary may propose, and every voter and checker enforces:
 *   - one member removed, or one new member appended at the tail: never both, never two at once, so every
 *     new roster keeps a quorum of the old one (a swap could otherwise hand the committee to outsiders);
 *   - the primary stays first (a primary is replaced by a promotion, not by a roster change);
 *   - m is kept (changing m is not a roster change), and n stays within m + 1 ..15: removing a member
 *     never leaves fewer than m + 1, so the committee still signs with one member down;
 *   - the replicating prefix holds a quorum of the new roster.
 * Pure functions over hostile data: each copies what it checks and returns only the checked copy.
 */
import {
  checkMemberQuote,
  checkRosterProof,
  verifyRoster,
  type PeerRoster,
  type RosterMember,
  type RosterProof,
  type RosterTrust,
} from './roster.ts';
import {
  NODE_ID,
  ViewError,
  checkCert,
  countVotes,
  quorum,
  type ViewCert,
  type ViewRoster,
  type ViewSpec,
} from './view.ts';

/** The largest committee a roster proof may describe (roster.ts). */
const MAX_MEMBERS = 15;

/** What a roster change does, read from a checked view and the roster it changes. */
export type RosterStep = { kind: 'remove'; node_id: string } | { kind: 'add'; node_id: string };

/** The step from `before` to `after`, or undefined if `after` is not one member removed or one appended. */
export function rosterStep(before: readonly string[], after: readonly string[]): RosterStep | undefined {
  if (after.length === before.length + 1) {
    const added = after[after.length - 1]!;
    if (before.includes(added) || !before.every((id, i) => after[i] === id)) return undefined;
    return { kind: 'add', node_id: added };
  }
  if (after.length === before.length - 1) {
    const gone = before.filter((id) => !after.includes(id));
    if (gone.length !== 1) return undefined;
    const rest = before.filter((id) => id !== gone[0]);
    return rest.every((id, i) => after[i] === id) ? { kind: 'remove', node_id: gone[0]! } : undefined;
  }
  return undefined;
}

/** The step from `before` to `after` as sets, whatever the order: one member out, or one in. */
function setStep(before: readonly string[], after: readonly string[]): RosterStep | undefined {
  const gone = before.filter((id) => !after.includes(id));
  const added = after.filter((id) => !before.includes(id));
  if (gone.length === 1 && added.length === 0) return { kind: 'remove', node_id: gone[0]! };
  if (gone.length === 0 && added.length === 1) return { kind: 'add', node_id: added[0]! };
  return undefined;
}

/**
 * The checked copy of a roster change's view against the current `roster` (members in view order, m),
 * or throws ViewError with the reason.
 */
export function checkRosterChangeSpec(
  raw: unknown,
  roster: ViewRoster,
  treasuryId: string,
  minEpoch: number,
  ordered = true,
): ViewSpec & { threshold: number } {
  const v = raw as Partial<ViewSpec> | null;
  if (!v || typeof v !== 'object') throw new ViewError('not a view');
  const { treasury_id, epoch, members, chain, threshold } = v;
  if (treasury_id !== treasuryId) throw new ViewError('the view is of another committee');
  if (!Number.isSafeInteger(epoch) || (epoch as number) <= minEpoch)
    throw new ViewError(`epoch ${String(epoch)} is not above ${minEpoch}`);
  if (threshold !== roster.threshold) throw new ViewError('a roster change keeps the threshold');
  if (!Array.isArray(members) || members.length > MAX_MEMBERS) throw new ViewError('malformed members');
  const ids = members.map((m) => (typeof m === 'string' && NODE_ID.test(m) ? m : ''));
  if (ids.includes('') || new Set(ids).size !== ids.length) throw new ViewError('malformed members');
  // A voter knows the current order; a checker following a chain may have missed promotions in between,
  // which reorder but never change the set: it checks the set (one out or one in), which is what q rests on.
  const step = ordered ? rosterStep(roster.members, ids) : setStep(roster.members, ids);
  if (!step) throw new ViewError('a roster change removes one member or adds one at the tail');
  if (ordered && ids[0] !== roster.members[0]) throw new ViewError('a roster change keeps the primary');
  if (ids.length < roster.threshold + 1)
    throw new ViewError(`${ids.length} members cannot sign ${roster.threshold}-of-n with one down`);
  const q = quorum(ids.length, roster.threshold);
  if (!Number.isInteger(chain) || (chain as number) < q || (chain as number) > ids.length)
    throw new ViewError(`a chain of ${String(chain)} cannot hold a quorum of ${q}`);
  return { treasury_id, epoch: epoch as number, members: ids, chain: chain as number, threshold };
}

/** Whether a view is a roster change (it names a threshold) rather than a promotion. */
export function isRosterChange(raw: unknown): boolean {
  return (raw as { threshold?: unknown } | null)?.threshold !== undefined;
}

/**
 * The checked copy of any view certificate against the roster the checker knows: a promotion (the same
 * members reordered) or a roster change; either way q votes of that roster. Throws ViewError.
 */
export function checkViewCert(
  raw: unknown,
  roster: ViewRoster,
  treasuryId: string,
  minEpoch: number,
  ordered = true,
): ViewCert {
  if (!isRosterChange(raw)) return checkCert(raw, roster, treasuryId, minEpoch);
  return countVotes(checkRosterChangeSpec(raw, roster, treasuryId, minEpoch, ordered), raw, roster);
}

/** The roster a checked certificate establishes: its members (in view order) and its threshold. */
export function rosterOf(cert: ViewCert, before: ViewRoster): ViewRoster {
  return { members: [...cert.members], threshold: cert.threshold ?? before.threshold };
}

/**
 * Follows a chain of certificates from `roster` (known at `epoch`): each is checked against the roster
 * the previous one established (as a set: promotions the follower missed may have reordered it). Returns the last roster and certificate, or throws ViewError at the first
 * link that does not verify (nothing of a broken chain is adopted).
 */
export function followCerts(
  certs: unknown,
  roster: ViewRoster,
  treasuryId: string,
  epoch: number,
): { roster: ViewRoster; cert?: ViewCert } {
  if (!Array.isArray(certs) || certs.length > 64) throw new ViewError('malformed certificate chain');
  let current: ViewRoster = { members: [...roster.members], threshold: roster.threshold };
  let last: ViewCert | undefined;
  for (const raw of certs as unknown[]) {
    const cert = checkViewCert(raw, current, treasuryId, last?.epoch ?? epoch, false);
    current = rosterOf(cert, current);
    last = cert;
  }
  return { roster: current, cert: last };
}

/** What a follower needs to accept an added member: its quote, and the trust that quote must meet. */
export interface AddedEvidence {
  /** Quotes over added members' node ids, by node id (hostile: each is checked before use). */
  quotes: Readonly<Record<string, unknown>>;
  trust: RosterTrust;
}

/**
 * A channel peer's check of a committee's new view `raw` (peer-views.ts, and the peer's backups in
 * update-rules.ts): reached from the view it adopted last (or the roster it verified at channel open)
 * through the committee's roster changes in `chain` after that epoch, each link checked. A member a link
 * (or the view itself) adds is accepted only with a quote in `evidence` that verifies over its node id,
 * from a platform no other member of the proof quotes from: a peer never takes a member it has no
 * attested quote for. Returns the checked certificate, the checked links and the added members with
 * their checked quotes, or throws ViewError.
 */
export function followPeerView(
  roster: PeerRoster,
  raw: unknown,
  chain: readonly unknown[] = [],
  evidence?: AddedEvidence,
): { cert: ViewCert; links: ViewCert[]; added: RosterMember[] } {
  const from = roster.view?.epoch ?? 0;
  const after = chain.filter((c) => ((c as { epoch?: unknown } | null)?.epoch as number) > from);
  const known = { members: roster.view?.members ?? roster.members, threshold: roster.threshold };
  // The committee's identity is its founding primary, first in the roster proof whatever the view.
  const links: ViewCert[] = [];
  const added: RosterMember[] = [];
  let platforms: Set<string> | undefined;
  const attested = (before: ViewRoster, cert: ViewCert): void => {
    for (const id of cert.members.filter((m) => !before.members.includes(m))) {
      const quote = evidence && Object.hasOwn(evidence.quotes, id) ? evidence.quotes[id] : undefined;
      if (!evidence || quote === undefined)
        throw new ViewError(`no attested quote for added member ${id.slice(0, 16)}…`);
      // The members verified so far quote from these platforms: one machine cannot fill two places.
      platforms ??= new Set(
        [...roster.proof, ...(roster.added ?? [])].map((m) => checkMemberQuote(m.node_id, m.quote, evidence.trust)),
      );
      let platform: string;
      try {
        platform = checkMemberQuote(id, quote, evidence.trust);
      } catch (err) {
        throw new ViewError(`added member ${id.slice(0, 16)}…: quote does not verify (${(err as Error).message})`);
      }
      if (platforms.has(platform)) throw new ViewError('an added member quotes from the platform of another');
      platforms.add(platform);
      added.push({ node_id: id, quote: structuredClone(quote) as RosterMember['quote'] });
    }
  };
  let current: ViewRoster = known;
  let epoch = from;
  for (const link of after) {
    const cert = checkViewCert(link, current, roster.members[0]!, epoch, false);
    if (cert.threshold === undefined) throw new ViewError('only roster changes link a chain');
    attested(current, cert);
    links.push(cert);
    current = rosterOf(cert, current);
    epoch = cert.epoch;
  }
  const cert = checkViewCert(raw, current, roster.members[0]!, epoch, false);
  attested(current, cert);
  return { cert, links, added };
}

/**
 * A committee's roster as its primary announces it to a channel peer (`roster`, peer-rosters.ts), checked
 * from nothing the peer knew before: the proof's quotes, then, for a committee past its founding view,
 * its view reached from the proof's roster through the roster changes `chain` (each link with q votes of
 * the roster the one before established, an added member only with its quote), with the session peer
 * first in it. Without a view the session peer must be the proof's first member, as at formation. Returns
 * the roster to keep (proof, view, links followed, added members), or throws with the reason.
 */
export function verifyAnnouncedRoster(proof: RosterProof, peerId: string, trust: RosterTrust): PeerRoster {
  if (proof.cert === undefined) return verifyRoster(proof, peerId, trust);
  const base = checkRosterProof(proof, trust);
  const quotes = Object.fromEntries((proof.added ?? []).map((m) => [m.node_id, m.quote]));
  const { cert, links, added } = followPeerView(base, proof.cert, proof.chain ?? [], { quotes, trust });
  if (cert.members[0] !== peerId) throw new ViewError('the view makes another member primary than the session peer');
  return { ...base, view: cert, ...(links.length ? { changes: links } : {}), ...(added.length ? { added } : {}) };
}

/**
 * A roster this side stored, checked again before key shares are made for it (its quotes, and the
 * session peer as the one it was verified for: the first member of its view, or of the proof without one).
 */
export function recheckPeerRoster(roster: PeerRoster, peerId: string, trust: RosterTrust): PeerRoster {
  const checked = checkRosterProof({ threshold: roster.threshold, members: roster.proof }, trust);
  if ((roster.view?.members[0] ?? checked.members[0]) !== peerId)
    throw new ViewError('the roster was not verified for the session peer');
  return checked;
}

/**
 * Whether a roster stored with a view holds for `peerId` as verifyAnnouncedRoster would take it: what a
 * committee peer's backups check when their primary first stores such a roster (update-rules.ts), from
 * the proof alone, so their primary's word for it is not enough.
 */
export function storedRosterHolds(roster: PeerRoster, peerId: string, trust: RosterTrust): boolean {
  if (!roster.view) return false;
  let again: PeerRoster;
  try {
    again = verifyAnnouncedRoster(
      {
        threshold: roster.threshold,
        members: roster.proof,
        cert: roster.view,
        chain: roster.changes ?? [],
        added: roster.added ?? [],
      },
      peerId,
      trust,
    );
  } catch {
    return false;
  }
  const ids = (list: ReadonlyArray<{ node_id: string }> | undefined) => (list ?? []).map((m) => m.node_id).join();
  const epochs = (list: readonly ViewCert[] | undefined) => (list ?? []).map((c) => c.epoch).join();
  return (
    again.members.join() === roster.members.join() &&
    again.view!.epoch === roster.view.epoch &&
    again.view!.members.join() === roster.view.members.join() &&
    again.view!.chain === roster.view.chain &&
    epochs(again.changes) === epochs(roster.changes) &&
    ids(again.added) === ids(roster.added)
  );
}
