/**
 * Proof for the next hop on a multi-hop path that a committee's COMMIT is replicated (docs/protocol/multihop.md,
 * "Committee hops"). The hop after a committee commits on COMMIT, and from then on the payment is new for
 * it and everyone after it. A primary whose enclave is the attacker's could send COMMIT for a phase its
 * backups never got: their replicas still show the payment `signed`, and asked to settle they take the
 * abort row and sign the old state, which races τ on chain. So each replicating backup, once its seal of
 * an update showing the payment committed is durable, signs "committee T, view e, holds payment pid
 * committed"; the signatures travel up with its acknowledgement (as the paid totals of paid-proof.ts do),
 * and the primary attaches one per backup to the COMMIT the seal lets out: one proof per round, whatever
 * the number of payments in it. The next hop commits only when every backup of the committee's current
 * replicating chain, as it verified it itself, signed that very payment in that very view. Why every
 * backup and not m of them: as for paid totals (paid-proof.ts).
 */
import type { PeerRoster } from './roster.ts';
import { DurableStatements, replicatingChain, signStatement, statementSigned } from './backup-statements.ts';

/** One backup's statement that it holds payment `pid` committed, durably. */
export interface CommittedSig {
  pid: string;
  sig: string;
}

/** What a committee's `mh_commit` carries: one signature per replicating backup, in chain order. */
export interface CommittedProof {
  epoch: number;
  sigs: string[];
}

const fields = (treasuryId: string, epoch: number, pid: string) =>
  ['teechain-committee-committed', treasuryId, epoch, pid, 'committed'] as const;

export function signCommitted(treasuryId: string, epoch: number, pid: string, identityKey: Uint8Array): CommittedSig {
  return { pid, sig: signStatement(fields(treasuryId, epoch, pid), identityKey) };
}

/**
 * Why `proof` does not show payment `pid` committed at every replicating backup of the committee `roster`
 * describes (as this side verified and followed it), or null when it does. As in paid-proof.ts, the
 * backups are read from this side's own copy, never from the proof.
 */
export function committedProofProblem(
  roster: PeerRoster,
  pid: string,
  proof: CommittedProof | undefined,
): string | null {
  if (!proof) return 'no proof that the committee holds the commit';
  const { treasuryId, epoch, backups } = replicatingChain(roster);
  if (proof.epoch !== epoch) return `proof of view ${proof.epoch}, not the committee's view ${epoch}`;
  if (!Array.isArray(proof.sigs) || proof.sigs.length !== backups.length)
    return `${proof.sigs?.length ?? 0} statements for ${backups.length} replicating backups`;
  for (const [i, sig] of proof.sigs.entries()) {
    if (typeof sig !== 'string' || !statementSigned(fields(treasuryId, epoch, pid), sig, backups[i]!))
      return `statement ${i} is not signed by backup ${backups[i]!.slice(0, 16)}…`;
  }
  return null;
}

/** Payments kept per backup at the primary: a committed payment leaves the phase within one round trip. */
const KEEP = 256;
/** Longer than any payment id the payer's enclave makes. */
const MAX_PID = 128;

/** A backup's side: the payments each adopted update showed newly committed (DurableStatements). */
export class HeldCommits extends DurableStatements<null, CommittedSig> {
  constructor() {
    super(KEEP);
  }
}

/**
 * The primary's side: each backup's statements, by payment, and the proof once all backups signed one.
 * Statements arrive in acknowledgements whose own signature covers only the sequence number, and the
 * middle backup relays those behind it: so each statement is copied and checked here, once, against the
 * member it is attributed to, and one that fails is dropped. Unchecked, a forged statement arriving after
 * the genuine one replaced it, and every COMMIT of that payment then carried a proof the next hop refuses.
 */
export class CommitStore {
  private readonly byMember = new Map<string, Map<string, string>>();

  take(memberId: string, committed: readonly CommittedSig[], treasuryId: string, epoch: number): void {
    if (!Array.isArray(committed)) return;
    let mine = this.byMember.get(memberId);
    if (!mine) this.byMember.set(memberId, (mine = new Map()));
    // An honest backup never holds more than KEEP (HeldCommits): more is a flood, not worth verifying.
    for (const raw of committed.slice(0, KEEP)) {
      const c = { pid: String(raw?.pid), sig: String(raw?.sig) };
      if (c.pid.length > MAX_PID || mine.get(c.pid) === c.sig) continue;
      if (!statementSigned(fields(treasuryId, epoch, c.pid), c.sig, memberId)) continue;
      mine.delete(c.pid);
      mine.set(c.pid, c.sig);
    }
    if (mine.size > KEEP) this.byMember.set(memberId, new Map([...mine].slice(-KEEP)));
  }

  proof(backups: readonly string[], epoch: number, pid: string): CommittedProof | undefined {
    const sigs: string[] = [];
    for (const b of backups) {
      const sig = this.byMember.get(b)?.get(pid);
      if (!sig) return undefined;
      sigs.push(sig);
    }
    return { epoch, sigs };
  }

  clear(): void {
    this.byMember.clear();
  }
}
