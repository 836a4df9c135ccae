// run-tests lane: light
/**
 * Deposits end to end over REST: real node processes, real sockets, the embedded regtest chain. A deposit
 * used in a channel is taken out again (balances on both sides, the deposit free, the release mined paying
 * the right address the right amount); removals the enclave must refuse get their stable codes and change
 * nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transaction } from 'bitcoinjs-lib';
import { fundDeposit, NodeProcess, openChannel, waitUntil, type TestChain, startE2eFile } from './helpers/network.ts';
import { assertMinedRelease } from './helpers/release.ts';

let chain: TestChain;
let dir: string;
let key: string;

before(async () => ({ chain, dir, key } = await startE2eFile()));
after(() => chain?.close());

const inputsOf = (hex: string) =>
  Transaction.fromHex(hex).ins.map((i) => `${Buffer.from(i.hash).reverse().toString('hex')}:${i.index}`);

async function logLines(file: string): Promise<Array<Record<string, unknown>>> {
  return (await readFile(file, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('deposit removal over REST: refused removals change nothing; a removal covered by the balance frees the deposit on both sides, and its release is mined to the address asked', async () => {
  const logA = join(dir, 'a.log');
  const logB = join(dir, 'b.log');
  const [a, b] = await Promise.all([
    NodeProcess.start(join(dir, 'a'), chain, key, ['--log-file', logA]),
    NodeProcess.start(join(dir, 'b'), chain, key, ['--log-file', logB]),
  ]);
  try {
    const [da, dr, spare, db] = await Promise.all([
      fundDeposit(a, 300_000),
      fundDeposit(a, 200_000),
      fundDeposit(a, 50_000),
      fundDeposit(b, 100_000),
    ]);
    const ch = await openChannel(a, b, [da, dr], [db]);
    const depositOf = async (id: string) =>
      (await a.ok('GET', '/v1/deposits')).deposits.find((d: { deposit_id: string }) => d.deposit_id === id);
    const drBefore = await depositOf(dr);
    assert.equal(drBefore.status, 'in_channel');
    assert.equal(drBefore.channel_id, ch);

    // a pays b 320,000: its balance (180,000) no longer covers the 200,000 deposit.
    const pay = await a.ok('POST', '/v1/payments', { channel_id: ch, amount_sat: 320_000 });
    assert.equal(pay.status, 'succeeded');
    await waitUntil(
      async () => (await b.ok('GET', `/v1/channels/${ch}`)).total_received_sat === '320000',
      15_000,
      'b credited',
    );

    // Every refusal answers its code and leaves both sides exactly as they were.
    const snapshot = async () => ({
      a: await a.ok('GET', `/v1/channels/${ch}`),
      b: await b.ok('GET', `/v1/channels/${ch}`),
      deposits: await a.ok('GET', '/v1/deposits'),
      balance: await a.ok('GET', '/v1/balance'),
    });
    const before = await snapshot();
    assert.equal(before.a.local_balance_sat, '180000');
    const refusals: Array<[string, unknown, number, string]> = [
      [`/v1/channels/${ch}/deposits/remove`, { deposit_id: dr }, 409, 'insufficient_funds'],
      [`/v1/channels/${ch}/deposits/remove`, { deposit_id: spare }, 404, 'unknown_deposit'], // a's, but not in the channel
      [`/v1/channels/${ch}/deposits/remove`, { deposit_id: 'nope' }, 404, 'unknown_deposit'],
      [`/v1/channels/${'ab'.repeat(32)}/deposits/remove`, { deposit_id: dr }, 404, 'unknown_channel'],
      [`/v1/channels/${ch}/deposits/remove`, {}, 400, 'invalid_argument'],
      [`/v1/channels/${ch}/deposits/remove`, { deposit_id: dr, extra: 1 }, 400, 'invalid_argument'],
    ];
    for (const [path, body, status, code] of refusals) {
      const r = await a.api('POST', path, body);
      assert.equal(r.status, status, `${path} ${JSON.stringify(body)} → ${r.status} ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, code, `${path} ${JSON.stringify(body)}`);
    }
    assert.deepEqual(await snapshot(), before, 'a refused removal changed nothing');

    // b pays 100,000 back: 280,000 covers the deposit.
    await b.ok('POST', '/v1/payments', { channel_id: ch, amount_sat: 100_000 });
    await waitUntil(
      async () => (await a.ok('GET', `/v1/channels/${ch}`)).local_balance_sat === '280000',
      15_000,
      'a credited',
    );
    const updatedBefore = (await logLines(logB)).filter(
      (l) => l.msg === 'channel updated' && l.channel_id === ch,
    ).length;

    const view = await a.ok('POST', `/v1/channels/${ch}/deposits/remove`, { deposit_id: dr });
    assert.equal(view.local_balance_sat, '80000', "the removed deposit's value leaves a's balance");
    assert.equal(view.remote_balance_sat, '320000');
    assert.deepEqual(
      view.local_deposits.map((d: { outpoint: string }) => d.outpoint),
      [(await depositOf(da)).outpoint],
    );
    const vb = await b.ok('GET', `/v1/channels/${ch}`);
    assert.equal(vb.remote_balance_sat, '80000', 'b no longer counts the deposit');
    assert.equal(vb.local_balance_sat, '320000');
    assert.ok(
      !vb.remote_deposits.some((d: { outpoint: string }) => d.outpoint === drBefore.outpoint),
      'b no longer lists the deposit',
    );
    const freed = await depositOf(dr);
    assert.equal(freed.status, 'free');
    assert.equal(freed.channel_id, null);
    assert.deepEqual((await a.ok('GET', '/v1/balance')).deposits, {
      free_sat: '250000',
      in_channels_sat: '300000',
      pending_sat: '0',
    });
    // Both hosts heard of it (the enclave's channel_updated event, logged).
    await waitUntil(
      async () =>
        (await logLines(logB)).filter((l) => l.msg === 'channel updated' && l.channel_id === ch).length > updatedBefore,
      15_000,
      'b logs the channel update',
    );
    assert.ok((await logLines(logA)).some((l) => l.msg === 'channel updated' && l.channel_id === ch));
    // A deposit already out of the channel cannot be removed again.
    const again = await a.api('POST', `/v1/channels/${ch}/deposits/remove`, { deposit_id: dr });
    assert.deepEqual([again.status, again.body.error.code], [404, 'unknown_deposit']);

    // The freed deposit goes back on chain, to an address of the user's choosing.
    const to = await chain.rpc.call<string>('getnewaddress', []);
    const rel = await a.ok('POST', `/v1/deposits/${dr}/release`, { address: to });
    await chain.mine(1);
    const relTx = await assertMinedRelease(chain.rpc, {
      outpoint: drBefore.outpoint,
      value_sat: drBefore.value_sat,
      address: to,
      txid: rel.txid,
      fee_sat: rel.fee_sat,
    });
    const spent = await depositOf(dr);
    assert.equal(spent.status, 'spent');
    assert.equal(spent.spent_by, rel.txid);
    assert.equal(spent.release_tx_hex, relTx.toHex());

    // The settlement afterwards spends only what is still in the channel and pays the balances after the removal.
    const s = await a.ok('POST', `/v1/channels/${ch}/settle`, {});
    await chain.mine(1);
    const settlement = Transaction.fromHex(
      (await chain.rpc.call<{ hex: string }>('getrawtransaction', [s.txid, true])).hex,
    );
    assert.deepEqual(
      inputsOf(settlement.toHex()).sort(),
      [(await depositOf(da)).outpoint, ...view.remote_deposits.map((d: { outpoint: string }) => d.outpoint)].sort(),
    );
    assert.equal(
      settlement.outs.reduce((t, o) => t + o.value, 0n),
      400_000n - BigInt(s.fee_sat),
    );
    // A closed channel refuses removals too, and says why.
    const late = await a.api('POST', `/v1/channels/${ch}/deposits/remove`, { deposit_id: da });
    assert.deepEqual([late.status, late.body.error.code], [409, 'channel_closed']);
  } finally {
    await a.kill('SIGTERM');
    await b.kill('SIGTERM');
  }
});
