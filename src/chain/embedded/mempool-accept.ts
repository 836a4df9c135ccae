/**
 * Transaction acceptance with Core's answers. bcoin's mempool does the real validation, but its
 * reasons, error classes and order differ from Core's, and it quietly keeps orphans. So the checks
 * run here first, in Core's order (PreChecks → script checks → max fee), each failing with Core's
 * code and reject reason; only a transaction that passes all of them is handed to bcoin's mempool.
 * Nothing in the chain or mempool changes on a rejection. Callers serialize through the façade lock.
 */
import { createRequire } from 'node:module';
import { RpcCode } from '../rpc-errors.ts';
import { bcoin, bufio, type BcoinCoinView, type BcoinFullNode, type BcoinTX } from './bcoin.ts';
import { pushedItems } from './script-info.ts';

const require = createRequire(import.meta.url);
const STANDARD_LOCKTIME_FLAGS: number = require('bcoin/lib/blockchain/common.js').lockFlags.STANDARD_LOCKTIME_FLAGS;

const flags = bcoin.Script.flags as Record<string, number>;
const STANDARD_SCRIPT_FLAGS = flags.STANDARD_VERIFY_FLAGS as number;
/** Core's consensus ("mandatory") script flags; bcoin's own MANDATORY set is only P2SH. */
const MANDATORY_SCRIPT_FLAGS =
  (flags.VERIFY_P2SH as number) |
  (flags.VERIFY_DERSIG as number) |
  (flags.VERIFY_NULLDUMMY as number) |
  (flags.VERIFY_CHECKLOCKTIMEVERIFY as number) |
  (flags.VERIFY_CHECKSEQUENCEVERIFY as number) |
  (flags.VERIFY_WITNESS as number);

/** Core's minimum relay fee: 1000 sat/kvB. */
export const MIN_RELAY_SAT_PER_KVB = 1000n;
/** Core's default `maxfeerate` of sendrawtransaction/testmempoolaccept: 0.10 BTC/kvB. */
export const DEFAULT_MAX_FEE_RATE_SAT_PER_KVB = 10_000_000n;

const DECODE_FAILED = 'TX decode failed. Make sure the tx has at least one input.';

/**
 * A rejection. `rpcMessage` is what sendrawtransaction answers (Core's `reason, debug`);
 * `rejectReason` is what testmempoolaccept shows.
 */
export class TxRejected extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    readonly debug?: string,
    readonly testReason?: string,
  ) {
    super(debug ? `${reason}, ${debug}` : reason);
  }
  get rpcMessage(): string {
    return this.message;
  }
  get rejectReason(): string {
    return this.testReason ?? this.reason;
  }
}

/** What an acceptable transaction costs. */
export interface AcceptedTx {
  txid: string;
  wtxid: string;
  /** Sigop-adjusted virtual size, as Core's mempool counts it. */
  vsize: number;
  feeSat: bigint;
}

/** Decodes a raw transaction in hex; garbage (bad hex, truncated, trailing bytes) answers Core's -22. */
export function decodeTxHex(hex: string): BcoinTX {
  if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex)) {
    throw new TxRejected(RpcCode.DESERIALIZATION_ERROR, DECODE_FAILED);
  }
  const raw = Buffer.from(hex, 'hex');
  try {
    const br = new bufio.BufferReader(raw);
    const tx = bcoin.TX.fromReader(br);
    if (br.left() !== 0) throw new Error('trailing bytes');
    return tx;
  } catch {
    throw new TxRejected(RpcCode.DESERIALIZATION_ERROR, DECODE_FAILED);
  }
}

/** Core's FormatMoney: BTC with trailing zeros trimmed to at least 2 decimals. */
function formatMoney(sats: number): string {
  const neg = sats < 0;
  const abs = BigInt(Math.abs(sats));
  let frac = (abs % 100_000_000n).toString().padStart(8, '0');
  while (frac.length > 2 && frac.endsWith('0')) frac = frac.slice(0, -1);
  return `${neg ? '-' : ''}${abs / 100_000_000n}.${frac}`;
}

