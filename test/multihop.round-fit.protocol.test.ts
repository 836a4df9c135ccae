// run-tests lane: in-process
/**
 * A path round that does not fit a hop (docs/protocol/multihop.md, "Rounds"): the hop leaves out, at
 * LOCK and in the round's order, the payments that no longer fit its outgoing channel and forwards the
 * rest; the destination leaves out those that would leave the payer's side too little for τ's chain fee.
 * The payer learns each one left out (`insufficient_capacity`), the others succeed, and every channel
 * moves by exactly the payments that went on. In-process treasuries, lone and 2-of-3 committees.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { line, type MeshNode } from './helpers/treasury-mesh.ts';
import { committeeLine, replicated, type Kind } from './helpers/committee-line.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { WAIT_MS } from './helpers/two-committees.ts';
import { balances, outcome, unlocked } from './helpers/multihop-views.ts';
import { fitOn, totalsOf } from '../src/enclave/treasury/multihop/parts.ts';
import { spendable } from '../src/enclave/treasury/state.ts';
import { RoundLog } from '../src/node/multihop-rounds.ts';

const codes = (r: { results: Array<{ ok: boolean; code?: string }> }) => r.results.map((x) => (x.ok ? 'ok' : x.code));

/**
 * `hop` pays its next neighbour `drain` sat directly, so it has less on that channel than `payer` believes:
 * once the payer has heard of the drain, its graph is set back to the capacity from before (an announcement
 * that overstates, which nothing prevents: docs/protocol/multihop.md, "Known limits").
 */
async function overstated(payer: MeshNode, hop: MeshNode, channel: string, drain: number): Promise<bigint> {
  const before = spendable(hop.treasury.state, hop.treasury.state.channels[channel]!);
  await hop.treasury.pay([{ channel_id: channel, amount_sat: drain }]);
  const ch = () => hop.treasury.channel(channel);
  await waitFor(() => ch().total_acked_sat === ch().total_sent_sat, WAIT_MS);
  hop.treasury.multihop.gossip();
  const cap = () => payer.treasury.multihop.graph.get(hop.treasury.nodeId)?.ann.channels.find((c) => c.ch === channel);
  await waitFor(() => cap() !== undefined && BigInt(cap()!.cap) < before, WAIT_MS);
  cap()!.cap = before.toString();
  return spendable(hop.treasury.state, hop.treasury.state.channels[channel]!);
}

test('an intermediary short of room leaves out, in order, only the payments that do not fit; fees exact', async () => {
  const { nodes, channels } = await line(3);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  await b.treasury.setFees(3, 2_500);
  await waitFor(() => a.treasury.multihop.graph.get(b.treasury.nodeId)?.ann.fee_ppm === 2_500, WAIT_MS);
  const room = await overstated(a, b, channels[1]!, 60_000);
  assert.equal(room, 40_000n);
  const before = balances(nodes, channels);
  // First fit in order on bob's 40,000: 30,000 in; 20,000 out; 5,000 in; 8,000 out; 1,000 in.
  const asked = [30_000, 20_000, 5_000, 8_000, 1_000];
  const r = await a.treasury.payMultihopRound(
    c.treasury.nodeId,
    asked.map((amount_sat, i) => ({ amount_sat, max_fee_sat: 1_000, payment_id: `p${i + 1}` })),
    1,
  );
  assert.deepEqual(codes(r), ['ok', 'insufficient_capacity', 'ok', 'insufficient_capacity', 'ok']);
  await waitFor(() => unlocked(nodes), WAIT_MS);
  const received = c.events.flatMap((e) => (e.type === 'pay_received' && e.channel_id === channels[1] ? [e] : []));
  assert.deepEqual(
    received.at(-1)?.amounts,
    [30_000, 5_000, 1_000],
    "carol's host is told of each payment that went on, with its own amount",
  );
  const fees = r.results.reduce((s, x) => s + (x.ok ? BigInt(x.fee_sat) : 0n), 0n);
  const delivered = 36_000n;
  assert.deepEqual(outcome(nodes, channels, before), [delivered + fees, delivered], 'exactly what went on moved');
  const now = balances(nodes, channels);
  const bobGained =
    now[1]![channels[0]!]! + now[1]![channels[1]!]! - before[1]![channels[0]!]! - before[1]![channels[1]!]!;
  assert.equal(bobGained, fees, "bob kept exactly the fees of the payments he forwarded, each one's own");
  // The fee of the round as it reached bob (3 sat + 0.25 % of 64,000) was shared; those left out took theirs.
  assert.ok(fees > 0n && fees < 3n + (64_000n * 2_500n) / 1_000_000n);
  for (const n of nodes) {
    const rec = n.treasury.multihop.view()[0]!;
    assert.equal(rec.phase, 'done');
    assert.deepEqual(rec.amounts, [String(delivered + fees), String(delivered)], `${n.name}: the totals that went on`);
  }
  // Each host's list of rounds (GET /v1/multihop), from its enclave's events: the one round, with every
  // payment LOCK carried, those bob left out failed, the payer's own ids at the payer only.
  const shares = r.results.map((x) => (x.ok ? x.fee_sat : null));
  for (const [i, n] of nodes.entries()) {
    const log = new RoundLog();
    for (const e of n.events) if (e.type === 'mh_round') log.note(e);
    const [round, ...more] = log.view(n.treasury.multihop.view(), 10);
    assert.equal(more.length, 0, `${n.name}: one round`);
    assert.equal(round!.role, ['payer', 'intermediary', 'destination'][i]);
    assert.equal(round!.phase, 'done');
    assert.equal(round!.amount_sat, String(delivered));
    assert.deepEqual(
      round!.payments.map((p) => [p.payment_id, p.amount_sat, p.outcome, p.code]),
      asked.map((a, k) => [
        i === 0 ? `p${k + 1}` : null,
        String(a),
        shares[k] === null ? 'failed' : 'succeeded',
        shares[k] === null ? 'insufficient_capacity' : null,
      ]),
      n.name,
    );
    for (const [k, p] of round!.payments.entries()) if (shares[k] !== null) assert.equal(p.fee_sat, shares[k]);
  }
});

