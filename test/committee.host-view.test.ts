// run-tests lane: in-process
/**
 * The host's side of committee views, driven at the host boundary by the enclave's events and views as
 * TreasuryNode receives them: a `committee_view` event counts in `teechain_committee_view_changes_total`
 * and is logged; the primary gate answers `not_primary` on a backup with the primary read from the view
 * at the time of the request (so after a promotion it names the new primary, never a remembered one) and
 * lets writes through on the primary.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CommitteeView, TreasuryEventMsg } from '../src/enclave/treasury/interface.ts';
import { createLogger } from '../src/log/logger.ts';
import { logObserver } from '../src/log/node-log.ts';
import { parseExposition, sumOf } from '../src/metrics/exposition.ts';
import { NodeMetrics } from '../src/metrics/node-metrics.ts';
import { NodeError } from '../src/node/errors.ts';
import { PrimaryGate } from '../src/node/primary-gate.ts';
import { tempDir } from './helpers/network.ts';

const id = (c: string) => `02${c.repeat(64)}`;
const [A, B, C] = [id('a'), id('b'), id('c')];
const member = (node_id: string, port: number) => ({ node_id, address: `127.0.0.1:${port}` });

function viewOf(order: string[], self: string, epoch: number): CommitteeView {
  return {
    treasury_id: A,
    epoch,
    role: order[0] === self ? 'primary' : 'backup',
    size: 3,
    threshold: 2,
    index: order.indexOf(self),
    seq: 7,
    acked_seq: 7,
    formed: true,
    members: order.map((n, i) => ({ ...member(n, 1 + i), rest_url: `http://127.0.0.1:${9000 + i}`, connected: true })),
  };
}

/** What a promotion of B (the first backup) looks like from member `self`'s enclave. */
const promotion = (self: string): TreasuryEventMsg => ({
  type: 'committee_view',
  epoch: 1,
  primary: B,
  members: [member(B, 2), member(C, 3), member(A, 1)],
  index: [B, C, A].indexOf(self),
});

test('a committee_view event counts in teechain_committee_view_changes_total, by the role it gives this member', async () => {
  const metrics = new NodeMetrics({ processMetrics: false });
  const count = async (role: string) =>
    sumOf(parseExposition((await metrics.expose()).body), 'teechain_committee_view_changes_total', { role });
  assert.equal(await count('primary'), 0);
  assert.equal(await count('backup'), 0);
  metrics.observer.enclaveEvent!(promotion(B));
  metrics.observer.enclaveEvent!(promotion(C));
  metrics.observer.enclaveEvent!({ type: 'committee_roster', members: [member(A, 1)], index: 0 });
  assert.equal(await count('primary'), 1);
  assert.equal(await count('backup'), 1);
});

test('a committee_view event is logged with its view number and primary', async () => {
  const file = join(await tempDir('teechain-view-log-'), 'node.log');
  logObserver(createLogger({ name: 'node', level: 'info', file })).enclaveEvent!(promotion(C));
  const lines = (await readFile(file, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const line = lines.find((l) => l.msg === 'committee view changed');
  assert.ok(line, 'no view change line');
  assert.deepEqual([line.epoch, line.primary, line.role], [1, B, 'backup']);
});

test('not_primary names the primary of the view at the time of the request, and the primary is never gated', async () => {
  // Member C: a backup of A, then (after B's promotion) a backup of B. The view is read afresh each time.
  let view = viewOf([A, B, C], C, 0);
  const gate = new PrimaryGate(async () => view);
  gate.started(view);
  const refused = async () => {
    const r = gate.refusal();
    assert.ok(r, 'a backup must be refused');
    return r.then(
      () => assert.fail('resolved'),
      (e: NodeError) => e,
    );
  };
  let e = await refused();
  assert.equal(e.code, 'not_primary');
  assert.equal(e.status, 409);
  assert.deepEqual(e.primary, { node_id: A, rest_url: 'http://127.0.0.1:9000' });
  assert.match(e.message, /http:\/\/127\.0\.0\.1:9000/);

  view = viewOf([B, C, A], C, 1);
  gate.onEvent(promotion(C));
  e = await refused();
  assert.deepEqual(e.primary, { node_id: B, rest_url: 'http://127.0.0.1:9000' });

  // B itself: promoted, so its writes go through (the enclave still checks them itself).
  const promoted = new PrimaryGate(async () => viewOf([B, C, A], B, 1));
  promoted.started(viewOf([A, B, C], B, 0));
  const before = promoted.refusal();
  assert.ok(before, 'a backup before the promotion');
  await before.catch(() => undefined);
  promoted.onEvent(promotion(B));
  assert.equal(promoted.refusal(), null);

  // A lone treasury has no view and is never gated.
  const lone = new PrimaryGate(async () => null);
  lone.started(null);
  assert.equal(lone.refusal(), null);
});

test('a backup that does not know its primary yet says so, without a primary', async () => {
  const gate = new PrimaryGate(async () => ({ ...viewOf([A], C, 0), members: [], index: -1, role: 'backup' }));
  gate.started({ ...viewOf([A], C, 0), role: 'backup' });
  const e = await gate.refusal()!.catch((err: NodeError) => err);
  assert.equal(e.code, 'not_primary');
  assert.equal(e.primary, undefined);
});
