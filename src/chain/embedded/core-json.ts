/** Core's JSON shapes for transactions, blocks, headers and mempool entries, built from bcoin objects. */
import {
  bcoin,
  revHex,
  type BcoinBlock,
  type BcoinChainEntry,
  type BcoinCoinView,
  type BcoinFullNode,
  type BcoinMempoolEntry,
  type BcoinTX,
} from './bcoin.ts';
import { btc } from './json.ts';
import { classifyScript, scriptAsm } from './script-info.ts';
import { inferDescriptor } from './descriptors.ts';

/** `scriptPubKey` object as Core prints it. */
export function scriptPubKeyJson(script: Buffer): Record<string, unknown> {
  const info = classifyScript(script);
  return {
    asm: scriptAsm(script),
    desc: inferDescriptor(script),
    hex: script.toString('hex'),
    address: info.address,
    type: info.type,
  };
}

/** Options of {@link txJson}. */
export interface TxJsonOptions {
  /** Spent coins: adds `fee` (verbosity ≥ 2) and, with `prevouts`, `vin[].prevout` (verbosity 3). */
  view?: BcoinCoinView | null;
  prevouts?: boolean;
  /** Include `hex` (getrawtransaction/getblock do, decoderawtransaction does not). */
  hex?: boolean;
}

/** A transaction as Core's TxToUniv prints it. */
export function txJson(tx: BcoinTX, opts: TxJsonOptions = {}): Record<string, unknown> {
  const vin = tx.inputs.map((input) => {
    const witness = input.witness.items.map((w) => w.toString('hex'));
    const scriptSig = input.script.toRaw();
    if (tx.isCoinbase()) {
      return {
        coinbase: scriptSig.toString('hex'),
        txinwitness: witness.length ? witness : undefined,
        sequence: input.sequence,
      };
    }
    const out: Record<string, unknown> = {
      txid: revHex(input.prevout.hash),
      vout: input.prevout.index,
      scriptSig: { asm: scriptAsm(scriptSig, true), hex: scriptSig.toString('hex') },
      txinwitness: witness.length ? witness : undefined,
    };
    if (opts.prevouts && opts.view) {
      const entry = opts.view.getEntry(input.prevout) as { height: number; coinbase: boolean } | null;
      const coin = opts.view.getOutput(input.prevout);
      if (entry && coin) {
        out.prevout = {
          generated: entry.coinbase,
          height: entry.height,
          value: btc(coin.value),
          scriptPubKey: scriptPubKeyJson(coin.script.toRaw()),
        };
      }
    }
    out.sequence = input.sequence;
    return out;
  });
  const vout = tx.outputs.map((output, n) => ({
    value: btc(output.value),
    n,
    scriptPubKey: scriptPubKeyJson(output.script.toRaw()),
  }));
  const json: Record<string, unknown> = {
    txid: tx.txid(),
    hash: tx.wtxid(),
    version: tx.version,
    size: tx.getSize(),
    vsize: tx.getVirtualSize(),
    weight: tx.getWeight(),
    locktime: tx.locktime,
    vin,
    vout,
  };
  if (opts.view && !tx.isCoinbase()) {
    let inSum = 0;
    let complete = true;
    for (const input of tx.inputs) {
      const coin = opts.view.getOutput(input.prevout);
      if (!coin) complete = false;
      else inSum += coin.value;
    }
    if (complete) json.fee = btc(inSum - tx.getOutputValue());
  }
  if (opts.hex) json.hex = tx.toRaw().toString('hex');
  return json;
}

/** Core's GetDifficulty for compact `bits`. */
export function difficulty(bits: number): number {
  let shift = (bits >>> 24) & 0xff;
  let diff = 0x0000ffff / (bits & 0x00ffffff);
  while (shift < 29) {
    diff *= 256;
    shift++;
  }
  while (shift > 29) {
    diff /= 256;
    shift--;
  }
  return diff;
}

/** Header fields shared by getblockheader and getblock (verbose). */
export async function headerJson(
  node: BcoinFullNode,
  entry: BcoinChainEntry,
  nTx: number,
): Promise<Record<string, unknown>> {
  const main = await node.chain.isMainChain(entry);
  const next = main ? await node.chain.getNextEntry(entry) : null;
  return {
    hash: revHex(entry.hash),
    confirmations: main ? node.chain.height - entry.height + 1 : -1,
    height: entry.height,
    version: entry.version,
    versionHex: (entry.version >>> 0).toString(16).padStart(8, '0'),
    merkleroot: revHex(entry.merkleRoot),
    time: entry.time,
    mediantime: await node.chain.getMedianTime(entry),
    nonce: entry.nonce >>> 0,
    bits: (entry.bits >>> 0).toString(16).padStart(8, '0'),
    target: bcoin.consensus.fromCompact(entry.bits).toString('hex', 64),
    difficulty: difficulty(entry.bits),
    chainwork: entry.chainwork.toString('hex', 64),
    nTx,
    previousblockhash: entry.height > 0 ? revHex(entry.prevBlock) : undefined,
    nextblockhash: next ? revHex(next.hash) : undefined,
  };
}

/** getblock verbosity 1..3. */
export async function blockJson(
  node: BcoinFullNode,
  entry: BcoinChainEntry,
  block: BcoinBlock,
  verbosity: number,
): Promise<Record<string, unknown>> {
  const header = await headerJson(node, entry, block.txs.length);
  let txs: unknown[];
  if (verbosity <= 1) {
    txs = block.txs.map((tx) => tx.txid());
  } else {
    // Spent coins come from the block's undo data (absent for the genesis block).
    const view = entry.height > 0 ? await node.chain.getBlockView(block) : null;
    txs = block.txs.map((tx) => txJson(tx, { view, prevouts: verbosity >= 3, hex: true }));
  }
  return {
    ...header,
    strippedsize: block.getBaseSize(),
    size: block.getSize(),
    weight: block.getWeight(),
    tx: txs,
  };
}

/** A mempool entry as getrawmempool (verbose) / getmempoolentry print it. */
export function mempoolEntryJson(node: BcoinFullNode, entry: BcoinMempoolEntry): Record<string, unknown> {
  const mempool = node.mempool;
  const tx = entry.tx;
  const hash = tx.hash('hex');
  const ancestors = mempool.getAncestors(entry);
  const descendants = mempool.getDescendants(entry);
  const sumSize = (list: BcoinMempoolEntry[]) => list.reduce((s, e) => s + e.size, entry.size);
  const sumFee = (list: BcoinMempoolEntry[]) => list.reduce((s, e) => s + e.fee, entry.fee);
  const depends = new Set<string>();
  for (const input of tx.inputs) if (mempool.hasEntry(input.prevout.hash)) depends.add(revHex(input.prevout.hash));
  const spentby = new Set<string>();
  tx.outputs.forEach((_, i) => {
    const spender = mempool.getSpentTX(hash, i);
    if (spender) spentby.add(spender.txid());
  });
  return {
    vsize: entry.size,
    weight: tx.getWeight(),
    time: entry.time,
    height: entry.height,
    descendantcount: descendants.length + 1,
    descendantsize: sumSize(descendants),
    ancestorcount: ancestors.length + 1,
    ancestorsize: sumSize(ancestors),
    wtxid: tx.wtxid(),
    fees: {
      base: btc(entry.fee),
      modified: btc(entry.deltaFee ?? entry.fee),
      ancestor: btc(sumFee(ancestors)),
      descendant: btc(sumFee(descendants)),
    },
    depends: [...depends],
    spentby: [...spentby],
    'bip125-replaceable': tx.isRBF(),
    unbroadcast: false,
  };
}
