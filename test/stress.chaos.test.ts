/**
 * `teechain stress --chaos kill:S` on real processes: a fresh 4-node star whose node processes are killed
 * with SIGKILL (every 2 s on average) and restarted while the load goes on. The run must still verify:
 * every fault reported and restarted, the network back, money conserved, every succeeded payment found
 * (by id, or by its key on a restarted payer). Then the same network is resumed by `teechain network up`
 * and the same run made on it: its launcher kills and restarts the nodes through its control socket, the
 * run verifies, the launcher runs on with every node up, and the test reads the network itself (money
 * conserved, both ends of every channel agree); the nodes stop with the launcher. Bad --chaos specs, and
 * --chaos on a network whose launcher does not answer: one line, exit 2. No assertion on timings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NetworkFile } from '../src/cli/client.ts';
import { parseChaos, parseChaosList } from '../src/stress/options.ts';
import { api, networkUp } from './helpers/launcher.ts';
import { stopChild, tempDir } from './helpers/network.ts';
import { assertFaultRunVerified, runStress } from './helpers/stress-run.ts';

/** Runs `--chaos kill:2s` for 8 s of load on a 4-node star (seed 3: its first kill comes about 4.5 s in), then
 * checks what every such run must show: exit 0, at least one kill, each restarted and in the table, the
 * network back, money conserved, every succeeded payment found (by id, or by key on a restarted payer). */
async function chaosRunChecked(args: string[], out: string) {
  const run = await runStress([...args, '--chaos', 'kill:2s', '--duration', '8', '--seed', '3', '--out', out]);
  assert.equal(run.code, 0, run.stderr + run.stdout);
  const r = JSON.parse(await readFile(out, 'utf8'));
  assert.deepEqual(r.chaos, { kill_mean_s: 2 });
  assert.ok(r.faults.length >= 1, 'at least one fault');
  for (const f of r.faults) {
    assert.equal(f.kind, 'kill');
    assert.ok(['alice', 'bob', 'carol', 'dave'].includes(f.node), f.node);
    assert.ok(f.restarted_at > f.at, JSON.stringify(f));
    assert.equal(f.error, undefined, JSON.stringify(f));
    assert.ok(f.recovered_after_ms === null || f.recovered_after_ms > 0, JSON.stringify(f));
    assert.match(run.stdout, new RegExp(`fault +${f.at} s: kill ${f.node}, back at ${f.restarted_at} s`));
  }
  assertFaultRunVerified(r, 3n * 2n * 100_000_000n);
  const chaos = r.verification.chaos;
  assert.deepEqual(chaos.restarted, [...new Set(r.faults.map((f: { node: string }) => f.node))].sort());
  assert.equal(chaos.balance_mismatched, 0);
  return r;
}

test('--chaos kill:S, partition:S: the spellings of the mean time between faults, and both kinds together', () => {
  assert.deepEqual(parseChaos('kill:30s'), { kind: 'kill', meanMs: 30_000 });
  assert.deepEqual(parseChaos('kill:30'), { kind: 'kill', meanMs: 30_000 });
  assert.deepEqual(parseChaos('kill:500ms'), { kind: 'kill', meanMs: 500 });
  assert.deepEqual(parseChaos('partition:20s'), { kind: 'partition', meanMs: 20_000 });
  assert.deepEqual(parseChaosList('kill:30s,partition:500ms'), [
    { kind: 'kill', meanMs: 30_000 },
    { kind: 'partition', meanMs: 500 },
  ]);
});

