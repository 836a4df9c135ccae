/**
 * One-time join tokens: the operator's say over who becomes a committee member (docs/protocol/committees.md).
 *
 * An attested session proves only that the peer runs our code under our attestation service, which any
 * stranger's node does too; until the roster is full the primary would otherwise admit whoever asks, and
 * that newcomer would then hold a key of every deposit and a share of every handed-over key. So the
 * primary's enclave makes one random token per backup when it is created, keeps only their SHA-256
 * (sealed), and gives the tokens to its host once, for the operator to hand to the backups they start.
 * A token admits one new member; it is marked used (and sealed) before the joiner is answered.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { bytesToHex, utf8ToBytes } from '../../../enclave-sim/encoding.ts';
import type { TreasuryErrorCode } from '../treasury/errors.ts';
import type { CommitteeState } from '../treasury/state.ts';

/** 32 random bytes as hex: what an operator copies into a backup's token file. */
export const JOIN_TOKEN_RE = /^[0-9a-f]{64}$/;

function digest(token: string): string {
  return bytesToHex(sha256(utf8ToBytes(token)));
}

/** Makes `n` fresh tokens, records their hashes as unused in `c`, and returns the tokens themselves. */
export function issueJoinTokens(c: CommitteeState, n: number): string[] {
  const tokens = Array.from({ length: n }, () => bytesToHex(randomBytes(32)));
  c.joinTokens = { ...(c.joinTokens ?? {}) };
  for (const t of tokens) c.joinTokens[digest(t)] = null;
  return tokens;
}

/** Why `token` cannot admit a new member, or null when it is an unused token of this primary. */
export function joinRefusal(c: CommitteeState, token: string | undefined): TreasuryErrorCode | null {
  if (token === undefined || token === '') return 'join_token_required';
  if (!JOIN_TOKEN_RE.test(token)) return 'join_token_invalid';
  const h = digest(token);
  if (!c.joinTokens || !Object.hasOwn(c.joinTokens, h)) return 'join_token_invalid';
  return c.joinTokens[h] === null ? null : 'join_token_used';
}

/** Marks `token` (checked with joinRefusal) as spent on `nodeId`. */
export function useJoinToken(c: CommitteeState, token: string, nodeId: string): void {
  c.joinTokens![digest(token)] = nodeId;
}
