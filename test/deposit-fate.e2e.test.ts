// run-tests lane: light
/**
 * A deposit removal whose acknowledgement a hostile network drops, then the peer settles and is gone for
 * good: real node processes, a tampering proxy between them, the embedded regtest chain.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Transaction } from 'bitcoinjs-lib';
import { fundDeposit, NodeProcess, waitUntil, type TestChain, startE2eFile } from './helpers/network.ts';
import { startTamperingProxy } from './helpers/proxy.ts';
import { assertMinedRelease } from './helpers/release.ts';

let chain: TestChain;
let dir: string;
let key: string;

before(async () => ({ chain, dir, key } = await startE2eFile()));
after(() => chain?.close());

test("a removal whose ack was lost: once the peer's settlement (which does not spend it) confirms, the deposit is free and released", async () => {
  const [a, b] = await Promise.all([
    NodeProcess.start(join(dir, 'lost-ack-a'), chain, key),
    NodeProcess.start(join(dir, 'lost-ack-b'), chain, key),
  ]);
  const proxy = await startTamperingProxy(b.ready.p2p);
  try {
    const [da, dr, db] = await Promise.all([fundDeposit(a, 300_000), fundDeposit(a, 200_000), fundDeposit(b, 100_000)]);
    await a.ok('POST', '/v1/peers', { address: proxy.address });
    const ch = (await a.ok('POST', '/v1/channels', { peer_id: b.id, deposit_ids: [da, dr] })).channel_id as string;
    await waitUntil(async () => (await b.api('GET', `/v1/channels/${ch}`)).status === 200);
    await b.ok('POST', `/v1/channels/${ch}/deposits`, { deposit_id: db });
    const drOutpoint = (await a.ok('GET', '/v1/deposits')).deposits.find(
      (d: { deposit_id: string }) => d.deposit_id === dr,
    ).outpoint as string;

    // Nothing from b reaches a any more: b drops the deposit, its acknowledgement is lost.
    proxy.drop('toClient');
    // Its outcome is asserted below; a failed request is an outcome too, not an unhandled rejection.
    const removal = a.api('POST', `/v1/channels/${ch}/deposits/remove`, { deposit_id: dr }).then(
      (r) => r,
      (e: unknown) => ({ status: 0, body: String(e) }),
    );
    await waitUntil(
      async () => (await b.ok('GET', `/v1/channels/${ch}`)).remote_balance_sat === '300000',
      10_000,
      'b drops the deposit',
    );
    const s = await b.ok('POST', `/v1/channels/${ch}/settle`, {});
    const settlement = Transaction.fromHex(
      (await chain.rpc.call<{ hex: string }>('getrawtransaction', [s.txid, true])).hex,
    );
    assert.ok(
      !settlement.ins.some((i) => `${Buffer.from(i.hash).reverse().toString('hex')}:${i.index}` === drOutpoint),
      "b's settlement does not spend it",
    );
    await b.kill('SIGKILL'); // b is gone for good

    // a's host finds the settlement on chain; once it is confirmed the enclave decides the deposit's fate.
    await chain.mine(1);
    await waitUntil(
      async () => (await a.ok('GET', `/v1/channels/${ch}`)).status === 'closed',
      15_000,
      'a sees the settlement on chain',
    );
    const depositOf = async () =>
      (await a.ok('GET', '/v1/deposits')).deposits.find((d: { deposit_id: string }) => d.deposit_id === dr);
    await waitUntil(async () => (await depositOf()).status !== 'in_channel', 15_000, "the deposit's fate is decided");
    const d = await depositOf();
    assert.equal(
      d.status,
      'free',
      `the deposit b's settlement left unspent must be free, not ${d.status} (spent_by ${d.spent_by})`,
    );
    assert.deepEqual((await a.ok('GET', `/v1/channels/${ch}`)).awaiting_chain, []);
    const refused = await removal;
    assert.deepEqual(
      [refused.status, refused.body?.error?.code],
      [504, 'timeout'],
      `the removal itself was never acknowledged: ${JSON.stringify(refused.body)}`,
    );

    const rel = await a.ok('POST', `/v1/deposits/${dr}/release`, {});
    await chain.mine(1);
    // to a's payout address (none was asked): the deposit's 200,000 sat minus the fee it answered
    const payout = (await a.ok('GET', '/v1/getinfo')).payout_address as string;
    await assertMinedRelease(chain.rpc, {
      outpoint: drOutpoint,
      value_sat: 200_000n,
      address: payout,
      txid: rel.txid,
      fee_sat: rel.fee_sat,
    });
  } finally {
    await proxy.close();
    await a.kill('SIGTERM');
    await b.kill('SIGTERM');
  }
});
