// run-tests lane: in-process
/**
 * The multi-hop rules of a backup (src/enclave/committee/multihop-rules.ts), one attack at a time: a
 * committee intermediary (lone → committee → lone) holds a payment at LOCK, then at SIGN; a backup's
 * replica is checked against the primary's genuine next update, edited as a compromised primary would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { committeeLine } from './helpers/committee-line.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { askToSign, WAIT_MS } from './helpers/two-committees.ts';
import { replicaOf, type ReplicaBody } from '../src/enclave/committee/update.ts';
import { checkUpdate } from '../src/enclave/committee/update-rules.ts';
import { signPaid } from '../src/enclave/protocol/peer-sigs.ts';
import { plan } from '../src/enclave/treasury/multihop/path.ts';
import type { MhLocked, MhSigned } from '../src/enclave/treasury/multihop/records.ts';
import type { TreasuryState } from '../src/enclave/treasury/state.ts';

const { mesh, hops, nodes, channels } = await committeeLine(['lone', 'committee', 'lone']);
const [q0, p, q2] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]];
const b1 = hops[1]!.members[1]!;
const [inCh, outCh] = channels as [string, string];

// LOCK reached the destination; its SIGN is held back: the committee's record is `locked`.
mesh.hold(q2.name, p.name);
const paying = q0.treasury.payMultihop(q2.treasury.nodeId, 1_000, 1);
paying.catch(() => undefined);
const pidOf = () => Object.keys(p.treasury.state.multihop ?? {})[0]!;
await waitFor(
  () => mesh.holding(q2.name, p.name) > 0 && b1.treasury.state.multihop?.[pidOf()]?.phase === 'locked',
  WAIT_MS,
);
const pid = pidOf();

const replica = (): TreasuryState => structuredClone(b1.treasury.state);
const next = (): ReplicaBody => structuredClone(replicaOf(p.treasury.state, p.treasury.state.committee!.seq + 1));
const code = (edit: (b: ReplicaBody) => void, r: TreasuryState = replica()): string | null => {
  const b = next();
  edit(b);
  return checkUpdate(r, b)?.code ?? null;
};
const locked = (b: ReplicaBody) => b.multihop![pid] as MhLocked;

test("locked: the primary's genuine update passes", () => {
  assert.equal(
    code(() => undefined),
    null,
  );
});

test('a channel is locked only by a record of a payment that holds it', () => {
  assert.equal(
    code((b) => {
      delete b.multihop![pid];
    }),
    'lock_without_record',
  );
  assert.equal(
    code((b) => {
      // A record that holds only the incoming channel cannot lock the outgoing one.
      const r = locked(b);
      r.hops = r.hops.slice(0, 1);
    }),
    'lock_without_record',
  );
});

test('a locked channel pays nothing out before its payment is released', () => {
  assert.equal(
    code((b) => {
      b.channels[outCh]!.sent += 5_000n;
    }),
    'locked_totals_changed',
  );
});

test("a record's own hops describe our channels exactly as they are", () => {
  assert.equal(
    code((b) => {
      // Our outgoing channel described with 5,000 sat more on our side: τ would pay us that.
      const hop = locked(b).hops[1]!;
      hop.fromOld += 5_000n;
      hop.toOld -= 5_000n;
    }),
    'multihop_changed',
  );
  assert.equal(
    code((b) => {
      const hop = locked(b).hops[0]!;
      hop.fromOld -= 5_000n;
      hop.toOld += 5_000n;
    }),
    'multihop_changed',
  );
});

test('a record this member sees for the first time must describe our channels as they are', () => {
  // The replica from before the lock: neither the record nor the locks.
  const before = replica();
  delete before.multihop![pid];
  for (const c of [inCh, outCh]) delete before.channels[c]!.lockedBy;
  assert.equal(
    code(() => undefined, before),
    null,
  );
  assert.equal(
    code((b) => {
      const hop = locked(b).hops[1]!;
      hop.fromOld -= 5_000n; // 5,000 sat of ours handed to the next hop in τ
      hop.toOld += 5_000n;
    }, before),
    'multihop_changed',
  );
});

test('a record first seen in the update that also shows a credit made after its lock passes, but no lower than this member held', () => {
  // The replica from before the lock; the update shows the lock together with a payment the next hop made
  // before it saw the lock (one update covers a whole seal, and a member catching up gets many at once).
  const before = replica();
  delete before.multihop![pid];
  for (const c of [inCh, outCh]) delete before.channels[c]!.lockedBy;
  const credit = (b: ReplicaBody) => {
    const ch = b.channels[outCh]!;
    ch.received += 300n;
    ch.peerPaid = { total: ch.received, sig: signPaid(q2.treasury.state.identityKey, outCh, ch.received) };
  };
  assert.equal(code(credit, before), null, 'the record describes the channel as it was at the lock');
  // The same credit already in this member's replica: the description is of a state it never held.
  const had = structuredClone(before);
  had.channels[outCh]!.received += 300n;
  had.channels[outCh]!.peerPaid = {
    total: had.channels[outCh]!.received,
    sig: signPaid(q2.treasury.state.identityKey, outCh, had.channels[outCh]!.received),
  };
  assert.equal(code(credit, had), 'multihop_changed');
  // More taken off our side than was credited since.
  assert.equal(
    code((b) => {
      credit(b);
      const hop = locked(b).hops[1]!;
      hop.fromOld -= 1n;
      hop.toOld += 1n;
    }, before),
    'multihop_changed',
  );
});

test("a record's route and amounts never change, and its phase only moves forward", () => {
  assert.equal(
    code((b) => {
      locked(b).amounts = [2_000n, 2_000n];
      locked(b).hops.forEach((h) => (h.amount = 2_000n));
    }),
    'multihop_changed',
  );
  const aborted = replica();
  aborted.multihop![pid] = {
    ...(aborted.multihop![pid] as MhLocked),
    phase: 'aborted',
    code: 'x',
    txid: null,
    resolvedAt: 1,
  } as never;
  for (const c of [inCh, outCh]) delete aborted.channels[c]!.lockedBy;
  assert.equal(
    code(() => undefined, aborted),
    'multihop_regressed',
  );
});

test('an aborted record stays aborted: an update repeating it (a full snapshot after a restart), or changing what it waits for, passes', () => {
  const abortedRec = (waitsOn: string[]) =>
    ({
      ...(replica().multihop![pid] as MhLocked),
      phase: 'aborted',
      code: 'x',
      txid: null,
      resolvedAt: 1,
      waitsOn,
    }) as never;
  const held = replica();
  held.multihop![pid] = abortedRec([inCh, outCh]);
  for (const c of [inCh, outCh]) delete held.channels[c]!.lockedBy;
  const asAborted = (waitsOn: string[]) => (b: ReplicaBody) => {
    b.multihop![pid] = abortedRec(waitsOn);
    for (const c of [inCh, outCh]) delete b.channels[c]!.lockedBy;
  };
  // Refused before: every full snapshot that carried an aborted record the backup held froze the primary.
  assert.equal(code(asAborted([inCh, outCh]), held), null, 'the same aborted record again');
  assert.equal(code(asAborted([outCh]), held), null, 'a neighbour moved on: it waits for one channel less');
});

test('members sign τ only at the signing step, and only the τ their own replica rebuilds', async () => {
  const [, m1, m2] = hops[1]!.members as [typeof p, typeof p, typeof p];
  const someTxid = 'ab'.repeat(32);
  // At LOCK nobody has asked for τ yet: a primary asking for it (any txid) is refused.
  assert.deepEqual(await askToSign(p, [m1, m2], 'tau', pid, 1, someTxid), {
    [m1.name]: 'state_mismatch',
    [m2.name]: 'state_mismatch',
  });
  assert.equal(m1.treasury.state.committee!.signed[`tau:${pid}`], undefined, 'nothing recorded as signed');
});

test('signed: τ is the one the hops determine, and complete once committed', async () => {
  // Let SIGN through to the committee, and hold its SIGN to the payer: the record is `signed`.
  mesh.hold(p.name, q0.name);
  mesh.deliver(q2.name, p.name);
  await waitFor(
    () => mesh.holding(p.name, q0.name) > 0 && b1.treasury.state.multihop?.[pid]?.phase === 'signed',
    WAIT_MS,
  );
  const signed = (b: ReplicaBody) => b.multihop![pid] as MhSigned;
  assert.equal(
    code(() => undefined),
    null,
  );
  // A τ that pays the path differently (a higher fee, taken from the payer's output): not this record's.
  const other = plan(signed(next()).hops, signed(next()).feeRate + 5);
  assert.equal(
    code((b) => {
      signed(b).tx = other.spend.tx.toHex();
      signed(b).txid = other.txid;
    }),
    'tau_mismatch',
  );
  // Committed with τ as it stands (the payer's inputs unsigned): m members could then hand out a τ that cannot confirm.
  assert.equal(
    code((b) => {
      b.multihop![pid] = { ...signed(b), phase: 'committed', tauOut: false } as never;
    }),
    'tau_mismatch',
  );
  // Once signed, a member gives its part again for the same τ only.
  const [, m1] = hops[1]!.members as [typeof p, typeof p];
  const want = m1.treasury.state.committee!.signed[`tau:${pid}`] ? 'already_signed' : 'state_mismatch';
  assert.deepEqual(await askToSign(p, [m1], 'tau', pid, 1, other.txid), { [m1.name]: want });
  mesh.deliver(p.name, q0.name);
  await paying;
});
