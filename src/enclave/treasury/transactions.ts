/**
 * The Bitcoin transactions a treasury enclave checks and signs: deposit scripts, funding checks,
 * settlements and releases. Segwit v0 only (P2WSH m-of-n deposits), which both Bitcoin Core and the
 * embedded bcoin node enforce.
 *
 * Fee policy (docs/protocol/channels.md, "Settlement"): the side that settles or releases pays the whole fee out of its own
 * output, at the host's fee rate (capped). An output below DUST_LIMIT is not created; its value goes to
 * the fee, as Lightning trims dust outputs.
 */
import { Transaction } from 'bitcoinjs-lib';
import {
  REGTEST,
  SIGHASH_ALL,
  addressToOutputScript,
  buildSpend,
  estimateVsize,
  finalizeMultisigInput,
  multisigP2wsh,
  prevOutputScript,
  signInput,
  verifyInputSignature,
  parseMultisigScript,
  type KeyedSignature,
  type MultisigInput,
  type OutputSpec,
  type Spend,
  type SpendableInput,
} from '../../bitcoin/index.ts';
import { FAST_SIGNER, verifyDigestFast } from '../../crypto/secp256k1-wasm.ts';
import { TreasuryError } from './errors.ts';
import { bytesToHex, hexToBytes } from '../../../enclave-sim/encoding.ts';
import type { PeerDeposit } from './state.ts';

export const NETWORK = REGTEST;
/** Core's dust threshold for P2PKH outputs; conservative for every segwit output type. */
export const DUST_LIMIT = 546n;
export const MAX_FEE_RATE = 1_000;

/** A deposit this enclave can sign for: its own, or a peer's whose keys were handed over. */
export type SpendableDeposit = PeerDeposit;

/** An m-of-n multisig witness script over the keys sorted bytewise (BIP 67), and its P2WSH address. */
export function buildDepositScript(
  m: number,
  pubkeys: string[],
): { witnessScript: string; address: string; output: Uint8Array } {
  const t = multisigP2wsh(m, pubkeys.map(hexToBytes));
  return { witnessScript: bytesToHex(t.witnessScript), address: t.address, output: t.outputScript };
}

/** The output script for a user's payout address. @throws TreasuryError invalid_argument */
export function payoutScriptFor(addr: string): Uint8Array {
  try {
    return addressToOutputScript(addr);
  } catch {
    throw new TreasuryError('invalid_argument', `not a regtest address: ${addr}`);
  }
}

/**
 * Checks that `txHex` is the transaction `txid` (recomputed here, so the host cannot substitute another)
 * and that its output `vout` pays the P2WSH of `witnessScript`. Returns the output's value.
 */
export function checkFundingOutput(txHex: string, txid: string, vout: number, witnessScript: string): bigint {
  let tx: Transaction;
  try {
    tx = Transaction.fromHex(txHex);
  } catch {
    throw new TreasuryError('funding_not_found', 'the host returned an unparseable transaction');
  }
  if (tx.getId() !== txid) throw new TreasuryError('funding_mismatch', `transaction is ${tx.getId()}, not ${txid}`);
  const out = tx.outs[vout];
  if (!out) throw new TreasuryError('funding_not_found', `${txid} has no output ${vout}`);
  const expected = prevOutputScript(asInput({ outpoint: `${txid}:${vout}`, value: out.value, witnessScript }));
  if (bytesToHex(out.script) !== bytesToHex(expected))
    throw new TreasuryError('funding_mismatch', `${txid}:${vout} does not pay this deposit`);
  return out.value;
}

export interface PayoutSpec {
  script: Uint8Array | null;
  value: bigint;
}

/**
 * Spends every input to the local and remote payouts; the local side pays the fee.
 * @throws TreasuryError fee_exceeds_balance, dust_output, invalid_argument
 */
export function buildSettlementTx(opts: {
  inputs: SpendableDeposit[];
  local: PayoutSpec;
  remote: PayoutSpec;
  feeRate: number;
}) {
  const plan = planSettlement(opts);
  const tx = signAll(plan.spend, opts.inputs);
  return { txid: tx.getId(), hex: tx.toHex(), fee: plan.fee };
}

/** An unsigned spend and what it costs; its txid is final (segwit signatures do not change it). */
export interface SpendPlan {
  spend: Spend;
  txid: string;
  fee: bigint;
}