/** Core's ScriptErrorString for bcoin's ScriptError codes. */
const SCRIPT_ERROR_TEXT: Record<string, string> = {
  EVAL_FALSE: 'Script evaluated without error but finished with a false/empty top stack element',
  VERIFY: 'Script failed an OP_VERIFY operation',
  EQUALVERIFY: 'Script failed an OP_EQUALVERIFY operation',
  CHECKMULTISIGVERIFY: 'Script failed an OP_CHECKMULTISIGVERIFY operation',
  CHECKSIGVERIFY: 'Script failed an OP_CHECKSIGVERIFY operation',
  NUMEQUALVERIFY: 'Script failed an OP_NUMEQUALVERIFY operation',
  SCRIPT_SIZE: 'Script is too big',
  PUSH_SIZE: 'Push value size limit exceeded',
  OP_COUNT: 'Operation limit exceeded',
  STACK_SIZE: 'Stack size limit exceeded',
  SIG_COUNT: 'Signature count negative or greater than pubkey count',
  PUBKEY_COUNT: 'Pubkey count negative or limit exceeded',
  BAD_OPCODE: 'Opcode missing or not understood',
  DISABLED_OPCODE: 'Attempted to use a disabled opcode',
  INVALID_STACK_OPERATION: 'Operation not valid with the current stack size',
  INVALID_ALTSTACK_OPERATION: 'Operation not valid with the current altstack size',
  OP_RETURN: 'OP_RETURN was encountered',
  UNBALANCED_CONDITIONAL: 'Invalid OP_IF construction',
  NEGATIVE_LOCKTIME: 'Negative locktime',
  UNSATISFIED_LOCKTIME: 'Locktime requirement not satisfied',
  SIG_HASHTYPE: 'Signature hash type missing or not understood',
  SIG_DER: 'Non-canonical DER signature',
  MINIMALDATA: 'Data push larger than necessary',
  SIG_PUSHONLY: 'Only push operators allowed in signatures',
  SIG_HIGH_S: 'Non-canonical signature: S value is unnecessarily high',
  SIG_NULLDUMMY: 'Dummy CHECKMULTISIG argument must be zero',
  MINIMALIF: 'OP_IF/NOTIF argument must be minimal',
  NULLFAIL: 'Signature must be zero for failed CHECK(MULTI)SIG operation',
  DISCOURAGE_UPGRADABLE_NOPS: 'NOPx reserved for soft-fork upgrades',
  DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM: 'Witness version reserved for soft-fork upgrades',
  PUBKEYTYPE: 'Public key is neither compressed or uncompressed',
  CLEANSTACK: 'Stack size must be exactly one after execution',
  WITNESS_PROGRAM_WRONG_LENGTH: 'Witness program has incorrect length',
  WITNESS_PROGRAM_WITNESS_EMPTY: 'Witness program was passed an empty witness',
  WITNESS_PROGRAM_MISMATCH: 'Witness program hash mismatch',
  WITNESS_MALLEATED: 'Witness requires empty scriptSig',
  WITNESS_MALLEATED_P2SH: 'Witness requires only-redeemscript scriptSig',
  WITNESS_UNEXPECTED: 'Witness provided for non-witness script',
  WITNESS_PUBKEYTYPE: 'Using non-compressed keys in segwit',
};

function scriptErrorText(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  return (typeof code === 'string' && SCRIPT_ERROR_TEXT[code]) || 'unknown error';
}

/** Core's policy limits on P2WSH spends (policy.h). */
const MAX_P2WSH_SCRIPT_SIZE = 3600;
const MAX_P2WSH_STACK_ITEMS = 100;
const MAX_P2WSH_STACK_ITEM_SIZE = 80;

/**
 * Core's IsWitnessStandard. bcoin's own check is stricter (it also demands template-shaped
 * witnesses, e.g. exactly m+1 items for multisig), which would turn what Core reports as a script
 * failure into "bad-witness-nonstandard"; so Core's rule is applied here instead.
 */
