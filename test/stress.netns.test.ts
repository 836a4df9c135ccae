/**
 * `teechain stress --fresh --hosts netns` on real processes: every node of a fresh 3-node star in a Linux
 * network namespace of its own, on a bridge the run creates, the chain reached over that bridge. The run
 * must verify, its report must name distinct addresses off loopback, all on the run's subnet, and once it
 * has exited nothing of its namespaces, veths or bridge may remain. Then `--chaos partition:3s`: nodes'
 * links taken off the bridge and put back during the load, each fault healed, the network back and its
 * books kept. A SIGTERM while the network is being built: exit 130, no process of it left (the chain
 * either) and no namespace. Where this machine cannot create a namespace the tests say so and skip. `--hosts netns` without `--fresh`, and an unknown `--hosts`: one
 * line, exit 2. No assertion on timings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createNetns } from '../src/stress/netns.ts';
import { tempDir, waitUntil } from './helpers/network.ts';
import { assertFaultRunVerified, runStress } from './helpers/stress-run.ts';

/** Why namespaces cannot be made here, or null when they can (one made and removed again). */
function cannotMakeNamespaces(): string | null {
  try {
    createNetns(1).remove();
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Every namespace and link name on this machine. */
function netNames(): string[] {
  const ns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0]!);
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => (l.split(': ')[1] ?? '').split('@')[0]!);
  return [...ns, ...links].filter(Boolean);
}

test('--hosts netns without --fresh, or an unknown --hosts: one line, exit 2', async () => {
  const empty = await tempDir('teechain-netns-none-');
  for (const [args, msg] of [
    [['--datadir', empty, '--hosts', 'netns'], /--hosts netns starts each node in a network namespace .*add --fresh/],
    [['--fresh', '--hosts', 'vm'], /unknown --hosts vm: --hosts netns/],
  ] as Array<[string[], RegExp]>) {
    const run = await runStress(args);
    assert.equal(run.code, 2, args.join(' '));
    assert.match(run.stderr.split('\n')[0]!, msg);
    assert.equal(run.stderr.trim().split('\n').length, 2, run.stderr); // the line, and where the usage is
    assert.equal(run.stdout, '');
  }
});

test('--fresh --hosts netns: a 3-node star, each node in its own namespace, verified, nothing left', async (t) => {
  const cannot = cannotMakeNamespaces();
  if (cannot !== null) {
    t.skip(`this machine cannot create network namespaces: ${cannot}`);
    return;
  }
  const dir = await tempDir('teechain-netns-');
  const out = join(dir, 'report.json');
  let pid = 0;
  const run = await runStress(
    [
      '--fresh',
      '--hosts',
      'netns',
      '--nodes',
      '3',
      '--topology',
      'star',
      '--duration',
      '3',
      '--seed',
      '5',
      '--out',
      out,
    ],
    (proc) => (pid = proc.pid!),
  );
  assert.equal(run.code, 0, run.stderr + run.stdout);
  const r = JSON.parse(await readFile(out, 'utf8'));
  assert.equal(r.verification.ok, true, r.verification.mismatches.join('\n'));
  assert.ok(r.payments_ok > 0);
  assert.equal(r.network.hosts, 'netns');
  const addresses: Array<{ name: string; address: string; rest_url: string; p2p: string }> = r.network.addresses;
  assert.deepEqual(
    addresses.map((a) => a.name),
    ['alice', 'bob', 'carol'],
  );
  const chainHost = (r.network.chain as string).split(':')[0]!;
  const subnet = chainHost.split('.').slice(0, 3).join('.');
  assert.notEqual(subnet, '127.0.0');
  assert.equal(new Set([chainHost, ...addresses.map((a) => a.address)]).size, 4, JSON.stringify(r.network));
  for (const a of addresses) {
    assert.equal(a.address.split('.').slice(0, 3).join('.'), subnet, a.address);
    assert.equal(new URL(a.rest_url).hostname, a.address);
    assert.equal(a.p2p.split(':')[0], a.address);
  }
  assert.match(run.stdout, new RegExp(`hosts +netns: alice ${addresses[0]!.address.replace(/\./g, '\\.')}, bob`));
  // The run's names carry its pid: none of its namespaces, veths or bridge is left.
  const tag = `tcs${pid.toString(36)}-`;
  assert.deepEqual(
    netNames().filter((n) => n.startsWith(tag)),
    [],
  );
});

