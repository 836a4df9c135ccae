/**
 * The one place bcoin is loaded, with the narrow types this façade relies on. bcoin ships no types;
 * everything here describes only what src/chain/embedded touches (hashes are bcoin's internal
 * byte-order hex strings unless a name says otherwise).
 */
import { createRequire } from 'node:module';
import bcoinModule from 'bcoin';

const require = createRequire(import.meta.url);

/** bcoin's module object (untyped at the root; narrowed through the interfaces below). */
export const bcoin: BcoinModule = bcoinModule as BcoinModule;

/** bcoin's raw-buffer reader, used to reject trailing bytes after a transaction. */
export const bufio: { BufferReader: new (data: Buffer) => { left(): number } } = require('bufio');

export interface BcoinModule {
  FullNode: new (options: Record<string, unknown>) => BcoinFullNode;
  TX: { fromRaw(raw: Buffer): BcoinTX; fromReader(br: unknown): BcoinTX };
  MTX: new () => BcoinMTX;
  Block: { fromRaw(raw: Buffer): BcoinBlock };
  Coin: { fromOptions(options: Record<string, unknown>): BcoinCoin };
  CoinEntry: { fromRaw(raw: Buffer): BcoinCoinEntry };
  KeyRing: { fromPrivate(key: Buffer, compressed?: boolean): BcoinKeyRing };
  Address: { fromScript(script: BcoinScript): unknown };
  Script: {
    fromRaw(raw: Buffer): BcoinScript;
    flags: Record<string, number>;
  };
  Outpoint: new (hash: string, index: number) => BcoinOutpoint;
  MempoolEntry: { fromTX(tx: BcoinTX, view: BcoinCoinView, height: number): BcoinMempoolEntry };
  consensus: {
    COINBASE_MATURITY: number;
    fromCompact(bits: number): { toString(base: string, length: number): string };
  };
  policy: { MAX_TX_SIGOPS_COST: number; MEMPOOL_MAX_ANCESTORS: number };
  util: { revHex(hex: string): string };
}

export interface BcoinScript {
  toRaw(): Buffer;
  getSize(): number;
}

export interface BcoinOutput {
  value: number;
  script: BcoinScript;
}

export interface BcoinOutpoint {
  hash: string;
  index: number;
}

export interface BcoinInput {
  prevout: BcoinOutpoint;
  script: BcoinScript;
  witness: { items: Buffer[]; toRaw(): Buffer };
  sequence: number;
}

export interface BcoinTX {
  version: number;
  locktime: number;
  inputs: BcoinInput[];
  outputs: BcoinOutput[];
  hash(enc: 'hex'): string;
  txid(): string;
  wtxid(): string;
  toRaw(): Buffer;
  toNormal(): Buffer;
  getSize(): number;
  getVirtualSize(): number;
  getWeight(): number;
  getBaseSize?(): number;
  isCoinbase(): boolean;
  hasWitness(): boolean;
  isRBF(): boolean;
  getOutputValue(): number;
  checkSanity(): [boolean, string, number];
  checkStandard(): [boolean, string, number];
  checkInputs(view: BcoinCoinView, height: number): [number, string, number];
  hasStandardInputs(view: BcoinCoinView): boolean;
  hasStandardWitness(view: BcoinCoinView): boolean;
  checkInput(index: number, coin: BcoinOutput, flags: number): void;
}

export interface BcoinMTX {
  addOutput(script: BcoinScript, value: number): void;
  fund(coins: BcoinCoin[], options: Record<string, unknown>): Promise<void>;
  sign(ring: BcoinKeyRing): number;
  toTX(): BcoinTX;
  outputs: BcoinOutput[];
  getFee(): number;
}

export interface BcoinCoin {
  hash: string;
  index: number;
  value: number;
  height: number;
  coinbase: boolean;
}

export interface BcoinCoinEntry {
  height: number;
  coinbase: boolean;
  output: BcoinOutput;
}

export interface BcoinCoinView {
  getOutput(prevout: BcoinOutpoint): BcoinOutput | null;
  getEntry(prevout: BcoinOutpoint): { height: number; coinbase: boolean } | null;
}

export interface BcoinKeyRing {
  witness: boolean;
  publicKey: Buffer;
  getAddress(): unknown;
}

export interface BcoinChainEntry {
  hash: string;
  height: number;
  version: number;
  prevBlock: string;
  merkleRoot: string;
  time: number;
  bits: number;
  nonce: number;
  chainwork: { toString(base: string, length: number): string };
  toHeaders(): { toHead(): Buffer };
}