test("the destination leaves out what would leave the payer too little for τ's chain fee", async () => {
  const { nodes, channels } = await line(3);
  const [a, , c] = nodes as [MeshNode, MeshNode, MeshNode];
  const before = balances(nodes, channels);
  const room = Number(spendable(a.treasury.state, a.treasury.state.channels[channels[0]!]!));
  // All three fit alice's balance, but after the first two only 300 sat are left on her side, less than
  // τ's fee at 1 sat/vB (four inputs, four outputs); the third still fits after the first.
  const half = Math.floor(room / 2);
  const asked = [half, room - half - 300, 200];
  const r = await a.treasury.payMultihopRound(
    c.treasury.nodeId,
    asked.map((amount_sat) => ({ amount_sat })),
    1,
  );
  assert.deepEqual(codes(r), ['ok', 'insufficient_capacity', 'ok']);
  await waitFor(() => unlocked(nodes), WAIT_MS);
  const moved = BigInt(asked[0]! + asked[2]!);
  assert.deepEqual(outcome(nodes, channels, before), [moved, moved]);
});

// A committee payer's and a committee intermediary's records shrink from `locked` to `signed` when a hop
// further down leaves payments out: their backups take that (and only that) change, and every member agrees.
const COMMITTEE_PATHS: Array<[Kind[], number]> = [
  [['committee', 'lone', 'lone'], 1],
  [['lone', 'committee', 'lone'], 1],
];

for (const [kinds, short] of COMMITTEE_PATHS) {
  test(`${kinds.join(' → ')}: hop ${short} short of room, the round goes on without what does not fit, members agree`, async () => {
    const { hops, nodes, channels } = await committeeLine(kinds);
    const [a, , c] = nodes as [MeshNode, MeshNode, MeshNode];
    await overstated(a, nodes[short]!, channels[short]!, 60_000);
    const before = balances(nodes, channels);
    const r = await a.treasury.payMultihopRound(
      c.treasury.nodeId,
      [30_000, 20_000, 5_000].map((amount_sat) => ({ amount_sat })),
      1,
    );
    assert.deepEqual(codes(r), ['ok', 'insufficient_capacity', 'ok']);
    await waitFor(() => unlocked(hops.flatMap((h) => h.members)) && replicated(hops), WAIT_MS);
    assert.deepEqual(outcome(nodes, channels, before), [35_000n, 35_000n]);
  });
}

test('fitting a round: first fit in order, the same for every hop given the same parts; parts never grow', () => {
  const round = {
    parts: [
      [31n, 30n],
      [21n, 20n],
      [6n, 5n],
      [9n, 8n],
      [2n, 1n],
    ],
    dropped: [1],
  };
  const fitted = fitOn(round, 1, 40n);
  assert.deepEqual(fitted.dropped, [1, 3], 'the one already left out stays out; 8 no longer fits, 1 does');
  assert.deepEqual(fitOn(round, 1, 40n), fitted, 'deterministic');
  assert.deepEqual(totalsOf(fitted), [39n, 36n]);
  assert.deepEqual(fitOn(round, 1, 1_000n).dropped, [1], 'room for all: only what was left out before');
});
