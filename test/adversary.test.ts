// run-tests lane: in-process
/**
 * The adversarial suite: a hostile host with every power a host has (test/helpers/hostile-host.ts) against
 * real treasury enclaves. One scenario per kind of attack, then a seeded randomised run of thousands of
 * steps whose invariant is checked after every step: nothing the enclaves signed pays the attacker's side
 * more than it owns. ADVERSARY_SEED=<n> replays a run; ADVERSARY_STEPS=<n> sets its length
 * (scripts/adversary.ts runs long ones).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HostilePair } from './helpers/hostile-host.ts';
import { runRandomised } from './helpers/adversary-run.ts';
import { waitFor as waitForIn } from './helpers/treasury-pair.ts';
import { testSeed } from './helpers/seeded.ts';

/** Conditions on a loaded machine: a generous limit (it only matters when the condition never comes). */
const waitFor = (cond: () => boolean, timeoutMs = 30_000) => waitForIn(cond, timeoutMs);

async function fundedPair() {
  const pair = await HostilePair.create();
  await pair.connect();
  const ch = await pair.openChannel(1_000_000n, 1_000_000n);
  return { pair, ...ch };
}

async function totals(pair: HostilePair, channelId: string) {
  const [a, b] = await Promise.all([
    pair.a.enclave.ecall('get_channel', { channel_id: channelId }),
    pair.b.enclave.ecall('get_channel', { channel_id: channelId }),
  ]);
  return {
    aSent: BigInt(a.total_sent_sat),
    aAcked: BigInt(a.total_acked_sat),
    bReceived: BigInt(b.total_received_sat),
  };
}

test('rollback: after a debit the peer credited, every older sealed state the host kept is refused (or only undoes credits)', async (t) => {
  const { pair, channelId } = await fundedPair();
  t.after(() => pair.close());
  const before = pair.a.store.blobs.length;
  await pair.a.enclave.ecall('pay', { payments: [{ channel_id: channelId, amount_sat: 300_000 }] });
  await waitFor(() => pair.a.events.some((e) => e.type === 'pay_acked'));
  // The first, a middle one and the last few states before the debit (each costs a relaunch).
  const older = pair.a.store.blobs.slice(0, before);
  const blobs = [...new Set([older[0]!, older[Math.floor(older.length / 2)]!, ...older.slice(-3)])];
  let refused = 0;
  for (const blob of blobs) {
    const code = await pair.restart('a', blob);
    if (code) {
      refused++;
      assert.equal(code, 'rollback');
      continue;
    }
    // Accepted: only a state whose loss undoes credits to a (none here) may come back; the debit must be in it.
    assert.equal((await pair.a.enclave.ecall('get_channel', { channel_id: channelId })).total_sent_sat, '300000');
  }
  assert.ok(refused > 0, 'older protected states were offered');
  assert.equal(await pair.restart('a'), null, 'the latest state still opens');
  await pair.connect();
  await pair.checkInvariant(channelId, 1_000_000n);
});

test('foreign, truncated, grown and bit-flipped sealed blobs are refused; nothing is signed from them', async (t) => {
  const { pair, channelId } = await fundedPair();
  t.after(() => pair.close());
  const latest = pair.a.store.blobs.at(-1)!;
  const cases: Array<[string, Uint8Array | null, string[]]> = [
    ["foreign (the peer's blob)", pair.b.store.blobs.at(-1)!, ['wrong_enclave', 'tampered']],
    ['truncated', latest.slice(0, latest.length - 1), ['tampered']],
    ['grown', new Uint8Array([...latest, 0]), ['tampered']],
    [
      'bit flipped',
      (() => {
        const c = latest.slice();
        c[c.length - 20]! ^= 1;
        return c;
      })(),
      ['tampered'],
    ],
    ['nothing at all', null, ['missing']],
  ];
  for (const [what, blob, codes] of cases) {
    const code = await pair.restart('a', blob);
    assert.ok(code && codes.includes(code), `${what}: ${code}`);
  }
  assert.equal(await pair.restart('a'), null);
  await pair.connect();
  await pair.checkInvariant(channelId, 1_000_000n);
});

