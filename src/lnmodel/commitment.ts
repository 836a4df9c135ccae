/**
 * Commitment transactions (BOLT 3) and their signatures.
 *
 * Each party holds its own commitment transaction spending the 2-of-2 funding output: to_local (its own
 * balance, revocable and delayed), to_remote (the counterparty's balance, P2WPKH under
 * option_static_remotekey) and one output per untrimmed HTLC, in BIP 69 order, with the fee taken from the
 * opener's output. Signing a commitment means an ECDSA signature over its BIP 143 sighash with the
 * funding key, plus one signature per HTLC output over the sighash of the HTLC-timeout/HTLC-success
 * transaction that spends it (what commitment_signed carries).
 *
 * Not modelled: anchor outputs (option_anchors), fee updates (update_fee), per-party dust limits and
 * reserves that differ between the two sides.
 */
import { Transaction } from 'bitcoinjs-lib';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes } from '@noble/hashes/utils.js';
import {
  deriveCommitmentKeys,
  signHash,
  verifyHash,
  type Basepoints,
  type Bytes,
  type CommitmentKeys,
} from './keys.ts';
import {
  compareBytes,
  offeredHtlcScript,
  p2wpkhOutput,
  p2wshOutput,
  receivedHtlcScript,
  toLocalScript,
} from './scripts.ts';

export type Side = 'opener' | 'acceptor';

export function otherSide(side: Side): Side {
  return side === 'opener' ? 'acceptor' : 'opener';
}

/** An HTLC offered by the opener (payments flow opener → acceptor in this model). */
export interface Htlc {
  id: number;
  amountSat: bigint;
  paymentHash: Bytes;
  cltvExpiry: number;
}

/** What a commitment commits to: both balances and the pending HTLCs. Invariant: the sum is the capacity. */
export interface ChannelSpec {
  openerSat: bigint;
  acceptorSat: bigint;
  htlcs: Htlc[];
}

/** Channel parameters both parties agree on when the channel opens. */
export interface ChannelConfig {
  capacitySat: bigint;
  /** The funding transaction's hash in internal byte order (made up: the model measures updates, not funding). */
  fundingTxHash: Bytes;
  fundingVout: number;
  fundingWitnessScript: Bytes;
  basepoints: Record<Side, Basepoints>;
  toSelfDelay: number;
  dustLimitSat: bigint;
  feeratePerKw: bigint;
  /** The opener may not pay below this (BOLT 2 channel_reserve_satoshis). */
  reserveSat: bigint;
  /** Lower 48 bits of SHA256(opener payment_basepoint || acceptor payment_basepoint). */
  obscuringFactor: bigint;
}

/** BOLT 3 expected weights (no anchors). */
export const COMMITMENT_BASE_WEIGHT = 724n;
export const HTLC_OUTPUT_WEIGHT = 172n;
export const HTLC_TIMEOUT_WEIGHT = 663n;
export const HTLC_SUCCESS_WEIGHT = 703n;
/** BOLT 2 max_accepted_htlcs upper bound: no commitment may carry more HTLCs than this per direction. */
export const MAX_ACCEPTED_HTLCS = 483;

export function obscuringFactorOf(openerPayment: Bytes, acceptorPayment: Bytes): bigint {
  const h = sha256(concatBytes(openerPayment, acceptorPayment));
  let x = 0n;
  for (let i = 26; i < 32; i++) x = (x << 8n) | BigInt(h[i]!);
  return x;
}

function htlcTxFee(cfg: ChannelConfig, offeredByHolder: boolean): bigint {
  return (cfg.feeratePerKw * (offeredByHolder ? HTLC_TIMEOUT_WEIGHT : HTLC_SUCCESS_WEIGHT)) / 1000n;
}

