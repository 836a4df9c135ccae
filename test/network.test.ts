/**
 * The whole local network as a user runs it: `teechain network up` (what `npm start` runs) from nothing,
 * payments with the CLI and the REST API, settlement of every channel checked on chain, Ctrl-C, resume.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Transaction, address as baddress, networks } from 'bitcoinjs-lib';
import { BitcoinRpcClient } from '../src/chain/rpc-client.ts';
import type { NetworkFile } from '../src/cli/client.ts';
import { tempDir, waitUntil } from './helpers/network.ts';

const CLI = join(import.meta.dirname, '../src/cli/main.ts');
const run = promisify(execFile);

function networkUp(datadir: string, extra: string[] = []) {
  const proc = spawn(process.execPath, ['--import', 'tsx', CLI, '--datadir', datadir, 'network', 'up', '--base-port', '0', '--deposit-sat', '500000', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  proc.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const ready = waitUntil(() => stdout.includes('Ctrl-C stops the network') || proc.exitCode !== null, 180_000, 'network up').then(() => {
    if (proc.exitCode !== null) throw new Error(`network up exited ${proc.exitCode}: ${stderr}`);
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, ready, exited, out: () => stdout, err: () => stderr };
}

async function cli(datadir: string, ...args: string[]) {
  const r = await run(process.execPath, ['--import', 'tsx', CLI, '--datadir', datadir, ...args]);
  return r.stdout;
}

async function api(n: NetworkFile['nodes'][number], method: string, path: string, body?: unknown) {
  const token = (await readFile(n.tokenFile, 'utf8')).trim();
  const res = await fetch(`${n.restUrl}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${JSON.stringify(json)}`);
  return json as any;
}

test('npm start: a funded three-node network from nothing, payments by CLI and curl-alike, settled on chain, stopped and resumed', { timeout: 300_000 }, async () => {
  const datadir = await tempDir('teechain-net-');
  const up = networkUp(datadir);
  await up.ready;
  assert.match(up.out(), /alice/);
  assert.match(up.out(), /carol/);
  // The dashboard comes up with the network, its page built and every node's attestation verified.
  const dashboardUrl = /^dashboard: (http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(up.out())?.[1];
  assert.ok(dashboardUrl, up.out());
  assert.match(await (await fetch(dashboardUrl)).text(), /<title>teechain dashboard<\/title>/);
  await waitUntil(async () => {
    const snap = (await (await fetch(`${dashboardUrl}api/snapshot`)).json()) as { nodes: Array<{ attestation: { verified: boolean } }>; channels: unknown[] };
    return snap.nodes.length === 3 && snap.nodes.every((n) => n.attestation.verified) && snap.channels.length === 2;
  }, 15_000, 'dashboard snapshot of the network');
  const network = JSON.parse(await readFile(join(datadir, 'network.json'), 'utf8')) as NetworkFile;
  assert.deepEqual(network.nodes.map((n) => n.name), ['alice', 'bob', 'carol']);
  for (const k of ['rpcUrl', 'rpcUser', 'rpcPassword'] as const) assert.ok(network.chain[k]);
  const [alice, bob, carol] = network.nodes as [NetworkFile['nodes'][number], NetworkFile['nodes'][number], NetworkFile['nodes'][number]];

  // alice → bob with the CLI; bob → carol with the REST API
  const paid = await cli(datadir, '--node', 'alice', 'pay', 'bob', '1000');
  assert.match(paid, /1,000 sat to bob succeeded/);
  const p = await api(bob, 'POST', '/v1/payments', { dest: carol.nodeId, amount_sat: 2500 });
  assert.equal(p.status, 'succeeded');
  // alice → carol with the CLI: no channel between them, so it is routed through bob (multi-hop)
  await waitUntil(async () => (await api(alice, 'GET', '/v1/graph')).nodes.length === 3, 15_000, 'channel graph gossiped to alice');
  assert.match(await cli(datadir, '--node', 'alice', 'pay', 'carol', '1000'), /1,000 sat to carol via bob \(fee 0 sat\) succeeded/);
  const json = JSON.parse(await cli(datadir, '--json', '--node', 'bob', 'channels'));
  assert.equal(json.length, 2);
  assert.match(await cli(datadir, 'attest', 'carol'), /carol: quote verified/);
  const info = JSON.parse(await cli(datadir, '--json', '--node', 'carol', 'getinfo'));
  assert.equal(info.node_id, carol.nodeId);
  // a usage error is one line on stderr and exit code 2, never a stack trace
  const bad = await cli(datadir, '--node', 'alice', 'pay', 'bob', 'abc').then(() => null, (e: { code: number; stderr: string }) => e);
  assert.equal(bad?.code, 2);
  assert.match(bad!.stderr, /^teechain: AMOUNT_SAT must be a whole number\n/);
  assert.doesNotMatch(bad!.stderr, /at .*\.ts:\d+/);

  // settle every channel from its opener; the chain pays exactly what the API showed
  const rpc = new BitcoinRpcClient({ url: network.chain.rpcUrl, user: network.chain.rpcUser, password: network.chain.rpcPassword });
  for (const opener of [alice, bob]) {
    const { channels } = await api(opener, 'GET', '/v1/channels');
    const c = channels.find((x: any) => x.initiator && x.status === 'open');
    const peer = network.nodes.find((n) => n.nodeId === c.peer_id)!;
    const [mine, theirs] = [await api(opener, 'GET', '/v1/getinfo'), await api(peer, 'GET', '/v1/getinfo')];
    const s = await api(opener, 'POST', `/v1/channels/${c.channel_id}/settle`, {});
    await rpc.call('generatetoaddress', [1, await rpc.call('getnewaddress', [])]);
    const tx = Transaction.fromHex((await rpc.call<{ hex: string }>('getrawtransaction', [s.txid, true])).hex);
    const outs = new Map(tx.outs.map((o) => [baddress.fromOutputScript(o.script, networks.regtest), o.value]));
    assert.equal(outs.get(mine.payout_address), BigInt(c.local_balance_sat) - BigInt(s.fee_sat));
    assert.equal(outs.get(theirs.payout_address), BigInt(c.remote_balance_sat));
  }
  const status = await cli(datadir, 'network', 'status');
  assert.match(status, /bob/);

  up.proc.kill('SIGINT');
  assert.equal(await up.exited, 0, up.err());

  // resume: same nodes, same channels (settled), chain kept
  const again = networkUp(datadir);
  await again.ready;
  const resumed = JSON.parse(await readFile(join(datadir, 'network.json'), 'utf8')) as NetworkFile;
  assert.deepEqual(resumed.nodes.map((n) => n.nodeId), network.nodes.map((n) => n.nodeId));
  const { channels } = await api(resumed.nodes[0]!, 'GET', '/v1/channels');
  assert.equal(channels[0].status, 'closed');
  again.proc.kill('SIGTERM');
  assert.equal(await again.exited, 0);
});
