/**
 * Ctrl-C and `teechain stress --fresh`, as in a terminal: the stress process leads its own process group and
 * SIGINT goes to the whole group. During a run it stops the load, still verifies against the network it
 * built (whose processes the Ctrl-C did not reach), reports and stops that network: exit 130, no process of
 * it left. SIGKILLed, it leaves no process behind either: each notices it is gone and stops. During a sweep,
 * a Ctrl-C while the next size is built ends with the table of the sizes already run (exit 130), that
 * network stopped. No assertion on timings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir, waitUntil } from './helpers/network.ts';
import { processesNaming, runStress } from './helpers/stress-run.ts';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** A fresh 3-node line loaded for far longer than the test waits, in `datadir`. */
const freshRun = (datadir: string, out: string) => [
  '--fresh',
  '--datadir',
  datadir,
  '--nodes',
  '3',
  '--topology',
  'line',
  '--deposit-sat',
  '2000000',
  '--duration',
  '600',
  '--amount',
  '1000',
  '--concurrency',
  '1',
  '--seed',
  '5',
  '--out',
  out,
];

test(
  'Ctrl-C to the terminal’s process group during a --fresh run: verified, exit 130, no process left',
  { timeout: 300_000 },
  async () => {
    const dir = await tempDir('teechain-stress-int-');
    const datadir = join(dir, 'net');
    await mkdir(datadir);
    const out = join(dir, 'report.json');
    let network: number[] = [];
    const run = await runStress(
      freshRun(datadir, out),
      (proc, err) =>
        void waitUntil(() => /\b[1-9]\d* ok /.test(err()), 240_000, 'a payment in the live line').then(() => {
          network = processesNaming(datadir).filter((p) => p !== proc.pid); // the chain and the nodes, not stress itself
          process.kill(-proc.pid!, 'SIGINT'); // as a terminal does: the whole foreground process group
        }),
      { detached: true },
    );
    assert.equal(run.code, 130, run.stderr + run.stdout);
    const r = JSON.parse(await readFile(out, 'utf8'));
    assert.equal(r.interrupted, true);
    assert.ok(r.payments_ok >= 1);
    assert.equal(r.verification.ok, true, r.verification.mismatches.join('\n'));
    assert.match(run.stdout, /verified\s+yes/);
    // The chain and three nodes were running when the Ctrl-C came, and the run stopped them before it ended.
    assert.equal(network.length, 4, String(network));
    assert.deepEqual(processesNaming(datadir), []);
  },
);

test(
  'the stress process SIGKILLed during a --fresh run: its network stops by itself',
  { timeout: 300_000 },
  async () => {
    const dir = await tempDir('teechain-stress-kill-');
    const datadir = join(dir, 'net');
    await mkdir(datadir);
    let network: number[] = [];
    try {
      const run = await runStress(
        freshRun(datadir, join(dir, 'report.json')),
        (proc, err) =>
          void waitUntil(() => /\b[1-9]\d* ok /.test(err()), 240_000, 'a payment in the live line').then(() => {
            network = processesNaming(datadir).filter((p) => p !== proc.pid); // the chain and the nodes, not stress itself
            proc.kill('SIGKILL'); // the stress process alone: it runs no cleanup at all
          }),
        // Not a group leader: nothing here kills its group when it dies (test/helpers/processes.ts would).
      );
      assert.equal(run.code, null);
      assert.equal(network.length, 4, String(network));
      // Each process sees its stdin pipe from the stress process close, and stops as on SIGTERM.
      await waitUntil(() => !network.some(alive), 60_000, 'the network stopped after its stress process died');
    } finally {
      for (const pid of network.filter(alive)) process.kill(pid, 'SIGKILL');
    }
  },
);

test(
  'Ctrl-C while a sweep builds its next network: the table of the sizes run, exit 130, nothing left',
  { timeout: 400_000 },
  async () => {
    const dir = await tempDir('teechain-stress-sweep-int-');
    const out = join(dir, 'sweep.json');
    const run = await runStress(
      [
        '--fresh',
        '--sweep',
        'nodes=2,3',
        '--datadir',
        dir,
        '--deposit-sat',
        '2000000',
        '--payments',
        '10',
        '--amount',
        '1000',
        '--seed',
        '6',
        '--out',
        out,
      ],
      (proc, err) =>
        void waitUntil(() => /sweep: 3 treasuries \(2 of 2\)/.test(err()), 240_000, 'the second size being built').then(
          () => process.kill(-proc.pid!, 'SIGINT'),
        ),
      { detached: true },
    );
    assert.equal(run.code, 130, run.stderr + run.stdout);
    const s = JSON.parse(await readFile(out, 'utf8'));
    assert.equal(s.interrupted, true);
    assert.deepEqual(
      s.entries.map((e: { nodes: number; verified: boolean }) => [e.nodes, e.verified]),
      [[2, true]],
    );
    const rows = run.stdout.split('\n').filter((l) => /^\d+\s/.test(l));
    assert.equal(rows.length, 1, run.stdout);
    assert.match(rows[0]!, /^2\s+1\s.*\byes\b/);
    assert.match(run.stdout, /\(interrupted\)/);
    assert.deepEqual(processesNaming(dir), []);
  },
);

test(
  'Ctrl-C while --fresh builds its network: what was started is stopped, no report, exit 130',
  { timeout: 300_000 },
  async () => {
    const dir = await tempDir('teechain-stress-build-int-');
    const datadir = join(dir, 'net');
    await mkdir(datadir);
    const out = join(dir, 'report.json');
    const run = await runStress(
      freshRun(datadir, out),
      (proc, err) =>
        void waitUntil(() => /alice: starting/.test(err()), 240_000, 'the first node starting').then(() =>
          process.kill(-proc.pid!, 'SIGINT'),
        ),
      { detached: true },
    );
    assert.equal(run.code, 130, run.stderr + run.stdout);
    assert.match(run.stderr, /interrupted/);
    assert.equal(run.stdout, '');
    await assert.rejects(readFile(out));
    assert.deepEqual(processesNaming(datadir), []);
  },
);
