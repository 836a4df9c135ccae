/**
 * Opening the embedded bcoin full node (regtest, in memory or in a data directory) and mining on it.
 */
import { join } from 'node:path';
import { bcoin, fixNullIteratorBounds, type BcoinChainEntry, type BcoinFullNode } from './bcoin.ts';

/** Where and how to open the node. */
export interface EmbeddedNodeOptions {
  /** Data directory (the chain lives in `<datadir>/bcoin/regtest`). Required unless `memory`. */
  datadir?: string;
  /** Keep everything in memory (for tests); nothing survives close(). */
  memory?: boolean;
}

/** An open node. */
export interface EmbeddedNode {
  node: BcoinFullNode;
  /** True when the chain was empty (genesis only) at open. */
  fresh: boolean;
  close(): Promise<void>;
}

/** The segwit deployment on bcoin's regtest is a BIP9 deployment (144-block windows): active from about height 432. */
export const SEGWIT_ACTIVATION_MAX_BLOCKS = 1000;

/** Opens (or creates) the node. Throws a clear error when the data directory is already in use. */
export async function openEmbeddedNode(opts: EmbeddedNodeOptions): Promise<EmbeddedNode> {
  const memory = opts.memory ?? false;
  if (!memory && !opts.datadir) throw new RangeError('datadir is required unless memory is set');
  const node = new bcoin.FullNode({
    network: 'regtest',
    memory,
    ...(memory ? {} : { prefix: join(opts.datadir as string, 'bcoin') }),
    indexTX: true,
    indexAddress: true,
    persistentMempool: !memory,
    logLevel: 'none',
    listen: false,
    // Core-like relay policy: RBF-signalling transactions are standard, no free-relay quirks.
    replaceByFee: true,
    limitFree: false,
    rejectAbsurdFees: false,
  });
  // bcoin's own HTTP/RPC server is not Core-compatible and must not listen; the façade replaces it.
  node.http.open = async () => {};
  node.http.close = async () => {};
  node.on('error', (err) => {
    process.stderr.write(`embedded chain: bcoin error: ${(err as Error)?.stack ?? String(err)}\n`);
  });
  // bcoin's fee/priority rules that Core does not have: the façade applies Core's min relay fee itself.
  node.mempool.options.relayPriority = false;
  if (!memory) {
    fixNullIteratorBounds(node.chain.db.db);
    fixNullIteratorBounds(node.mempool.cache.db);
  }
  try {
    await node.ensure();
    await node.open();
  } catch (err) {
    const msg = (err as Error).message ?? String(err);
    if (/lock/i.test(msg)) {
      throw new Error(`chain data directory ${opts.datadir} is in use by another process (${msg})`);
    }
    throw err;
  }
  const fresh = node.chain.height === 0;
  let closed = false;
  return {
    node,
    fresh,
    async close() {
      if (closed) return;
      closed = true;
      // bcoin writes its mempool cache lazily (every ~10 s); flush so a restart keeps the mempool like Core's mempool.dat.
      if (!memory && node.mempool.cache.db) await node.mempool.cache.flush();
      await node.close();
    },
  };
}

/** Mines one block on the tip paying the coinbase to `outputScript`; includes the mempool like Core's generate*. */
export async function mineBlock(node: BcoinFullNode, outputScript: Buffer): Promise<BcoinChainEntry> {
  const address = bcoin.Address.fromScript(bcoin.Script.fromRaw(outputScript));
  if (!address) throw new RangeError('coinbase output script has no address form');
  const block = await node.miner.mineBlock(node.chain.tip, address);
  const entry = await node.chain.add(block);
  if (!entry) throw new Error('mined block was not connected to the chain');
  return entry;
}

/** Mines until witness transactions are accepted in the next block; returns how many blocks that took. */
export async function mineToSegwitActivation(node: BcoinFullNode, outputScript: Buffer): Promise<number> {
  let mined = 0;
  while (!node.chain.state.hasWitness()) {
    if (mined >= SEGWIT_ACTIVATION_MAX_BLOCKS) throw new Error(`segwit not active after ${mined} blocks`);
    await mineBlock(node, outputScript);
    mined++;
  }
  return mined;
}
