/**
 * The Core JSON-RPC methods the façade serves, with Core's parameter shapes, result shapes and
 * error codes, implemented on bcoin's chain, mempool and miner.
 */
import { RpcCode } from '../rpc-errors.ts';
import { bcoin, revHex, type BcoinCoinView, type BcoinFullNode, type BcoinTX } from './bcoin.ts';
import { btc } from './json.ts';
import { RpcFailure, invalidAddressOrKey, invalidParameter } from './errors.ts';
import * as p from './params.ts';
import { blockJson, headerJson, mempoolEntryJson, scriptPubKeyJson, txJson } from './core-json.ts';
import {
  DEFAULT_MAX_FEE_RATE_SAT_PER_KVB,
  MIN_RELAY_SAT_PER_KVB,
  TxRejected,
  decodeTxHex,
  type MempoolPolicy,
} from './mempool-accept.ts';
import { coreAddressToScript } from './addresses.ts';
import { inferDescriptor, parseScanDescriptor } from './descriptors.ts';
import { readUtxoSet } from './utxo-set.ts';
import { mineBlock } from './node.ts';
import { InsufficientFundsError, type SingleKeyWallet } from './wallet.ts';
import type { AsyncLock } from './lock.ts';

/** Everything a method can reach. */
export interface ChainContext {
  node: BcoinFullNode;
  /** Serializes mempool/chain mutations (and the checks that must see a stable state). */
  lock: AsyncLock;
  policy: MempoolPolicy;
  wallet: SingleKeyWallet;
  startedAt: number;
  /** Called by the `stop` method. */
  requestStop?: () => void;
}

interface MethodSpec {
  /** Core's parameter names, in position order (also the named-parameter keys). */
  params: readonly string[];
  /** How many leading parameters are required. */
  required: number;
  run(ctx: ChainContext, args: unknown[]): Promise<unknown>;
}

const MAX_BLOCKS_PER_GENERATE = 10_000;

async function entryByDisplayHash(ctx: ChainContext, displayHash: string) {
  const entry = await ctx.node.chain.getEntry(revHex(displayHash));
  if (!entry) throw invalidAddressOrKey('Block not found');
  return entry;
}

async function blockOf(ctx: ChainContext, hash: string) {
  const block = await ctx.node.chain.getBlock(hash);
  if (!block) throw new RpcFailure(RpcCode.MISC_ERROR, 'Block not available');
  return block;
}

function rejection(err: unknown): unknown {
  return err instanceof TxRejected ? new RpcFailure(err.code, err.rpcMessage) : err;
}

function maxFeeRate(v: unknown): bigint | null {
  if (p.absent(v)) return DEFAULT_MAX_FEE_RATE_SAT_PER_KVB;
  const rate = p.feeRateSatPerKvb(v);
  if (rate >= 100_000_000n) throw invalidParameter('Fee rates larger than or equal to 1BTC/kvB are not accepted');
  return rate === 0n ? null : rate;
}

function decodeOrFail(hex: unknown): BcoinTX {
  try {
    return decodeTxHex(p.str(hex));
  } catch (err) {
    throw rejection(err);
  }
}

function isUnspendable(script: Buffer): boolean {
  return (script.length > 0 && script[0] === 0x6a) || script.length > 10_000;
}

async function blockchainInfo(ctx: ChainContext): Promise<unknown> {
  const { chain } = ctx.node;
  const tip = chain.tip;
  const header = await headerJson(ctx.node, tip, 0);
  return {
    chain: 'regtest',
    blocks: chain.height,
    headers: chain.height,
    bestblockhash: revHex(tip.hash),
    bits: header.bits,
    target: header.target,
    difficulty: header.difficulty,
    time: tip.time,
    mediantime: header.mediantime,
    verificationprogress: 1,
    initialblockdownload: false,
    chainwork: header.chainwork,
    size_on_disk: 0,
    pruned: false,
    warnings: [],
  };
}

