/**
 * Committee views (docs/protocol/committees.md, "View change"): which member is primary, in which chain
 * order, from which epoch on, and the certificate that proves a quorum of the committee agreed to it.
 *
 * A view is (treasury id, epoch, ordered members, chain): members[0] is the primary, the first `chain`
 * members replicate and acknowledge, the rest stand by (they keep their keys and follow, but nothing
 * waits for them). Each voter signs exactly that with its identity key, once per epoch. A certificate
 * needs q = max(m, ⌊n/2⌋ + 1) votes of distinct members of the roster it is checked against: two
 * quorums of one epoch share a member, who voted once, so two views can never both win an epoch. The
 * chain is at least q members long, so every acknowledged state is held by at least one member of any
 * later quorum, and the next primary is at least as new as every voter.
 *
 * Everything here is a pure function over data that arrives from other members or the host: a
 * certificate is copied field by field and checked once; callers use only the checked copy.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '../../../enclave-sim/encoding.ts';
import { signDigestFast } from '../../crypto/secp256k1-wasm.ts';
import { verifyMessageSha256 } from '../../crypto/secp256k1-openssl.ts';

/**
 * What a voter signs: the committee, the epoch, the members in the new order, the replicating prefix. A
 * roster change (roster-change.ts) also names the threshold of the new roster; a view without one keeps
 * the members of the roster it is checked against.
 */
export interface ViewSpec {
  treasury_id: string;
  epoch: number;
  members: string[];
  chain: number;
  threshold?: number;
}

export interface ViewVote {
  node_id: string;
  sig: string;
}

/** A view with the votes that made it: what members and channel peers adopt it on. */
export interface ViewCert extends ViewSpec {
  votes: ViewVote[];
}

/** The roster a certificate is checked against: the member set and m, as the checker itself knows them. */
export interface ViewRoster {
  members: readonly string[];
  threshold: number;
}

export const NODE_ID = /^(02|03)[0-9a-f]{64}$/;
const SIG = /^[0-9a-f]{128}$/;

/** Votes a view needs: at least m (so a view never has fewer supporters than a signature) and a majority. */
export function quorum(n: number, m: number): number {
  return Math.max(m, Math.floor(n / 2) + 1);
}

function preimage(v: ViewSpec): Uint8Array {
  // A roster change's votes cover the new threshold; a promotion's preimage is unchanged (no trailing field).
  const m = v.threshold === undefined ? '' : `\0m=${v.threshold}`;
  return new TextEncoder().encode(
    `teechain-committee-view\0${v.treasury_id}\0${v.epoch}\0${v.chain}\0${v.members.join(',')}${m}`,
  );
}

export function signVote(view: ViewSpec, identityKey: Uint8Array): string {
  return bytesToHex(signDigestFast(sha256(preimage(view)), identityKey));
}

export function voteValid(view: ViewSpec, nodeId: string, sig: string): boolean {
  if (!SIG.test(sig) || !NODE_ID.test(nodeId)) return false;
  try {
    return verifyMessageSha256(hexToBytes(sig), preimage(view), hexToBytes(nodeId));
  } catch {
    return false;
  }
}

/** Why a view or certificate is refused (the message goes into logs and c_error, never into state). */
export class ViewError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ViewError';
  }
}

/**
 * The checked copy of a view's shape against `roster`: the same members in some order, each once, an
 * epoch above `minEpoch`, and a replicating prefix of at least q members (all n: nobody stands by).
 */