/** The settlement `buildSettlementTx` signs, unsigned: committee members rebuild it to compare before signing. */
export function planSettlement(opts: {
  inputs: SpendableDeposit[];
  local: PayoutSpec;
  remote: PayoutSpec;
  feeRate: number;
}): SpendPlan {
  checkFeeRate(opts.feeRate);
  const total = opts.inputs.reduce((s, d) => s + d.value, 0n);
  if (total !== opts.local.value + opts.remote.value)
    throw new Error('settlement: balances do not add up to the deposits');
  const remoteKept = opts.remote.script !== null && opts.remote.value >= DUST_LIMIT;
  const draft = (localValue: bigint): OutputSpec[] => {
    const outs: OutputSpec[] = [];
    if (localValue > 0n) outs.push({ script: opts.local.script!, valueSat: localValue });
    if (remoteKept) outs.push({ script: opts.remote.script!, valueSat: opts.remote.value });
    return outs;
  };
  const fee = feeFor(opts.inputs, draft(opts.local.value), opts.feeRate);
  if (opts.local.value < fee) {
    throw new TreasuryError(
      'fee_exceeds_balance',
      `fee ${fee} sat exceeds the settling side's balance ${opts.local.value} sat`,
    );
  }
  let localValue = opts.local.value - fee;
  if (localValue < DUST_LIMIT) localValue = 0n;
  const outs = draft(localValue);
  if (outs.length === 0) throw new TreasuryError('dust_output', 'nothing but dust would be left after the fee');
  const spend = buildSpend({ inputs: opts.inputs.map(asInput), outputs: outs });
  return { spend, txid: spend.tx.getId(), fee: total - outs.reduce((s, o) => s + o.valueSat, 0n) };
}

/** Spends one free deposit back to the user. @throws TreasuryError dust_output, invalid_argument */
export function buildReleaseTx(opts: { deposit: SpendableDeposit; payoutScript: Uint8Array; feeRate: number }) {
  const plan = planRelease(opts);
  const tx = signAll(plan.spend, [opts.deposit]);
  return { txid: tx.getId(), hex: tx.toHex(), fee: plan.fee };
}

export function planRelease(opts: { deposit: SpendableDeposit; payoutScript: Uint8Array; feeRate: number }): SpendPlan {
  checkFeeRate(opts.feeRate);
  const fee = feeFor([opts.deposit], [{ script: opts.payoutScript, valueSat: opts.deposit.value }], opts.feeRate);
  const value = opts.deposit.value - fee;
  if (value < DUST_LIMIT)
    throw new TreasuryError('dust_output', `deposit of ${opts.deposit.value} sat does not cover the fee ${fee} sat`);
  const spend = buildSpend({
    inputs: [asInput(opts.deposit)],
    outputs: [{ script: opts.payoutScript, valueSat: value }],
  });
  return { spend, txid: spend.tx.getId(), fee };
}

/** This enclave's signatures for input `index` of `spend`, one per key given. */
export function signaturesFor(spend: Spend, index: number, privkeys: string[]): KeyedSignature[] {
  return privkeys.map((k) => {
    const priv = hexToBytes(k);
    return { pubkey: FAST_SIGNER.publicKey(priv), signature: signInput(spend, index, priv, SIGHASH_ALL, FAST_SIGNER) };
  });
}

/** Sets input `index`'s witness from m signatures gathered from members (see multisigWitness). */
export function finishInput(spend: Spend, index: number, sigs: KeyedSignature[]): void {
  finalizeMultisigInput(spend, index, sigs);
}

/** Whether `sig` is a valid signature by `pubkey` over input `index` of `spend` (checked before use). */
export function checkInputSignature(spend: Spend, index: number, pubkey: Uint8Array, sig: Uint8Array): boolean {
  return verifyInputSignature(spend, index, pubkey, sig, verifyDigestFast);
}

/**
 * Whether `txHex` spends `deposit` with m valid signatures over its BIP143 sighash: proof that an enclave
 * holding the deposit's keys (ours or the channel peer's) signed it, which a host cannot forge.
 * Returns the transaction id, or null when the transaction does not validly spend the deposit.
 */
export function verifyDepositSpend(txHex: string, deposit: SpendableDeposit): string | null {
  let tx: Transaction;
  try {
    tx = Transaction.fromHex(txHex);
  } catch {
    return null;
  }
  return spendsDeposit(tx, deposit) ? tx.getId() : null;
}

