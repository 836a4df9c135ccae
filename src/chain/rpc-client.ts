/**
 * A typed Bitcoin Core JSON-RPC client (works the same against bitcoind and the embedded façade).
 *
 * - Errors are split by cause: RpcTransportError (unreachable, timeout, HTTP 401/other non-JSON
 *   answers), RpcError (Core's code and message), RpcInvalidDataError (result of the wrong shape).
 * - No call is ever retried here: a retried sendrawtransaction could hide what happened the first
 *   time, so retry policy belongs to the caller.
 * - Typed methods convert results to domain types in rpc-types.ts (amounts → bigint satoshis);
 *   `call` stays available for anything else.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFile } from 'node:fs/promises';
import { satsToBtcNumber } from './amounts.ts';
import { RpcError, RpcInvalidDataError, RpcTransportError } from './rpc-errors.ts';
import {
  ResultReader,
  type BlockchainInfo,
  type BlockHeaderInfo,
  type BlockInfo,
  type BlockWithTxs,
  type DecodedTx,
  type FeeEstimate,
  type MempoolAcceptResult,
  type MempoolEntryInfo,
  type RawTxInfo,
  type ScanResult,
  type TxOutInfo,
} from './rpc-types.ts';

export { RpcError, RpcInvalidDataError, RpcTransportError, RpcCode } from './rpc-errors.ts';
export type * from './rpc-types.ts';

/** Connection settings. */
export interface RpcClientOptions {
  /** e.g. `http://127.0.0.1:18443/` */
  url: string;
  user: string;
  password: string;
  /** Per-call timeout (default 30 s). */
  timeoutMs?: number;
  /** Core wallet name: calls go to `/wallet/<name>` (needed when bitcoind has several wallets loaded). */
  wallet?: string;
}

/** Per-call options. */
export interface CallOptions {
  timeoutMs?: number;
}

/** Default per-call timeout. */
export const DEFAULT_RPC_TIMEOUT_MS = 30_000;

let nextId = 1;

/** The client. */
export class BitcoinRpcClient {
  readonly url: string;
  private readonly endpoint: URL;
  private readonly auth: string;
  private readonly timeoutMs: number;

  constructor(opts: RpcClientOptions) {
    if (typeof opts.url !== 'string') throw new RangeError('url must be a string');
    let endpoint: URL;
    try {
      endpoint = new URL(opts.url);
    } catch {
      throw new RangeError(`url ${JSON.stringify(opts.url)} is not a valid URL`);
    }
    if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:')
      throw new RangeError(`url ${opts.url} must be http(s)`);
    if (opts.wallet !== undefined) endpoint.pathname = `/wallet/${encodeURIComponent(opts.wallet)}`;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_RPC_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError('timeoutMs must be a positive number');
    this.url = opts.url;
    this.endpoint = endpoint;
    this.auth = 'Basic ' + Buffer.from(`${opts.user}:${opts.password}`).toString('base64');
    this.timeoutMs = timeoutMs;
  }

  /** A client authenticating with a Core cookie file (`user:password`, e.g. `<datadir>/regtest/.cookie`). */
  static async fromCookie(
    url: string,
    cookieFile: string,
    opts: Omit<RpcClientOptions, 'url' | 'user' | 'password'> = {},
  ): Promise<BitcoinRpcClient> {
    let text: string;
    try {
      text = (await readFile(cookieFile, 'utf8')).trim();
    } catch (err) {
      throw new Error(`cannot read RPC cookie file ${cookieFile}: ${(err as Error).message}`);
    }
    const colon = text.indexOf(':');
    if (colon <= 0) throw new Error(`RPC cookie file ${cookieFile} is not of the form user:password`);
    return new BitcoinRpcClient({ ...opts, url, user: text.slice(0, colon), password: text.slice(colon + 1) });
  }

