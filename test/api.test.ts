/**
 * The REST wallet API over real HTTP against real node processes: every route's happy path and its
 * documented 4xx answers, auth, idempotency, a seeded fuzz, and the OpenAPI document the node serves
 * against what it answers: every request and answer any test here makes is recorded, and every answer
 * is validated against the document (ajv), and scanned for the nodes' keys, tokens and passwords.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { Faucet } from '../src/chain/faucet.ts';
import { rng } from './helpers/hostile-host.ts';
import {
  attestationKey,
  fundDeposit,
  NodeProcess,
  openChannel,
  startTestChain,
  tempDir,
  waitUntil,
  type ApiAnswer,
  type TestChain,
} from './helpers/network.ts';
import { OpenApiChecker, type Exchange } from './helpers/openapi.ts';
import { assertNoSecret, attestationSecret, nodeSecrets, type Secret } from './helpers/secrets.ts';

let chain: TestChain;
let a: NodeProcess;
let b: NodeProcess;
let ch: string;
let spare: string;
let keyFile: string;
/** Every exchange of every test with either node, in order. */
const seen: Array<Exchange & { node: string }> = [];
/** The nodes' secrets once their channel is open (keys a settlement later lets the enclave forget are in here). */
let earlySecrets: Secret[] = [];

/** Makes `n.api` (and so `n.ok`) record each exchange as sent and received. */
function record(n: NodeProcess, name: string): void {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the REST answers have no per-route types to derive T from yet: this stands in for NodeProcess.api, with its signature as the API documents
  n.api = async <T = any>(
    method: string,
    path: string,
    body?: unknown,
    token: string | null = n.token,
  ): Promise<ApiAnswer<T>> => {
    const res = await fetch(`${n.ready.rest_url}${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    const contentType = res.headers.get('content-type') ?? '';
    seen.push({ node: name, method, path, body, authorized: token !== null, status: res.status, contentType, text });
    // As NodeProcess.api: JSON everywhere but GET /metrics (Prometheus text), which comes back as the string.
    return { status: res.status, body: !text ? null : contentType.includes('json') ? JSON.parse(text) : text };
  };
}

async function allSecrets(): Promise<Secret[]> {
  return [
    ...(await nodeSecrets('a', a.datadir, a.ready.measurement)),
    ...(await nodeSecrets('b', b.datadir, b.ready.measurement)),
    await attestationSecret(keyFile),
    { what: 'chain RPC password', value: chain.rpcPassword },
  ];
}

before(async () => {
  const dir = await tempDir();
  chain = await startTestChain();
  const key = (keyFile = await attestationKey(dir));
  [a, b] = await Promise.all([
    NodeProcess.start(join(dir, 'a'), chain, key),
    NodeProcess.start(join(dir, 'b'), chain, key),
  ]);
  record(a, 'a');
  record(b, 'b');
  const [da, db] = await Promise.all([fundDeposit(a, 1_000_000), fundDeposit(b, 500_000)]);
  spare = await fundDeposit(a, 70_000);
  ch = await openChannel(a, b, [da], [db]);
  earlySecrets = await allSecrets();
});
after(async () => {
  await a?.kill('SIGTERM');
  await b?.kill('SIGTERM');
  await chain?.close();
});

/** Snapshot of everything a rejected request must leave alone. */
async function stateOf(n: NodeProcess) {
  const [channels, deposits, balance, payments] = await Promise.all([
    n.ok('GET', '/v1/channels'),
    n.ok('GET', '/v1/deposits'),
    n.ok('GET', '/v1/balance'),
    n.ok('GET', '/v1/payments?limit=1000'),
  ]);
  return { channels, deposits, balance, payments: payments.total };
}

function expectError(
  r: { status: number; body: { error?: { code?: string; message?: unknown } } | null },
  status: number,
  code: string,
): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body?.error?.code, code, JSON.stringify(r.body));
  assert.equal(typeof r.body?.error?.message, 'string');
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
    for (const k of ['channel_id', 'peer_id', 'local_balance_sat', 'remote_balance_sat', 'status'])
      assert.ok(k in c, k);
    const p = await a.ok('POST', '/v1/payments', { dest: b.id, amount_sat: 1234 });
    assert.equal(p.status, 'succeeded');
    const batch = await a.ok('POST', '/v1/payments/batch', {
      payments: [
        { channel_id: ch, amount_sat: 1 },
        { channel_id: ch, amount_sat: 2 },
      ],
    });
    assert.equal(batch.succeeded, 2);
    const list = await a.ok('GET', '/v1/payments?limit=2');
    assert.equal(list.payments.length, 2);
    assert.equal(list.payments[0].amount_sat, 2);
    const received = await b.ok('GET', '/v1/payments?limit=10');
    assert.ok(
      received.payments.some(
        (x: { direction: string; amount_sat: number }) => x.direction === 'incoming' && x.amount_sat === 1234,
      ),
    );
  });

  test('batch: the documented 10,000 entries fit in one request (dest or channel_id each), 10,001 are refused and move nothing', async () => {
    const sentBefore = BigInt((await a.ok('GET', `/v1/channels/${ch}`)).total_sent_sat);
    const payments = Array.from({ length: 10_000 }, (_, i) =>
      i % 2 === 0 ? { channel_id: ch, amount_sat: 1 } : { dest: b.id, amount_sat: 1 },
    );
    const r = await a.api('POST', '/v1/payments/batch', { payments });
    assert.equal(r.status, 201, JSON.stringify(r.body).slice(0, 300));
    // The answer comes when all are acknowledged or after 10 s: on a loaded machine some may still be in flight.
    assert.equal(r.body.failed, 0);
    assert.equal(r.body.results.length, 10_000);
    assert.ok(r.body.results.every((x: { status: string }) => x.status === 'succeeded' || x.status === 'in_flight'));
    await waitUntil(
      async () => {
        const c = await a.ok('GET', `/v1/channels/${ch}`);
        return c.total_acked_sat === c.total_sent_sat;
      },
      60_000,
      'the batch acknowledged',
    );
    assert.equal(BigInt((await a.ok('GET', `/v1/channels/${ch}`)).total_sent_sat), sentBefore + 10_000n);
    expectError(
      await a.api('POST', '/v1/payments/batch', { payments: [...payments, { channel_id: ch, amount_sat: 1 }] }),
      400,
      'invalid_argument',
    );
    assert.equal(BigInt((await a.ok('GET', `/v1/channels/${ch}`)).total_sent_sat), sentBefore + 10_000n);
  });

  test('batch: each entry answered at its position with its own outcome, a refused one alone with its code', async () => {
    const before = BigInt((await a.ok('GET', `/v1/channels/${ch}`)).total_sent_sat);
    const r = await a.api('POST', '/v1/payments/batch', {
      payments: [
        { channel_id: ch, amount_sat: 3 },
        { channel_id: ch, amount_sat: 2_000_000_000_000_000 }, // more than the channel holds
        { dest: 'cd'.repeat(33), amount_sat: 4 }, // no channel with it: routed, and nobody announces it
        { dest: b.id, amount_sat: 5 }, // direct: b is a peer with an open channel
      ],
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const res = r.body.results as Array<{ payment_id: string; status: string; failure_code: string | null }>;
    assert.deepEqual(
      res.map((x) => [x.status, x.failure_code]),
      [
        ['succeeded', null],
        ['failed', 'insufficient_funds'],
        ['failed', 'unknown_destination'],
        ['succeeded', null],
      ],
    );
    assert.equal(r.body.succeeded, 2);
    assert.equal(r.body.failed, 2);
    assert.equal(new Set(res.map((x) => x.payment_id)).size, 4);
    const hist = (await a.ok('GET', '/v1/payments?limit=10')).payments as Array<{ payment_id: string; status: string }>;
    for (const x of res) assert.equal(hist.find((h) => h.payment_id === x.payment_id)?.status, x.status);
    assert.equal(BigInt((await a.ok('GET', `/v1/channels/${ch}`)).total_sent_sat), before + 8n);
  });

  test('auth: no token or a wrong one is 401; the read-only token reads but cannot write (403)', async () => {
    expectError(await a.api('GET', '/v1/getinfo', undefined, null), 401, 'unauthorized');
    expectError(await a.api('GET', '/v1/getinfo', undefined, 'ab'.repeat(32)), 401, 'unauthorized');
    assert.equal((await a.api('GET', '/v1/channels', undefined, a.readonlyToken)).status, 200);
    const before = await stateOf(a);
    expectError(
      await a.api('POST', '/v1/payments', { channel_id: ch, amount_sat: 5 }, a.readonlyToken),
      403,
      'forbidden',
    );
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
      [
        'POST',
        '/v1/payments/batch',
        { payments: [{ channel_id: ch, dest: b.id, amount_sat: 1 }] },
        400,
        'invalid_argument',
      ],
      [
        'POST',
        '/v1/payments/batch',
        { payments: [{ dest: b.id, amount_sat: 1, max_fee_sat: -1 }] },
        400,
        'invalid_argument',
      ],
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
      assert.equal(
        r.status,
        status,
        `${method} ${path} ${JSON.stringify(body)} → ${r.status} ${JSON.stringify(r.body)}`,
      );
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

  test('fuzz: thousands of malformed requests, no 5xx, the node still serves', async (t) => {
    const seed = Number(process.env.API_FUZZ_SEED ?? process.env.TEST_SEED ?? randomInt(2 ** 32));
    t.diagnostic(`API_FUZZ_SEED=${seed}`);
    console.log(`api fuzz: API_FUZZ_SEED=${seed} replays this run`);
    const random = rng(seed);
    const before = await stateOf(a);
    const paths = [
      '/v1/payments',
      '/v1/payments/batch',
      '/v1/deposits',
      `/v1/deposits/${spare}/funded`,
      '/v1/peers',
      '/v1/channels',
      `/v1/channels/${ch}/deposits`,
      `/v1/channels/${ch}/deposits/remove`,
      '/v1/getinfo',
      '/v1/attestation',
      `/v1/channels/${ch}`,
      '/v1/payments?limit=abc',
    ];
    const values: unknown[] = [
      null,
      true,
      -1,
      0,
      1.5,
      1e308,
      -1e308,
      '',
      'x'.repeat(5000),
      '0x10',
      [],
      [1, 2],
      {},
      { __proto__: { amount_sat: 1 } },
      'ab'.repeat(32),
      Number.MAX_SAFE_INTEGER + 2,
    ];
    const fields = [
      'channel_id',
      'amount_sat',
      'dest',
      'deposit_id',
      'deposit_ids',
      'address',
      'txid',
      'vout',
      'payments',
      'fund',
      'peer_id',
      'idempotency_key',
      '__proto__',
      'constructor',
    ];
    let seen5xx = 0;
    const N = 2500;
    for (let i = 0; i < N; i++) {
      const path = paths[i % paths.length]!;
      let body: unknown;
      const r = random();
      if (r < 0.15)
        body = Buffer.from(Array.from({ length: 1 + (i % 64) }, () => Math.floor(random() * 256))).toString('latin1');
      else if (r < 0.25) body = JSON.stringify(values[i % values.length]);
      else {
        const o: Record<string, unknown> = {};
        for (let k = 0; k < 1 + (i % 4); k++)
          o[fields[(i * 7 + k) % fields.length]!] = values[(i * 3 + k) % values.length];
        body = JSON.stringify(o);
      }
      const method = i % 5 === 0 ? 'GET' : 'POST';
      const res = await a
        .api(method, path, method === 'GET' ? undefined : body, i % 11 === 0 ? a.readonlyToken : a.token)
        .catch((e) => ({ status: 599, body: String(e) }));
      if (res.status >= 500) {
        seen5xx++;
        assert.fail(
          `API_FUZZ_SEED=${seed} request ${i}: ${method} ${path} ${String(body).slice(0, 200)} → ${res.status} ${JSON.stringify(res.body)}`,
        );
      }
    }
    assert.equal(seen5xx, 0);
    assert.equal((await a.api('GET', '/v1/getinfo')).status, 200);
    // Nothing in the fuzz is a valid payment, settlement or release: channels and funds are as they were.
    const after = await stateOf(a);
    assert.deepEqual(after.channels, before.channels);
    assert.equal(after.balance.deposits.free_sat, before.balance.deposits.free_sat);
  });

  test('every documented route answers as the OpenAPI document it serves says: valid requests, success and error answers', async () => {
    const doc = await a.ok('GET', '/v1/openapi.json');
    assert.equal(doc.openapi, '3.1.0');
    const checker = new OpenApiChecker(doc);
    const mark = seen.length;
    /** A request the document must accept, and an answer it must describe, with this status. */
    const valid = async (
      method: string,
      path: string,
      body: unknown,
      status: number,
      token: string | null = a.token,
    ) => {
      const r = await a.api(method, path, body, token);
      const ex = seen.at(-1)!;
      assert.deepEqual(checker.requestProblems(ex), [], `${method} ${path}: the request is not as documented`);
      assert.deepEqual(checker.responseProblems(ex), [], `${method} ${path}: the answer is not as documented`);
      assert.equal(r.status, status, `${method} ${path} → ${r.status} ${ex.text.slice(0, 300)}`);
      return r.body;
    };
    // Reads.
    const info = await valid('GET', '/v1/getinfo', undefined, 200);
    for (const path of [
      `/v1/attestation?nonce=${'22'.repeat(16)}`,
      '/v1/balance',
      '/v1/deposits',
      '/v1/peers',
      '/v1/channels',
      `/v1/channels/${ch}`,
      '/v1/payments?offset=0&limit=5',
      '/v1/graph',
      '/v1/multihop',
      '/metrics',
    ]) {
      await valid('GET', path, undefined, 200, a.readonlyToken);
    }
    await valid('GET', '/v1/openapi.json', undefined, 200, null);
    await valid('GET', '/v1/committee', undefined, 404); // a lone treasury: no_committee (the success answer needs a committee)
    // A deposit funded by hand, reported, released.
    const pending = await valid('POST', '/v1/deposits', {}, 201);
    assert.equal(pending.status, 'pending');
    const faucet = new Faucet(chain.rpc);
    const out = await faucet.fund(pending.address, 25_000n);
    await faucet.mine(Math.max(1, info.min_confirmations));
    await faucet.waitForConfirmations(out.txid, Math.max(1, info.min_confirmations), { timeoutMs: 30_000 });
    assert.equal(
      (await valid('POST', `/v1/deposits/${pending.deposit_id}/funded`, { txid: out.txid, vout: out.vout }, 200))
        .status,
      'free',
    );
    await valid('POST', `/v1/deposits/${pending.deposit_id}/release`, {}, 200);
    // A second channel: opened, a deposit added and taken out again, paid on, fees set, settled.
    const d2 = (await valid('POST', '/v1/deposits', { amount_sat: 30_000, fund: true }, 201)).deposit_id as string;
    const d3 = (await valid('POST', '/v1/deposits', { amount_sat: 25_000, fund: true }, 201)).deposit_id as string;
    await valid('POST', '/v1/peers', { address: b.ready.p2p }, 201);
    const ch2 = (await valid('POST', '/v1/channels', { peer_id: b.id, deposit_ids: [d2] }, 201)).channel_id as string;
    await valid('POST', `/v1/channels/${ch2}/deposits`, { deposit_id: d3 }, 200);
    await waitUntil(
      async () => (await a.ok('GET', `/v1/channels/${ch2}`)).local_balance_sat === '55000',
      30_000,
      'the added deposit acknowledged',
    );
    await valid('POST', `/v1/channels/${ch2}/deposits/remove`, { deposit_id: d3 }, 200);
    await waitUntil(
      async () => (await a.ok('GET', `/v1/channels/${ch2}`)).local_deposits.length === 1,
      30_000,
      'the removal acknowledged',
    );
    // Succeeded, or in flight if the acknowledgement takes longer than the 10 s the API waits (a loaded machine).
    assert.match(
      (await valid('POST', '/v1/payments', { channel_id: ch2, amount_sat: 500, idempotency_key: 'openapi-1' }, 201))
        .status,
      /^(succeeded|in_flight)$/,
    );
    assert.match(
      (await valid('POST', '/v1/payments', { dest: b.id, amount_sat: 5, max_fee_sat: 1 }, 201)).status,
      /^(succeeded|in_flight)$/,
    );
    assert.equal(
      (
        await valid(
          'POST',
          '/v1/payments/batch',
          {
            payments: [
              { channel_id: ch2, amount_sat: 1 },
              { dest: b.id, amount_sat: 2 },
            ],
          },
          201,
        )
      ).failed,
      0,
    );
    await valid('POST', '/v1/fees', { base_sat: 1, ppm: 100 }, 200);
    assert.match((await valid('POST', `/v1/channels/${ch2}/settle`, {}, 200)).txid, /^[0-9a-f]{64}$/);
    await valid('GET', `/v1/channels/${ch2}`, undefined, 200);

    // At least one error answer per route, as documented.
    const errors: Array<[string, string, unknown, number, (string | null)?]> = [
      ['GET', '/v1/getinfo', undefined, 401, null],
      ['GET', '/v1/attestation?nonce=xyz', undefined, 400],
      ['GET', '/v1/balance', undefined, 401, 'ab'.repeat(32)],
      ['POST', '/v1/deposits', { fund: true }, 400],
      ['GET', '/v1/deposits', undefined, 401, null],
      ['POST', `/v1/deposits/${spare}/funded`, { txid: 'ab'.repeat(32), vout: 0 }, 409],
      ['POST', '/v1/deposits/nope/release', {}, 404],
      ['POST', '/v1/peers', { address: '127.0.0.1:1' }, 502],
      ['GET', '/v1/peers', undefined, 401, null],
      ['POST', '/v1/channels', { peer_id: 'ab'.repeat(33) }, 409],
      ['GET', '/v1/channels', undefined, 401, null],
      ['GET', `/v1/channels/${'ab'.repeat(32)}`, undefined, 404],
      ['POST', `/v1/channels/${ch}/deposits`, { deposit_id: 'nope' }, 404],
      ['POST', `/v1/channels/${ch}/deposits/remove`, { deposit_id: spare }, 404],
      ['POST', `/v1/channels/${ch2}/settle`, {}, 409],
      ['POST', '/v1/payments', { channel_id: ch2, amount_sat: 1 }, 409],
      ['POST', '/v1/payments/batch', { payments: [] }, 400],
      ['GET', '/v1/graph', undefined, 401, null],
      ['GET', '/v1/multihop', undefined, 401, null],
      ['POST', '/v1/fees', { base_sat: -1, ppm: 0 }, 400],
      ['POST', '/v1/fees', { base_sat: 1, ppm: 1 }, 403, a.readonlyToken],
      ['GET', '/v1/payments?limit=-1', undefined, 400],
      ['GET', '/metrics', undefined, 401, null],
      ['DELETE', '/v1/committee/members/not-a-node-id', undefined, 400],
      ['POST', '/v1/committee/members', { address: 'no port' }, 400],
      ['POST', '/v1/committee/members', { address: '127.0.0.1:1' }, 404],
    ];
    for (const [method, path, body, status, token] of errors) {
      const r = await a.api(method, path, body, token === undefined ? a.token : token);
      assert.deepEqual(checker.responseProblems(seen.at(-1)!), [], `${method} ${path}`);
      assert.equal(r.status, status, `${method} ${path} → ${r.status} ${JSON.stringify(r.body)}`);
    }

    // Every documented operation was seen answering both ways (bar those that cannot here).
    const mine = seen.slice(mark);
    for (const { key } of checker.operations) {
      const hits = mine.filter((ex) => checker.find(ex.method, ex.path)?.operation.key === key);
      // These answer with success only on a committee (their success answers are checked against this
      // document in committee.roster.e2e).
      if (
        key !== 'GET /v1/committee' &&
        key !== 'DELETE /v1/committee/members/{node_id}' &&
        key !== 'POST /v1/committee/members'
      )
        assert.ok(
          hits.some((ex) => ex.status < 300),
          `${key}: no success answer checked`,
        );
      if (key !== 'GET /v1/openapi.json')
        assert.ok(
          hits.some((ex) => ex.status >= 400),
          `${key}: no error answer checked`,
        );
    }
    // And a route not in the document is not served.
    const r = await a.api('DELETE', `/v1/channels/${ch}`);
    expectError(r, 404, 'not_found');
  });

  test('every answer any test here got is as the OpenAPI document says', async () => {
    const checker = new OpenApiChecker(
      (await a.ok('GET', '/v1/openapi.json')) as ConstructorParameters<typeof OpenApiChecker>[0],
    );
    assert.ok(seen.length > 2500, String(seen.length));
    const problems = seen.flatMap((ex) => checker.responseProblems(ex).map((p) => `${ex.node}: ${p}`));
    assert.deepEqual(problems.slice(0, 10), [], `${problems.length} of ${seen.length} answers are not as documented`);
  });

  test('no answer any test here got carries a private key, a token or a password', async () => {
    const secrets = [...earlySecrets, ...(await allSecrets())];
    assert.ok(secrets.filter((s) => /deposit .* key/.test(s.what)).length >= 6, secrets.map((s) => s.what).join(', '));
    for (const ex of seen)
      assertNoSecret(ex.text, secrets, `${ex.node}: ${ex.method} ${ex.path.slice(0, 100)} → ${ex.status}`);
    // The answers scanned include every GET route, payments and a settlement.
    assert.ok(
      seen.some(
        (ex) => ex.method === 'POST' && /^\/v1\/channels\/[0-9a-f]{64}\/settle$/.test(ex.path) && ex.status === 200,
      ),
      'a settlement',
    );
    assert.ok(
      seen.some((ex) => ex.method === 'POST' && ex.path === '/v1/payments' && ex.status === 201),
      'a payment',
    );
    for (const path of [
      '/v1/getinfo',
      '/v1/attestation',
      '/v1/balance',
      '/v1/deposits',
      '/v1/peers',
      '/v1/channels',
      '/v1/payments',
      '/v1/graph',
      '/v1/multihop',
      '/metrics',
    ]) {
      assert.ok(
        seen.some((ex) => ex.method === 'GET' && ex.path.split('?')[0] === path && ex.status === 200),
        path,
      );
    }
  });
});
