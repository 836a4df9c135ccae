// run-tests lane: in-process
/**
 * Who may join a committee (docs/protocol/committees.md): only a backup holding one of the one-time join
 * tokens the primary's enclave issued when it was created, handed over by the operator. A stranger with
 * a perfectly valid attested session (same code, same attestation service) must not take a member's place.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Mesh } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';

/** The join's outcome as the joiner sees it: admitted (a place in the roster) or refused (with a code). */
function outcome(mesh: Mesh, primary: string, joiner: string): 'admitted' | string | null {
  const p = mesh.get(primary).treasury;
  const j = mesh.get(joiner);
  if (p.info().committee!.members.some((m) => m.node_id === j.treasury.nodeId)) return 'admitted';
  const refused = j.events.find((e) => e.type === 'committee_join_refused') as { code: string } | undefined;
  return refused ? refused.code : null;
}

test('a stranger with a valid attested session but no join token cannot join: refused with its code, roster unchanged', async () => {
  const mesh = new Mesh();
  const p = await mesh.add('p', { role: 'primary', size: 3, address: 'p:1' });
  const stranger = await mesh.add('s', { role: 'backup' });
  await mesh.link('s', 'p');
  const before = JSON.stringify(p.treasury.state.committee);
  const seals = p.seals;
  stranger.treasury.joinCommittee(p.treasury.nodeId, 's:1');
  await waitFor(() => outcome(mesh, 'p', 's') !== null);
  assert.equal(outcome(mesh, 'p', 's'), 'join_token_required');
  assert.deepEqual(
    p.treasury.info().committee!.members.map((m) => m.node_id),
    [p.treasury.nodeId],
  );
  assert.equal(JSON.stringify(p.treasury.state.committee), before, 'the refusal changed nothing');
  assert.equal(p.seals, seals, 'the refusal sealed nothing');
});

test('a wrong token and a reused token are refused with their codes; the right token admits, once', async () => {
  const mesh = new Mesh();
  const p = await mesh.add('p', { role: 'primary', size: 3, address: 'p:1' });
  assert.equal(p.joinTokens.length, 2, 'one token per backup');
  assert.ok(p.joinTokens.every((t) => /^[0-9a-f]{64}$/.test(t)) && p.joinTokens[0] !== p.joinTokens[1]);
  // Only hashes are sealed: no token appears in the primary's state.
  const sealed = new TextDecoder().decode(p.sealed!);
  for (const t of p.joinTokens) assert.ok(!sealed.includes(t), 'a token in clear in the sealed state');
  for (const name of ['b1', 'wrong', 'reuse', 'b2', 'late']) await mesh.add(name, { role: 'backup' });
  for (const name of ['b1', 'wrong', 'reuse', 'b2', 'late']) await mesh.link(name, 'p');
  const join = async (name: string, token?: string) => {
    mesh.get(name).treasury.joinCommittee(p.treasury.nodeId, `${name}:1`, token);
    await waitFor(() => outcome(mesh, 'p', name) !== null);
    return outcome(mesh, 'p', name);
  };
  const roster = () => p.treasury.info().committee!.members.map((m) => m.node_id);

  assert.equal(await join('wrong', 'ab'.repeat(32)), 'join_token_invalid');
  assert.equal(await join('b1', p.joinTokens[0]), 'admitted');
  assert.deepEqual(roster(), [p.treasury.nodeId, mesh.get('b1').treasury.nodeId]);
  // The newcomer's attestation quote arrives and is sealed on its own; count seals only after it.
  await waitFor(() => p.treasury.state.committee!.quotes?.[mesh.get('b1').treasury.nodeId] !== undefined);
  await p.treasury.commit();
  const seals = p.seals;
  assert.equal(await join('reuse', p.joinTokens[0]), 'join_token_used');
  assert.equal(p.seals, seals, 'the refusal sealed nothing');
  assert.equal(await join('b2', p.joinTokens[1]), 'admitted');
  assert.deepEqual(roster(), [p.treasury.nodeId, mesh.get('b1').treasury.nodeId, mesh.get('b2').treasury.nodeId]);
  await waitFor(() => p.treasury.info().committee!.formed);
  assert.equal(await join('late', p.joinTokens[1]), 'committee_full');
  assert.equal(roster().length, 3);
});

test('a used token stays used across a primary restart; a known member re-joins after its restart without a token', async () => {
  const mesh = new Mesh();
  const [p, b1, b2] = await mesh.committee(['p', 'b1', 'b2']);
  // The primary crashes after admitting both backups and comes back from its sealed state.
  mesh.crash('p');
  await mesh.restart('p', []);
  // What it sealed: both tokens spent, each on the member it admitted.
  assert.deepEqual(
    Object.values(p!.treasury.state.committee!.joinTokens!).sort(),
    [b1!.treasury.nodeId, b2!.treasury.nodeId].sort(),
  );
  const intruder = await mesh.add('x', { role: 'backup' });
  await mesh.link('x', 'p');
  intruder.treasury.joinCommittee(p!.treasury.nodeId, 'x:1', p!.joinTokens[1]);
  await waitFor(() => outcome(mesh, 'p', 'x') !== null);
  assert.equal(outcome(mesh, 'p', 'x'), 'committee_full');

  // b1 crashes and restarts; it re-joins without any token, as its host does on every start.
  mesh.crash('b1');
  await mesh.restart('b1', ['p']);
  await mesh.link('b2', 'b1');
  b1!.events.length = 0;
  b1!.treasury.joinCommittee(p!.treasury.nodeId, 'b1:1');
  await mesh.link('b2', 'p');
  // Still a member in full: it makes and keeps its key of a new deposit.
  const id = await mesh.deposit('p', 10_000n);
  await waitFor(() => b1!.treasury.deposits().some((d) => d.deposit_id === id && d.status === 'free'));
  assert.ok(b1!.treasury.state.committee!.memberKeys[id]);
  assert.equal(b1!.events.filter((e) => e.type === 'committee_join_refused').length, 0);
  assert.deepEqual(
    p!.treasury.info().committee!.members.map((m) => m.node_id),
    [p, b1, b2].map((n) => n!.treasury.nodeId),
  );
});

test('a token is refused by another primary: tokens admit only to the committee that issued them', async () => {
  const mesh = new Mesh();
  const p = await mesh.add('p', { role: 'primary', size: 2, address: 'p:1' });
  const q = await mesh.add('q', { role: 'primary', size: 2, address: 'q:1' });
  await mesh.add('b', { role: 'backup' });
  await mesh.link('b', 'q');
  mesh.get('b').treasury.joinCommittee(q.treasury.nodeId, 'b:1', p.joinTokens[0]);
  await waitFor(() => outcome(mesh, 'q', 'b') !== null);
  assert.equal(outcome(mesh, 'q', 'b'), 'join_token_invalid');
  assert.equal(q.treasury.info().committee!.members.length, 1);
});