export function checkViewSpec(raw: unknown, roster: ViewRoster, treasuryId: string, minEpoch: number): ViewSpec {
  const v = raw as Partial<ViewSpec> | null;
  if (!v || typeof v !== 'object') throw new ViewError('not a view');
  const { treasury_id, epoch, members, chain } = v;
  if (treasury_id !== treasuryId) throw new ViewError('the view is of another committee');
  if (!Number.isSafeInteger(epoch) || (epoch as number) <= minEpoch)
    throw new ViewError(`epoch ${String(epoch)} is not above ${minEpoch}`);
  if (!Array.isArray(members) || members.length !== roster.members.length)
    throw new ViewError('the view does not list every member');
  const ids = members.map((m) => (typeof m === 'string' && NODE_ID.test(m) ? m : ''));
  const known = new Set(roster.members);
  if (new Set(ids).size !== ids.length || !ids.every((id) => known.has(id)))
    throw new ViewError('the view lists a non-member or a member twice');
  const q = quorum(roster.members.length, roster.threshold);
  if (!Number.isInteger(chain) || (chain as number) < q || (chain as number) > ids.length)
    throw new ViewError(`a chain of ${String(chain)} cannot hold a quorum of ${q}`);
  return { treasury_id, epoch: epoch as number, members: ids, chain: chain as number };
}

/**
 * The checked copy of a promotion's certificate (the same members, reordered), or throws ViewError: a
 * valid view of `roster` above `minEpoch` with at least q valid votes of distinct roster members. A
 * certificate that may also change the roster is checked by roster-change.ts's checkViewCert.
 */
export function checkCert(raw: unknown, roster: ViewRoster, treasuryId: string, minEpoch: number): ViewCert {
  if ((raw as { threshold?: unknown } | null)?.threshold !== undefined) throw new ViewError('a roster change');
  return countVotes(checkViewSpec(raw, roster, treasuryId, minEpoch), raw, roster);
}

/** The checked spec with the votes of `raw` that verify, from distinct members of `roster`; q of them or throws. */
export function countVotes(spec: ViewSpec, raw: unknown, roster: ViewRoster): ViewCert {
  const votes = (raw as { votes?: unknown }).votes;
  if (!Array.isArray(votes) || votes.length > roster.members.length) throw new ViewError('malformed votes');
  const known = new Set(roster.members);
  const counted: ViewVote[] = [];
  for (const v of votes as Array<Partial<ViewVote> | null>) {
    const node_id = v?.node_id;
    const sig = v?.sig;
    if (typeof node_id !== 'string' || typeof sig !== 'string') throw new ViewError('malformed vote');
    if (!known.has(node_id) || counted.some((c) => c.node_id === node_id)) continue;
    if (voteValid(spec, node_id, sig)) counted.push({ node_id, sig });
  }
  const q = quorum(roster.members.length, roster.threshold);
  if (counted.length < q) throw new ViewError(`${counted.length} valid votes, ${q} needed`);
  return { ...spec, votes: counted };
}

/**
 * The view a candidate proposes when the primary of `members` is gone: itself first, then the other
 * members it reaches (they replicate), then those it does not, then the old primary at the tail (it keeps
 * its keys and may come back, as a member that stands by).
 */
export function proposedView(
  treasuryId: string,
  epoch: number,
  members: readonly string[],
  candidate: string,
  live: (id: string) => boolean,
): ViewSpec {
  const [oldPrimary, ...rest] = members as [string, ...string[]];
  const others = rest.filter((id) => id !== candidate);
  const up = others.filter(live);
  const down = others.filter((id) => !live(id));
  return { treasury_id: treasuryId, epoch, members: [candidate, ...up, ...down, oldPrimary], chain: 1 + up.length };
}

/**
 * Whether `view` is a proposal a voter may support from its own roster order `members`: the proposer
 * first, the current primary (the one suspected) last and out of the chain, everyone else in their order.
 */
export function isPromotionOf(view: ViewSpec, members: readonly string[], proposer: string): boolean {
  const [oldPrimary, ...rest] = members as [string, ...string[]];
  if (view.members[0] !== proposer || view.members[view.members.length - 1] !== oldPrimary) return false;
  if (view.chain >= view.members.length) return false;
  const middle = view.members.slice(1, -1);
  const expected = rest.filter((id) => id !== proposer);
  // Replicating members and standing-by members each keep the roster's order.
  const up = middle.slice(0, view.chain - 1);
  const down = middle.slice(view.chain - 1);
  const inOrder = (list: string[]) =>
    list.every((id, i) => i === 0 || expected.indexOf(list[i - 1]!) < expected.indexOf(id));
  return middle.length === expected.length && inOrder(up) && inOrder(down);
}
