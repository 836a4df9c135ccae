// run-tests lane: light
/**
 * Structured logs of a real node process: one JSON object per line (pino), the --log-level flag
 * respected, and no secret (API tokens, the chain's RPC password) in any line, whatever the level.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { NODE_MAIN } from '../src/cli/processes.ts';
import { NodeProcess, type TestChain, startE2eFile } from './helpers/network.ts';

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

let chain: TestChain;
let dir: string;
let key: string;

before(async () => ({ chain, dir, key } = await startE2eFile('teechain-logs-')));
after(() => chain?.close());

async function lines(file: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(file, 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('--log-level debug: JSON lines with level, time, name; requests logged without their token', async () => {
  const file = join(dir, 'debug.log');
  const node = await NodeProcess.start(join(dir, 'n1'), chain, key, ['--log-level', 'debug', '--log-file', file]);
  try {
    await node.ok('GET', '/v1/getinfo');
    await node.api('GET', '/v1/balance', undefined, node.readonlyToken);
    await node.api('GET', '/metrics', undefined, node.readonlyToken);
    await node.api('POST', '/v1/payments', { dest: 'ff'.repeat(33), amount_sat: 1 });
    await node.api('GET', '/v1/getinfo', undefined, 'ab'.repeat(32)); // a wrong token is not logged either
  } finally {
    await node.kill('SIGTERM');
  }
  const text = await readFile(file, 'utf8');
  const log = await lines(file);
  for (const l of log) {
    assert.equal(typeof l.time, 'string');
    assert.ok(LEVELS[l.level as number], JSON.stringify(l));
    assert.equal(l.name, 'node');
    assert.equal(typeof l.msg, 'string');
  }
  const started = log.find((l) => l.msg === 'node started');
  assert.equal(started?.node_id, node.id);
  const requests = log.filter((l) => l.msg === 'request');
  assert.ok(requests.some((r) => r.path === '/v1/getinfo' && r.status === 200 && r.level === 20));
  assert.ok(requests.some((r) => r.path === '/v1/payments' && r.status === 404 && r.code === 'unknown_destination'));
  assert.ok(requests.some((r) => r.path === '/v1/getinfo' && r.status === 401));
  assert.ok(log.some((l) => l.msg === 'node stopping'));
  for (const secret of [node.token, node.readonlyToken, 'ab'.repeat(32), chain.rpcPassword])
    assert.ok(!text.includes(secret), 'a secret is in the log');
  assert.doesNotMatch(text, /authorization|bearer/i);
});

test('--log-level warn writes its warnings and nothing at info or debug; a bad level is a usage error', async () => {
  const file = join(dir, 'warn.log');
  const node = await NodeProcess.start(join(dir, 'n2'), chain, key, ['--log-level', 'warn', '--log-file', file]);
  try {
    await node.ok('GET', '/v1/getinfo'); // a debug line at --log-level debug
    // A request answered 502 (nothing listens on port 1) is logged at warn: the log must show it.
    const unreachable = await node.api('POST', '/v1/peers', { address: '127.0.0.1:1' });
    assert.equal(unreachable.status, 502);
  } finally {
    await node.kill('SIGTERM');
  }
  const written = await lines(file);
  const warned = written.filter((l) => l.msg === 'request answered with an error');
  assert.ok(
    warned.some((l) => l.level === 40 && l.path === '/v1/peers' && l.status === 502 && l.code === 'peer_unreachable'),
    `the 502 is logged at warn: ${JSON.stringify(written)}`,
  );
  assert.deepEqual(
    written.filter((l) => (l.level as number) < 40),
    [],
    'nothing below warn is written',
  );
  // What the debug run logged at info and debug is missing here.
  for (const msg of ['node started', 'request', 'node stopping'])
    assert.ok(!written.some((l) => l.msg === msg), `'${msg}' logged at warn`);

  const run = promisify(execFile);
  const bad = await run(process.execPath, [
    '--import',
    'tsx',
    NODE_MAIN,
    '--rpc-url',
    chain.rpcUrl,
    '--attestation-key',
    key,
    '--datadir',
    join(dir, 'n3'),
    '--log-level',
    'loud',
  ]).then(
    () => null,
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(bad?.code, 2);
  assert.match(bad!.stderr, /--log-level must be one of fatal, error, warn, info, debug, trace, silent/);
});