/** verifyDepositSpend on a transaction already parsed (a path settlement's inputs are checked on one parse). */
function spendsDeposit(
  tx: Transaction,
  deposit: Pick<SpendableDeposit, 'outpoint' | 'value' | 'witnessScript'>,
): boolean {
  const [txid, vout] = deposit.outpoint.split(':') as [string, string];
  const index = tx.ins.findIndex(
    (i) => bytesToHex(Uint8Array.from(i.hash).reverse()) === txid && i.index === Number(vout),
  );
  if (index < 0) return false;
  const witness = tx.ins[index]!.witness;
  const script = hexToBytes(deposit.witnessScript);
  if (witness.length < 2 || bytesToHex(witness[witness.length - 1]!) !== deposit.witnessScript) return false;
  // BIP143 commits to this input's own value only, so the other inputs need no values here.
  const inputs: SpendableInput[] = tx.ins.map((_, i) =>
    i === index ? asInput(deposit) : asInput({ ...deposit, value: 1n }),
  );
  const spend = { tx, inputs };
  const { m, pubkeys } = parseMultisigScript(script);
  const sigs = witness.slice(1, -1);
  let valid = 0;
  let k = 0;
  for (const sig of sigs) {
    // CHECKMULTISIG order: each signature matches a later key than the previous one.
    while (k < pubkeys.length && !verifyInputSignature(spend, index, pubkeys[k]!, sig, verifyDigestFast)) k++;
    if (k === pubkeys.length) break;
    valid++;
    k++;
  }
  return valid >= m;
}

function checkFeeRate(feeRate: number): void {
  if (!Number.isSafeInteger(feeRate) || feeRate < 1 || feeRate > MAX_FEE_RATE) {
    throw new TreasuryError('invalid_argument', `fee rate must be an integer from 1 to ${MAX_FEE_RATE} sat/vB`);
  }
}

function asInput(d: Pick<SpendableDeposit, 'outpoint' | 'value' | 'witnessScript'>): MultisigInput {
  const [txid, vout] = d.outpoint.split(':') as [string, string];
  return {
    kind: 'p2wsh-multisig',
    txid,
    vout: Number(vout),
    valueSat: d.value,
    witnessScript: hexToBytes(d.witnessScript),
  };
}

/** Fee at `feeRate` for the worst-case (72-byte signature) size of the finished transaction. */
function feeFor(inputs: SpendableDeposit[], outs: OutputSpec[], feeRate: number): bigint {
  const scripts = outs.map((o) => ('script' in o ? o.script : addressToOutputScript(o.address)));
  return BigInt(estimateVsize(inputs.map(asInput), scripts) * feeRate);
}

/** Signs every input with the keys this enclave holds (m of them). */
function signAll(spend: Spend, inputs: SpendableDeposit[]): Transaction {
  inputs.forEach((d, i) => finalizeMultisigInput(spend, i, signaturesFor(spend, i, d.privkeys.slice(0, d.m))));
  return spend.tx;
}

/** An input of a multi-hop path settlement: a deposit of one of the path's channels. */
export interface PathInput {
  outpoint: string;
  value: bigint;
  witnessScript: string;
}

/**
 * The path settlement τ of a multi-hop payment (docs/protocol/multihop.md): one transaction spending
 * every deposit of every channel on the path, paying each side of each channel its balance in the new
 * state. Outputs to the same script are merged (in order of first appearance); the payer's output pays
 * the fee; outputs below the dust limit are not created. Deterministic: every hop builds the same one.
 * @throws TreasuryError fee_exceeds_balance, dust_output, state_mismatch (balances do not add up)
 */
export function planPathSettlement(opts: {
  inputs: PathInput[];
  outputs: Array<{ script: string; value: bigint }>;
  payerScript: string;
  feeRate: number;
}): SpendPlan {
  checkFeeRate(opts.feeRate);
  const total = opts.inputs.reduce((s, d) => s + d.value, 0n);
  const merged = new Map<string, bigint>();
  for (const o of opts.outputs) {
    if (o.value < 0n) throw new TreasuryError('state_mismatch', 'a path balance is negative');
    merged.set(o.script, (merged.get(o.script) ?? 0n) + o.value);
  }
  const sum = [...merged.values()].reduce((s, v) => s + v, 0n);
  if (sum !== total) throw new TreasuryError('state_mismatch', 'path balances do not add up to the deposits');
  const inputs = opts.inputs.map(asInput);
  const fee = BigInt(estimateVsize(inputs, [...merged.keys()].map(hexToBytes)) * opts.feeRate);
  const payer = merged.get(opts.payerScript) ?? 0n;
  if (payer < fee)
    throw new TreasuryError('fee_exceeds_balance', `fee ${fee} sat exceeds the payer's balance ${payer} sat`);
  merged.set(opts.payerScript, payer - fee);
  const outs: OutputSpec[] = [];
  for (const [script, value] of merged)
    if (value >= DUST_LIMIT) outs.push({ script: hexToBytes(script), valueSat: value });
  if (outs.length === 0) throw new TreasuryError('dust_output', 'nothing but dust would be left after the fee');
  const spend = buildSpend({ inputs, outputs: outs });
  return { spend, txid: spend.tx.getId(), fee: total - outs.reduce((s, o) => s + o.valueSat, 0n) };
}