function isWitnessStandard(tx: BcoinTX, view: BcoinCoinView): boolean {
  for (const input of tx.inputs) {
    const items = input.witness.items;
    if (items.length === 0) continue;
    const coin = view.getOutput(input.prevout);
    if (!coin) continue;
    let prev = coin.script.toRaw();
    if (prev.length === 23 && prev[0] === 0xa9 && prev[1] === 20 && prev[22] === 0x87) {
      const pushes = pushedItems(input.script.toRaw());
      const redeem = pushes?.[pushes.length - 1];
      if (!redeem) return false;
      prev = redeem;
    }
    const isProgram =
      prev.length >= 4 &&
      prev.length <= 42 &&
      prev[1] === prev.length - 2 &&
      (prev[0] === 0 || ((prev[0] as number) >= 0x51 && (prev[0] as number) <= 0x60));
    if (!isProgram) return false;
    if (prev[0] === 0 && prev.length === 34) {
      const script = items[items.length - 1] as Buffer;
      if (script.length > MAX_P2WSH_SCRIPT_SIZE) return false;
      if (items.length - 1 > MAX_P2WSH_STACK_ITEMS) return false;
      if (items.slice(0, -1).some((item) => item.length > MAX_P2WSH_STACK_ITEM_SIZE)) return false;
    }
  }
  return true;
}

function rejected(reason: string, debug?: string): TxRejected {
  return new TxRejected(RpcCode.VERIFY_REJECTED, reason, debug);
}

/** Core's mempool acceptance rules, evaluated against bcoin's chain and mempool. */
export class MempoolPolicy {
  constructor(private readonly node: BcoinFullNode) {}

  /** True when the transaction (same txid) is already in the mempool. */
  inMempool(tx: BcoinTX): boolean {
    return this.node.mempool.hasEntry(tx.hash('hex'));
  }

  /** True when an output of the transaction is unspent in the chain (it is already mined). */
  async outputsInUtxoSet(tx: BcoinTX): Promise<boolean> {
    return this.node.chain.hasCoins(tx);
  }

  /**
   * Runs every acceptance check without changing anything. Throws TxRejected on the first failure
   * (Core's order). `maxFeeRate` null means no fee cap.
   */
  async check(tx: BcoinTX, maxFeeRateSatPerKvb: bigint | null): Promise<AcceptedTx> {
    const { chain, mempool } = this.node;
    const [sane, saneReason] = tx.checkSanity();
    if (!sane) throw rejected(saneReason);
    if (tx.isCoinbase()) throw rejected('coinbase');
    const [standard, standardReason] = tx.checkStandard();
    if (!standard) throw rejected(standardReason);
    if (tx.toNormal().length < 65) throw rejected('tx-size-small');
    if (!(await mempool.verifyFinal(tx, STANDARD_LOCKTIME_FLAGS))) throw rejected('non-final');
    if (this.inMempool(tx)) throw rejected('txn-already-in-mempool');
    if (mempool.isDoubleSpend(tx)) throw rejected('txn-mempool-conflict');

    const view = await mempool.getCoinView(tx);
    if (tx.inputs.some((input) => !view.getOutput(input.prevout))) {
      if (await chain.hasCoins(tx)) throw rejected('txn-already-known');
      throw new TxRejected(RpcCode.VERIFY_ERROR, 'bad-txns-inputs-missingorspent', undefined, 'missing-inputs');
    }
    if (!(await mempool.verifyLocks(tx, view, STANDARD_LOCKTIME_FLAGS))) throw rejected('non-BIP68-final');

    const spendHeight = chain.height + 1;
    const [fee, inputsReason] = tx.checkInputs(view, spendHeight);
    if (fee < 0) throw this.inputsRejection(tx, view, spendHeight, inputsReason);

    if (!tx.hasStandardInputs(view)) throw rejected('bad-txns-nonstandard-inputs');
    if (!isWitnessStandard(tx, view)) throw rejected('bad-witness-nonstandard');

    const entry = bcoin.MempoolEntry.fromTX(tx, view, chain.height);
    if (entry.sigops > bcoin.policy.MAX_TX_SIGOPS_COST) throw rejected('bad-txns-too-many-sigops');
    const minFee = Number((BigInt(entry.size) * MIN_RELAY_SAT_PER_KVB) / 1000n) || 1;
    if (entry.fee < minFee) throw rejected('min relay fee not met', `${entry.fee} < ${minFee}`);
    const limit = bcoin.policy.MEMPOOL_MAX_ANCESTORS;
    if (mempool.countAncestors(entry) + 1 > limit) {
      throw rejected('too-long-mempool-chain', `too many unconfirmed ancestors [limit: ${limit}]`);
    }

    this.checkScripts(tx, view);

    if (maxFeeRateSatPerKvb !== null && maxFeeRateSatPerKvb > 0n) {
      const maxFee = (maxFeeRateSatPerKvb * BigInt(entry.size)) / 1000n;
      if (BigInt(entry.fee) > maxFee) {
        throw new TxRejected(
          RpcCode.VERIFY_ERROR,
          'Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)',
          undefined,
          'max-fee-exceeded',
        );
      }
    }
    return { txid: tx.txid(), wtxid: tx.wtxid(), vsize: entry.size, feeSat: BigInt(entry.fee) };
  }

