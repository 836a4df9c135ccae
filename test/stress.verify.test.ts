// run-tests lane: in-process
/**
 * The checks `teechain stress` makes after its load, against stand-in nodes that answer the REST routes it
 * reads (channels, history) with whatever the test says: an honest network passes, and each lie a broken
 * network could tell is caught and named: money created, the two ends of a channel disagreeing, a
 * succeeded payment missing from its payer's history, a payee credited less than it was paid.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiClient } from '../src/cli/client.ts';
import { Recorder } from '../src/stress/recorder.ts';
import { treasuryStates } from '../src/stress/snapshot.ts';
import type { Treasury } from '../src/stress/target.ts';
import { verify } from '../src/stress/verify.ts';

interface Fake {
  local: number;
  remote: number;
  history: Array<{ payment_id: string; direction: string; amount_sat: number; status: string }>;
}

/** One stand-in node per treasury, each with one end of channel `ch`. */
async function fakes(state: Fake[]): Promise<{ treasuries: Treasury[]; servers: Server[] }> {
  const servers: Server[] = [];
  const treasuries: Treasury[] = [];
  for (let i = 0; i < state.length; i++) {
    const server = createServer((req, res) => {
      const s = state[i]!; // read at each request: the test changes what the node claims
      const url = new URL(req.url!, 'http://x');
      let body: unknown;
      if (url.pathname === '/v1/channels')
        body = {
          channels: [
            {
              channel_id: 'c'.repeat(64),
              status: 'open',
              local_balance_sat: String(s.local),
              remote_balance_sat: String(s.remote),
            },
          ],
        };
      else if (url.pathname === '/v1/payments') {
        const offset = Number(url.searchParams.get('offset') ?? 0);
        const limit = Number(url.searchParams.get('limit') ?? 100);
        const newest = [...s.history].reverse();
        body = { payments: newest.slice(offset, offset + limit), total: s.history.length, offset, limit };
      }
      res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(body ?? {}));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    servers.push(server);
    const api = new ApiClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'token');
    treasuries.push({ name: ['alice', 'bob'][i]!, id: String(i), api, members: [{ name: 'x', api }] });
  }
  return { treasuries, servers };
}

/** Alice paid bob 100 sat, answered succeeded as p1; `after` is what the nodes then claim. */
async function check(after: (honest: Fake[]) => void) {
  const state: Fake[] = [
    { local: 600, remote: 400, history: [] },
    { local: 400, remote: 600, history: [] },
  ];
  const { treasuries, servers } = await fakes(state);
  try {
    const before = await treasuryStates(treasuries);
    const recorder = new Recorder(2);
    recorder.record({ seq: 0, payer: 0, payee: 1, amount: 100 }, { kind: 'succeeded', paymentId: 'p1' }, 3);
    state[0] = {
      local: 500,
      remote: 500,
      history: [{ payment_id: 'p1', direction: 'outgoing', amount_sat: 100, status: 'succeeded' }],
    };
    state[1] = {
      local: 500,
      remote: 500,
      history: [{ payment_id: 'r1', direction: 'incoming', amount_sat: 100, status: 'succeeded' }],
    };
    after(state);
    return await verify(treasuries, before, recorder, 0);
  } finally {
    for (const s of servers) s.close();
  }
}

test('an honest network passes every check', async () => {
  const v = await check(() => undefined);
  assert.equal(v.ok, true, v.mismatches.join('\n'));
  assert.equal(v.channels_checked, 1);
  assert.deepEqual(v.payer_history, { checked: 1, missing: 0 });
  assert.deepEqual(v.conservation, { before_sat: '1000', after_sat: '1000', holds: true });
});

test('money created on both ends alike: conservation fails although the ends agree', async () => {
  const v = await check((s) => {
    s[0]!.remote = 600;
    s[1]!.local = 600;
  });
  assert.equal(v.ok, false);
  assert.equal(v.conservation.holds, false);
  assert.equal(v.channels_disagreeing, 0);
  assert.match(
    v.mismatches.join('\n'),
    /conservation: the channels held 1000 sat in all before the load and 1100 sat after/,
  );
});

test("the two ends of a channel disagree: named with each side's balances", async () => {
  const v = await check((s) => {
    s[1]!.local = 450;
    s[1]!.remote = 550;
  });
  assert.equal(v.ok, false);
  assert.equal(v.channels_disagreeing, 1);
  assert.match(v.mismatches.join('\n'), /alice has 500\/500 sat \(local\/remote\), bob has 450\/550/);
});

test("a succeeded payment missing from the payer's history, or failed there, is named by its id", async () => {
  const missing = await check(
    (s) => (s[0]!.history = [{ payment_id: 'p9', direction: 'outgoing', amount_sat: 100, status: 'succeeded' }]),
  );
  assert.equal(missing.ok, false);
  assert.deepEqual(missing.payer_history, { checked: 1, missing: 1 });
  assert.match(
    missing.mismatches.join('\n'),
    /alice: payment p1 of 100 sat answered succeeded, but its history has no such payment/,
  );
  const failed = await check((s) => (s[0]!.history[0]!.status = 'failed'));
  assert.match(
    failed.mismatches.join('\n'),
    /payment p1 of 100 sat answered succeeded, but its history has failed, 100 sat/,
  );
});

test('a payee whose history received less than it was paid', async () => {
  const v = await check((s) => (s[1]!.history[0]!.amount_sat = 60));
  assert.equal(v.ok, false);
  assert.deepEqual(v.payee_history, { treasuries_checked: 2, mismatched: 1 });
  assert.match(v.mismatches.join('\n'), /bob: received 60 sat in its history during the run, but was paid 100 sat/);
});
