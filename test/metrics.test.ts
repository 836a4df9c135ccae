// run-tests lane: light
/**
 * Prometheus metrics of real node processes: GET /metrics needs a token, parses as the text exposition
 * format, lists every documented metric, and its counters, histograms and gauges follow real payments,
 * sealed writes and the chain.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { parseExposition, sumOf, type Sample } from '../src/metrics/exposition.ts';
import {
  attestationKey,
  fundDeposit,
  NodeProcess,
  openChannel,
  startTestChain,
  tempDir,
  waitUntil,
  type TestChain,
} from './helpers/network.ts';

let chain: TestChain;
let a: NodeProcess;
let b: NodeProcess;
let ch: string;

before(async () => {
  const dir = await tempDir('teechain-metrics-');
  chain = await startTestChain();
  const key = await attestationKey(dir);
  [a, b] = await Promise.all([
    NodeProcess.start(join(dir, 'a'), chain, key),
    NodeProcess.start(join(dir, 'b'), chain, key),
  ]);
  const [da, db] = await Promise.all([fundDeposit(a, 1_000_000), fundDeposit(b, 500_000)]);
  ch = await openChannel(a, b, [da], [db]);
});
after(async () => {
  await Promise.all([a?.kill('SIGTERM'), b?.kill('SIGTERM')]);
  await chain?.close();
});

async function scrape(n: NodeProcess): Promise<{ text: string; samples: Sample[] }> {
  const r = await n.api<string>('GET', '/metrics', undefined, n.readonlyToken);
  assert.equal(r.status, 200);
  return { text: r.body, samples: parseExposition(r.body) };
}

const value = (s: Sample[], name: string, labels: Record<string, string> = {}) => sumOf(s, name, labels);

describe('GET /metrics', () => {
  test('needs a token (the read-only one will do) and answers in the Prometheus text format', async () => {
    const none = await a.api('GET', '/metrics', undefined, null);
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'unauthorized');
    const res = await fetch(`${a.ready.rest_url}/metrics`, { headers: { authorization: `Bearer ${a.readonlyToken}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const { text } = await scrape(a);
    for (const [name, type] of [
      ['teechain_payments_sent_total', 'counter'],
      ['teechain_payments_received_total', 'counter'],
      ['teechain_payment_sent_sat_total', 'counter'],
      ['teechain_payment_received_sat_total', 'counter'],
      ['teechain_payment_latency_seconds', 'histogram'],
      ['teechain_channel_balance_sat', 'gauge'],
      ['teechain_channels', 'gauge'],
      ['teechain_deposits_sat', 'gauge'],
      ['teechain_peers', 'gauge'],
      ['teechain_sealed_writes_total', 'counter'],
      ['teechain_sealed_write_seconds', 'histogram'],
      ['teechain_committee_replication_lag_updates', 'gauge'],
      ['teechain_committee_members_connected', 'gauge'],
      ['teechain_chain_height', 'gauge'],
      ['teechain_background_failures_total', 'counter'],
      ['process_cpu_seconds_total', 'counter'],
      ['nodejs_eventloop_lag_seconds', 'gauge'],
    ])
      assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), name);
    // Registered for committee chains, with no series until a committee exists.
    assert.doesNotMatch(text, /^teechain_committee_replication_lag_updates\{/m);
  });

  test('state gauges: channel balances per side, deposits, peers, channels, chain height', async () => {
    const { samples } = await scrape(a);
    assert.equal(value(samples, 'teechain_channel_balance_sat', { channel_id: ch, side: 'local' }), 1_000_000);
    assert.equal(
      value(samples, 'teechain_channel_balance_sat', { channel_id: ch, side: 'remote', peer_id: b.id }),
      500_000,
    );
    assert.equal(value(samples, 'teechain_deposits_sat', { status: 'in_channel' }), 1_000_000);
    assert.equal(value(samples, 'teechain_peers'), 1);
    assert.equal(value(samples, 'teechain_channels', { status: 'open' }), 1);
    assert.equal(value(samples, 'teechain_chain_height'), await chain.rpc.call<number>('getblockcount', []));
    assert.ok(value(samples, 'teechain_sealed_writes_total', { result: 'ok' }) > 0);
    assert.equal(value(samples, 'teechain_sealed_writes_total', { result: 'error' }), 0);
  });

  test('counters and histograms move with payments, on both sides', async () => {
    const [a0, b0] = [(await scrape(a)).samples, (await scrape(b)).samples];
    const seals0 = value(a0, 'teechain_sealed_write_seconds_count');
    for (let i = 0; i < 20; i++) {
      const p = await a.ok('POST', '/v1/payments', { channel_id: ch, amount_sat: 100 + i });
      assert.equal(p.status, 'succeeded');
    }
    const refused = await a.api('POST', '/v1/payments', { channel_id: ch, amount_sat: 50_000_000 });
    assert.equal(
      refused.body.status ?? refused.body.error?.code,
      refused.status === 201 ? 'failed' : 'insufficient_funds',
    );
    const paid = 20 * 100 + (19 * 20) / 2;
    await waitUntil(
      async () =>
        value((await scrape(b)).samples, 'teechain_payments_received_total') ===
        value(b0, 'teechain_payments_received_total') + 20,
      30_000,
      'b counted 20 received',
    );
    const [a1, b1] = [(await scrape(a)).samples, (await scrape(b)).samples];
    assert.equal(
      value(a1, 'teechain_payments_sent_total', { status: 'succeeded' }) -
        value(a0, 'teechain_payments_sent_total', { status: 'succeeded' }),
      20,
    );
    assert.equal(
      value(a1, 'teechain_payments_sent_total', { status: 'failed' }) -
        value(a0, 'teechain_payments_sent_total', { status: 'failed' }),
      1,
    );
    assert.equal(value(a1, 'teechain_payment_sent_sat_total') - value(a0, 'teechain_payment_sent_sat_total'), paid);
    assert.equal(
      value(a1, 'teechain_payment_latency_seconds_count') - value(a0, 'teechain_payment_latency_seconds_count'),
      20,
    );
    assert.ok(value(a1, 'teechain_payment_latency_seconds_sum') > value(a0, 'teechain_payment_latency_seconds_sum'));
    assert.equal(
      value(a1, 'teechain_payment_latency_seconds_bucket', { le: '+Inf' }),
      value(a1, 'teechain_payment_latency_seconds_count'),
    );
    assert.equal(value(b1, 'teechain_payments_received_total') - value(b0, 'teechain_payments_received_total'), 20);
    assert.equal(
      value(b1, 'teechain_payment_received_sat_total') - value(b0, 'teechain_payment_received_sat_total'),
      paid,
    );
    // Every payment is a sealed commit on the sender: the writes were counted and timed.
    assert.ok(value(a1, 'teechain_sealed_write_seconds_count') - seals0 >= 20);
    // The balance gauge is the API's balance, on both sides.
    const view = await a.ok('GET', `/v1/channels/${ch}`);
    assert.equal(
      value(a1, 'teechain_channel_balance_sat', { channel_id: ch, side: 'local' }),
      Number(view.local_balance_sat),
    );
    assert.equal(
      value(b1, 'teechain_channel_balance_sat', { channel_id: ch, side: 'remote' }),
      Number(view.local_balance_sat),
    );
    assert.equal(Number(view.local_balance_sat), 1_000_000 - paid);
  });

  test('chain height follows new blocks', async () => {
    await chain.mine(2);
    const height = await chain.rpc.call<number>('getblockcount', []);
    assert.equal(value((await scrape(a)).samples, 'teechain_chain_height'), height);
  });
});
