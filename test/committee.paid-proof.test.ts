// run-tests lane: in-process
/**
 * paid-proof.ts, the check a committee's channel peer makes before it credits a paid total: every
 * replicating backup of the committee's current view, as the peer itself verified it, signed a total at
 * least that high on this very channel in that very view. Each kind of statement that must not count is
 * tried alone: a stranger's, a removed member's, the primary's own in a backup's place, an old view's,
 * another channel's, another committee's, a lower total, a total relabelled, one missing, one twice.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { bytesToHex } from '../enclave-sim/encoding.ts';
import { paidProofProblem, signHeld, type PaidProof } from '../src/enclave/committee/paid-proof.ts';
import type { PeerRoster } from '../src/enclave/committee/roster.ts';
import type { ViewCert } from '../src/enclave/committee/view.ts';
import { publicKeyOf, randomPrivateKey } from '../src/crypto/secp256k1.ts';

function member() {
  const key = randomPrivateKey();
  return { key, id: bytesToHex(publicKeyOf(key)) };
}

const [p, b1, b2, b3, stranger] = [member(), member(), member(), member(), member()] as const;
const ch = bytesToHex(randomBytes(32));
const otherCh = bytesToHex(randomBytes(32));

/** The roster the peer verified at open (p founding primary), optionally with the latest view it followed. */
function roster(view?: Omit<ViewCert, 'treasury_id' | 'votes'>): PeerRoster {
  return {
    threshold: 2,
    members: [p.id, b1.id, b2.id],
    proof: [],
    ...(view ? { view: { treasury_id: p.id, votes: [], ...view } } : {}),
  };
}

function proofBy(
  signers: Array<{ key: Uint8Array }>,
  sent: bigint,
  opts: { epoch?: number; signedEpoch?: number; channel?: string; treasury?: string } = {},
): PaidProof {
  const epoch = opts.epoch ?? 0;
  return {
    epoch,
    held: signers.map((s, i) => {
      const h = signHeld(opts.treasury ?? p.id, opts.signedEpoch ?? epoch, 40 + i, opts.channel ?? ch, sent, s.key);
      return { seq: h.seq, sent: h.sent, sig: h.sig };
    }),
  };
}

test('every replicating backup signed a total at least the credited one: proven', () => {
  const r = roster();
  assert.equal(paidProofProblem(r, ch, 5_000n, proofBy([b1, b2], 5_000n)), null);
  assert.equal(paidProofProblem(r, ch, 4_000n, proofBy([b1, b2], 5_000n)), null, 'the backups hold more');
  // After a promotion (b1 primary, p standing by at the tail, outside the replicating chain of 2): b2 alone.
  const promoted = roster({ epoch: 3, members: [b1.id, b2.id, p.id], chain: 2 });
  assert.equal(paidProofProblem(promoted, ch, 5_000n, proofBy([b2], 5_000n, { epoch: 3 })), null);
});

test('no proof, a missing statement, one backup twice: refused', () => {
  const r = roster();
  assert.match(paidProofProblem(r, ch, 1n, undefined)!, /no proof/);
  assert.match(paidProofProblem(r, ch, 1n, proofBy([b1], 1n))!, /1 statements for 2/);
  assert.match(paidProofProblem(r, ch, 1n, proofBy([b1, b1], 1n))!, /not signed by backup/);
  assert.match(paidProofProblem(r, ch, 1n, proofBy([b2, b1], 1n))!, /not signed by backup/, 'out of chain order');
});

test("a stranger's signature, or the primary's own in a backup's place: refused", () => {
  const r = roster();
  assert.match(paidProofProblem(r, ch, 1_000n, proofBy([b1, stranger], 1_000n))!, /statement 1 is not signed/);
  assert.match(paidProofProblem(r, ch, 1_000n, proofBy([p, b2], 1_000n))!, /statement 0 is not signed/);
});

test("a removed member's signature: refused once the peer followed the roster change", () => {
  // Roster change to view 2: b1 removed, b3 added at the tail.
  const changed = roster({ epoch: 2, members: [p.id, b2.id, b3.id], chain: 3 });
  assert.match(paidProofProblem(changed, ch, 1_000n, proofBy([b1, b2], 1_000n, { epoch: 2 }))!, /not signed/);
  assert.match(paidProofProblem(changed, ch, 1_000n, proofBy([b2, b1], 1_000n, { epoch: 2 }))!, /not signed/);
  assert.equal(paidProofProblem(changed, ch, 1_000n, proofBy([b2, b3], 1_000n, { epoch: 2 })), null);
});

test("an old view's statements: refused, whether labelled as old or relabelled as current", () => {
  const r = roster({ epoch: 1, members: [p.id, b1.id, b2.id], chain: 3 });
  assert.match(paidProofProblem(r, ch, 1_000n, proofBy([b1, b2], 1_000n, { epoch: 0 }))!, /view 0/);
  assert.match(paidProofProblem(r, ch, 1_000n, proofBy([b1, b2], 1_000n, { epoch: 1, signedEpoch: 0 }))!, /not signed/);
  // And a newer view than the peer followed is not taken on the primary's word either.
  assert.match(paidProofProblem(roster(), ch, 1_000n, proofBy([b1, b2], 1_000n, { epoch: 1 }))!, /view 1/);
});

test("another channel's or another committee's statements, a lower total, a total relabelled: refused", () => {
  const r = roster();
  assert.match(paidProofProblem(r, ch, 1_000n, proofBy([b1, b2], 1_000n, { channel: otherCh }))!, /not signed/);
  assert.match(paidProofProblem(r, ch, 1_000n, proofBy([b1, b2], 1_000n, { treasury: stranger.id }))!, /not signed/);
  assert.match(paidProofProblem(r, ch, 1_000n, proofBy([b1, b2], 999n))!, /holds 999, below 1000/);
  const relabelled = proofBy([b1, b2], 999n);
  relabelled.held = relabelled.held.map((h) => ({ ...h, sent: '1000' }));
  assert.match(paidProofProblem(r, ch, 1_000n, relabelled)!, /not signed/);
  const reseq = proofBy([b1, b2], 1_000n);
  reseq.held[0] = { ...reseq.held[0]!, seq: reseq.held[0]!.seq + 1 };
  assert.match(paidProofProblem(r, ch, 1_000n, reseq)!, /statement 0 is not signed/);
});
