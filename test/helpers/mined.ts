/**
 * A committee settlement as the chain holds it: mined, every input a 2-of-3 multisig spend with exactly two
 * signatures, and its outputs by address, so a test compares them with the balances it expects.
 */
import assert from 'node:assert/strict';
import { Transaction, address as baddress, networks, script as bscript } from 'bitcoinjs-lib';
import type { TestChain } from './network.ts';

/** Mines a block, then returns `txid`'s outputs by address; asserts that every input carries 2 of 3 signatures. */
export async function minedTwoOfThreeOutputs(chain: TestChain, txid: string): Promise<Map<string, bigint>> {
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
