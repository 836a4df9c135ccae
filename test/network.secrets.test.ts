// run-tests lane: light
/**
 * Secrets stay off the command line and out of other users' reach: the local network as `npm start`
 * runs it (real chain and node processes), checked through /proc as any local user could look.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { NetworkFile } from '../src/cli/client.ts';
import { spawnTracked, stopChild, tempDir, waitUntil } from './helpers/network.ts';

const CLI = join(import.meta.dirname, '../src/cli/main.ts');

function networkUp(datadir: string, extra: string[]) {
  // A process group of its own: if it must be SIGKILLed, its chain and nodes go with it.
  const proc = spawnTracked(
    process.execPath,
    [
      '--import',
      'tsx',
      CLI,
      '--datadir',
      datadir,
      'network',
      'up',
      '--base-port',
      '0',
      '--deposit-sat',
      '100000',
      '--no-dashboard',
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  proc.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const ready = waitUntil(
    () => stdout.includes('Ctrl-C stops the network') || proc.exitCode !== null,
    240_000,
    'network up',
  ).then(() => {
    if (proc.exitCode !== null) throw new Error(`network up exited ${proc.exitCode}: ${stderr}`);
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, ready, exited, err: () => stderr };
}

/** Every process's command line this user can read, as other local users could too (`ps`, /proc/<pid>/cmdline). */
async function commandLines(): Promise<Array<{ pid: string; cmdline: string }>> {
  const out: Array<{ pid: string; cmdline: string }> = [];
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null);
    if (cmdline) out.push({ pid, cmdline: cmdline.split('\0').join(' ') });
  }
  return out;
}

const modeOf = async (path: string) => (await stat(path)).mode & 0o777;

/** Starts a network, checks what any local user could read of it, stops it. */
async function checkNetwork(extra: string[], secretsOf: (datadir: string, network: NetworkFile) => Promise<string[]>) {
  // A datadir that does not exist yet: every directory in it is made by our tooling.
  const datadir = join(await tempDir('teechain-secrets-'), 'net');
  const up = networkUp(datadir, extra);
  try {
    await up.ready;
    const network = JSON.parse(await readFile(join(datadir, 'network.json'), 'utf8')) as NetworkFile;
    const password = network.chain.rpcPassword;
    assert.ok(password.length >= 32, 'the chain has an RPC password');
    const secrets = [password, ...(await secretsOf(datadir, network))];

    const lines = await commandLines();
    const ours = lines.filter((l) => l.cmdline.includes(datadir));
    const members = network.nodes.flatMap((n) => [n, ...(n.backups ?? [])]).length;
    assert.ok(
      ours.length >= 2 + members,
      `the network-up, chain and ${members} node processes are all seen (${ours.length})`,
    );
    for (const l of lines) {
      for (const s of secrets)
        assert.ok(!l.cmdline.includes(s), `process ${l.pid} has a secret on its command line: ${l.cmdline}`);
    }

    const files = ['network.json', 'attestation.key', 'chain/.cookie', 'chain/wallet.json'];
    for (const n of network.nodes.flatMap((x) => [x, ...(x.backups ?? [])])) {
      for (const f of ['admin.token', 'readonly.token', 'payout-wallet.json']) files.push(`nodes/${n.name}/${f}`);
    }
    for (const f of files) assert.equal((await modeOf(join(datadir, f))).toString(8), '600', f);
    // Any other file that holds one of the secrets is private too.
    for (const f of await walk(datadir)) {
      const text = await readFile(f, 'latin1');
      if (secrets.some((s) => text.includes(s))) assert.equal((await modeOf(f)).toString(8), '600', f);
    }
    const dirs = [
      '',
      'chain',
      'nodes',
      ...network.nodes.flatMap((x) => [x, ...(x.backups ?? [])]).map((n) => `nodes/${n.name}`),
    ];
    for (const d of dirs) assert.equal((await modeOf(join(datadir, d))).toString(8), '700', `directory ${d || '.'}`);
  } finally {
    await stopChild(up.proc, 'SIGTERM');
  }
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if (e.isFile() && (await stat(p)).size < 1_000_000) out.push(p);
  }
  return out;
}

