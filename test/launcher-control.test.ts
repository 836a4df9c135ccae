// run-tests lane: in-process
/**
 * The launcher's control socket (src/cli/launcher-control.ts), served over a real Unix socket with stand-in
 * kill and restart: a request is answered once, a malformed or unknown one is refused and changes nothing,
 * the launcher's error comes back to the client, the socket is 0600 and gone once closed, and a node killed
 * through it that nobody restarts is restarted by the launcher itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { askLauncher, controlSocketOf, serveLauncherControl } from '../src/cli/launcher-control.ts';
import { tempDir } from './helpers/network.ts';
import { waitFor } from './helpers/treasury-pair.ts';

/** Sends one raw line and returns the raw answer. */
function raw(path: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path, () => sock.write(line));
    let answer = '';
    sock.on('data', (d: Buffer) => (answer += d.toString()));
    sock.on('end', () => resolve(answer));
    sock.on('error', reject);
  });
}

test('the control socket: kill and restart by name, bad requests refused, the launcher restarts a node left killed', async () => {
  const datadir = await tempDir('teechain-control-');
  const calls: string[] = [];
  const ops = {
    kill: async (name: string) => {
      if (name === 'zed') throw new Error('zed is not a running process of this network');
      calls.push(`kill ${name}`);
    },
    restart: async (name: string) => void calls.push(`restart ${name}`),
  };
  const control = await serveLauncherControl(datadir, ops, () => undefined, 300);
  assert.ok(control);
  const path = controlSocketOf(datadir);
  assert.equal(statSync(path).mode & 0o777, 0o600);

  await askLauncher(path, { op: 'ping' }, 2_000);
  await askLauncher(path, { op: 'kill', name: 'bob' }, 2_000);
  await askLauncher(path, { op: 'restart', name: 'bob' }, 2_000);
  assert.deepEqual(calls, ['kill bob', 'restart bob']);
  await assert.rejects(askLauncher(path, { op: 'kill', name: 'zed' }, 2_000), /zed is not a running process/);
  for (const line of [
    'nonsense\n',
    '{"op":"format"}\n',
    '{"op":"kill"}\n',
    `{"op":"kill","name":"${'x'.repeat(65)}"}\n`,
  ])
    assert.match(await raw(path, line), /^\{"ok":false,"error":"not a request/, line);
  assert.deepEqual(calls, ['kill bob', 'restart bob'], 'a refused request changes nothing');

  // Killed and never asked to restart (the run went away): the launcher restarts it after the guard.
  await askLauncher(path, { op: 'kill', name: 'carol' }, 2_000);
  await waitFor(() => calls.includes('restart carol'), 5_000);
  assert.deepEqual(calls.slice(-2), ['kill carol', 'restart carol']);

  await control.close();
  assert.equal(existsSync(path), false, 'the socket is removed when the launcher stops');
  await assert.rejects(askLauncher(path, { op: 'ping' }, 2_000), { code: 'ENOENT' });
});
