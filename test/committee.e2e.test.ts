/**
 * Committee chains end to end: 2-of-3 committees of real node processes (each member its own enclave,
 * sealed state, TCP sessions) on both sides of a channel, the embedded regtest chain, kill -9.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Transaction, address as baddress, networks, script as bscript } from 'bitcoinjs-lib';
import { attestationKey, fundDeposit, joinTokenEnv, NodeProcess, openChannel, startTestChain, tempDir, waitUntil, type TestChain } from './helpers/network.ts';

let chain: TestChain;
let dir: string;
let key: string;

before(async () => {
  dir = await tempDir();
  chain = await startTestChain();
  key = await attestationKey(dir);
});
after(async () => {
  await chain?.close();
});

/** A primary with `--committee 3` and two backups joining it, each with one of its join tokens; resolves once the chain is formed and connected. */
async function committee(name: string): Promise<NodeProcess[]> {
  const p = await NodeProcess.start(join(dir, `${name}0`), chain, key, ['--committee', '3']);
  const backups = [];
  for (const i of [1, 2]) backups.push(await NodeProcess.start(join(dir, `${name}${i}`), chain, key, ['--backup-of', p.ready.p2p], await joinTokenEnv(p, i - 1)));
  await waitUntil(async () => {
    const c = (await p.api('GET', '/v1/committee')).body;
    return c.formed && c.members.every((m: { connected: boolean }) => m.connected) && c.acked_seq === c.seq;
  }, 20_000, `committee ${name} formed`);
  return [p, ...backups];
}

async function channelPair(name: string) {
  const [a, b] = await Promise.all([committee(`${name}-a`), committee(`${name}-b`)]);
  const [da, db] = await Promise.all([fundDeposit(a[0]!, 1_000_000), fundDeposit(b[0]!, 500_000)]);
  const ch = await openChannel(a[0]!, b[0]!, [da], [db]);
  return { a, b, ch };
}

/** The settlement's outputs by address, once mined; asserts that every input carries 2 signatures. */
async function minedOutputs(txid: string): Promise<Map<string, bigint>> {
  await chain.mine(1);
  const raw = await chain.rpc.call<{ hex: string; confirmations: number }>('getrawtransaction', [txid, true]);
  assert.ok(raw.confirmations >= 1, 'settlement is confirmed');
  const tx = Transaction.fromHex(raw.hex);
  for (const input of tx.ins) {
    const ws = bscript.decompile(input.witness.at(-1)!)!;
    assert.deepEqual([ws[0], ws[4], ws[5]], [0x52, 0x53, 0xae], 'OP_2 <3 keys> OP_3 OP_CHECKMULTISIG');
    assert.equal(input.witness.length, 4, 'dummy + 2 signatures + 2-of-3 witness script');
  }
  const outs = new Map<string, bigint>();
  for (const o of tx.outs) outs.set(baddress.fromOutputScript(o.script, networks.regtest), o.value);
  return outs;
}

async function payMany(from: NodeProcess, ch: string, n: number, amount: number): Promise<void> {
  const r = await from.api('POST', '/v1/payments/batch', { payments: Array.from({ length: n }, () => ({ channel_id: ch, amount_sat: amount })) });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body.succeeded, n, JSON.stringify(r.body).slice(0, 300));
}

