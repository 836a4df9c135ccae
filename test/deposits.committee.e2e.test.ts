/**
 * A committee's backups release a deposit on their own: a 2-of-3 committee of real node processes
 * (`--committee 3`, two `--backup-of`), the primary killed, the release signed by the two backups, mined on
 * the embedded regtest chain, paying the committee's payout address; it is spent on both backups,
 * and the member that gave the second signature, asked again, gets nothing but that same transaction signed again.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { script as bscript, Transaction } from 'bitcoinjs-lib';
import {
  fundDeposit,
  NodeProcess,
  startCommittee,
  waitUntil,
  type TestChain,
  startE2eFile,
} from './helpers/network.ts';
import { assertMinedRelease } from './helpers/release.ts';

let chain: TestChain;
let dir: string;
let key: string;

before(async () => ({ chain, dir, key } = await startE2eFile()));
after(() => chain?.close());

test("committee release: with the primary killed, two backups release a deposit to the committee's payout address only; no member signs a second release", async () => {
  // A member that fails to start is stopped by the process registry at the end of the file.
  const members = await startCommittee(dir, chain, key, 'c', 30_000);
  try {
    const [p, b1, b2] = members as [NodeProcess, NodeProcess, NodeProcess];
    const payout = (await p.ok('GET', '/v1/getinfo')).payout_address as string;
    const id = await fundDeposit(p, 150_000);
    const viewOf = async (n: NodeProcess) =>
      (await n.ok('GET', '/v1/deposits')).deposits.find((d: { deposit_id: string }) => d.deposit_id === id);
    await waitUntil(
      async () => (await viewOf(b1))?.status === 'free' && (await viewOf(b2))?.status === 'free',
      15_000,
      'both backups hold the free deposit',
    );
    const dep = await viewOf(p);
    assert.equal(dep.m, 2);
    assert.equal(dep.pubkeys.length, 3);

    await p.kill('SIGKILL');
    // A committee releases only to its payout address: another one is refused, and nothing changes.
    const elsewhere = await b1.api('POST', `/v1/deposits/${id}/release`, {
      address: await chain.rpc.call<string>('getnewaddress', []),
    });
    assert.deepEqual(
      [elsewhere.status, elsewhere.body.error.code],
      [400, 'invalid_argument'],
      JSON.stringify(elsewhere.body),
    );
    assert.deepEqual(await viewOf(b1), dep);
    assert.deepEqual(await viewOf(b2), dep);

    const rel = await b1.ok('POST', `/v1/deposits/${id}/release`, {});
    await chain.mine(1);
    const tx = await assertMinedRelease(chain.rpc, {
      outpoint: dep.outpoint,
      value_sat: dep.value_sat,
      address: payout,
      txid: rel.txid,
      fee_sat: rel.fee_sat,
      m: 2,
    });
    const witness = tx.ins[0]!.witness;
    assert.equal(witness.length, 4, 'dummy + 2 signatures + the 2-of-3 script');
    assert.equal(Buffer.from(witness.at(-1)!).toString('hex'), dep.witness_script);
    assert.equal(bscript.decompile(witness.at(-1)!)![0], 0x52, 'OP_2: two of the three members signed');

    // Spent on both backups: the signer, which holds the signed release, refuses another; the member that
    // gave the second signature, asked again, can only sign that very transaction, which the chain already has.
    const sameReleaseAgain = async (n: NodeProcess) => {
      const again = await n.api('POST', `/v1/deposits/${id}/release`, {});
      assert.deepEqual(
        [again.status, again.body.error?.code],
        [502, 'broadcast_failed'],
        `${n.datadir}: ${JSON.stringify(again.body)}`,
      );
      assert.match(again.body.error.message, /already/);
      const v = await viewOf(n);
      assert.equal(v.status, 'spent', n.datadir);
      assert.equal(v.spent_by, rel.txid, `${n.datadir}: no member signed a second, different release`);
      assert.equal(Transaction.fromHex(v.release_tx_hex).getId(), rel.txid);
    };
    for (const n of [b1, b2]) {
      const v = await viewOf(n);
      assert.equal(v.status, 'spent', n.datadir);
      assert.equal(v.spent_by, rel.txid, n.datadir);
    }
    const again = await b1.api('POST', `/v1/deposits/${id}/release`, {});
    assert.deepEqual([again.status, again.body.error.code], [409, 'deposit_not_free'], JSON.stringify(again.body));
    await sameReleaseAgain(b2);
    assert.deepEqual(await chain.rpc.call<string[]>('getrawmempool', []), [], 'nothing else spends it');
  } finally {
    for (const n of members) await n.kill('SIGTERM');
  }
});
