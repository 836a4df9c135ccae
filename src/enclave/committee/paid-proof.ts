/**
 * Proof for a committee's channel peer that a payment is replicated (docs/threat-model.md, "One committee
 * member"). A peer that credited a payment on the primary's word alone could be made to count one that no
 * backup holds, by a primary whose enclave is the attacker's; the honest members would then settle
 * without it. So each replicating backup, once its seal of an update is durable, signs for every channel
 * whose paid total the update moved "I hold, durably, a state of committee T, view e, in which channel ch
 * has paid `sent` in all"; the signatures travel up with its acknowledgement, and the primary attaches one
 * per backup to the `pay` (or `sync`) message the seal lets out. The peer credits a total only when every
 * backup of the committee's current replicating chain, as the peer itself verified it, has signed a total
 * at least that high in that very view.
 *
 * Why every backup and not m of them: any m members may settle, each from its own replica. With the
 * proof, the members that may lack the payment are those outside the proof (none of the chain) and the
 * compromised ones inside it, so fewer than m of the chain can sign an older state as long as fewer than m
 * members are compromised. With only k < n signers, n − k + 1 members could lack it, which reaches m for a
 * single compromised member whenever k ≤ n − m + 1 (for 2-of-3: any k below 3). Members standing by
 * outside the chain hold an older state whatever the peer checks: see the threat model.
 */
import type { PeerRoster } from './roster.ts';
import { DurableStatements, replicatingChain, signStatement, SIG_HEX, statementSigned } from './backup-statements.ts';

/** One backup's statement about one channel. */
export interface HeldSig {
  ch: string;
  /** The number of the update this member had made durable when it signed. */
  seq: number;
  sent: string;
  sig: string;
}

/** What a `pay` or `sync` entry carries: one statement per replicating backup, in chain order. */
export interface PaidProof {
  epoch: number;
  held: Array<Omit<HeldSig, 'ch'>>;
}

const fields = (treasuryId: string, epoch: number, seq: number, ch: string, sent: string) =>
  ['teechain-committee-held', treasuryId, epoch, seq, ch, sent] as const;

export function signHeld(
  treasuryId: string,
  epoch: number,
  seq: number,
  ch: string,
  sent: bigint,
  identityKey: Uint8Array,
): HeldSig {
  const s = sent.toString();
  return {
    ch,
    seq,
    sent: s,
    sig: signStatement(fields(treasuryId, epoch, seq, ch, s), identityKey),
  };
}

const SAT = /^(0|[1-9][0-9]{0,18})$/;

/**
 * Why `proof` does not show `total` on channel `ch` replicated by the committee `roster` describes (the
 * roster this side verified at open, and the latest view it followed), or null when it does. The chain's
 * backups are read from this side's own copy, never from the proof: a signature of anyone else (a
 * stranger, a removed member, the primary itself in a backup's place) counts for nothing.
 */
export function paidProofProblem(
  roster: PeerRoster,
  ch: string,
  total: bigint,
  proof: PaidProof | undefined,
): string | null {
  if (!proof) return 'no proof of replication';
  const { treasuryId, epoch, backups } = replicatingChain(roster);
  if (proof.epoch !== epoch) return `proof of view ${proof.epoch}, not the committee's view ${epoch}`;
  if (!Array.isArray(proof.held) || proof.held.length !== backups.length)
    return `${proof.held?.length ?? 0} statements for ${backups.length} replicating backups`;
  for (const [i, h] of proof.held.entries()) {
    if (!Number.isSafeInteger(h.seq) || !SAT.test(h.sent) || !SIG_HEX.test(h.sig)) return `statement ${i} is malformed`;
    if (BigInt(h.sent) < total) return `backup ${i} holds ${h.sent}, below ${total}`;
    if (!heldSigned(treasuryId, epoch, ch, h, backups[i]!))
      return `statement ${i} is not signed by backup ${backups[i]!.slice(0, 16)}…`;
  }
  return null;
}

/** Whether `h` is `member`'s signature over its statement on channel `ch` of committee `treasuryId`, view `epoch`. */
function heldSigned(treasuryId: string, epoch: number, ch: string, h: Omit<HeldSig, 'ch'>, member: string): boolean {
  return statementSigned(fields(treasuryId, epoch, h.seq, ch, h.sent), h.sig, member);
}

/**
 * A backup's side: the paid totals of the channels each adopted update moved, signed once the seal that
 * covers them is durable (with the acknowledgement of that update), and the latest signed for each
 * channel, re-sent whole when the session to its predecessor or the primary comes back.
 */
export class HeldTotals extends DurableStatements<bigint, HeldSig> {}

/** The primary's side: each backup's highest signed paid total per channel, by whichever path it came. */
export class HeldStore {
  private readonly byMember = new Map<string, Map<string, HeldSig>>();

  /**
   * Statements that came with a backup's verified acknowledgement. Each is checked here before it is kept,
   * not only by the peer: a forged one would otherwise stand as the channel's highest for good, and every
   * later proof of that channel would carry it (a compromised member stalling the channel for ever).
   */
  take(memberId: string, held: readonly HeldSig[], treasuryId: string, epoch: number): void {
    let mine = this.byMember.get(memberId);
    if (!mine) this.byMember.set(memberId, (mine = new Map()));
    for (const raw of held) {
      const h = { ch: String(raw.ch), seq: Number(raw.seq), sent: String(raw.sent), sig: String(raw.sig) };
      if (!Number.isSafeInteger(h.seq) || !SAT.test(h.sent) || !SIG_HEX.test(h.sig)) continue;
      const had = mine.get(h.ch);
      if (had && BigInt(h.sent) <= BigInt(had.sent)) continue;
      if (heldSigned(treasuryId, epoch, h.ch, h, memberId)) mine.set(h.ch, h);
    }
  }

  /** The proof that every one of `backups` holds at least `total` on `ch`, or undefined while one does not. */
  proof(backups: readonly string[], epoch: number, ch: string, total: bigint): PaidProof | undefined {
    const held: PaidProof['held'] = [];
    for (const b of backups) {
      const h = this.byMember.get(b)?.get(ch);
      if (!h || BigInt(h.sent) < total) return undefined;
      held.push({ seq: h.seq, sent: h.sent, sig: h.sig });
    }
    return { epoch, held };
  }

  clear(): void {
    this.byMember.clear();
  }
}
