/**
 * `teechain stress` on nodes started by hand, as on separate machines: the embedded chain and three
 * `teechain node start` processes, each funded, connected and given a channel with the CLI (`fund`,
 * `connect`, `open`) through a network.json written by hand that lists them by REST URL and admin token
 * (a token file for two, the token itself for the third); then `teechain stress --datadir` of that file:
 * verified, exit 0, its counts those of the nodes' own histories. A file naming a node that does not
 * answer, and malformed files: one line, exit 2. The dashboard's node client reads the same file. No
 * assertion on timings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApiClient, type NetworkNode } from '../src/cli/client.ts';
import { NodeApi } from '../src/dashboard/node-api.ts';
import { CHAIN_MAIN } from '../src/cli/processes.ts';
import { CLI, cli } from './helpers/launcher.ts';
import { attestationKey, freePorts, tempDir, waitUntil, type NodeReady } from './helpers/network.ts';
import { spawnReadyTracked } from './helpers/processes.ts';
import { prng, testSeed } from './helpers/seeded.ts';
import { runStress, sumOf } from './helpers/stress-run.ts';

test('teechain stress on three nodes started by hand and listed in a network file', { timeout: 600_000 }, async (t) => {
  const dir = await tempDir('teechain-stress-hand-');
  const seed = testSeed('stress on hand-started nodes');
  const chain = await spawnReadyTracked<{ rpcUrl: string; cookieFile: string }>(CHAIN_MAIN, [
    '--datadir',
    join(dir, 'chain'),
    '--port',
    '0',
  ]);
  const key = await attestationKey(dir);
  // `teechain node start` for each, as a user would on each machine: its own data dir, any free ports.
  const names = ['alice', 'bob', 'carol'];
  const started = await Promise.all(
    names.map(async (name) => {
      await mkdir(join(dir, name));
      const p = await spawnReadyTracked<NodeReady>(CLI, [
        'node',
        'start',
        '--datadir',
        join(dir, name),
        '--rpc-url',
        chain.ready.rpcUrl,
        '--rpc-cookie',
        chain.ready.cookieFile,
        '--attestation-key',
        key,
        '--regtest-faucet',
        '--api-port',
        '0',
        '--p2p-port',
        '0',
        '--log-file',
        join(dir, name, 'node.log'),
        '--log-level',
        'warn',
      ]);
      return { name, ...p.ready };
    }),
  );
  // The network file, by hand: name, REST URL and the admin token (a file, or for bob the token itself).
  const net = join(dir, 'net');
  await mkdir(net);
  const bobToken = (await readFile(started[1]!.token_file, 'utf8')).trim();
  const entries = started.map((s) =>
    s.name === 'bob'
      ? { name: s.name, restUrl: s.rest_url, token: bobToken }
      : { name: s.name, restUrl: s.rest_url, tokenFile: s.token_file },
  );
  await writeFile(join(net, 'network.json'), JSON.stringify({ nodes: entries }, null, 2));
  const apis = await Promise.all(entries.map((e) => ApiClient.forNode(e as Parameters<typeof ApiClient.forNode>[0])));

  await t.test('funded, connected and given channels with the CLI through that file', async () => {
    // A ring, each node funding the channel it opens: every node reaches every other both ways.
    for (const [i, s] of started.entries()) {
      const next = started[(i + 1) % started.length]!;
      const d = JSON.parse(await cli(net, '--json', '--node', s.name, 'fund', '3000000'));
      assert.equal(d.status, 'free', JSON.stringify(d)); // funded, confirmed, in no channel yet
      assert.match(await cli(net, '--node', s.name, 'connect', next.p2p), /connected to .* \(attested\)/);
      assert.match(
        await cli(net, '--node', s.name, 'open', next.node_id, '--deposit', d.deposit_id),
        /channel .* open/,
      );
    }
    await waitUntil(
      async () => {
        const seen = await Promise.all(apis.map((a) => a.request('GET', '/v1/channels')));
        return seen.every((c) => c.channels.filter((x: { status: string }) => x.status === 'open').length === 2);
      },
      60_000,
      'every node sees its two channels open',
    );
  });

  await t.test('teechain stress --datadir of the file: verified, its counts the nodes’ own', async () => {
    const before = await Promise.all(apis.map(async (a) => (await a.request('GET', '/v1/payments?limit=1')).total));
    const out = join(dir, 'report.json');
    const run = await runStress([
      '--datadir',
      net,
      '--payments',
      '60',
      '--amount',
      '1000',
      '--concurrency',
      '2',
      '--seed',
      String(seed),
      '--out',
      out,
    ]);
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const r = JSON.parse(await readFile(out, 'utf8'));
    assert.equal(r.verification.ok, true, r.verification.mismatches.join('\n'));
    assert.deepEqual(r.network.treasuries, names);
    assert.equal(r.network.source, 'running');
    assert.equal(r.network.channels, 3);
    assert.equal(r.payments_attempted, 60);
    assert.equal(r.payments_ok + sumOf(r.payments_failed) + sumOf(r.payments_in_doubt), 60);
    assert.ok(r.payments_ok > 0, JSON.stringify(r.payments_failed));
    // The nodes' own histories: exactly as many outgoing payments succeeded as the report counts.
    let sent = 0;
    for (const [i, a] of apis.entries()) {
      const { total } = await a.request('GET', '/v1/payments?limit=1');
      const { payments } = await a.request('GET', `/v1/payments?limit=${total - before[i]}`);
      sent += payments.filter(
        (p: { direction: string; status: string }) => p.direction === 'outgoing' && p.status === 'succeeded',
      ).length;
    }
    assert.equal(sent, r.payments_ok);
  });

  await t.test('the dashboard’s client reads the same entries, the token given inline too', async () => {
    for (const e of entries) {
      const info = await new NodeApi(e as NetworkNode).ok('GET', '/v1/getinfo');
      assert.equal(info.node_id, started.find((s) => s.name === e.name)!.node_id);
    }
  });

  await t.test('a file naming a node that does not answer, or malformed: one line, exit 2', async () => {
    const port = await freePorts([0], prng(seed));
    const cases: Array<[unknown, RegExp]> = [
      [
        { nodes: [...entries, { name: 'dave', restUrl: `http://127.0.0.1:${port}`, token: 'x' }] },
        /^teechain stress: dave does not answer at http:\/\/127\.0\.0\.1:\d+ /,
      ],
      [
        { nodes: [entries[0], { name: 'bob', restUrl: 'ftp://x', token: 'y' }] },
        /nodes\[1\] \(bob\): "restUrl" must be/,
      ],
      [{ nodes: [entries[0], { name: 'bob', restUrl: entries[1]!.restUrl }] }, /give "tokenFile" .* or "token"/],
      [{ nodes: [entries[0], entries[0]] }, /nodes\[1\] \(alice\): the name is there twice/],
      [{ nodes: [entries[0], { ...entries[0], name: 'alice-again' }] }, /alice and alice-again are the same treasury/],
      [[1, 2], /not a JSON object/],
      ['{ "nodes": [', /is not JSON/],
    ];
    for (const [i, [file, msg]] of cases.entries()) {
      const d = join(dir, `bad-${i}`);
      await mkdir(d);
      await writeFile(join(d, 'network.json'), typeof file === 'string' ? file : JSON.stringify(file));
      const run = await runStress(['--datadir', d, '--payments', '5']);
      assert.equal(run.code, 2, `${i}: ${run.stderr}`);
      assert.match(run.stderr, msg);
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
      assert.equal(run.stdout, '');
    }
  });
});