async function getRawTransaction(ctx: ChainContext, args: unknown[]): Promise<unknown> {
  const txid = p.hash(args[0], 'parameter 1');
  const verbosity = p.verbosity(args[1], 0);
  const hash = revHex(txid);
  const { chain, mempool } = ctx.node;
  const withHex = (tx: BcoinTX, extra: Record<string, unknown>, view: BcoinCoinView | null) =>
    verbosity === 0
      ? tx.toRaw().toString('hex')
      : { ...txJson(tx, { view: verbosity >= 2 ? view : null, prevouts: verbosity >= 2, hex: true }), ...extra };

  if (!p.absent(args[2])) {
    const blockHash = p.hash(args[2], 'parameter 3');
    const entry = await chain.getEntry(revHex(blockHash));
    if (!entry) throw invalidAddressOrKey('Block hash not found');
    const block = await blockOf(ctx, entry.hash);
    const tx = block.txs.find((t) => t.hash('hex') === hash);
    if (!tx)
      throw invalidAddressOrKey(
        'No such transaction found in the provided block. Use gettransaction for wallet transactions.',
      );
    const main = await chain.isMainChain(entry);
    const view = verbosity >= 2 && entry.height > 0 ? await chain.getBlockView(block) : null;
    return withHex(
      tx,
      {
        in_active_chain: main,
        blockhash: blockHash,
        confirmations: main ? chain.height - entry.height + 1 : 0,
        time: entry.time,
        blocktime: entry.time,
      },
      view,
    );
  }
  const pooled = mempool.getTX(hash);
  if (pooled) return withHex(pooled, {}, verbosity >= 2 ? await mempool.getCoinView(pooled) : null);
  const meta = await chain.getMeta(hash);
  if (!meta || meta.block === null) {
    throw invalidAddressOrKey('No such mempool or blockchain transaction. Use gettransaction for wallet transactions.');
  }
  let view = null;
  if (verbosity >= 2 && meta.height > 0) view = await chain.getBlockView(await blockOf(ctx, meta.block));
  return withHex(
    meta.tx,
    {
      blockhash: revHex(meta.block),
      confirmations: chain.height - meta.height + 1,
      time: meta.time,
      blocktime: meta.time,
    },
    view,
  );
}

async function sendRawTransaction(ctx: ChainContext, args: unknown[]): Promise<unknown> {
  const tx = decodeOrFail(args[0]);
  const maxFee = maxFeeRate(args[1]);
  const maxBurn = p.absent(args[2]) ? 0n : p.amountSats(args[2]);
  for (const out of tx.outputs) {
    if (isUnspendable(out.script.toRaw()) && BigInt(out.value) > maxBurn) {
      throw new RpcFailure(
        RpcCode.VERIFY_ERROR,
        'Unspendable output exceeds maximum configured by user (maxburnamount)',
      );
    }
  }
  return ctx.lock.run(async () => {
    if (await ctx.policy.outputsInUtxoSet(tx)) {
      throw new RpcFailure(RpcCode.VERIFY_ALREADY_IN_CHAIN, 'Transaction outputs already in utxo set');
    }
    if (ctx.policy.inMempool(tx)) return tx.txid();
    try {
      return (await ctx.policy.submit(tx, maxFee)).txid;
    } catch (err) {
      throw rejection(err);
    }
  });
}

async function testMempoolAccept(ctx: ChainContext, args: unknown[]): Promise<unknown> {
  const raws = p.arr(args[0]);
  if (raws.length !== 1) {
    throw invalidParameter(
      'Array must contain between 1 and 1 transactions (the embedded chain does not evaluate packages).',
    );
  }
  const maxFee = maxFeeRate(args[1]);
  const tx = decodeOrFail(raws[0]);
  return ctx.lock.run(async () => {
    try {
      const ok = await ctx.policy.check(tx, maxFee);
      return [
        {
          txid: ok.txid,
          wtxid: ok.wtxid,
          allowed: true,
          vsize: ok.vsize,
          fees: {
            base: btc(ok.feeSat),
            'effective-feerate': btc((ok.feeSat * 1000n) / BigInt(ok.vsize)),
            'effective-includes': [ok.wtxid],
          },
        },
      ];
    } catch (err) {
      if (!(err instanceof TxRejected)) throw err;
      return [{ txid: tx.txid(), wtxid: tx.wtxid(), allowed: false, 'reject-reason': err.rejectReason }];
    }
  });
}

async function getTxOut(ctx: ChainContext, args: unknown[]): Promise<unknown> {
  const txid = p.hash(args[0], 'txid');
  const n = p.int(args[1], 'n');
  if (n < 0) throw invalidParameter('vout cannot be negative');
  if (n > 0xffffffff) return null;
  const includeMempool = p.absent(args[2]) ? true : p.bool(args[2]);
  const hash = revHex(txid);
  const { chain, mempool } = ctx.node;
  const bestblock = revHex(chain.tip.hash);
  if (includeMempool) {
    if (mempool.isSpent(hash, n)) return null;
    const pooled = mempool.getTX(hash);
    if (pooled) {
      const out = pooled.outputs[n];
      if (!out) return null;
      return {
        bestblock,
        confirmations: 0,
        value: btc(out.value),
        scriptPubKey: scriptPubKeyJson(out.script.toRaw()),
        coinbase: false,
      };
    }
  }
  const coin = await chain.readCoin(new bcoin.Outpoint(hash, n));
  if (!coin) return null;
  return {
    bestblock,
    confirmations: chain.height - coin.height + 1,
    value: btc(coin.output.value),
    scriptPubKey: scriptPubKeyJson(coin.output.script.toRaw()),
    coinbase: coin.coinbase,
  };
}