export interface BcoinBlock {
  txs: BcoinTX[];
  toRaw(): Buffer;
  getSize(): number;
  getBaseSize(): number;
  getWeight(): number;
  rhash(): string;
}

export interface BcoinTXMeta {
  tx: BcoinTX;
  height: number;
  block: string | null;
  time: number;
  index: number;
}

export interface BcoinDB {
  range(options: { gte?: Buffer; lt?: Buffer }): Promise<Array<{ key: Buffer; value: Buffer }>>;
  binding: { iterator(options: Record<string, unknown>): unknown } | null;
}

export interface BcoinChain {
  height: number;
  tip: BcoinChainEntry;
  state: { hasWitness(): boolean };
  db: { db: BcoinDB };
  add(block: BcoinBlock): Promise<BcoinChainEntry | null>;
  getEntry(hashOrHeight: string | number): Promise<BcoinChainEntry | null>;
  getNextEntry(entry: BcoinChainEntry): Promise<BcoinChainEntry | null>;
  isMainChain(entry: BcoinChainEntry): Promise<boolean>;
  getMedianTime(entry: BcoinChainEntry): Promise<number>;
  getBlock(hash: string): Promise<BcoinBlock | null>;
  getBlockView(block: BcoinBlock): Promise<BcoinCoinView>;
  getMeta(hash: string): Promise<BcoinTXMeta | null>;
  readCoin(prevout: BcoinOutpoint): Promise<BcoinCoinEntry | null>;
  hasCoins(tx: BcoinTX): Promise<boolean>;
  on(event: string, listener: (...args: unknown[]) => void): void;
}

export interface BcoinMempoolEntry {
  tx: BcoinTX;
  height: number;
  size: number;
  sigops: number;
  fee: number;
  deltaFee: number;
  time: number;
}

export interface BcoinMempool {
  map: Map<string, BcoinMempoolEntry>;
  options: Record<string, unknown>;
  cache: { db: BcoinDB | null; flush(): Promise<void> };
  hasEntry(hash: string): boolean;
  getEntry(hash: string): BcoinMempoolEntry | undefined;
  getTX(hash: string): BcoinTX | undefined;
  isSpent(hash: string, index: number): boolean;
  getSpentTX(hash: string, index: number): BcoinTX | undefined;
  isDoubleSpend(tx: BcoinTX): boolean;
  getCoinView(tx: BcoinTX): Promise<BcoinCoinView>;
  verifyFinal(tx: BcoinTX, flags: number): Promise<boolean>;
  verifyLocks(tx: BcoinTX, view: BcoinCoinView, flags: number): Promise<boolean>;
  countAncestors(entry: BcoinMempoolEntry): number;
  getAncestors(entry: BcoinMempoolEntry): BcoinMempoolEntry[];
  getDescendants(entry: BcoinMempoolEntry): BcoinMempoolEntry[];
  addTX(tx: BcoinTX): Promise<unknown[] | null>;
  hasOrphan(hash: string): boolean;
  removeOrphan(hash: string): void;
}

export interface BcoinFullNode {
  chain: BcoinChain;
  mempool: BcoinMempool;
  miner: { mineBlock(tip: BcoinChainEntry, address: unknown): Promise<BcoinBlock> };
  http: { open(): Promise<void>; close(): Promise<void> };
  ensure(): Promise<void>;
  open(): Promise<void>;
  close(): Promise<void>;
  on(event: string, listener: (...args: unknown[]) => void): void;
}

/** bcoin's chain-database key layout (only the coin prefix is read here). */
export const COIN_KEY_PREFIX = 0x63; // 'c' + 32-byte hash + u32 BE index

/**
 * bcoin 1.0.2's database layer (bdb 0.2) hands absent iterator bounds to leveldown as explicit
 * `null`s; leveldown 6 (the version that installs on Node 20) treats those as real bounds, so every
 * on-disk range read (UTXO scans, address indexes, the persistent mempool) silently returns nothing.
 * Dropping the null bounds before they reach leveldown restores bcoin's intended behaviour.
 */
export function fixNullIteratorBounds(db: BcoinDB | null): void {
  const backend = db?.binding;
  if (!backend || typeof backend.iterator !== 'function') return;
  const original = backend.iterator.bind(backend);
  backend.iterator = (options: Record<string, unknown>) => {
    const cleaned: Record<string, unknown> = { ...options };
    for (const bound of ['gt', 'gte', 'lt', 'lte']) if (cleaned[bound] == null) delete cleaned[bound];
    return original(cleaned);
  };
}

/** Display-order (Core) hex of a bcoin internal-order hash, and back (the same reversal). */
export function revHex(hex: string): string {
  return Buffer.from(hex, 'hex').reverse().toString('hex');
}