/** The HTLCs that get an output on `holder`'s commitment (the others are trimmed: their value goes to fees). */
export function untrimmedHtlcs(cfg: ChannelConfig, holder: Side, spec: ChannelSpec): Htlc[] {
  const fee = htlcTxFee(cfg, holder === 'opener');
  return spec.htlcs.filter((h) => h.amountSat - fee >= cfg.dustLimitSat);
}

/** The base fee of `holder`'s commitment, paid by the opener. */
export function commitmentFee(cfg: ChannelConfig, holder: Side, spec: ChannelSpec): bigint {
  const n = BigInt(untrimmedHtlcs(cfg, holder, spec).length);
  return (cfg.feeratePerKw * (COMMITMENT_BASE_WEIGHT + HTLC_OUTPUT_WEIGHT * n)) / 1000n;
}

export interface BuiltCommitment {
  holder: Side;
  index: number;
  txid: string;
  /** BIP 143 sighash (SIGHASH_ALL) of the funding input. */
  sighash: Bytes;
  /** HTLC ids in the order of their outputs, and the sighash of each one's second-stage transaction. */
  htlcIds: number[];
  htlcSighashes: Bytes[];
  keys: CommitmentKeys;
  toLocalSat: bigint;
  toRemoteSat: bigint;
  feeSat: bigint;
}

interface PlannedOutput {
  value: bigint;
  script: Bytes;
  cltv: number;
  htlc?: { h: Htlc; witnessScript: Bytes };
}

/**
 * Builds commitment number `index` of `holder` for `spec`, with the holder's per-commitment point
 * `holderPoint`, and computes the sighashes both parties sign or verify.
 */
export function buildCommitment(
  cfg: ChannelConfig,
  holder: Side,
  index: number,
  holderPoint: Bytes,
  spec: ChannelSpec,
): BuiltCommitment {
  const withHtlcKeys = untrimmedHtlcs(cfg, holder, spec).length > 0;
  const keys = deriveCommitmentKeys(
    holderPoint,
    cfg.basepoints[holder],
    cfg.basepoints[otherSide(holder)],
    withHtlcKeys,
  );
  return buildCommitmentWithKeys(cfg, holder, index, keys, spec);
}