test('bad --chaos, or --chaos on a network whose launcher does not answer: one line, exit 2', async () => {
  const empty = await tempDir('teechain-chaos-none-');
  for (const [args, msg] of [
    [['--fresh', '--chaos', 'kill:0'], /--chaos kill:0: the time between kills must be more than zero/],
    [['--fresh', '--chaos', 'kill:0ms'], /more than zero/],
    [['--fresh', '--chaos', 'kill:x'], /unknown --chaos kill:x: --chaos kill:S/],
    [['--fresh', '--chaos', 'partition:10s'], /--chaos partition .* it needs --fresh --hosts netns/],
    [['--fresh', '--chaos', 'kill:1s,kill:2s'], /--chaos kill:1s,kill:2s: each kind of fault once/],
    [['--fresh', '--chaos', 'kill:1s,'], /unknown --chaos : --chaos kill:S or partition:S/],
  ] as Array<[string[], RegExp]>) {
    const run = await runStress(args);
    assert.equal(run.code, 2, args.join(' '));
    assert.match(run.stderr.split('\n')[0]!, msg);
    assert.equal(run.stderr.trim().split('\n').length, 2, run.stderr); // the line, and where the usage is
    assert.equal(run.stdout, '');
  }
  // A network file whose launcher does not answer on the data dir's control socket (nodes started by hand,
  // or a launcher gone): nothing can kill and restart its processes for the run.
  await writeFile(
    join(empty, 'network.json'),
    JSON.stringify({ nodes: ['alice', 'bob'].map((name) => ({ name, restUrl: 'http://127.0.0.1:9', token: 'x' })) }),
  );
  const run = await runStress(['--datadir', empty, '--chaos', 'kill:2s']);
  assert.equal(run.code, 2, run.stderr);
  assert.match(
    run.stderr,
    /^teechain stress: --chaos kills and restarts node processes, and nothing answers for those of the network in .* \(ENOENT\): run it with `teechain network up` on this machine, or build one for the run with --fresh\n$/,
  );
  assert.equal(run.stdout, '');
});

test(
  '--chaos kill:2s on a fresh 4-node star, then on the same network run by `network up`: faults reported, books kept, the network runs on',
  { timeout: 300_000 },
  async () => {
    const dir = await tempDir('teechain-chaos-');
    const datadir = join(dir, 'net');
    await mkdir(datadir);
    await chaosRunChecked(
      ['--fresh', '--datadir', datadir, '--nodes', '4', '--topology', 'star'],
      join(dir, 'fresh.json'),
    );

    // The network resumed from its data dir by `network up`: a run on it kills and restarts its nodes through
    // the launcher, and the test then reads it itself: money conserved, both ends of every channel agree.
    const up = networkUp(datadir, ['--no-dashboard']);
    let network: NetworkFile | undefined;
    try {
      await up.ready;
      network = JSON.parse(await readFile(join(datadir, 'network.json'), 'utf8')) as NetworkFile;
      const r = await chaosRunChecked(['--datadir', datadir], join(dir, 'running.json'));
      assert.equal(r.network.source, 'running');
      // The launcher took each kill for one on purpose: it still runs, and every node answers.
      assert.equal(up.proc.exitCode, null, up.err());
      const ends = new Map<string, Array<{ local: bigint; remote: bigint }>>();
      let sum = 0n;
      for (const n of network.nodes)
        for (const c of (await api(n, 'GET', '/v1/channels')).channels) {
          sum += BigInt(c.local_balance_sat);
          const e = { local: BigInt(c.local_balance_sat), remote: BigInt(c.remote_balance_sat) };
          ends.set(c.channel_id, [...(ends.get(c.channel_id) ?? []), e]);
        }
      assert.equal(sum, 600_000_000n);
      assert.equal(ends.size, 3);
      for (const [a, b] of ends.values()) {
        assert.equal(a!.local, b!.remote);
        assert.equal(a!.remote, b!.local);
      }
    } finally {
      up.proc.kill('SIGINT');
      await up.exited;
      await stopChild(up.proc);
    }
    // The nodes it restarted were its own children: they stopped with it.
    for (const n of network!.nodes)
      await assert.rejects(fetch(`${n.restUrl}/v1/getinfo`), `${n.name} stopped with the launcher`);
  },
);
