/**
 * A member's REST URL in the committee roster: where clients reach its host's API (a `not_primary` answer
 * names the primary's). The host supplies it, so it is a hint, never attested: nothing in the enclave
 * acts on it. What the enclave does guarantee is that each member's URL is one that member's own enclave
 * signed, so a compromised primary cannot point clients that follow a backup's answer at a host of its
 * choosing (after a promotion, the backups name the new primary by the URL in their replicas).
 * Domain-separated from every other signature made with the identity key.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '../../../enclave-sim/encoding.ts';
import { signDigestFast } from '../../crypto/secp256k1-wasm.ts';
import { verifyMessageSha256 } from '../../crypto/secp256k1-openssl.ts';
import type { CommitteeMember } from '../treasury/state.ts';

export const REST_URL_MAX = 256;

const preimage = (url: string) => new TextEncoder().encode(`teechain-member-rest-url\0${url}`);

/** An absolute http(s) URL of bounded length, without credentials (it is shown to every client). */
export function isRestUrl(url: unknown): url is string {
  if (typeof url !== 'string' || url.length > REST_URL_MAX) return false;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  return (u.protocol === 'http:' || u.protocol === 'https:') && u.username === '' && u.password === '';
}

/** This member's signature of "clients reach my host at `url`". */
export function signRestUrl(identityKey: Uint8Array, url: string): string {
  return bytesToHex(signDigestFast(sha256(preimage(url)), identityKey));
}

export function verifyRestUrl(nodeId: string, url: string, sig: unknown): boolean {
  if (typeof sig !== 'string' || !/^[0-9a-f]{128}$/.test(sig) || !/^[0-9a-f]{66}$/.test(nodeId)) return false;
  return verifyMessageSha256(hexToBytes(sig), preimage(url), hexToBytes(nodeId));
}

/**
 * Update rule: why `members` (an update's roster) may not follow `known` (the replica's), or null. Every
 * listed URL must be well formed, and one that is new or changed must carry its member's signature; an
 * unchanged one was checked when adopted. A member may list none (states sealed before URLs existed).
 */
export function restUrlFault(known: CommitteeMember[], members: CommitteeMember[]): string | null {
  for (const m of members as unknown[] as Array<CommitteeMember | null>) {
    if (typeof m !== 'object' || m === null) return 'a member entry is not an object';
    if (m.rest_url === undefined) continue;
    if (!isRestUrl(m.rest_url)) return `member ${String(m.node_id).slice(0, 16)}…: its REST URL is not an http(s) URL`;
    const was = known.find((k) => k.node_id === m.node_id);
    if (was?.rest_url === m.rest_url && was.rest_url_sig === m.rest_url_sig) continue;
    if (!verifyRestUrl(m.node_id, m.rest_url, m.rest_url_sig))
      return `member ${m.node_id.slice(0, 16)}…: its REST URL does not carry its own signature`;
  }
  return null;
}
