/** Building transactions that spend P2WPKH and P2WSH-multisig outputs (amounts are bigint satoshis). */
import { Transaction, payments } from 'bitcoinjs-lib';
import { REGTEST, addressToOutputScript } from './network.ts';
import { p2wpkh } from './p2wpkh.ts';
import { parseMultisigScript } from './multisig.ts';
import { fromHex, toHex } from './bytes.ts';

/** The most satoshis that can ever exist (21 million BTC). */
export const MAX_MONEY_SAT = 2_100_000_000_000_000n;

/** Sequence that opts out of RBF signalling and relative locktime. */
export const FINAL_SEQUENCE = 0xffffffff;

/** An output being spent: a P2WPKH output of `pubkey`. */
export interface P2wpkhInput {
  kind: 'p2wpkh';
  txid: string;
  vout: number;
  valueSat: bigint;
  pubkey: Uint8Array;
  sequence?: number;
}

/** An output being spent: a P2WSH output of a multisig `witnessScript`. */
export interface MultisigInput {
  kind: 'p2wsh-multisig';
  txid: string;
  vout: number;
  valueSat: bigint;
  witnessScript: Uint8Array;
  sequence?: number;
}

/** Any output this module knows how to spend. */
export type SpendableInput = P2wpkhInput | MultisigInput;

/** An output to create: to an address, or to a raw output script. */
export type OutputSpec = { address: string; valueSat: bigint } | { script: Uint8Array; valueSat: bigint };

/** An unsigned (or partly signed) transaction together with what its inputs spend. */
export interface Spend {
  tx: Transaction;
  inputs: readonly SpendableInput[];
}

/** Options of {@link buildSpend}. */
export interface BuildSpendOptions {
  inputs: readonly SpendableInput[];
  outputs: readonly OutputSpec[];
  /** nLockTime (default 0). */
  locktime?: number;
  /** Transaction version (default 2). */
  version?: number;
}

/** Builds the unsigned transaction spending `inputs` to `outputs`. Validates every field; the fee is what the outputs leave. */
export function buildSpend(opts: BuildSpendOptions): Spend {
  if (opts.inputs.length === 0) throw new RangeError('inputs must not be empty');
  if (opts.outputs.length === 0) throw new RangeError('outputs must not be empty');
  const tx = new Transaction();
  tx.version = opts.version ?? 2;
  tx.locktime = opts.locktime ?? 0;
  opts.inputs.forEach((input, i) => {
    assertTxid(input.txid, `inputs[${i}].txid`);
    assertU32(input.vout, `inputs[${i}].vout`);
    assertSats(input.valueSat, `inputs[${i}].valueSat`, 1n);
    prevOutputScript(input); // validates the key / witness script
    tx.addInput(txidToHash(input.txid), input.vout, input.sequence ?? FINAL_SEQUENCE);
  });
  opts.outputs.forEach((out, i) => {
    assertSats(out.valueSat, `outputs[${i}].valueSat`, 0n);
    const script = 'address' in out ? addressToOutputScript(out.address) : out.script;
    if (!(script instanceof Uint8Array)) throw new RangeError(`outputs[${i}].script must be bytes`);
    tx.addOutput(script, out.valueSat);
  });
  return { tx, inputs: [...opts.inputs] };
}

/** P2WSH output scripts already derived, by their witness script's hex (see parseMultisigScript's cache). */
const P2WSH_OUTPUTS = new Map<string, Uint8Array>();
const MAX_P2WSH_OUTPUTS = 1_024;

/** The scriptPubKey of the output an input spends. */
export function prevOutputScript(input: SpendableInput): Uint8Array {
  if (input.kind === 'p2wpkh') return p2wpkh(input.pubkey).outputScript;
  parseMultisigScript(input.witnessScript);
  const id = toHex(input.witnessScript);
  let output = P2WSH_OUTPUTS.get(id);
  if (!output) {
    const p = payments.p2wsh({ redeem: { output: input.witnessScript }, network: REGTEST });
    if (!p.output) throw new Error('prevOutputScript: bitcoinjs-lib returned no output script');
    output = Uint8Array.from(p.output);
    if (P2WSH_OUTPUTS.size >= MAX_P2WSH_OUTPUTS) P2WSH_OUTPUTS.clear();
    P2WSH_OUTPUTS.set(id, output);
  }
  return Uint8Array.from(output);
}

/** Sum of input values minus sum of output values (negative when the outputs overspend). */
export function spendFee(spend: Spend): bigint {
  const inSum = spend.inputs.reduce((s, i) => s + i.valueSat, 0n);
  const outSum = spend.tx.outs.reduce((s, o) => s + o.value, 0n);
  return inSum - outSum;
}

/**
 * Upper-bound virtual size (vbytes) of the finished transaction: signatures counted at their
 * largest DER size (72 bytes), so a fee computed from it never falls short of the rate.
 */
export function estimateVsize(inputs: readonly SpendableInput[], outputScripts: readonly Uint8Array[]): number {
  let base = 4 + 4 + varIntSize(inputs.length) + varIntSize(outputScripts.length);
  base += inputs.length * (36 + 1 + 4);
  for (const s of outputScripts) base += 8 + varIntSize(s.length) + s.length;
  let witness = 2;
  for (const input of inputs) {
    if (input.kind === 'p2wpkh') {
      witness += 1 + (1 + 72) + (1 + 33);
    } else {
      const { m } = parseMultisigScript(input.witnessScript);
      const ws = input.witnessScript.length;
      witness += varIntSize(m + 2) + 1 + m * (1 + 72) + varIntSize(ws) + ws;
    }
  }
  return Math.ceil((base * 4 + witness) / 4);
}

/** The 32 bytes an input refers to: the txid's bytes reversed (txids are displayed byte-reversed). */
export function txidToHash(txid: string): Uint8Array {
  assertTxid(txid, 'txid');
  return fromHex(txid).reverse();
}

function varIntSize(n: number): number {
  return n < 0xfd ? 1 : n <= 0xffff ? 3 : n <= 0xffffffff ? 5 : 9;
}

function assertTxid(txid: string, field: string): void {
  if (typeof txid !== 'string' || !/^[0-9a-f]{64}$/i.test(txid))
    throw new RangeError(`${field} must be 64 hex characters`);
}

function assertU32(n: number, field: string): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`${field} must be an integer in 0..2^32-1`);
}

function assertSats(v: bigint, field: string, min: bigint): void {
  if (typeof v !== 'bigint' || v < min || v > MAX_MONEY_SAT) {
    throw new RangeError(`${field} must be a bigint number of satoshis in ${min}..${MAX_MONEY_SAT}`);
  }
}
