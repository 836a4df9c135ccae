/**
 * What a deposit release must look like once mined on the regtest chain: it spends exactly the deposit's
 * outpoint and pays one output, the deposit's value minus the fee it answered, to exactly the address asked.
 * The fee is the host's fee rate (regtest: 1 sat/vB, docs/protocol/channels.md "Settlement") times the enclave's size estimate,
 * which counts each signature at its 72-byte maximum: never below the real size, at most m vbytes above it.
 */
import assert from 'node:assert/strict';
import { address as btcAddress, Transaction } from 'bitcoinjs-lib';
import { NETWORK } from '../../src/enclave/treasury/transactions.ts';
import type { BitcoinRpcClient } from '../../src/chain/rpc-client.ts';

export interface ExpectedRelease {
  /** The deposit's outpoint `txid:vout` and value, as GET /v1/deposits showed them before the release. */
  outpoint: string;
  value_sat: string | bigint;
  /** Where the release was asked to pay (the node's payout address when the request named none). */
  address: string;
  /** What the release answered. */
  txid: string;
  fee_sat: string;
  /** Signatures the deposit's script needs (1 for a lone node's deposit, the committee's m otherwise). */
  m?: number;
}

/** Asserts the mined release pays what was asked; returns the transaction. */
export async function assertMinedRelease(rpc: BitcoinRpcClient, want: ExpectedRelease): Promise<Transaction> {
  const raw = await rpc.call<{ hex: string; confirmations?: number }>('getrawtransaction', [want.txid, true]);
  assert.ok((raw.confirmations ?? 0) >= 1, `the release ${want.txid} is mined`);
  const tx = Transaction.fromHex(raw.hex);
  assert.equal(tx.getId(), want.txid);
  const ins = tx.ins.map((i) => `${Buffer.from(i.hash).reverse().toString('hex')}:${i.index}`);
  assert.deepEqual(ins, [want.outpoint], 'the release spends exactly the deposit');
  assert.equal(tx.outs.length, 1, 'the release has a single output');
  const fee = BigInt(want.fee_sat);
  const value = BigInt(want.value_sat);
  assert.equal(tx.outs[0]!.value, value - fee, `the release pays the deposit's ${value} sat minus its fee ${fee} sat`);
  assert.equal(
    btcAddress.fromOutputScript(tx.outs[0]!.script, NETWORK),
    want.address,
    'the release pays the address asked for',
  );
  const vsize = tx.virtualSize();
  assert.ok(
    fee >= BigInt(vsize) && fee <= BigInt(vsize + (want.m ?? 1)),
    `fee ${fee} sat is 1 sat/vB of the release (${vsize} vB)`,
  );
  return tx;
}