describe('committee chains end to end', () => {
  test('2-of-3 on both sides: deposits are 2-of-3, payments replicate, the primary is killed, two backups settle the last balances', async () => {
    const { a, b, ch } = await channelPair('kill-primary');
    const metrics = await fetch(`${a[0]!.ready.rest_url}/metrics`, { headers: { authorization: `Bearer ${a[0]!.readonlyToken}` } }).then((r) => r.text());
    assert.match(metrics, /^teechain_committee_members_connected\{role="primary"\} 3$/m);
    const deps = (await a[0]!.ok('GET', '/v1/deposits')).deposits;
    assert.equal(deps[0].m, 2);
    assert.equal(deps[0].pubkeys.length, 3);
    await payMany(a[0]!, ch, 300, 100);
    await payMany(b[0]!, ch, 20, 1_000);
    const expectA = 1_000_000 - 30_000 + 20_000;
    const expectB = 500_000 + 30_000 - 20_000;
    // Backups hold the acknowledged state before the primary dies.
    const seen = await a[1]!.ok('GET', `/v1/channels/${ch}`);
    assert.equal(seen.local_balance_sat, String(expectA));
    const payoutA = (await a[0]!.ok('GET', '/v1/getinfo')).payout_address;
    const payoutB = (await b[0]!.ok('GET', '/v1/getinfo')).payout_address;
    await a[0]!.kill('SIGKILL');
    // A backup cannot pay, but it settles with the other backup's signatures and shares.
    const refused = await a[1]!.api('POST', '/v1/payments', { channel_id: ch, amount_sat: 5 });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'not_primary');
    const s = await a[1]!.ok('POST', `/v1/channels/${ch}/settle`);
    const outs = await minedOutputs(s.txid);
    assert.equal(outs.get(payoutB), BigInt(expectB), 'the peer gets exactly its last acknowledged balance');
    assert.equal(outs.get(payoutA), BigInt(expectA) - BigInt(s.fee_sat), 'we get ours less the fee');
    // The peer's committee learns of it from the chain.
    await waitUntil(async () => (await b[0]!.ok('GET', `/v1/channels/${ch}`)).status === 'closed', 15_000, 'peer sees the settlement');
    for (const n of [...a.slice(1), ...b]) await n.kill('SIGTERM');
  });

  test('a backup killed freezes payments; restarted, it catches up from its sealed state and payments resume', async () => {
    const { a, b, ch } = await channelPair('restart-backup');
    await payMany(a[0]!, ch, 50, 10);
    await a[2]!.kill('SIGKILL');
    await waitUntil(async () => (await a[0]!.ok('GET', '/v1/committee')).members[2].connected === false, 10_000, 'primary sees the tail down');
    const frozen = await a[0]!.api('POST', '/v1/payments', { channel_id: ch, amount_sat: 10 });
    assert.equal(frozen.status, 503);
    assert.equal(frozen.body.error.code, 'committee_unavailable');
    await a[2]!.launch();
    await waitUntil(async () => {
      const c = (await a[0]!.ok('GET', '/v1/committee'));
      return c.members.every((m: { connected: boolean }) => m.connected) && c.acked_seq === c.seq;
    }, 20_000, 'the restarted tail rejoins and acknowledges the latest update');
    await payMany(a[0]!, ch, 50, 10);
    const tail = await a[2]!.ok('GET', `/v1/channels/${ch}`);
    assert.equal(tail.total_sent_sat, '1000', 'the tail holds every acknowledged payment');
    for (const n of [...a, ...b]) await n.kill('SIGTERM');
  });

  test('a random member killed mid-stream: no acknowledged payment is lost, nothing is paid twice', async () => {
    const { a, b, ch } = await channelPair('kill-random');
    const victim = Math.floor(Math.random() * 3);
    const killAfter = 20 + Math.floor(Math.random() * 60);
    let acked = 0;
    let attempted = 0;
    let killed = false;
    const worker = async () => {
      while (!killed || attempted < killAfter) {
        if (killed) break;
        attempted += 10;
        const r = await a[0]!.api('POST', '/v1/payments', { channel_id: ch, amount_sat: 10 }).catch(() => null);
        if (r?.status === 201 && r.body.status === 'succeeded') {
          acked += 10;
          if (acked / 10 >= killAfter && !killed) { killed = true; await a[victim]!.kill('SIGKILL'); }
        }
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    const payoutB = (await b[0]!.ok('GET', '/v1/getinfo')).payout_address;
    const settler = victim === 0 ? a[1]! : a[0]!;
    const s = await settler.ok('POST', `/v1/channels/${ch}/settle`);
    const outs = await minedOutputs(s.txid);
    const toB = outs.get(payoutB)! - 500_000n;
    assert.ok(toB >= BigInt(acked), `peer got ${toB}, at least the ${acked} acknowledged (victim ${victim})`);
    assert.ok(toB <= BigInt(attempted), `peer got ${toB}, at most the ${attempted} attempted`);
    for (const n of [...a, ...b]) await n.kill('SIGTERM');
  });
});
