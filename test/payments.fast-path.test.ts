// run-tests lane: in-process
/**
 * What the host puts on a routed payment's way, with the enclave and the chain as test doubles: whether a
 * payment to `dest` is direct or routed is answered from the host's view of the channels (one
 * `list_channels` for many payments, read again after the events that change it); the fee rate is read
 * from the chain once for many rounds, and a stale one is read again behind the round that uses it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChannelView, TreasuryEventMsg } from '../src/enclave/treasury/interface.ts';
import type { ChainSource } from '../src/node/chain-source.ts';
import { DirectChannels } from '../src/node/direct-channels.ts';
import type { EcallPort } from '../src/node/enclave-client.ts';
import { MultihopPayer } from '../src/node/multihop-payer.ts';
import { PaymentLog } from '../src/node/payment-log.ts';

const [BOB, CAROL, DAVE] = ['02' + 'b'.repeat(64), '03' + 'c'.repeat(64), '02' + 'd'.repeat(64)];

function channel(id: string, peer: string, status: ChannelView['status'], spendable = 1_000): ChannelView {
  return {
    channel_id: id.repeat(64),
    peer_id: peer,
    peer_treasury_id: peer,
    status,
    spendable_sat: String(spendable),
  } as ChannelView;
}

test('direct or routed: one list for many payments, read again only after an event that changes it', async () => {
  let channels = [channel('a', BOB, 'open'), channel('b', CAROL, 'opening')];
  let lists = 0;
  const view = new DirectChannels(() => {
    lists++;
    return Promise.resolve(channels);
  });
  const ev = (e: TreasuryEventMsg) => view.onEvent(e);
  for (let i = 0; i < 5; i++) {
    assert.equal(await view.channelTo(BOB), 'a'.repeat(64));
    assert.equal(await view.channelTo(CAROL), null, 'opening: routed');
    assert.equal(await view.channelTo(DAVE), null);
  }
  assert.equal(lists, 1);
  // a routed payment moved a channel: nothing to read again
  ev({ type: 'channel_updated', channel_id: 'a'.repeat(64), status: 'open' });
  ev({ type: 'pay_acked', channel_id: 'a'.repeat(64), total: '5' });
  assert.equal(await view.channelTo(BOB), 'a'.repeat(64));
  assert.equal(lists, 1);
  // carol's channel opens
  channels = [channel('a', BOB, 'open'), channel('b', CAROL, 'open')];
  ev({ type: 'channel_updated', channel_id: 'b'.repeat(64), status: 'open' });
  assert.equal(await view.channelTo(CAROL), 'b'.repeat(64));
  assert.equal(lists, 2);
  // bob's closes
  channels = [channel('a', BOB, 'closed'), channel('b', CAROL, 'open')];
  ev({ type: 'channel_settled', channel_id: 'a'.repeat(64), txid: '0'.repeat(64), by: 'remote' });
  assert.equal(await view.channelTo(BOB), null);
  assert.equal(lists, 3);
  // a channel the view has never seen
  channels = [...channels, channel('c', DAVE, 'open')];
  ev({ type: 'channel_updated', channel_id: 'c'.repeat(64), status: 'open' });
  assert.equal(await view.channelTo(DAVE), 'c'.repeat(64));
  // a reconnection may bind a committee's channel to another member
  ev({ type: 'peer_connected', conn: 'x', peer_id: DAVE });
  await view.channelTo(DAVE);
  assert.equal(lists, 5);
  // two open channels with one peer: the one that can pay the most, read afresh each time
  channels = [channel('d', BOB, 'open', 10), channel('e', BOB, 'open', 20)];
  ev({ type: 'channel_updated', channel_id: 'd'.repeat(64), status: 'open' });
  assert.equal(await view.channelTo(BOB), 'e'.repeat(64));
  channels = [channel('d', BOB, 'open', 30), channel('e', BOB, 'open', 20)];
  assert.equal(await view.channelTo(BOB), 'd'.repeat(64));
});

test('direct or routed: a list read while an event arrives answers its callers but is not kept', async () => {
  let channels = [channel('a', BOB, 'opening')];
  let lists = 0;
  let release!: () => void;
  const view = new DirectChannels(async () => {
    lists++;
    const snapshot = channels;
    if (lists === 1) await new Promise<void>((r) => (release = r));
    return snapshot;
  });
  const first = view.channelTo(BOB);
  const second = view.channelTo(BOB); // shares the read in progress
  await new Promise((r) => setImmediate(r));
  channels = [channel('a', BOB, 'open')];
  view.onEvent({ type: 'channel_updated', channel_id: 'a'.repeat(64), status: 'open' });
  release();
  assert.deepEqual(await Promise.all([first, second]), [null, null]);
  assert.equal(lists, 1);
  assert.equal(await view.channelTo(BOB), 'a'.repeat(64), 'read again: the event came after the old read began');
  assert.equal(lists, 2);
});

/** An enclave double answering `mh_pay_round` with `answer(dest, call number)`. */
function payer(answer: (dest: string, n: number) => Promise<unknown>, feeRate: () => Promise<number>) {
  const calls: Array<{ dest: string; fee_rate: number }> = [];
  const enclave = {
    call: (name: string, args: { dest: string; fee_rate: number }) => {
      assert.equal(name, 'mh_pay_round');
      calls.push(args);
      return answer(args.dest, calls.filter((c) => c.dest === args.dest).length);
    },
  } as unknown as EcallPort;
  const chain = { feeRate } as unknown as ChainSource;
  const reported: string[] = [];
  const p = new MultihopPayer({
    enclave,
    chain,
    payments: new PaymentLog(),
    journal: () => undefined,
    report: (task) => reported.push(task),
    stopping: () => false,
  });
  return { p, calls, reported };
}

const ok = (n = 1) => ({
  payment_id: 'f'.repeat(64),
  route: ['x', 'y', 'z'],
  results: Array.from({ length: n }, () => ({ ok: true, fee_sat: '0', channel_id: 'a'.repeat(64) })),
});

test('fee rate: read once for many rounds; a stale one serves the round while it is read again', async (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  let reads = 0;
  let rate = 3;
  let failNext = false;
  const { p, calls, reported } = payer(
    () => Promise.resolve(ok()),
    () => {
      reads++;
      if (failNext) return Promise.reject(new Error('chain unreachable'));
      return Promise.resolve(rate);
    },
  );
  for (let i = 0; i < 5; i++) await p.start(CAROL, 10).done;
  assert.equal(reads, 1);
  assert.deepEqual(
    calls.map((c) => c.fee_rate),
    [3, 3, 3, 3, 3],
  );
  rate = 7;
  t.mock.timers.tick(11_000);
  await p.start(CAROL, 10).done; // stale: takes 3 while 7 is read
  await p.start(CAROL, 10).done;
  assert.deepEqual(
    calls.slice(5).map((c) => c.fee_rate),
    [3, 7],
  );
  assert.equal(reads, 2);
  // a failed read keeps the last rate, and is reported
  failNext = true;
  t.mock.timers.tick(11_000);
  await p.start(CAROL, 10).done;
  await new Promise((r) => setImmediate(r));
  assert.equal(calls.at(-1)!.fee_rate, 7);
  assert.deepEqual(reported, ['fee_rate']);
});
