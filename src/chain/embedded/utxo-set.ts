/** Reading the whole chain UTXO set (what Core's scantxoutset walks); the regtest set is small. */
import { createRequire } from 'node:module';
import { bcoin, COIN_KEY_PREFIX, type BcoinFullNode } from './bcoin.ts';

const require = createRequire(import.meta.url);
const layout: { c: { parse(key: Buffer): [string, number] } } = require('bcoin/lib/blockchain/layout.js');

/** One unspent output of the chain state (mempool not considered). */
export interface Utxo {
  /** bcoin internal-order txid hex. */
  hash: string;
  index: number;
  height: number;
  coinbase: boolean;
  value: number;
  script: Buffer;
}

/** Every unspent output in the chain state, optionally only those whose script passes `filter`. */
export async function readUtxoSet(
  node: BcoinFullNode,
  filter?: (script: Buffer) => boolean,
): Promise<{ utxos: Utxo[]; scanned: number }> {
  const rows = await node.chain.db.db.range({
    gte: Buffer.from([COIN_KEY_PREFIX]),
    lt: Buffer.from([COIN_KEY_PREFIX + 1]),
  });
  const utxos: Utxo[] = [];
  for (const { key, value } of rows) {
    const entry = bcoin.CoinEntry.fromRaw(value);
    const script = entry.output.script.toRaw();
    if (filter && !filter(script)) continue;
    const [hash, index] = layout.c.parse(key);
    utxos.push({ hash, index, height: entry.height, coinbase: entry.coinbase, value: entry.output.value, script });
  }
  return { utxos, scanned: rows.length };
}
