/**
 * What paid-proof.ts and committed-proof.ts share: a replicating backup's signed statement that it holds
 * something durably ("channel ch has paid `sent`", "payment pid is committed"), made once the seal that
 * covers it is durable, and checked by a neighbour against the committee's chain as the neighbour itself
 * verified and followed it, never against names the proof carries.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '../../../enclave-sim/encoding.ts';
import { signDigestFast } from '../../crypto/secp256k1-wasm.ts';
import { verifyMessageSha256 } from '../../crypto/secp256k1-openssl.ts';
import type { PeerRoster } from './roster.ts';

export const SIG_HEX = /^[0-9a-f]{128}$/;

/** The statement's bytes: a domain tag, then its fields, NUL-separated (no field holds a NUL). */
function preimage(fields: ReadonlyArray<string | number>): Uint8Array {
  return new TextEncoder().encode(fields.join('\0'));
}

export function signStatement(fields: ReadonlyArray<string | number>, identityKey: Uint8Array): string {
  return bytesToHex(signDigestFast(sha256(preimage(fields)), identityKey));
}

/** Whether `sig` (hex) is `member`'s signature of the statement `fields`. Never throws. */
export function statementSigned(fields: ReadonlyArray<string | number>, sig: string, member: string): boolean {
  try {
    return SIG_HEX.test(sig) && verifyMessageSha256(hexToBytes(sig), preimage(fields), hexToBytes(member));
  } catch {
    return false;
  }
}

/**
 * The committee's replicating chain as this side holds it: the roster it verified and the latest view it
 * followed. The backups are every chain member after the primary, in order; members standing by outside
 * the chain sign nothing (see the threat model).
 */
export function replicatingChain(roster: PeerRoster): { treasuryId: string; epoch: number; backups: string[] } {
  const view = roster.view;
  const members = view?.members ?? roster.members;
  return {
    treasuryId: roster.members[0]!,
    epoch: view?.epoch ?? 0,
    backups: members.slice(1, Math.min(view?.chain ?? members.length, members.length)),
  };
}

/**
 * A backup's side: what each adopted update made newly true, by key (a channel, a payment), signed only
 * once every update up to it is durable (never ahead of the seal), and the latest statement per key, sent
 * again whole when a session comes back. `keep` bounds the latest kept.
 */
export class DurableStatements<V, S> {
  private pending: Array<{ seq: number; key: string; value: V }> = [];
  private latest = new Map<string, S>();
  /** Statements signed ahead for `seq` while its seal was under way, kept here (never sent) until it is durable. */
  private presigned?: { seq: number; byKey: Map<string, { value: V; s: S }> };

  constructor(private readonly keep = Infinity) {}

  /** Update `seq` was adopted (in memory, not yet durable) and made these true. */
  adopted(seq: number, facts: ReadonlyArray<{ key: string; value: V }>): void {
    for (const f of facts) this.pending.push({ seq, ...f });
  }

  private dueUpTo(seq: number): Map<string, V> {
    const due = new Map<string, V>();
    for (const p of this.pending) if (p.seq <= seq) due.set(p.key, p.value);
    return due;
  }

  /**
   * Signs now what `signUpTo(seq)` will give out, while the seal of `seq` is under way and the thread would
   * wait anyway: the acknowledgement then goes out as soon as the seal is durable, without a signature per
   * statement in between. Nothing signed here leaves before `signUpTo` (after the seal): `all()` never has it.
   */
  presign(seq: number, sign: (key: string, value: V) => S): void {
    const byKey = new Map<string, { value: V; s: S }>();
    for (const [key, value] of this.dueUpTo(seq)) byKey.set(key, { value, s: sign(key, value) });
    this.presigned = { seq, byKey };
  }

  /** The statements due now that every update up to `seq` is durable: one per key, its newest value. */
  signUpTo(seq: number, sign: (key: string, value: V) => S): S[] {
    const due = this.dueUpTo(seq);
    this.pending = this.pending.filter((p) => p.seq > seq);
    // Signed ahead for this very number (the seal covered no later update): the same statements.
    const ahead = this.presigned?.seq === seq ? this.presigned.byKey : undefined;
    this.presigned = undefined;
    const out: S[] = [];
    for (const [key, value] of due) {
      const early = ahead?.get(key);
      const s = early && early.value === value ? early.s : sign(key, value);
      this.latest.delete(key);
      this.latest.set(key, s);
      out.push(s);
    }
    if (this.latest.size > this.keep) this.latest = new Map([...this.latest].slice(-this.keep));
    return out;
  }

  all(): S[] {
    return [...this.latest.values()];
  }

  /** A new view: statements are signed per epoch, so the old ones no longer count. */
  clear(): void {
    this.pending = [];
    this.presigned = undefined;
    this.latest.clear();
  }
}