  /** Checks, then adds the transaction to bcoin's mempool. */
  async submit(tx: BcoinTX, maxFeeRateSatPerKvb: bigint | null): Promise<AcceptedTx> {
    const accepted = await this.check(tx, maxFeeRateSatPerKvb);
    const hash = tx.hash('hex');
    let missing: unknown[] | null;
    try {
      missing = await this.node.mempool.addTX(tx);
    } catch (err) {
      const e = err as { type?: string; reason?: string; message?: string };
      if (e.type === 'VerifyError') throw rejected(e.reason ?? 'rejected');
      throw err;
    }
    if (missing) {
      // Core never keeps orphans from RPC; bcoin would, so take it back out.
      if (this.node.mempool.hasOrphan(hash)) this.node.mempool.removeOrphan(hash);
      throw new TxRejected(RpcCode.VERIFY_ERROR, 'bad-txns-inputs-missingorspent', undefined, 'missing-inputs');
    }
    return accepted;
  }

  private inputsRejection(
    tx: BcoinTX,
    view: Parameters<BcoinTX['checkInputs']>[0],
    spendHeight: number,
    reason: string,
  ): TxRejected {
    if (reason === 'bad-txns-premature-spend-of-coinbase') {
      for (const input of tx.inputs) {
        const coin = view.getEntry(input.prevout);
        if (coin?.coinbase && spendHeight - coin.height < bcoin.consensus.COINBASE_MATURITY) {
          return rejected(reason, `tried to spend coinbase at depth ${spendHeight - coin.height}`);
        }
      }
    }
    if (reason === 'bad-txns-in-belowout') {
      let inSum = 0;
      for (const input of tx.inputs) inSum += view.getOutput(input.prevout)?.value ?? 0;
      return rejected(reason, `value in (${formatMoney(inSum)}) < value out (${formatMoney(tx.getOutputValue())})`);
    }
    return rejected(reason);
  }

  /**
   * Script checks like Core ≤ 28: standard flags first; on failure, re-run with only the consensus
   * flags to tell a policy failure ("non-mandatory-script-verify-flag (…)") from an invalid
   * script ("mandatory-script-verify-flag-failed (…)"); the text is the first run's script error.
   */
  private checkScripts(tx: BcoinTX, view: Parameters<BcoinTX['checkInputs']>[0]): void {
    tx.inputs.forEach((input, i) => {
      const coin = view.getOutput(input.prevout);
      if (!coin)
        throw new TxRejected(RpcCode.VERIFY_ERROR, 'bad-txns-inputs-missingorspent', undefined, 'missing-inputs');
      try {
        tx.checkInput(i, coin, STANDARD_SCRIPT_FLAGS);
      } catch (standardErr) {
        let consensusOk = true;
        try {
          tx.checkInput(i, coin, MANDATORY_SCRIPT_FLAGS);
        } catch {
          consensusOk = false;
        }
        const text = scriptErrorText(standardErr);
        throw rejected(
          consensusOk ? `non-mandatory-script-verify-flag (${text})` : `mandatory-script-verify-flag-failed (${text})`,
        );
      }
    });
  }
}