type KeysFor = (outpoint: string) => { m: number; privkeys: string[] } | null;

/**
 * Signs the inputs of `spend` this enclave holds keys for: only those without a witness yet, or, with
 * `resign`, every one (replacing its witness). Returns the inputs it left to others.
 */
function signHeldInputs(spend: Spend, inputs: PathInput[], keysFor: KeysFor, resign: boolean): PathInput[] {
  const others: PathInput[] = [];
  inputs.forEach((d, i) => {
    if (!resign && spend.tx.ins[i]!.witness.length > 0) return;
    const keys = keysFor(d.outpoint);
    if (keys && keys.privkeys.length >= keys.m)
      finalizeMultisigInput(spend, i, signaturesFor(spend, i, keys.privkeys.slice(0, keys.m)));
    else others.push(d);
  });
  return others;
}

/** Adds this enclave's signatures to the inputs of `txHex` it holds keys for and that are not signed yet. */
export function signPathInputs(txHex: string, inputs: PathInput[], keysFor: KeysFor): string {
  const tx = Transaction.fromHex(txHex);
  signHeldInputs({ tx, inputs: inputs.map(asInput) }, inputs, keysFor, false);
  return tx.toHex();
}

/** Whether every input of `txHex` validly spends the matching path deposit (m valid signatures each). */
export function pathFullySigned(txHex: string, inputs: PathInput[]): boolean {
  let tx: Transaction;
  try {
    tx = Transaction.fromHex(txHex);
  } catch {
    return false;
  }
  return inputs.every((d) => spendsDeposit(tx, d));
}

/**
 * The payer's check before COMMIT, made cheaper: every input it holds keys for it signs itself, replacing
 * the witness a hop put there (a valid signature by construction; with deterministic RFC 6979 signatures
 * by the same key, usually the same bytes), and only the others are verified. A signature costs about
 * 0.3 ms here, a verification 2.4 ms (@noble/secp256k1), and the payer holds the keys of both deposits of
 * its first channel. Returns τ complete, or null if an input it cannot sign is not validly signed.
 */
export function completePathAsPayer(txHex: string, inputs: PathInput[], keysFor: KeysFor): string | null {
  const tx = Transaction.fromHex(txHex);
  if (tx.ins.length !== inputs.length) return null;
  const others = signHeldInputs({ tx, inputs: inputs.map(asInput) }, inputs, keysFor, true);
  return others.every((d) => spendsDeposit(tx, d)) ? tx.toHex() : null;
}

/** Whether every one of the `n` inputs of `txHex` carries a witness (a structural check, no signature verified). */
export function pathWitnessed(txHex: string, n: number): boolean {
  try {
    const tx = Transaction.fromHex(txHex);
    return tx.ins.length === n && tx.ins.every((i) => i.witness.length > 0);
  } catch {
    return false;
  }
}

/** The transaction id of a (possibly partly signed) transaction, or null when it does not parse. */
export function txidOf(txHex: string): string | null {
  try {
    return Transaction.fromHex(txHex).getId();
  } catch {
    return null;
  }
}

/** The value `txHex` pays to `script` (hex), summed over its outputs; null when it does not parse. */
export function valuePaidTo(txHex: string, script: string): bigint | null {
  try {
    return Transaction.fromHex(txHex).outs.reduce((s, o) => (bytesToHex(o.script) === script ? s + o.value : s), 0n);
  } catch {
    return null;
  }
}

/**
 * `into` with the witnesses of inputs `indexes` copied from `from`, the same transaction signed elsewhere
 * (a committee's members' signatures of its own deposits in τ, added to what the other hops signed).
 */
export function withWitnesses(into: string, from: string, indexes: number[]): string {
  const a = Transaction.fromHex(into);
  const b = Transaction.fromHex(from);
  if (a.getId() !== b.getId()) throw new TreasuryError('state_mismatch', 'not the same transaction');
  for (const i of indexes) a.ins[i]!.witness = b.ins[i]!.witness;
  return a.toHex();
}
