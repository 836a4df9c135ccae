// run-tests lane: in-process
/**
 * Adding a member refused (docs/protocol/committees.md, "Adding a member"), at the protocol level, for the
 * cases only the enclave decides: in-process committees of enclave cores with real signatures. A primary
 * whose committee is not formed refuses (`committee_incomplete`) even if its host asks; an addition that
 * no quorum of the current members votes for in time is refused (`roster_change_refused`), and a vote
 * arriving after that answer adopts nothing, while the next addition, once the members are back, is
 * proposed and voted in under the next epoch (not refused as busy).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TreasuryError } from '../src/enclave/treasury/errors.ts';
import { Mesh, WAIT_MS, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';

const code = (e: unknown) => (e as TreasuryError).code;

/** What an addition must not change on `n`: its roster and views, the admission, the quotes it keeps. */
function rosterOf(n: MeshNode): string {
  const { members, size, epoch, view, rosterViews, admission, quotes, shareOrder } = n.treasury.state.committee!;
  return JSON.stringify({ members, size, epoch, view, rosterViews, admission, quotes, shareOrder });
}

test('a primary whose committee is not formed refuses an addition its host asks for, and changes nothing', async () => {
  const mesh = new Mesh({ promotionTimeoutMs: 0 });
  const p = await mesh.add('p', { role: 'primary', size: 3, address: 'p:1' });
  const b1 = await mesh.add('b1', { role: 'backup' });
  await mesh.link('b1', 'p');
  b1.treasury.joinCommittee(p.treasury.nodeId, 'b1:1', p.joinTokens[0]);
  await waitFor(() => b1.treasury.info().committee!.index === 1, WAIT_MS);
  const n = await mesh.add('n', { role: 'backup' });
  await mesh.link('n', 'p');
  n.treasury.joinCommittee(p.treasury.nodeId, 'n:1');
  await waitFor(() => n.events.some((e) => e.type === 'committee_join_refused'), WAIT_MS);
  const before = rosterOf(p);
  await assert.rejects(p.treasury.addMember(n.treasury.nodeId, 'n:1'), (e) => code(e) === 'committee_incomplete');
  assert.equal(rosterOf(p), before);
  assert.equal(p.treasury.info().committee!.formed, false);
  // The unused join token still admits the last backup: the committee forms as it would have.
  n.treasury.joinCommittee(p.treasury.nodeId, 'n:1', p.joinTokens[1]);
  await waitFor(() => p.treasury.info().committee!.formed, WAIT_MS);
  assert.equal(n.treasury.info().committee!.index, 2);
});

test('an addition no quorum votes for in time is refused, a late vote adopts nothing, and the next one is voted in', async () => {
  // A promotion timeout above the reply timeout: the proposal outlives the primary's wait for votes.
  const mesh = new Mesh({ replyTimeoutMs: 1_500, promotionTimeoutMs: 8_000 });
  const [p, b1, b2] = (await mesh.committee(['p', 'b1', 'b2'], 2)) as [MeshNode, MeshNode, MeshNode];
  const n = await mesh.add('n', { role: 'backup' });
  for (const m of ['p', 'b1', 'b2']) await mesh.link('n', m);
  n.treasury.joinCommittee(p.treasury.nodeId, 'n:1');
  await waitFor(() => n.events.some((e) => e.type === 'committee_join_refused'), WAIT_MS);

  // b2 is down and b1's answers are held back by its host: p alone votes, q = 2 are needed.
  mesh.crash('b2');
  await waitFor(() => !p.treasury.info().committee!.members.find((m) => m.node_id === b2.treasury.nodeId)!.connected);
  mesh.hold('b1', 'p');
  const before = [p, b1].map(rosterOf);
  await assert.rejects(p.treasury.addMember(n.treasury.nodeId, 'n:1'), (e) => code(e) === 'roster_change_refused');
  assert.equal(b1.treasury.state.committee!.vote?.epoch, 1, 'b1 voted, but its vote did not arrive in time');
  // b1's vote arrives after the refusal was answered: the view it completes is not adopted.
  assert.ok(mesh.holding('b1', 'p') > 0);
  mesh.deliver('b1', 'p');
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(p.treasury.state.committee!.epoch ?? 0, 0, 'no view adopted after the refusal');
  assert.equal(rosterOf(p), before[0], "the primary's roster is unchanged, the node's quote gone");
  void p.treasury.commit().catch(() => undefined); // b2 is down: sealed and sent, not acknowledged; the backups' replicas follow with the primary's next update
  await waitFor(() => rosterOf(b1) === before[1], WAIT_MS);
  assert.equal(n.treasury.info().committee!.size, 0, 'the node is no member');

  // With b2 back, the same addition is proposed again (the refused epoch's votes are spent) and voted in.
  await mesh.restart('b2', ['p', 'b1', 'n']);
  await waitFor(() => p.treasury.info().committee!.members.every((m) => m.connected), WAIT_MS);
  const res = await p.treasury.addMember(n.treasury.nodeId, 'n:1');
  assert.equal(res.epoch, 2);
  assert.deepEqual(
    res.members,
    [p, b1, b2, n].map((x) => x.treasury.nodeId),
  );
  await waitFor(() => n.treasury.info().committee!.epoch === 2 && n.treasury.info().committee!.index === 3, WAIT_MS);
});