async function scanTxOutSet(ctx: ChainContext, args: unknown[]): Promise<unknown> {
  const action = p.str(args[0]);
  if (action === 'abort') return false;
  if (action === 'status') return null;
  if (action !== 'start') throw invalidParameter(`Invalid action '${action}'`);
  if (p.absent(args[1])) throw invalidParameter('scanobjects argument is required for the start action');
  const wanted = new Set<string>();
  for (const obj of p.arr(args[1])) {
    let text: string;
    if (typeof obj === 'string') text = obj;
    else if (obj && typeof obj === 'object' && typeof (obj as { desc?: unknown }).desc === 'string')
      text = (obj as { desc: string }).desc;
    else throw invalidParameter('Scan object needs to be either a string or an object');
    try {
      wanted.add(parseScanDescriptor(text).script.toString('hex'));
    } catch (err) {
      throw invalidAddressOrKey((err as Error).message);
    }
  }
  const { chain } = ctx.node;
  const height = chain.height;
  const bestblock = revHex(chain.tip.hash);
  const { utxos, scanned } = await readUtxoSet(ctx.node, (s) => wanted.has(s.toString('hex')));
  const blockHashes = new Map<number, string>();
  const unspents = [];
  let total = 0n;
  for (const u of utxos) {
    if (!blockHashes.has(u.height)) {
      const entry = await chain.getEntry(u.height);
      blockHashes.set(u.height, entry ? revHex(entry.hash) : '');
    }
    total += BigInt(u.value);
    unspents.push({
      txid: revHex(u.hash),
      vout: u.index,
      scriptPubKey: u.script.toString('hex'),
      desc: inferDescriptor(u.script),
      amount: btc(u.value),
      coinbase: u.coinbase,
      height: u.height,
      blockhash: blockHashes.get(u.height),
    });
  }
  return { success: true, txouts: scanned, height, bestblock, unspents, total_amount: btc(total) };
}

async function generateToAddress(ctx: ChainContext, args: unknown[]): Promise<unknown> {
  const n = p.int(args[0], 'nblocks');
  const address = p.str(args[1]);
  let script: Buffer;
  try {
    script = coreAddressToScript(address);
  } catch {
    throw invalidAddressOrKey('Error: Invalid address');
  }
  if (n < 0 || n > MAX_BLOCKS_PER_GENERATE) throw invalidParameter(`nblocks must be in 0..${MAX_BLOCKS_PER_GENERATE}`);
  return ctx.lock.run(async () => {
    const hashes: string[] = [];
    for (let i = 0; i < n; i++) hashes.push(revHex((await mineBlock(ctx.node, script)).hash));
    return hashes;
  });
}

async function sendToAddress(ctx: ChainContext, args: unknown[]): Promise<unknown> {
  const address = p.str(args[0]);
  let script: Buffer;
  try {
    script = coreAddressToScript(address);
  } catch {
    throw invalidAddressOrKey('Invalid address');
  }
  const sats = p.amountSats(args[1]);
  if (sats <= 0n) throw new RpcFailure(RpcCode.TYPE_ERROR, 'Invalid amount for send');
  const subtractFee = p.absent(args[4]) ? false : p.bool(args[4]);
  let feeRateSatPerKvb: bigint | undefined;
  if (!p.absent(args[9])) {
    const satPerVb = p.num(args[9]);
    if (satPerVb < 1)
      throw new RpcFailure(
        RpcCode.WALLET_ERROR,
        'Fee rate (' + satPerVb + ' sat/vB) is lower than the minimum fee rate setting (1.000 sat/vB)',
      );
    feeRateSatPerKvb = BigInt(Math.round(satPerVb * 1000));
  }
  return ctx.lock.run(async () => {
    try {
      return await ctx.wallet.send(script, sats, { subtractFee, ...(feeRateSatPerKvb ? { feeRateSatPerKvb } : {}) });
    } catch (err) {
      if (err instanceof InsufficientFundsError)
        throw new RpcFailure(RpcCode.WALLET_INSUFFICIENT_FUNDS, 'Insufficient funds');
      if (err instanceof TxRejected && err.reason === 'dust')
        throw new RpcFailure(RpcCode.WALLET_ERROR, 'Transaction amount too small');
      if (err instanceof TxRejected)
        throw new RpcFailure(RpcCode.WALLET_ERROR, `Transaction rejected: ${err.rpcMessage}`);
      throw err;
    }
  });
}

