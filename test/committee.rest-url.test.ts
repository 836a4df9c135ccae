// run-tests lane: in-process
/**
 * Members' REST URLs in the committee roster (src/enclave/committee/rest-url.ts), in a real in-process
 * committee: each member's URL is signed by that member and replicated to all; a member that comes back
 * elsewhere is listed at its new URL; a primary that rewrites a backup's URL (so that clients following a
 * `not_primary` answer go to a host of its choosing) or lists a URL that is no http(s) URL is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Mesh, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { hexToBytes } from '../enclave-sim/encoding.ts';
import { replicaOf, type ReplicaBody } from '../src/enclave/committee/update.ts';
import { checkUpdate } from '../src/enclave/committee/update-rules.ts';
import { signRestUrl } from '../src/enclave/committee/rest-url.ts';

const url = (name: string, port = 1) => `http://${name}.test:${port}`;

async function committee(): Promise<[MeshNode, MeshNode, MeshNode]> {
  const mesh = new Mesh();
  const names = ['p', 'b1', 'b2'];
  const p = await mesh.add('p', { role: 'primary', size: 3, address: 'p:1' });
  await p.treasury.advertiseRestUrl(url('p'));
  for (const [i, b] of ['b1', 'b2'].entries()) {
    await mesh.add(b, { role: 'backup' });
    for (const earlier of names.slice(0, i + 1)) await mesh.link(b, earlier);
    mesh.get(b).treasury.joinCommittee(p.treasury.nodeId, `${b}:1`, p.joinTokens[i], url(b));
    await waitFor(() => mesh.get(b).treasury.info().committee!.index === i + 1);
  }
  await waitFor(() => p.treasury.info().committee!.formed);
  return [p, mesh.get('b1'), mesh.get('b2')];
}

const [p, b1, b2] = await committee();
const urlsSeenBy = (n: MeshNode) => n.treasury.info().committee!.members.map((m) => m.rest_url);

test("every member's REST URL travels with the roster and shows in every member's committee view", async () => {
  const all = [url('p'), url('b1'), url('b2')];
  // A backup learns the roster from the updates: the next seal carries it.
  await p.treasury.commit();
  await waitFor(() => urlsSeenBy(b2).join() === all.join());
  for (const n of [p, b1, b2]) assert.deepEqual(urlsSeenBy(n), all);
});

test('a member that re-joins from another REST URL is listed there by every member', async () => {
  b1.treasury.joinCommittee(p.treasury.nodeId, 'b1:1', undefined, url('b1', 2));
  await waitFor(() => urlsSeenBy(p)[1] === url('b1', 2));
  await p.treasury.commit();
  await waitFor(() => urlsSeenBy(b2)[1] === url('b1', 2));
});

/** b2's replica against the primary's next update with `edit` applied (as a compromised primary would sign it). */
const refusal = (edit: (b: ReplicaBody) => void) => {
  const body = structuredClone(replicaOf(p.treasury.state, p.treasury.state.committee!.seq + 1));
  edit(body);
  return checkUpdate(structuredClone(b2.treasury.state), body);
};

test("a primary cannot swap a backup's REST URL, even signing it with its own key", () => {
  assert.equal(
    refusal(() => undefined),
    null,
  );
  const evil = 'http://evil.test:1';
  const primaryKey = hexToBytes(p.treasury.state.identityKey);
  const r = refusal((b) => {
    b.members[1]!.rest_url = evil;
    b.members[1]!.rest_url_sig = signRestUrl(primaryKey, evil);
  });
  assert.equal(r?.code, 'roster_changed');
  assert.match(r!.reason, /its own signature/);
  assert.equal(refusal((b) => void (b.members[2]!.rest_url = evil))?.code, 'roster_changed');
  // Its own URL it may change (it signs the update anyway): what a restarted primary on a new port does.
  assert.equal(
    refusal((b) => {
      b.members[0]!.rest_url = 'http://p.test:2';
      b.members[0]!.rest_url_sig = signRestUrl(primaryKey, 'http://p.test:2');
    }),
    null,
  );
});

test('a REST URL that is no http(s) URL is refused, even signed by its member', () => {
  const b2Key = hexToBytes(b2.treasury.state.identityKey);
  for (const bad of [
    'javascript:alert(1)',
    'ftp://b2.test/',
    `http://${'a'.repeat(300)}.test/`,
    'http://u:pw@b2.test/',
  ])
    assert.equal(
      refusal((b) => {
        b.members[2]!.rest_url = bad;
        b.members[2]!.rest_url_sig = signRestUrl(b2Key, bad);
      })?.code,
      'roster_changed',
      bad,
    );
  // A member that has seen no update yet learns the roster from the first: a malformed entry is refused, not thrown on.
  const fresh = structuredClone(b2.treasury.state);
  Object.assign(fresh.committee!, { size: 0, threshold: 0, members: [] });
  const body = structuredClone(replicaOf(p.treasury.state, p.treasury.state.committee!.seq + 1));
  (body.members as unknown[])[2] = null;
  assert.equal(checkUpdate(fresh, body)?.code, 'roster_changed');
  assert.throws(() => b2.treasury.joinCommittee(p.treasury.nodeId, 'b2:1', undefined, 'ftp://b2.test/'), {
    code: 'invalid_argument',
  });
});