test('duplicated, reordered, corrupted and replayed frames tear the session down and never count twice', async (t) => {
  const { pair, channelId } = await fundedPair();
  t.after(() => pair.close());
  pair.autoDeliver = false;
  // Each mangling of three queued frames, and how b must name it when it tears the session down.
  const manglers: Array<[string, (fs: Uint8Array[]) => Uint8Array[], RegExp]> = [
    ['duplicated', (fs) => [...fs, ...fs], /replayed/],
    ['reordered', (fs) => [...fs].reverse(), /reordered/],
    [
      'corrupted',
      (fs) =>
        fs.map((f) => {
          const c = f.slice();
          c[c.length - 1]! ^= 0x80;
          return c;
        }),
      /tampered/,
    ],
  ];
  let paid = 0n;
  let credited = 0n;
  for (const [what, mangle, reason] of manglers) {
    await pair.connect();
    pair.autoDeliver = false;
    const paidBefore = paid;
    for (let i = 0; i < 3; i++) {
      await pair.a.enclave.ecall('pay', { payments: [{ channel_id: channelId, amount_sat: 1_000 }] });
      paid += 1_000n;
    }
    // The three pay frames are queued (reversing fewer than two would reorder nothing).
    await waitFor(() => pair.queue.ab.length >= 3);
    const seen = pair.b.events.length;
    await pair.deliver('ab', Infinity, mangle);
    await waitFor(() => pair.b.events.slice(seen).some((e) => e.type === 'peer_disconnected'));
    const down = pair.b.events.slice(seen).find((e) => e.type === 'peer_disconnected') as { reason: string };
    assert.match(down.reason, reason, `${what}: b tears the session down naming it`);
    assert.equal(pair.b.conn, null, `${what}: the session is gone`);
    const t1 = await totals(pair, channelId);
    // Duplicated: the genuine three count once, the copies not at all. Reordered or corrupted: none of the
    // three counts (what b holds is at most what was paid before them, re-sent when the session came up).
    if (what === 'duplicated') assert.equal(t1.bReceived, paid, `${what}: b credited ${t1.bReceived} of ${paid}`);
    else
      assert.ok(
        t1.bReceived <= paidBefore && t1.bReceived >= credited,
        `${what}: b credited ${t1.bReceived} (paid before these frames: ${paidBefore})`,
      );
    credited = t1.bReceived;
  }
  // A clean session makes good what was lost, once.
  pair.autoDeliver = true;
  await pair.connect();
  let final = await totals(pair, channelId);
  for (const deadline = Date.now() + 15_000; final.bReceived !== paid && Date.now() < deadline;) {
    await new Promise((r) => setTimeout(r, 10));
    final = await totals(pair, channelId);
  }
  assert.equal(final.bReceived, paid, 'every payment credited exactly once');
  assert.equal(final.aSent, paid);
  await pair.checkInvariant(channelId, 1_000_000n);
});

test('a failing disk halts the enclave: it acknowledges nothing it did not make durable, and comes back from what it did', async (t) => {
  const { pair, channelId } = await fundedPair();
  t.after(() => pair.close());
  await pair.a.enclave.ecall('pay', { payments: [{ channel_id: channelId, amount_sat: 10_000 }] });
  pair.a.store.failStores = true;
  await assert.rejects(pair.a.enclave.ecall('pay', { payments: [{ channel_id: channelId, amount_sat: 20_000 }] }));
  await assert.rejects(
    pair.a.enclave.ecall('channel_settle', { channel_id: channelId, fee_rate: 1 }),
    (e: { code?: string }) => e.code === 'session_failed',
  );
  pair.a.store.failStores = false;
  assert.equal(await pair.restart('a'), null);
  await pair.connect();
  const r = await totals(pair, channelId);
  assert.equal(r.aSent, 10_000n, 'the debit whose seal failed is gone, and it never reached b');
  assert.equal(r.bReceived <= r.aSent, true);
  await pair.checkInvariant(channelId, 1_000_000n);
});

test(
  'randomised: a seeded hostile host never gets a signed transaction that pays it more than it owns',
  { timeout: 480_000 },
  async () => {
    const seed = testSeed('adversarial run', 'ADVERSARY_SEED');
    const steps = process.env.ADVERSARY_STEPS ? Number(process.env.ADVERSARY_STEPS) : 2_000;
    process.stdout.write(`# adversarial run: ADVERSARY_SEED=${seed} ADVERSARY_STEPS=${steps}\n`);
    const report = await runRandomised({ seed, steps });
    process.stdout.write(`# ${JSON.stringify(report)}\n`);
    assert.equal(report.steps, steps);
    assert.ok(report.aPaid > 0 && report.bPaid > 0, 'payments flowed both ways');
    assert.ok(
      report.restarts > 0 && report.refusedLaunches > 0,
      'the host restarted the enclave and some restarts were refused',
    );
  },
);
