/**
 * The REST wallet API over real HTTP against real node processes: every route's happy path and its
 * documented 4xx answers, auth, idempotency, the OpenAPI document against what is served, and a fuzz.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { attestationKey, fundDeposit, NodeProcess, openChannel, startTestChain, tempDir, type TestChain } from './helpers/network.ts';

let chain: TestChain;
let a: NodeProcess;
let b: NodeProcess;
let ch: string;
let spare: string;

before(async () => {
  const dir = await tempDir();
  chain = await startTestChain();
  const key = await attestationKey(dir);
  a = await NodeProcess.start(join(dir, 'a'), chain, key);
  b = await NodeProcess.start(join(dir, 'b'), chain, key);
  const [da, db] = await Promise.all([fundDeposit(a, 1_000_000), fundDeposit(b, 500_000)]);
  spare = await fundDeposit(a, 70_000);
  ch = await openChannel(a, b, [da], [db]);
});
after(async () => {
  await a?.kill('SIGTERM');
  await b?.kill('SIGTERM');
  await chain?.close();
});

/** Snapshot of everything a rejected request must leave alone. */
async function stateOf(n: NodeProcess) {
  const [channels, deposits, balance, payments] = await Promise.all([
    n.ok('GET', '/v1/channels'), n.ok('GET', '/v1/deposits'), n.ok('GET', '/v1/balance'), n.ok('GET', '/v1/payments?limit=1000'),
  ]);
  return { channels, deposits, balance, payments: payments.total };
}

function expectError(r: { status: number; body: any }, status: number, code: string): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body?.error?.code, code, JSON.stringify(r.body));
  assert.equal(typeof r.body.error.message, 'string');
}