/** buildCommitment with the per-commitment keys already derived (BOLT 3 test vectors give them directly). */
export function buildCommitmentWithKeys(
  cfg: ChannelConfig,
  holder: Side,
  index: number,
  keys: CommitmentKeys,
  spec: ChannelSpec,
): BuiltCommitment {
  const htlcs = untrimmedHtlcs(cfg, holder, spec);
  if (htlcs.length > 0 && (!keys.localHtlc || !keys.remoteHtlc))
    throw new Error('HTLC keys are needed for HTLC outputs');
  const fee = commitmentFee(cfg, holder, spec);
  const holderBalance = holder === 'opener' ? spec.openerSat : spec.acceptorSat;
  const counterpartyBalance = holder === 'opener' ? spec.acceptorSat : spec.openerSat;
  const clampFee = (v: bigint) => (v > fee ? v - fee : 0n);
  const toLocalSat = holder === 'opener' ? clampFee(holderBalance) : holderBalance;
  const toRemoteSat = holder === 'opener' ? counterpartyBalance : clampFee(counterpartyBalance);

  const toLocalOutput = p2wshOutput(toLocalScript(keys.revocation, cfg.toSelfDelay, keys.localDelayed));
  const outs: PlannedOutput[] = [];
  const offered = holder === 'opener';
  for (const h of htlcs) {
    const witnessScript = offered
      ? offeredHtlcScript(keys.revocation, keys.localHtlc!, keys.remoteHtlc!, h.paymentHash)
      : receivedHtlcScript(keys.revocation, keys.localHtlc!, keys.remoteHtlc!, h.paymentHash, h.cltvExpiry);
    outs.push({
      value: h.amountSat,
      script: p2wshOutput(witnessScript),
      cltv: h.cltvExpiry,
      htlc: { h, witnessScript },
    });
  }
  if (toLocalSat >= cfg.dustLimitSat) outs.push({ value: toLocalSat, script: toLocalOutput, cltv: 0 });
  if (toRemoteSat >= cfg.dustLimitSat)
    outs.push({ value: toRemoteSat, script: p2wpkhOutput(keys.remotePayment), cltv: 0 });
  // BIP 69, with cltv_expiry breaking ties between otherwise identical HTLC outputs (BOLT 3).
  outs.sort((a, b) =>
    a.value < b.value ? -1 : a.value > b.value ? 1 : compareBytes(a.script, b.script) || a.cltv - b.cltv,
  );

  const obscured = BigInt(index) ^ cfg.obscuringFactor;
  const tx = new Transaction();
  tx.version = 2;
  tx.locktime = Number((0x20n << 24n) | (obscured & 0xffffffn));
  tx.addInput(cfg.fundingTxHash, cfg.fundingVout, Number((0x80n << 24n) | ((obscured >> 24n) & 0xffffffn)));
  for (const o of outs) tx.addOutput(o.script, o.value);
  const sighash = tx.hashForWitnessV0(0, cfg.fundingWitnessScript, cfg.capacitySat, Transaction.SIGHASH_ALL);

  const htlcIds: number[] = [];
  const htlcSighashes: Bytes[] = [];
  if (htlcs.length > 0) {
    const commitmentHash = tx.getHash();
    const fee2 = htlcTxFee(cfg, offered);
    outs.forEach((o, vout) => {
      if (!o.htlc) return;
      const htx = new Transaction();
      htx.version = 2;
      htx.locktime = offered ? o.htlc.h.cltvExpiry : 0; // HTLC-timeout is timelocked, HTLC-success is not
      htx.addInput(commitmentHash, vout, 0);
      htx.addOutput(toLocalOutput, o.value - fee2);
      htlcIds.push(o.htlc.h.id);
      htlcSighashes.push(htx.hashForWitnessV0(0, o.htlc.witnessScript, o.value, Transaction.SIGHASH_ALL));
    });
  }
  return {
    holder,
    index,
    txid: tx.getId(),
    sighash,
    htlcIds,
    htlcSighashes,
    keys,
    toLocalSat,
    toRemoteSat,
    feeSat: fee,
  };
}

export interface CommitmentSignatures {
  signature: Bytes;
  htlcSignatures: Bytes[];
}

/**
 * Signs the counterparty's commitment `c`: the funding-input sighash with our funding key, and each HTLC
 * transaction with our HTLC key for that commitment (`htlcPriv`, needed only if `c` has HTLC outputs).
 */
export function signCommitment(c: BuiltCommitment, fundingPriv: Bytes, htlcPriv: Bytes | null): CommitmentSignatures {
  if (c.htlcSighashes.length > 0 && !htlcPriv) throw new Error('an HTLC key is needed to sign HTLC transactions');
  return {
    signature: signHash(c.sighash, fundingPriv),
    htlcSignatures: c.htlcSighashes.map((h) => signHash(h, htlcPriv!)),
  };
}

/** Checks the counterparty's signatures on our own commitment `c`; returns the reason if one fails, else null. */
export function checkCommitmentSignatures(
  c: BuiltCommitment,
  sigs: CommitmentSignatures,
  counterpartyFundingPub: Bytes,
): string | null {
  if (!verifyHash(c.sighash, counterpartyFundingPub, sigs.signature))
    return `invalid commitment signature for commitment ${c.index}`;
  if (sigs.htlcSignatures.length !== c.htlcSighashes.length) {
    return `expected ${c.htlcSighashes.length} HTLC signatures, got ${sigs.htlcSignatures.length}`;
  }
  for (let i = 0; i < c.htlcSighashes.length; i++) {
    if (!verifyHash(c.htlcSighashes[i]!, c.keys.remoteHtlc!, sigs.htlcSignatures[i]!))
      return `invalid HTLC signature for HTLC ${c.htlcIds[i]}`;
  }
  return null;
}