  /** Calls `method` and returns Core's raw `result` (unchecked: the caller's T is a promise, not a check). */
  call<T = unknown>(
    method: string,
    params: unknown[] | Record<string, unknown> = [],
    opts: CallOptions = {},
  ): Promise<T> {
    const body = JSON.stringify({ jsonrpc: '1.0', id: nextId++, method, params });
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const send = this.endpoint.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fn();
      };
      const req = send(
        this.endpoint,
        {
          method: 'POST',
          headers: {
            'Content-Type': 'application/json',
            'Content-Length': Buffer.byteLength(body),
            Authorization: this.auth,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) =>
            finish(() =>
              reject(
                new RpcTransportError(`${method}: response failed: ${err.message}`, method, res.statusCode, {
                  cause: err,
                }),
              ),
            ),
          );
          res.on('end', () =>
            finish(() => {
              try {
                resolve(this.interpret<T>(method, res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')));
              } catch (err) {
                reject(err);
              }
            }),
          );
        },
      );
      const timer = setTimeout(() => {
        finish(() =>
          reject(
            new RpcTransportError(`${method}: no answer from ${this.endpoint.origin} within ${timeoutMs} ms`, method),
          ),
        );
        req.destroy();
      }, timeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) =>
        finish(() =>
          reject(
            new RpcTransportError(
              `${method}: cannot reach ${this.endpoint.origin}: ${err.code ?? err.message}`,
              method,
              undefined,
              { cause: err },
            ),
          ),
        ),
      );
      req.end(body);
    });
  }

  private interpret<T>(method: string, status: number, text: string): T {
    if (status === 401 || status === 403) {
      throw new RpcTransportError(
        `${method}: HTTP ${status} from ${this.endpoint.origin} (wrong RPC user/password or cookie)`,
        method,
        status,
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new RpcTransportError(
        `${method}: HTTP ${status} from ${this.endpoint.origin} without a JSON-RPC body`,
        method,
        status,
      );
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new RpcInvalidDataError(method, 'response', 'is not a JSON-RPC response object');
    }
    const reply = parsed as { result?: unknown; error?: unknown };
    if (reply.error !== undefined && reply.error !== null) {
      const e = reply.error as { code?: unknown; message?: unknown };
      if (typeof e.code !== 'number' || typeof e.message !== 'string')
        throw new RpcInvalidDataError(method, 'error', 'lacks a numeric code or a message');
      throw new RpcError(method, e.code, e.message);
    }
    if (status !== 200)
      throw new RpcTransportError(`${method}: HTTP ${status} from ${this.endpoint.origin}`, method, status);
    if (!('result' in reply)) throw new RpcInvalidDataError(method, 'response', 'has neither result nor error');
    return reply.result as T;
  }

  private async typed<R>(
    method: string,
    params: unknown[] | Record<string, unknown>,
    convert: (r: ResultReader, raw: unknown) => R,
    opts?: CallOptions,
  ): Promise<R> {
    const raw = await this.call<unknown>(method, params, opts);
    return convert(new ResultReader(method), raw);
  }

  getBlockchainInfo(): Promise<BlockchainInfo> {
    return this.typed('getblockchaininfo', [], (r, v) => r.blockchainInfo(v));
  }
  getBlockCount(): Promise<number> {
    return this.typed('getblockcount', [], (r, v) => r.int(v, 'result'));
  }
  getBestBlockHash(): Promise<string> {
    return this.typed('getbestblockhash', [], (r, v) => r.hash(v, 'result'));
  }
  getBlockHash(height: number): Promise<string> {
    return this.typed('getblockhash', [height], (r, v) => r.hash(v, 'result'));
  }
  getBlockHeader(blockHash: string): Promise<BlockHeaderInfo> {
    return this.typed('getblockheader', [blockHash, true], (r, v) => r.header(v));
  }
  /** getblock verbosity 0: the serialized block. */
  getBlockHex(blockHash: string): Promise<string> {
    return this.typed('getblock', [blockHash, 0], (r, v) => r.str(v, 'result'));
  }
  /** getblock verbosity 1: header fields and txids. */
  getBlock(blockHash: string): Promise<BlockInfo> {
    return this.typed('getblock', [blockHash, 1], (r, v) => r.block(v));
  }
  /** getblock verbosity 2: decoded transactions (with fees). */
  getBlockWithTxs(blockHash: string): Promise<BlockWithTxs> {
    return this.typed('getblock', [blockHash, 2], (r, v) => r.blockWithTxs(v));
  }
  /** getrawtransaction verbose (mempool, or confirmed with a tx index / the embedded chain). */
  getRawTransaction(txid: string, blockHash?: string): Promise<RawTxInfo> {
    return this.typed('getrawtransaction', blockHash ? [txid, 1, blockHash] : [txid, 1], (r, v) => r.rawTx(v));
  }
  getRawTransactionHex(txid: string, blockHash?: string): Promise<string> {
    return this.typed('getrawtransaction', blockHash ? [txid, 0, blockHash] : [txid, 0], (r, v) => r.str(v, 'result'));
  }
  decodeRawTransaction(hex: string): Promise<DecodedTx> {
    return this.typed('decoderawtransaction', [hex], (r, v) => r.decodedTx(v));
  }
  /**
   * Broadcasts a signed transaction; returns its txid. Never retried (see the module note).
   * `maxFeeRateSatPerKvb` is Core's maxfeerate (default 0.10 BTC/kvB; 0n disables the cap).
   */
  sendRawTransaction(hex: string, opts: { maxFeeRateSatPerKvb?: bigint } = {}): Promise<string> {
    const params: unknown[] = [hex];
    if (opts.maxFeeRateSatPerKvb !== undefined) params.push(satsToBtcNumber(opts.maxFeeRateSatPerKvb));
    return this.typed('sendrawtransaction', params, (r, v) => r.hash(v, 'result'));
  }
  /** testmempoolaccept for one transaction. */
  async testMempoolAccept(hex: string, opts: { maxFeeRateSatPerKvb?: bigint } = {}): Promise<MempoolAcceptResult> {
    const params: unknown[] = [[hex]];
    if (opts.maxFeeRateSatPerKvb !== undefined) params.push(satsToBtcNumber(opts.maxFeeRateSatPerKvb));
    const results = await this.typed('testmempoolaccept', params, (r, v) => r.mempoolAccept(v));
    const first = results[0];
    if (!first) throw new RpcInvalidDataError('testmempoolaccept', 'result', 'is empty');
    return first;
  }
  /** gettxout: the unspent output, or null when spent (also in the mempool, by default) or unknown. */
  getTxOut(txid: string, vout: number, includeMempool = true): Promise<TxOutInfo | null> {
    return this.typed('gettxout', [txid, vout, includeMempool], (r, v) => r.txOut(v));
  }
  getRawMempool(): Promise<string[]> {
    return this.typed('getrawmempool', [false], (r, v) => r.arr(v, 'result').map((t, i) => r.hash(t, `result[${i}]`)));
  }
  getMempoolEntry(txid: string): Promise<MempoolEntryInfo> {
    return this.typed('getmempoolentry', [txid], (r, v) => r.mempoolEntry(v));
  }
  estimateSmartFee(confTarget: number): Promise<FeeEstimate> {
    return this.typed('estimatesmartfee', [confTarget], (r, v) => r.feeEstimate(v));
  }
  /** Mines `n` blocks to `address`; returns their hashes. Mining many blocks can take a while: the timeout scales. */
  generateToAddress(n: number, address: string): Promise<string[]> {
    return this.typed(
      'generatetoaddress',
      [n, address],
      (r, v) => r.arr(v, 'result').map((h, i) => r.hash(h, `result[${i}]`)),
      { timeoutMs: Math.max(this.timeoutMs, 1000 * n) },
    );
  }
  /** scantxoutset start over `descriptors` (e.g. `addr(bcrt1…)`, `raw(0014…)`). */
  scanTxOutSet(descriptors: readonly string[]): Promise<ScanResult> {
    return this.typed('scantxoutset', ['start', descriptors], (r, v) => r.scan(v), {
      timeoutMs: Math.max(this.timeoutMs, 120_000),
    });
  }
  /** Wallet: a receiving address. */
  getNewAddress(): Promise<string> {
    return this.typed('getnewaddress', [], (r, v) => r.str(v, 'result'));
  }
  /** Wallet: spendable balance. */
  getBalance(): Promise<bigint> {
    return this.typed('getbalance', [], (r, v) => r.sats(v, 'result'));
  }
  /** Wallet: pays `sats` to `address` (fee on top); returns the txid. */
  sendToAddress(address: string, sats: bigint, opts: { feeRateSatPerVb?: number } = {}): Promise<string> {
    const params: Record<string, unknown> = { address, amount: satsToBtcNumber(sats) };
    if (opts.feeRateSatPerVb !== undefined) params.fee_rate = opts.feeRateSatPerVb;
    return this.typed('sendtoaddress', params, (r, v) => r.hash(v, 'result'));
  }
}
