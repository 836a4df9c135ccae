// run-tests lane: light
/**
 * `--advertise-host` (docs/operations.md, "One node on its own"): a node names the advertised address, not
 * the one it listens on, in its ready line (`rest_url`, `p2p`) and in its committee roster, and a peer that
 * dials that address gets a session; a wildcard `--host` without it, or a malformed one, is a one-line usage
 * error (exit 2) and starts nothing. Real node processes and the embedded chain. The node listens on
 * 127.0.0.1 and advertises `127.1`, another name of the same loopback address (inet_aton's short form), so
 * that the test opens nothing beyond loopback while the two names differ.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { NODE_MAIN } from '../src/cli/processes.ts';
import { nodesOnOneChain, tempDir, waitUntil } from './helpers/network.ts';

const { file, startNode } = nodesOnOneChain();

test('the node names its advertised address, not the one it listens on, and peers dial it there', async () => {
  const wide = await startNode(['--host', '127.0.0.1', '--advertise-host', '127.1', '--committee', '2']);
  assert.match(wide.ready.rest_url, /^http:\/\/127\.1:\d+$/);
  assert.match(wide.ready.p2p, /^127\.1:\d+$/);
  // The committee roster lists it at the advertised address too (what its members dial after a view change).
  const committee = await wide.ok('GET', '/v1/committee');
  assert.equal(committee.members[0].address, wide.ready.p2p);

  const peer = await startNode();
  await peer.ok('POST', '/v1/peers', { address: wide.ready.p2p });
  await waitUntil(
    async () =>
      ((await wide.ok('GET', '/v1/peers')).peers as Array<{ peer_id: string }>).some((p) => p.peer_id === peer.id),
    15_000,
    'the session dialled at the advertised address',
  );
});

test('a wildcard --host without --advertise-host, or a malformed one, is a one-line usage error, exit 2', async () => {
  for (const [args, message] of [
    [['--host', '0.0.0.0'], /^teechain node: --host 0\.0\.0\.0 listens on every interface: give --advertise-host ADDR/],
    [['--advertise-host', '10.0.0.1:9000'], /^teechain node: --advertise-host must be a host name or an IP address/],
    [['--advertise-host', '0.0.0.0'], /^teechain node: --advertise-host must name this node/],
  ] as const) {
    const datadir = await tempDir();
    const run = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        NODE_MAIN,
        '--datadir',
        datadir,
        '--rpc-url',
        file.chain.rpcUrl,
        '--attestation-key',
        file.key,
        ...args,
      ],
      { encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL' },
    );
    assert.equal(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, message);
    assert.equal(run.stderr.trim().split('\n').length, 1, 'one line, no stack trace');
    assert.deepEqual(await readdir(datadir), [], 'nothing started: the data dir is untouched');
  }
});