test(
  'npm start: no node or chain process has the RPC password on its command line; network.json and every secret file are 0600',
  { timeout: 300_000 },
  async () => {
    await checkNetwork(['--nodes', '2', '--topology', 'none'], async (datadir, network) => {
      const tokens = [];
      for (const n of network.nodes) tokens.push((await readFile(n.tokenFile, 'utf8')).trim());
      assert.ok(existsSync(join(datadir, 'chain/.cookie')));
      return tokens;
    });
  },
);

test(
  "npm start -- --committee 3: backups get the primary's join tokens off the command line; the token file is 0600",
  { timeout: 300_000 },
  async () => {
    await checkNetwork(['--nodes', '1', '--topology', 'none', '--committee', '3'], async (datadir, network) => {
      const primary = network.nodes[0]!;
      assert.deepEqual(
        primary.backups?.map((b) => b.name),
        ['alice-b1', 'alice-b2'],
      );
      const file = join(datadir, 'nodes/alice/committee-join-tokens');
      assert.equal((await modeOf(file)).toString(8), '600');
      const tokens = (await readFile(file, 'utf8')).trim().split('\n');
      assert.equal(tokens.length, 2);
      assert.ok(tokens.every((t) => /^[0-9a-f]{64}$/.test(t)));
      // network up returned only once the committee was formed: both backups were admitted with them.
      const token = (await readFile(primary.tokenFile, 'utf8')).trim();
      const c = (await (
        await fetch(`${primary.restUrl}/v1/committee`, { headers: { authorization: `Bearer ${token}` } })
      ).json()) as { formed: boolean; members: unknown[] };
      assert.equal(c.formed, true);
      assert.equal(c.members.length, 3);
      return [...tokens, token];
    });
  },
);

test(
  'a password or a join token on the command line is refused, with the safe ways named',
  { timeout: 120_000 },
  async () => {
    const run = (entry: string, args: string[]) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const p = spawnTracked(process.execPath, ['--import', 'tsx', join(import.meta.dirname, entry), ...args], {
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        p.stderr!.on('data', (d: Buffer) => {
          stderr += d.toString();
        });
        p.once('exit', (code) => resolve({ code, stderr }));
      });
    const dir = await tempDir('teechain-argv-');
    const node = await run('../src/node/main.ts', [
      '--datadir',
      dir,
      '--rpc-url',
      'http://127.0.0.1:1/',
      '--rpc-user',
      'u',
      '--rpc-password',
      'hunter2',
      '--attestation-key',
      join(dir, 'k'),
    ]);
    assert.equal(node.code, 2, node.stderr);
    assert.match(node.stderr, /--rpc-password-file FILE, TEECHAIN_RPC_PASSWORD or --rpc-cookie FILE/);
    const chain = await run('../src/chain/embedded/main.ts', [
      '--memory',
      '--rpcuser',
      'u',
      '--rpcpassword',
      'hunter2',
    ]);
    assert.equal(chain.code, 2, chain.stderr);
    assert.match(chain.stderr, /--rpcpassword-file FILE or TEECHAIN_RPC_PASSWORD/);
    const cli = await run('../src/cli/main.ts', [
      '--datadir',
      dir,
      'network',
      'up',
      '--bitcoind-rpc-url',
      'http://127.0.0.1:1/',
      '--bitcoind-rpc-password',
      'hunter2',
    ]);
    assert.equal(cli.code, 2, cli.stderr);
    assert.match(cli.stderr, /--bitcoind-rpc-password-file FILE or TEECHAIN_RPC_PASSWORD/);
    // A join token comes by file; a malformed one stops the node before it starts.
    await writeFile(join(dir, 'token'), 'not-a-token\n', { mode: 0o600 });
    const bad = await run('../src/node/main.ts', [
      '--datadir',
      dir,
      '--rpc-url',
      'http://127.0.0.1:1/',
      '--attestation-key',
      join(dir, 'k'),
      '--backup-of',
      '127.0.0.1:1',
      '--join-token-file',
      join(dir, 'token'),
    ]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /join token must be 64 hex characters/);
  },
);