describe('REST API', () => {
  test('getinfo, attestation, balance, deposits, peers, channels, payments: happy paths with LND-style fields', async () => {
    const info = await a.ok('GET', '/v1/getinfo');
    assert.equal(info.node_id, a.id);
    assert.match(info.measurement, /^[0-9a-f]{64}$/);
    assert.equal(info.network, 'regtest');
    assert.ok(info.block_height > 400);
    assert.equal(info.num_channels, 1);
    const att = await a.ok('GET', `/v1/attestation?nonce=${'11'.repeat(32)}`);
    assert.equal(att.quote.nonce, '11'.repeat(32));
    assert.equal(att.quote.measurement, info.measurement);
    const bal = await a.ok('GET', '/v1/balance');
    assert.equal(bal.deposits.free_sat, '70000');
    assert.equal(bal.channels.local_balance_sat, '1000000');
    assert.equal((await a.ok('GET', '/v1/peers')).peers[0].peer_id, b.id);
    const c = await a.ok('GET', `/v1/channels/${ch}`);
    for (const k of ['channel_id', 'peer_id', 'local_balance_sat', 'remote_balance_sat', 'status']) assert.ok(k in c, k);
    const p = await a.ok('POST', '/v1/payments', { dest: b.id, amount_sat: 1234 });
    assert.equal(p.status, 'succeeded');
    const batch = await a.ok('POST', '/v1/payments/batch', { payments: [{ channel_id: ch, amount_sat: 1 }, { channel_id: ch, amount_sat: 2 }] });
    assert.equal(batch.succeeded, 2);
    const list = await a.ok('GET', '/v1/payments?limit=2');
    assert.equal(list.payments.length, 2);
    assert.equal(list.payments[0].amount_sat, 2);
    const received = await b.ok('GET', '/v1/payments?limit=10');
    assert.ok(received.payments.some((x: any) => x.direction === 'incoming' && x.amount_sat === 1234));
  });

  test('batch: the documented 10,000 entries fit in one request (dest or channel_id each), 10,001 are refused and move nothing', async () => {
    const sentBefore = BigInt((await a.ok('GET', `/v1/channels/${ch}`)).total_sent_sat);
    const payments = Array.from({ length: 10_000 }, (_, i) => (i % 2 === 0 ? { channel_id: ch, amount_sat: 1 } : { dest: b.id, amount_sat: 1 }));
    const r = await a.api('POST', '/v1/payments/batch', { payments });
    assert.equal(r.status, 201, JSON.stringify(r.body).slice(0, 300));
    assert.equal(r.body.succeeded, 10_000);
    assert.equal(BigInt((await a.ok('GET', `/v1/channels/${ch}`)).total_sent_sat), sentBefore + 10_000n);
    expectError(await a.api('POST', '/v1/payments/batch', { payments: [...payments, { channel_id: ch, amount_sat: 1 }] }), 400, 'invalid_argument');
    assert.equal(BigInt((await a.ok('GET', `/v1/channels/${ch}`)).total_sent_sat), sentBefore + 10_000n);
  });

  test('auth: no token or a wrong one is 401; the read-only token reads but cannot write (403)', async () => {
    expectError(await a.api('GET', '/v1/getinfo', undefined, null), 401, 'unauthorized');
    expectError(await a.api('GET', '/v1/getinfo', undefined, 'ab'.repeat(32)), 401, 'unauthorized');
    assert.equal((await a.api('GET', '/v1/channels', undefined, a.readonlyToken)).status, 200);
    const before = await stateOf(a);
    expectError(await a.api('POST', '/v1/payments', { channel_id: ch, amount_sat: 5 }, a.readonlyToken), 403, 'forbidden');
    expectError(await a.api('POST', '/v1/deposits', {}, a.readonlyToken), 403, 'forbidden');
    expectError(await a.api('POST', `/v1/channels/${ch}/settle`, {}, a.readonlyToken), 403, 'forbidden');
    assert.deepEqual(await stateOf(a), before);
  });

  test('every write route refuses bad input with its code and changes nothing', async () => {
    const before = await stateOf(a);
    const bad: Array<[string, string, unknown, number, string]> = [
      ['POST', '/v1/payments', {}, 400, 'invalid_argument'],
      ['POST', '/v1/payments', { channel_id: ch }, 400, 'invalid_argument'],
      ['POST', '/v1/payments', { channel_id: ch, amount_sat: '5' }, 400, 'invalid_argument'],
      ['POST', '/v1/payments', { channel_id: ch, amount_sat: -5 }, 400, 'invalid_argument'],
      ['POST', '/v1/payments', { channel_id: ch, amount_sat: 0 }, 400, 'invalid_argument'],
      ['POST', '/v1/payments', { channel_id: ch, amount_sat: 1.5 }, 400, 'invalid_argument'],
      ['POST', '/v1/payments', { channel_id: ch, amount_sat: 1e300 }, 400, 'invalid_argument'],
      ['POST', '/v1/payments', { channel_id: ch, amount_sat: 2_000_000_000_000_000 }, 409, 'insufficient_funds'],
      ['POST', '/v1/payments', { channel_id: 'zz', amount_sat: 5 }, 400, 'invalid_argument'],
      ['POST', '/v1/payments', { channel_id: 'ab'.repeat(32), amount_sat: 5 }, 404, 'unknown_channel'],
      ['POST', '/v1/payments', { dest: 'cd'.repeat(33), amount_sat: 5 }, 404, 'unknown_destination'], // no channel with it: routed, and no such node is known
      ['POST', '/v1/payments', { channel_id: ch, amount_sat: 5, extra: 1 }, 400, 'invalid_argument'],
      ['POST', '/v1/payments', '{"channel_id": ', 400, 'invalid_argument'],
      ['POST', '/v1/payments/batch', { payments: [] }, 400, 'invalid_argument'],
      ['POST', '/v1/payments/batch', { payments: [{ amount_sat: 1 }] }, 400, 'invalid_argument'],
      ['POST', '/v1/payments/batch', { payments: [{ channel_id: ch, dest: b.id, amount_sat: 1 }] }, 400, 'invalid_argument'],
      ['POST', '/v1/payments/batch', { payments: [{ dest: b.id, amount_sat: 1, max_fee_sat: -1 }] }, 400, 'invalid_argument'],
      ['POST', '/v1/payments', { dest: b.id, amount_sat: 5, max_fee_sat: 1.5 }, 400, 'invalid_argument'],
      ['POST', '/v1/deposits', { amount_sat: -1 }, 400, 'invalid_argument'],
      ['POST', '/v1/deposits', { fund: true }, 400, 'invalid_argument'],
      ['POST', '/v1/deposits/nope/funded', { txid: 'ab'.repeat(32), vout: 0 }, 404, 'unknown_deposit'],
      ['POST', '/v1/deposits/NOPE!/funded', { txid: 'ab'.repeat(32), vout: 0 }, 400, 'invalid_argument'],
      ['POST', `/v1/deposits/${spare}/funded`, { txid: 'ab', vout: 0 }, 400, 'invalid_argument'],
      ['POST', `/v1/deposits/${spare}/funded`, { txid: 'ab'.repeat(32), vout: 0 }, 409, 'deposit_not_free'],
      ['POST', '/v1/deposits/nope/release', {}, 404, 'unknown_deposit'],
      ['POST', `/v1/deposits/${spare}/release`, { address: 'not-an-address' }, 400, 'invalid_argument'],
      ['POST', '/v1/peers', { address: 'nonsense' }, 400, 'invalid_argument'],
      ['POST', '/v1/peers', { address: '127.0.0.1:1' }, 502, 'peer_unreachable'],
      ['POST', '/v1/peers', {}, 400, 'invalid_argument'],
      ['POST', '/v1/channels', { peer_id: 'ab'.repeat(33) }, 409, 'peer_not_connected'],
      ['POST', '/v1/channels', { peer_id: b.id, amount_sat: 10_000_000 }, 409, 'insufficient_funds'],
      ['POST', '/v1/channels', { peer_id: b.id, deposit_ids: ['nope'] }, 404, 'unknown_deposit'],
      ['POST', '/v1/channels', { peer_id: 7 }, 400, 'invalid_argument'],
      ['POST', `/v1/channels/${'ab'.repeat(32)}/settle`, {}, 404, 'unknown_channel'],
      ['POST', '/v1/channels/xyz/settle', {}, 400, 'invalid_argument'],
      ['POST', `/v1/channels/${ch}/deposits`, { deposit_id: 'nope' }, 404, 'unknown_deposit'],
      ['POST', `/v1/channels/${ch}/deposits/remove`, { deposit_id: spare }, 404, 'unknown_deposit'],
      ['GET', `/v1/channels/${'ab'.repeat(32)}`, undefined, 404, 'unknown_channel'],
      ['GET', '/v1/attestation', undefined, 400, 'invalid_argument'],
      ['GET', '/v1/attestation?nonce=xyz', undefined, 400, 'invalid_argument'],
      ['GET', '/v1/payments?limit=-1', undefined, 400, 'invalid_argument'],
      ['GET', '/v1/nope', undefined, 404, 'not_found'],
    ];
    for (const [method, path, body, status, code] of bad) {
      const r = await a.api(method, path, body);
      assert.equal(r.status, status, `${method} ${path} ${JSON.stringify(body)} → ${r.status} ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, code, `${method} ${path}`);
    }
    const after = await stateOf(a);
    // The refused payments are in the history as failed, but no balance or deposit moved.
    assert.deepEqual(after.channels, before.channels);
    assert.deepEqual(after.deposits, before.deposits);
    assert.deepEqual(after.balance, before.balance);
  });

  test('a retried payment with the same idempotency key pays once', async () => {
    const before = BigInt((await a.ok('GET', `/v1/channels/${ch}`)).local_balance_sat);
    const body = { channel_id: ch, amount_sat: 777, idempotency_key: 'retry-me-1' };
    const [r1, r2] = await Promise.all([a.ok('POST', '/v1/payments', body), a.ok('POST', '/v1/payments', body)]);
    const r3 = await a.ok('POST', '/v1/payments', body);
    assert.equal(r1.payment_id, r2.payment_id);
    assert.equal(r1.payment_id, r3.payment_id);
    assert.equal(BigInt((await a.ok('GET', `/v1/channels/${ch}`)).local_balance_sat), before - 777n);
    const conflict = await a.api('POST', '/v1/payments', { ...body, amount_sat: 778 });
    expectError(conflict, 409, 'idempotency_conflict');
  });

  test('the OpenAPI document describes exactly the routes served', async () => {
    const doc = await a.ok('GET', '/v1/openapi.json');
    assert.equal(doc.openapi, '3.0.3');
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, ops]) => Object.keys(ops).map((m) => [m.toUpperCase(), p] as const));
    assert.ok(documented.length >= 18);
    for (const [method, path] of documented) {
      const concrete = path.replace('{id}', path.includes('deposits/{id}') ? spare : ch);
      // A documented route exists: whatever it answers, it is not the catch-all "no such route".
      const r = await a.api(method, concrete.replace('/v1/attestation', `/v1/attestation?nonce=${'22'.repeat(16)}`), method === 'POST' ? {} : undefined, a.readonlyToken);
      assert.notEqual(r.body?.error?.code, 'not_found', `${method} ${path} is documented but not served`);
    }
    // And a route not in the document is not served.
    const r = await a.api('DELETE', `/v1/channels/${ch}`);
    expectError(r, 404, 'not_found');
  });

  test('fuzz: thousands of malformed requests, no 5xx, the node still serves', async () => {
    const before = await stateOf(a);
    const paths = ['/v1/payments', '/v1/payments/batch', '/v1/deposits', `/v1/deposits/${spare}/funded`, '/v1/peers', '/v1/channels', `/v1/channels/${ch}/deposits`, `/v1/channels/${ch}/deposits/remove`, '/v1/getinfo', '/v1/attestation', `/v1/channels/${ch}`, '/v1/payments?limit=abc'];
    const values: unknown[] = [null, true, -1, 0, 1.5, 1e308, -1e308, '', 'x'.repeat(5000), '0x10', [], [1, 2], {}, { __proto__: { amount_sat: 1 } }, 'ab'.repeat(32), Number.MAX_SAFE_INTEGER + 2];
    const fields = ['channel_id', 'amount_sat', 'dest', 'deposit_id', 'deposit_ids', 'address', 'txid', 'vout', 'payments', 'fund', 'peer_id', 'idempotency_key', '__proto__', 'constructor'];
    let seen5xx = 0;
    const N = 2500;
    for (let i = 0; i < N; i++) {
      const path = paths[i % paths.length]!;
      let body: unknown;
      const r = Math.random();
      if (r < 0.15) body = Buffer.from(Array.from({ length: 1 + (i % 64) }, () => Math.floor(Math.random() * 256))).toString('latin1');
      else if (r < 0.25) body = JSON.stringify(values[i % values.length]);
      else {
        const o: Record<string, unknown> = {};
        for (let k = 0; k < 1 + (i % 4); k++) o[fields[(i * 7 + k) % fields.length]!] = values[(i * 3 + k) % values.length];
        body = JSON.stringify(o);
      }
      const method = i % 5 === 0 ? 'GET' : 'POST';
      const res = await a.api(method, path, method === 'GET' ? undefined : body, i % 11 === 0 ? a.readonlyToken : a.token).catch((e) => ({ status: 599, body: String(e) }));
      if (res.status >= 500) {
        seen5xx++;
        assert.fail(`${method} ${path} ${String(body).slice(0, 200)} → ${res.status} ${JSON.stringify(res.body)}`);
      }
    }
    assert.equal(seen5xx, 0);
    assert.equal((await a.api('GET', '/v1/getinfo')).status, 200);
    // Nothing in the fuzz is a valid payment, settlement or release: channels and funds are as they were.
    const after = await stateOf(a);
    assert.deepEqual(after.channels, before.channels);
    assert.equal(after.balance.deposits.free_sat, before.balance.deposits.free_sat);
  });
});
