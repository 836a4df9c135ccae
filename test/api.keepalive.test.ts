/**
 * A request sent on a kept-alive socket while the server's event loop is busy is answered, not cut off with
 * "other side closed" (src/api/listen.ts says why it could be). Real processes, real sockets: the server is a
 * child process whose event loop is kept busy by another request at the moment the keep-alive timer expires.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { spawnReadyTracked } from './helpers/processes.ts';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'http', 'busy-server.ts');

/** A request on its own connection (not the pool fetch uses). */
function rawGet(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function raceOutcome(args: string[]): Promise<string> {
  const child = await startServer(args);
  try {
    const base = `http://127.0.0.1:${child.port}`;
    assert.equal(await (await fetch(`${base}/ok`)).text(), 'ok'); // fetch keeps this socket for reuse
    await new Promise((r) => setTimeout(r, 1_000));
    // The server's loop is busy for 5.5 s from t = 1 s: at t = 5 s its keep-alive timer for the fetch socket
    // expires, and a request sent on that socket at t = 1.5 s (well inside fetch's reuse window) is waiting.
    const busy = rawGet(child.port, '/busy?ms=5500');
    await new Promise((r) => setTimeout(r, 500));
    const outcome = await fetch(`${base}/ok`, { method: 'POST' }).then(
      async (r) => `answered ${await r.text()}`,
      (e: Error) => `failed: ${(e.cause as Error | undefined)?.message ?? e.message}`,
    );
    assert.equal(await busy, 200);
    return outcome;
  } finally {
    child.kill();
  }
}

async function startServer(args: string[]): Promise<{ port: number; kill: () => void }> {
  const { proc, ready } = await spawnReadyTracked<number>(FIXTURE, args);
  return { port: ready, kill: () => proc.kill('SIGKILL') };
}

test('a request on a kept-alive socket is answered although the busy server passed its keep-alive time', async () => {
  assert.equal(await raceOutcome([]), 'answered ok');
});

test("the race is real: with Node's default keep-alive timings the same request is cut off", async () => {
  assert.match(await raceOutcome(['--default-keepalive']), /^failed: .*(other side closed|socket|reset)/i);
});
