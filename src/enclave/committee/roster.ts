/**
 * A committee's roster proof (docs/protocol/committees.md): who its members are, each with a quote over its
 * node id, so a channel peer can split the keys it hands over among those very enclaves instead of giving
 * them whole to the primary.
 *
 * The quotes bind node ids to genuine enclaves; freshness is not needed (identity keys are long-lived), so
 * they carry a fixed domain nonce. Distinct platform ids are required because a compromised TEE can quote
 * only on its own platform: one broken machine cannot fill several slots of the roster.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { reportDataFor, verifyQuote, type Quote } from '../../../enclave-sim/quote-verify.ts';
import { hexToBytes, utf8ToBytes } from '../../../enclave-sim/encoding.ts';
import { isPublicKey } from '../../crypto/secp256k1.ts';
import type { ViewCert } from './view.ts';

/** The nonce every member quote carries. */
export const MEMBER_QUOTE_NONCE = sha256(utf8ToBytes('teechain-ts/committee-member-quote/v1'));

export interface RosterMember {
  node_id: string;
  quote: Quote;
  /** host:port of the member's host, as a hint (not part of what is verified or kept). */
  address?: string;
}

/** How a committee past its founding view shows its primary: the view and how to reach it from the proof. */
export interface ViewProof {
  /** The certificate of the view that makes the sender primary. */
  cert: ViewCert;
  /** The roster changes that lead to `cert` from the proof's roster (roster-change.ts followPeerView). */
  chain?: ViewCert[];
  /** The quotes of the members those changes added: a peer follows no unattested member. */
  added?: Array<{ node_id: string; quote: Quote }>;
}

/**
 * What a committee's primary announces: `members` in the formation order (the founding primary first:
 * peers split handed-over keys in it), and past the founding view the ViewProof fields
 * (roster-change.ts verifyAnnouncedRoster). Without them the sender is the founding primary.
 */
export interface RosterProof extends Partial<ViewProof> {
  threshold: number;
  members: RosterMember[];
}

/** What a channel keeps of its peer's verified roster (Channel.peerRoster). */
export interface PeerRoster {
  threshold: number;
  members: string[];
  proof: RosterMember[];
  /** The peer committee's latest view this side adopted (view.ts); absent until its first view change. */
  view?: ViewCert;
  /** The committee's roster changes this side followed to reach `view` (roster-change.ts followPeerView). */
  changes?: ViewCert[];
  /**
   * Members those roster changes added, each with the quote over its node id this side checked before
   * following (`proof` stays the roster verified at open: peers split keys in its formation order).
   */
  added?: RosterMember[];
}

export interface RosterTrust {
  trustAnchor: string;
  allowedMeasurements: string[];
}

/** Whether `quote` is a genuine enclave's quote over `nodeId`; returns its platform id, or throws. */
export function checkMemberQuote(nodeId: string, quote: unknown, trust: RosterTrust): string {
  const id = hexToBytes(nodeId);
  if (id.length !== 33 || !isPublicKey(id)) throw new Error('member id is not a public key');
  return verifyQuote(quote, { ...trust, expectedNonce: MEMBER_QUOTE_NONCE, expectedReportData: reportDataFor(id) })
    .platformId;
}

/**
 * Checks a roster proof announced by `peerId` and returns the checked copy, or throws with the reason.
 * members[0] must be the session peer (or `first`, the founding primary of a committee that changed view,
 * when the caller has checked the view that makes the session peer primary), and the session peer a
 * member; otherwise as checkRosterProof.
 */
export function verifyRoster(
  proof: RosterProof,
  peerId: string,
  trust: RosterTrust,
  first: string = peerId,
): PeerRoster {
  const roster = checkRosterProof(proof, trust);
  if (roster.members[0] !== first) throw new Error('the first member is not the session peer');
  if (!roster.members.includes(peerId)) throw new Error('the session peer is not a member');
  return roster;
}

/**
 * The checked copy of a roster proof whoever announced it, or throws with the reason: 2 ≤ threshold ≤ n
 * ≤ 15, every quote genuine and over its member's id, ids and platform ids pairwise distinct. Who may
 * speak for it is the caller's check (verifyRoster, or the view that makes the speaker primary:
 * roster-change.ts verifyAnnouncedRoster).
 */
export function checkRosterProof(proof: RosterProof, trust: RosterTrust): PeerRoster {
  const n = proof.members.length;
  if (n < 2 || n > 15) throw new Error(`a roster has 2 to 15 members, not ${n}`);
  if (!Number.isInteger(proof.threshold) || proof.threshold < 2 || proof.threshold > n)
    throw new Error(`threshold ${proof.threshold} is not in 2..${n}`);
  const ids = new Set<string>();
  const platforms = new Set<string>();
  for (const m of proof.members) {
    if (ids.has(m.node_id)) throw new Error('a member appears twice');
    ids.add(m.node_id);
    let platform: string;
    try {
      platform = checkMemberQuote(m.node_id, m.quote, trust);
    } catch (err) {
      throw new Error(
        `member ${m.node_id.slice(0, 16)}…: quote does not verify (${(err as { code?: string }).code ?? (err as Error).message})`,
      );
    }
    if (platforms.has(platform)) throw new Error('two members quote from one platform');
    platforms.add(platform);
  }
  const members = proof.members.map((m) => ({ node_id: m.node_id, quote: structuredClone(m.quote) }));
  return { threshold: proof.threshold, members: members.map((m) => m.node_id), proof: members };
}
