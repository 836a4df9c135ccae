/**
 * Domain types of Core RPC results and the one place raw JSON results become them: shapes are
 * checked (a wrong shape is an RpcInvalidDataError naming the field) and BTC amounts become exact
 * bigint satoshis.
 */
import { btcToSats } from './amounts.ts';
import { RpcInvalidDataError } from './rpc-errors.ts';

/** An output script as Core describes it. */
export interface ScriptPubKey {
  hex: string;
  type: string;
  asm: string;
  address?: string;
  desc?: string;
}

/** gettxout. */
export interface TxOutInfo {
  bestBlock: string;
  /** 0 for an output of a mempool transaction. */
  confirmations: number;
  valueSat: bigint;
  scriptPubKey: ScriptPubKey;
  coinbase: boolean;
}

/** One input of a decoded transaction. */
export interface TxInputInfo {
  /** Absent for a coinbase input. */
  txid?: string;
  vout?: number;
  /** Coinbase script hex (coinbase inputs only). */
  coinbase?: string;
  scriptSigHex: string;
  witness: string[];
  sequence: number;
}

/** One output of a decoded transaction. */
export interface TxOutputInfo {
  n: number;
  valueSat: bigint;
  scriptPubKey: ScriptPubKey;
}

/** decoderawtransaction. */
export interface DecodedTx {
  txid: string;
  wtxid: string;
  version: number;
  size: number;
  vsize: number;
  weight: number;
  locktime: number;
  vin: TxInputInfo[];
  vout: TxOutputInfo[];
}

/** getrawtransaction (verbose). Block fields are null while the transaction is in the mempool. */
export interface RawTxInfo extends DecodedTx {
  hex: string;
  blockHash: string | null;
  confirmations: number;
  blockTime: number | null;
}

/** getblockchaininfo (the fields the project uses). */
export interface BlockchainInfo {
  chain: string;
  blocks: number;
  headers: number;
  bestBlockHash: string;
  initialBlockDownload: boolean;
  medianTime: number;
}

/** getblockheader (verbose). */
export interface BlockHeaderInfo {
  hash: string;
  height: number;
  /** -1 when the block is not on the best chain. */
  confirmations: number;
  version: number;
  merkleRoot: string;
  time: number;
  medianTime: number;
  nonce: number;
  bits: string;
  nTx: number;
  previousBlockHash: string | null;
  nextBlockHash: string | null;
}

/** getblock verbosity 1. */
export interface BlockInfo extends BlockHeaderInfo {
  size: number;
  strippedSize: number;
  weight: number;
  txids: string[];
}

/** A transaction inside getblock verbosity 2 (fee absent for the coinbase). */
export interface BlockTx extends DecodedTx {
  hex: string;
  feeSat?: bigint;
}

/** getblock verbosity 2. */
export interface BlockWithTxs extends BlockHeaderInfo {
  size: number;
  strippedSize: number;
  weight: number;
  txs: BlockTx[];
}

/** getmempoolentry / getrawmempool verbose entries. */
export interface MempoolEntryInfo {
  vsize: number;
  weight: number;
  time: number;
  height: number;
  wtxid: string;
  feeSat: bigint;
  ancestorCount: number;
  descendantCount: number;
  depends: string[];
  spentBy: string[];
}

/** One testmempoolaccept result. */
export interface MempoolAcceptResult {
  txid: string;
  wtxid: string;
  allowed: boolean;
  vsize?: number;
  feeSat?: bigint;
  rejectReason?: string;
}

/** estimatesmartfee; `feeRateSatPerKvb` is null when the node has no estimate. */
export interface FeeEstimate {
  feeRateSatPerKvb: bigint | null;
  blocks: number;
  errors: string[];
}

/** One scantxoutset unspent. */
export interface ScannedUtxo {
  txid: string;
  vout: number;
  scriptPubKeyHex: string;
  desc: string;
  valueSat: bigint;
  height: number;
  coinbase?: boolean;
}