const METHODS: Record<string, MethodSpec> = {
  getblockchaininfo: { params: [], required: 0, run: (ctx) => blockchainInfo(ctx) },
  getblockcount: { params: [], required: 0, run: async (ctx) => ctx.node.chain.height },
  getbestblockhash: { params: [], required: 0, run: async (ctx) => revHex(ctx.node.chain.tip.hash) },
  getblockhash: {
    params: ['height'],
    required: 1,
    async run(ctx, args) {
      const height = p.int(args[0], 'height');
      if (height < 0 || height > ctx.node.chain.height) throw invalidParameter('Block height out of range');
      const entry = await ctx.node.chain.getEntry(height);
      if (!entry) throw invalidParameter('Block height out of range');
      return revHex(entry.hash);
    },
  },
  getblock: {
    params: ['blockhash', 'verbosity'],
    required: 1,
    async run(ctx, args) {
      const entry = await entryByDisplayHash(ctx, p.hash(args[0], 'blockhash'));
      const verbosity = p.verbosity(args[1], 1);
      const block = await blockOf(ctx, entry.hash);
      if (verbosity <= 0) return block.toRaw().toString('hex');
      return blockJson(ctx.node, entry, block, Math.min(verbosity, 3));
    },
  },
  getblockheader: {
    params: ['blockhash', 'verbose'],
    required: 1,
    async run(ctx, args) {
      const entry = await entryByDisplayHash(ctx, p.hash(args[0], 'hash'));
      const verbose = p.absent(args[1]) ? true : p.bool(args[1]);
      if (!verbose) return entry.toHeaders().toHead().toString('hex');
      const block = await blockOf(ctx, entry.hash);
      return headerJson(ctx.node, entry, block.txs.length);
    },
  },
  getrawtransaction: { params: ['txid', 'verbosity', 'blockhash'], required: 1, run: getRawTransaction },
  decoderawtransaction: {
    params: ['hexstring', 'iswitness'],
    required: 1,
    async run(_ctx, args) {
      return txJson(decodeOrFail(args[0]));
    },
  },
  sendrawtransaction: { params: ['hexstring', 'maxfeerate', 'maxburnamount'], required: 1, run: sendRawTransaction },
  testmempoolaccept: { params: ['rawtxs', 'maxfeerate'], required: 1, run: testMempoolAccept },
  gettxout: { params: ['txid', 'n', 'include_mempool'], required: 2, run: getTxOut },
  getrawmempool: {
    params: ['verbose', 'mempool_sequence'],
    required: 0,
    async run(ctx, args) {
      const verbose = p.absent(args[0]) ? false : p.bool(args[0]);
      if (!p.absent(args[1]) && p.bool(args[1])) {
        throw invalidParameter('mempool_sequence is not supported by the embedded chain');
      }
      const entries = [...ctx.node.mempool.map.values()];
      if (!verbose) return entries.map((e) => e.tx.txid());
      const out: Record<string, unknown> = {};
      for (const e of entries) out[e.tx.txid()] = mempoolEntryJson(ctx.node, e);
      return out;
    },
  },
  getmempoolentry: {
    params: ['txid'],
    required: 1,
    async run(ctx, args) {
      const entry = ctx.node.mempool.getEntry(revHex(p.hash(args[0], 'parameter 1')));
      if (!entry) throw invalidAddressOrKey('Transaction not in mempool');
      return mempoolEntryJson(ctx.node, entry);
    },
  },
  getmempoolinfo: {
    params: [],
    required: 0,
    async run(ctx) {
      const entries = [...ctx.node.mempool.map.values()];
      return {
        loaded: true,
        size: entries.length,
        bytes: entries.reduce((s, e) => s + e.size, 0),
        usage: 0,
        total_fee: btc(entries.reduce((s, e) => s + e.fee, 0)),
        maxmempool: 300_000_000,
        mempoolminfee: btc(MIN_RELAY_SAT_PER_KVB),
        minrelaytxfee: btc(MIN_RELAY_SAT_PER_KVB),
        incrementalrelayfee: btc(MIN_RELAY_SAT_PER_KVB),
        unbroadcastcount: 0,
        fullrbf: false,
      };
    },
  },
  estimatesmartfee: {
    params: ['conf_target', 'estimate_mode'],
    required: 1,
    async run(_ctx, args) {
      const target = p.int(args[0], 'conf_target');
      if (target < 1 || target > 1008) throw invalidParameter('Invalid conf_target, must be between 1 and 1008');
      if (!p.absent(args[1]) && !['unset', 'economical', 'conservative'].includes(p.str(args[1]).toLowerCase())) {
        throw invalidParameter(
          'Invalid estimate_mode parameter, must be one of: "unset", "economical", "conservative"',
        );
      }
      // Regtest has no fee history; answer Core's relay minimum (1 sat/vB) rather than "insufficient data".
      return { feerate: btc(MIN_RELAY_SAT_PER_KVB), blocks: Math.max(2, target) };
    },
  },
  generatetoaddress: { params: ['nblocks', 'address', 'maxtries'], required: 2, run: generateToAddress },
  scantxoutset: { params: ['action', 'scanobjects'], required: 1, run: scanTxOutSet },
  getnewaddress: {
    params: ['label', 'address_type'],
    required: 0,
    async run(ctx, args) {
      if (!p.absent(args[0])) p.str(args[0]);
      if (!p.absent(args[1]) && p.str(args[1]) !== 'bech32') {
        throw invalidParameter(
          `address_type '${String(args[1])}' is not available: the embedded chain's wallet has one bech32 (P2WPKH) key`,
        );
      }
      return ctx.wallet.address;
    },
  },
  getbalance: {
    params: ['dummy', 'minconf', 'include_watchonly', 'avoid_reuse'],
    required: 0,
    async run(ctx) {
      return btc(await ctx.wallet.balanceSats());
    },
  },
  sendtoaddress: {
    params: [
      'address',
      'amount',
      'comment',
      'comment_to',
      'subtractfeefromamount',
      'replaceable',
      'conf_target',
      'estimate_mode',
      'avoid_reuse',
      'fee_rate',
      'verbose',
    ],
    required: 2,
    run: sendToAddress,
  },
  getnetworkinfo: {
    params: [],
    required: 0,
    async run() {
      return {
        version: 0,
        subversion: '/teechain-embedded:bcoin-1.0.2/',
        protocolversion: 70016,
        localservices: '0000000000000409',
        localrelay: true,
        timeoffset: 0,
        networkactive: false,
        connections: 0,
        connections_in: 0,
        connections_out: 0,
        networks: [],
        relayfee: btc(MIN_RELAY_SAT_PER_KVB),
        incrementalfee: btc(MIN_RELAY_SAT_PER_KVB),
        localaddresses: [],
        warnings: [],
      };
    },
  },
  uptime: { params: [], required: 0, run: async (ctx) => Math.floor((Date.now() - ctx.startedAt) / 1000) },
  stop: {
    params: ['wait'],
    required: 0,
    async run(ctx) {
      if (!ctx.requestStop) throw new RpcFailure(RpcCode.MISC_ERROR, 'stop is not available in this process');
      setImmediate(ctx.requestStop);
      return 'Bitcoin Core stopping';
    },
  },
};