test('--hosts netns --chaos partition:3s: links cut and put back during the load, each healed, books kept', async (t) => {
  const cannot = cannotMakeNamespaces();
  if (cannot !== null) {
    t.skip(`this machine cannot create network namespaces: ${cannot}`);
    return;
  }
  const dir = await tempDir('teechain-partition-');
  const out = join(dir, 'report.json');
  let pid = 0;
  // Seed 2: its first partition comes under a second into the load, so a 6 s load has at least one.
  const run = await runStress(
    [
      '--fresh',
      '--hosts',
      'netns',
      '--nodes',
      '4',
      '--topology',
      'star',
      '--chaos',
      'partition:3s',
      '--duration',
      '6',
      '--seed',
      '2',
      '--out',
      out,
    ],
    (proc) => (pid = proc.pid!),
  );
  assert.equal(run.code, 0, run.stderr + run.stdout);
  const r = JSON.parse(await readFile(out, 'utf8'));
  assert.deepEqual(r.chaos, { partition_mean_s: 3 });
  assert.ok(r.faults.length >= 1, 'at least one fault');
  for (const f of r.faults) {
    assert.equal(f.kind, 'partition');
    assert.ok(['alice', 'bob', 'carol', 'dave'].includes(f.node), f.node);
    assert.ok(f.healed_at > f.at, JSON.stringify(f));
    assert.ok(f.recovered_after_ms === null || f.recovered_after_ms > 0, JSON.stringify(f));
    assert.match(run.stdout, new RegExp(`fault +${f.at} s: partition ${f.node}, healed at ${f.healed_at} s`));
  }
  assertFaultRunVerified(r, 3n * 2n * 100_000_000n);
  assert.deepEqual(r.verification.chaos.restarted, []); // nothing was killed: every history checked by id
  const tag = `tcs${pid.toString(36)}-`;
  assert.deepEqual(
    netNames().filter((n) => n.startsWith(tag)),
    [],
  );
});

/** The pids of processes whose command line names `text` (a run's data dir). */
function processesNaming(text: string): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^[0-9]+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text)) pids.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

test('--hosts netns: a SIGTERM while the network is built stops what it started and removes the namespaces', async (t) => {
  const cannot = cannotMakeNamespaces();
  if (cannot !== null) {
    t.skip(`this machine cannot create network namespaces: ${cannot}`);
    return;
  }
  const dir = await tempDir('teechain-netns-term-');
  const datadir = join(dir, 'net');
  let pid = 0;
  const run = await runStress(['--fresh', '--hosts', 'netns', '--datadir', datadir, '--nodes', '3'], (proc, stderr) => {
    pid = proc.pid!;
    // Once the chain is up and the nodes are starting: the build is half done.
    void waitUntil(() => /alice: starting/.test(stderr()), 120_000).then(
      () => proc.kill('SIGTERM'),
      () => undefined, // never got there: the exit code below says so
    );
  });
  assert.equal(run.code, 130, run.stderr);
  assert.match(run.stderr, /chain: ready at http:\/\/10\./);
  // Its children were told to stop: wait for them to be gone, then for nothing of the run's network.
  await waitUntil(() => processesNaming(datadir).length === 0, 30_000);
  const tag = `tcs${pid.toString(36)}-`;
  assert.deepEqual(
    netNames().filter((n) => n.startsWith(tag)),
    [],
  );
});
