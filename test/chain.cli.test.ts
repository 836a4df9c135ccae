// run-tests lane: light
/** The runnable entry (src/chain/embedded/main.ts) as a real child process. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BitcoinRpcClient } from '../src/chain/rpc-client.ts';
import { tempDir } from './helpers/chain.ts';
import { spawnTracked, stopChild } from './helpers/processes.ts';

const MAIN = join(import.meta.dirname, '../src/chain/embedded/main.ts');

function startMain(args: string[]) {
  const proc = spawnTracked(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const firstLine = new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    void exited.then((code) => reject(new Error(`main.ts exited ${code} before printing: ${stderr}`)));
  });
  return { proc, firstLine, exited, stderr: () => stderr };
}

test('main.ts starts, prints its JSON line, answers getblockcount over HTTP, exits 0 on SIGINT', async () => {
  const dir = tempDir('chain-cli-');
  const child = startMain(['--datadir', dir.dir]);
  try {
    const ready = JSON.parse(await child.firstLine) as {
      rpcUrl: string;
      rpcUser: string;
      rpcPassword: string;
      height: number;
      cookieFile: string;
    };
    assert.match(ready.rpcUrl, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.equal(ready.rpcUser, '__cookie__');
    assert.ok(ready.height >= 432);
    assert.equal(ready.cookieFile, join(dir.dir, '.cookie'));
    const rpc = new BitcoinRpcClient({ url: ready.rpcUrl, user: ready.rpcUser, password: ready.rpcPassword });
    assert.equal(await rpc.getBlockCount(), ready.height);
    assert.match(child.stderr(), /mined \d+ blocks to activate segwit/);

    child.proc.kill('SIGINT');
    assert.equal(await child.exited, 0, child.stderr());
    assert.equal(existsSync(ready.cookieFile), false, 'cookie removed on a clean stop');

    // Again on the same datadir: the chain is reopened, not re-created; the `stop` RPC also ends it cleanly.
    const again = startMain(['--datadir', dir.dir]);
    try {
      const second = JSON.parse(await again.firstLine) as typeof ready;
      assert.equal(second.height, ready.height);
      const rpc2 = await BitcoinRpcClient.fromCookie(second.rpcUrl, second.cookieFile);
      assert.equal(await rpc2.call('stop'), 'Bitcoin Core stopping');
      assert.equal(await again.exited, 0, again.stderr());
    } finally {
      await stopChild(again.proc, 'SIGKILL');
    }
  } finally {
    await stopChild(child.proc, 'SIGKILL');
    dir.cleanup();
  }
});

test('main.ts refuses bad arguments with a message and exit code 2', async () => {
  const child = startMain(['--port', 'seventy']);
  child.firstLine.catch(() => {});
  try {
    assert.equal(await child.exited, 2);
    assert.match(child.stderr(), /--datadir DIR is required|--port/);
  } finally {
    await stopChild(child.proc, 'SIGKILL');
  }
});