/** scantxoutset start. */
export interface ScanResult {
  success: boolean;
  txouts: number;
  height: number;
  bestBlock: string;
  unspents: ScannedUtxo[];
  totalSat: bigint;
}

type Obj = Record<string, unknown>;

/** Field readers that throw RpcInvalidDataError with the method and the path of the bad field. */
export class ResultReader {
  constructor(readonly method: string) {}

  bad(path: string, detail: string): RpcInvalidDataError {
    return new RpcInvalidDataError(this.method, path, detail);
  }
  obj(v: unknown, path: string): Obj {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw this.bad(path, 'is not an object');
    return v as Obj;
  }
  arr(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) throw this.bad(path, 'is not an array');
    return v;
  }
  str(v: unknown, path: string): string {
    if (typeof v !== 'string') throw this.bad(path, 'is not a string');
    return v;
  }
  hash(v: unknown, path: string): string {
    const s = this.str(v, path);
    if (!/^[0-9a-f]{64}$/.test(s)) throw this.bad(path, 'is not a 64-hex-character hash');
    return s;
  }
  int(v: unknown, path: string): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw this.bad(path, 'is not an integer');
    return v;
  }
  num(v: unknown, path: string): number {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw this.bad(path, 'is not a number');
    return v;
  }
  bool(v: unknown, path: string): boolean {
    if (typeof v !== 'boolean') throw this.bad(path, 'is not a boolean');
    return v;
  }
  sats(v: unknown, path: string): bigint {
    if (typeof v !== 'number' && typeof v !== 'string') throw this.bad(path, 'is not a BTC amount');
    try {
      return btcToSats(v, path);
    } catch (err) {
      throw this.bad(path, (err as Error).message);
    }
  }
  optStr(v: unknown, path: string): string | undefined {
    return v === undefined || v === null ? undefined : this.str(v, path);
  }
  optHash(v: unknown, path: string): string | null {
    return v === undefined || v === null ? null : this.hash(v, path);
  }

  scriptPubKey(v: unknown, path: string): ScriptPubKey {
    const o = this.obj(v, path);
    const out: ScriptPubKey = {
      hex: this.str(o.hex, `${path}.hex`),
      type: this.str(o.type, `${path}.type`),
      asm: this.str(o.asm ?? '', `${path}.asm`),
    };
    const address = this.optStr(o.address, `${path}.address`);
    if (address !== undefined) out.address = address;
    const desc = this.optStr(o.desc, `${path}.desc`);
    if (desc !== undefined) out.desc = desc;
    return out;
  }

  txOut(v: unknown): TxOutInfo | null {
    if (v === null) return null;
    const o = this.obj(v, 'result');
    return {
      bestBlock: this.hash(o.bestblock, 'result.bestblock'),
      confirmations: this.int(o.confirmations, 'result.confirmations'),
      valueSat: this.sats(o.value, 'result.value'),
      scriptPubKey: this.scriptPubKey(o.scriptPubKey, 'result.scriptPubKey'),
      coinbase: this.bool(o.coinbase, 'result.coinbase'),
    };
  }

  decodedTx(v: unknown, path = 'result'): DecodedTx {
    const o = this.obj(v, path);
    const vin = this.arr(o.vin, `${path}.vin`).map((raw, i) => {
      const p = `${path}.vin[${i}]`;
      const inp = this.obj(raw, p);
      const witness =
        inp.txinwitness === undefined
          ? []
          : this.arr(inp.txinwitness, `${p}.txinwitness`).map((w, j) => this.str(w, `${p}.txinwitness[${j}]`));
      const sequence = this.int(inp.sequence, `${p}.sequence`);
      if (inp.coinbase !== undefined)
        return { coinbase: this.str(inp.coinbase, `${p}.coinbase`), scriptSigHex: '', witness, sequence };
      const scriptSig = this.obj(inp.scriptSig, `${p}.scriptSig`);
      return {
        txid: this.hash(inp.txid, `${p}.txid`),
        vout: this.int(inp.vout, `${p}.vout`),
        scriptSigHex: this.str(scriptSig.hex, `${p}.scriptSig.hex`),
        witness,
        sequence,
      };
    });
    const vout = this.arr(o.vout, `${path}.vout`).map((raw, i) => {
      const p = `${path}.vout[${i}]`;
      const out = this.obj(raw, p);
      return {
        n: this.int(out.n, `${p}.n`),
        valueSat: this.sats(out.value, `${p}.value`),
        scriptPubKey: this.scriptPubKey(out.scriptPubKey, `${p}.scriptPubKey`),
      };
    });
    return {
      txid: this.hash(o.txid, `${path}.txid`),
      wtxid: this.hash(o.hash, `${path}.hash`),
      version: this.int(o.version, `${path}.version`),
      size: this.int(o.size, `${path}.size`),
      vsize: this.int(o.vsize, `${path}.vsize`),
      weight: this.int(o.weight, `${path}.weight`),
      locktime: this.int(o.locktime, `${path}.locktime`),
      vin,
      vout,
    };
  }

  rawTx(v: unknown): RawTxInfo {
    const o = this.obj(v, 'result');
    return {
      ...this.decodedTx(o),
      hex: this.str(o.hex, 'result.hex'),
      blockHash: this.optHash(o.blockhash, 'result.blockhash'),
      confirmations: o.confirmations === undefined ? 0 : this.int(o.confirmations, 'result.confirmations'),
      blockTime: o.blocktime === undefined ? null : this.int(o.blocktime, 'result.blocktime'),
    };
  }

  blockchainInfo(v: unknown): BlockchainInfo {
    const o = this.obj(v, 'result');
    return {
      chain: this.str(o.chain, 'result.chain'),
      blocks: this.int(o.blocks, 'result.blocks'),
      headers: this.int(o.headers, 'result.headers'),
      bestBlockHash: this.hash(o.bestblockhash, 'result.bestblockhash'),
      initialBlockDownload: this.bool(o.initialblockdownload, 'result.initialblockdownload'),
      medianTime: this.int(o.mediantime, 'result.mediantime'),
    };
  }

  header(v: unknown): BlockHeaderInfo {
    const o = this.obj(v, 'result');
    return {
      hash: this.hash(o.hash, 'result.hash'),
      height: this.int(o.height, 'result.height'),
      confirmations: this.int(o.confirmations, 'result.confirmations'),
      version: this.int(o.version, 'result.version'),
      merkleRoot: this.hash(o.merkleroot, 'result.merkleroot'),
      time: this.int(o.time, 'result.time'),
      medianTime: this.int(o.mediantime, 'result.mediantime'),
      nonce: this.int(o.nonce, 'result.nonce'),
      bits: this.str(o.bits, 'result.bits'),
      nTx: this.int(o.nTx, 'result.nTx'),
      previousBlockHash: this.optHash(o.previousblockhash, 'result.previousblockhash'),
      nextBlockHash: this.optHash(o.nextblockhash, 'result.nextblockhash'),
    };
  }

  block(v: unknown): BlockInfo {
    const o = this.obj(v, 'result');
    return {
      ...this.header(o),
      size: this.int(o.size, 'result.size'),
      strippedSize: this.int(o.strippedsize, 'result.strippedsize'),
      weight: this.int(o.weight, 'result.weight'),
      txids: this.arr(o.tx, 'result.tx').map((t, i) => this.hash(t, `result.tx[${i}]`)),
    };
  }

  blockWithTxs(v: unknown): BlockWithTxs {
    const o = this.obj(v, 'result');
    return {
      ...this.header(o),
      size: this.int(o.size, 'result.size'),
      strippedSize: this.int(o.strippedsize, 'result.strippedsize'),
      weight: this.int(o.weight, 'result.weight'),
      txs: this.arr(o.tx, 'result.tx').map((t, i) => {
        const path = `result.tx[${i}]`;
        const tx = this.obj(t, path);
        const out: BlockTx = { ...this.decodedTx(tx, path), hex: this.str(tx.hex, `${path}.hex`) };
        if (tx.fee !== undefined) out.feeSat = this.sats(tx.fee, `${path}.fee`);
        return out;
      }),
    };
  }

  mempoolEntry(v: unknown, path = 'result'): MempoolEntryInfo {
    const o = this.obj(v, path);
    const fees = this.obj(o.fees, `${path}.fees`);
    return {
      vsize: this.int(o.vsize, `${path}.vsize`),
      weight: this.int(o.weight, `${path}.weight`),
      time: this.int(o.time, `${path}.time`),
      height: this.int(o.height, `${path}.height`),
      wtxid: this.hash(o.wtxid, `${path}.wtxid`),
      feeSat: this.sats(fees.base, `${path}.fees.base`),
      ancestorCount: this.int(o.ancestorcount, `${path}.ancestorcount`),
      descendantCount: this.int(o.descendantcount, `${path}.descendantcount`),
      depends: this.arr(o.depends, `${path}.depends`).map((d, i) => this.hash(d, `${path}.depends[${i}]`)),
      spentBy: this.arr(o.spentby, `${path}.spentby`).map((d, i) => this.hash(d, `${path}.spentby[${i}]`)),
    };
  }

  mempoolAccept(v: unknown): MempoolAcceptResult[] {
    return this.arr(v, 'result').map((r, i) => {
      const path = `result[${i}]`;
      const o = this.obj(r, path);
      const out: MempoolAcceptResult = {
        txid: this.hash(o.txid, `${path}.txid`),
        wtxid: this.hash(o.wtxid, `${path}.wtxid`),
        allowed: o.allowed === undefined ? false : this.bool(o.allowed, `${path}.allowed`),
      };
      if (o.vsize !== undefined) out.vsize = this.int(o.vsize, `${path}.vsize`);
      if (o.fees !== undefined) out.feeSat = this.sats(this.obj(o.fees, `${path}.fees`).base, `${path}.fees.base`);
      const reason = o['reject-reason'] ?? o['package-error'];
      if (reason !== undefined) out.rejectReason = this.str(reason, `${path}.reject-reason`);
      return out;
    });
  }

  feeEstimate(v: unknown): FeeEstimate {
    const o = this.obj(v, 'result');
    return {
      feeRateSatPerKvb: o.feerate === undefined ? null : this.sats(o.feerate, 'result.feerate'),
      blocks: this.int(o.blocks, 'result.blocks'),
      errors:
        o.errors === undefined
          ? []
          : this.arr(o.errors, 'result.errors').map((e, i) => this.str(e, `result.errors[${i}]`)),
    };
  }

  scan(v: unknown): ScanResult {
    const o = this.obj(v, 'result');
    return {
      success: this.bool(o.success, 'result.success'),
      txouts: this.int(o.txouts, 'result.txouts'),
      height: this.int(o.height, 'result.height'),
      bestBlock: this.hash(o.bestblock, 'result.bestblock'),
      totalSat: this.sats(o.total_amount, 'result.total_amount'),
      unspents: this.arr(o.unspents, 'result.unspents').map((u, i) => {
        const path = `result.unspents[${i}]`;
        const x = this.obj(u, path);
        const out: ScannedUtxo = {
          txid: this.hash(x.txid, `${path}.txid`),
          vout: this.int(x.vout, `${path}.vout`),
          scriptPubKeyHex: this.str(x.scriptPubKey, `${path}.scriptPubKey`),
          desc: this.str(x.desc, `${path}.desc`),
          valueSat: this.sats(x.amount, `${path}.amount`),
          height: this.int(x.height, `${path}.height`),
        };
        if (x.coinbase !== undefined) out.coinbase = this.bool(x.coinbase, `${path}.coinbase`);
        return out;
      }),
    };
  }
}