/** Names of every method the façade serves. */
export const METHOD_NAMES: readonly string[] = Object.keys(METHODS);

/**
 * Runs one call. `params` is Core's positional array or a named-parameter object.
 * Throws RpcFailure for every answer that is a JSON-RPC error.
 */
export async function dispatch(ctx: ChainContext, method: string, params: unknown): Promise<unknown> {
  const spec = Object.prototype.hasOwnProperty.call(METHODS, method) ? METHODS[method] : undefined;
  if (!spec) throw new RpcFailure(RpcCode.METHOD_NOT_FOUND, 'Method not found');
  let args: unknown[];
  if (params === undefined || params === null) {
    args = [];
  } else if (Array.isArray(params)) {
    args = params;
  } else if (typeof params === 'object') {
    args = [];
    for (const [name, value] of Object.entries(params as Record<string, unknown>)) {
      const pos = spec.params.indexOf(name);
      if (pos < 0) throw invalidParameter(`Unknown named parameter ${name}`);
      args[pos] = value;
    }
  } else {
    throw new RpcFailure(RpcCode.INVALID_REQUEST, 'Params must be an array or object');
  }
  const usage = `${method} ${spec.params.map((n, i) => (i < spec.required ? n : `( ${n} )`)).join(' ')}`.trim();
  if (args.length > spec.params.length)
    throw new RpcFailure(RpcCode.MISC_ERROR, `too many parameters; usage: ${usage}`);
  for (let i = 0; i < spec.required; i++) {
    if (p.absent(args[i]))
      throw new RpcFailure(RpcCode.MISC_ERROR, `missing parameter ${spec.params[i]}; usage: ${usage}`);
  }
  return spec.run(ctx, args);
}
