// run-tests lane: in-process
/**
 * A committee hub whose primary crashes while routed payments cross it both ways, and restarts from its
 * sealed state: its first update after the restart is a full snapshot, which carries the multi-hop
 * records the backup already holds, aborted ones included. The backup must adopt it (an aborted record
 * that stays aborted is no regression), or the primary stays frozen and the payments in flight through it
 * never complete: what `teechain stress --committee 2 --chaos kill:2s` showed as broken conservation.
 * In-process treasuries (helpers/treasury-mesh.ts); the crash moments are drawn from the test's seed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Mesh, fundedChannel, gossip, type MeshNode } from './helpers/treasury-mesh.ts';
import { TIMEOUTS } from './helpers/two-committees.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { unlocked } from './helpers/multihop-views.ts';
import { localBalance } from '../src/enclave/treasury/state.ts';
import { prng as rng, testSeed } from './helpers/seeded.ts';

const SEED = testSeed('multihop.committee-restart.protocol');
const random = rng(SEED);

const total = (n: MeshNode) =>
  Object.values(n.treasury.state.channels).reduce((s, c) => s + localBalance(n.treasury.state, c), 0n);

for (let run = 0; run < 3; run++) {
  const crashAfterMs = 50 + Math.floor(random() * 250);
  test(`run ${run}: the hub committee's primary killed ${crashAfterMs} ms into routed payments both ways, restarted: its backup catches up, the payments end, money is conserved`, async (t) => {
    t.diagnostic(`TEST_SEED=${SEED}`);
    const mesh = new Mesh({ ...TIMEOUTS, multihopTimeoutMs: 1_000 });
    const hub = await mesh.committee(['h0', 'h1']);
    const [h0, h1] = hub as [MeshNode, MeshNode];
    const x = await mesh.add('x');
    const y = await mesh.add('y');
    const channels = [await fundedChannel(mesh, x, h0, 1_000_000n), await fundedChannel(mesh, h0, y, 1_000_000n)];
    await gossip(mesh, ['x', 'h0', 'y']);
    const before = total(x) + total(h0) + total(y);
    let stop = false;
    const loops = [x, y].map(async (payer, i) => {
      const dest = (i === 0 ? y : x).treasury.nodeId;
      while (!stop) await payer.treasury.payMultihop(dest, 100 + i, 1).catch(() => undefined);
    });
    await new Promise((r) => setTimeout(r, crashAfterMs));
    mesh.crash('h0');
    await new Promise((r) => setTimeout(r, 50));
    const restarted = (await mesh.restart('h0', ['h1', 'x', 'y'])) as MeshNode;
    await new Promise((r) => setTimeout(r, 1_000));
    stop = true;
    await Promise.all(loops);
    const seq = (n: MeshNode) => n.treasury.state.committee!.seq;
    await waitFor(() => seq(h1) === seq(restarted) && unlocked([x, restarted, y]), 10_000);
    const refused = restarted.events.filter((e) => e.type === 'committee_update_refused' && e.code !== 'base_mismatch');
    assert.deepEqual(refused, [], 'the backup refused no update but for a missed base');
    for (const ch of channels) {
      const [a, b] = ch === channels[0] ? [x, restarted] : [restarted, y];
      assert.equal(
        a.treasury.channel(ch).local_balance_sat,
        b.treasury.channel(ch).remote_balance_sat,
        'both ends of the channel agree',
      );
    }
    assert.equal(total(x) + total(restarted) + total(y), before, 'conserved');
  });
}
