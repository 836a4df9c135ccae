/**
 * Our own deposits: a new address to fund, the host's word that it was funded (checked against the
 * transaction it hands in), and paying a free deposit back on chain. A committee's release is signed by
 * its members (committee-adapter.ts); a deposit in a channel is added and removed by channel-requests.ts.
 */
import { bytesToHex } from '../../../enclave-sim/encoding.ts';
import { publicKeyOf, randomPrivateKey } from '../../crypto/secp256k1.ts';
import { releaseWithCommittee } from './committee-adapter.ts';
import type { TreasuryCore } from './core.ts';
import { TreasuryError } from './errors.ts';
import { asSpendable, checkOutput, getDeposit, notFree, outpointInUse } from './lookups.ts';
import type { Deposit } from './state.ts';
import { buildDepositScript, buildReleaseTx, payoutScriptFor } from './transactions.ts';
import { depositView } from './views.ts';

/** A new deposit address (a fresh key, 1-of-1 P2WSH multisig) for the host to fund. */
export async function newDeposit(t: TreasuryCore) {
  t.assertLive();
  t.assertPrimary();
  const priv = randomPrivateKey();
  const pub = bytesToHex(publicKeyOf(priv));
  const id = `dep${t.state.nextDeposit++}`;
  // With a committee: m-of-n over one fresh key per member, each made and kept by that member.
  const pubkeys = t.committee ? await t.committee.depositKeys(id, pub) : [pub];
  const m = t.committee ? t.state.committee!.threshold : 1;
  const { witnessScript, address } = buildDepositScript(m, pubkeys);
  const dep: Deposit = { id, m, pubkeys, privkeys: [bytesToHex(priv)], witnessScript, address, status: 'pending' };
  t.state.deposits[id] = dep;
  await t.committer.commit();
  return depositView(t.state, dep);
}

/**
 * The host says deposit `id` was funded by txid:vout. The enclave checks the transaction it is given:
 * its txid, that the output pays this deposit's script, its value, that it is unspent, and its
 * confirmations (the count is the host's word: without an SPV proof it cannot be checked here).
 */
export async function depositFunded(t: TreasuryCore, id: string, txid: string, vout: number) {
  t.assertLive();
  t.assertPrimary();
  const dep = getDeposit(t.state, id);
  if (dep.status !== 'pending') throw new TreasuryError('deposit_not_free', `deposit ${id} is already ${dep.status}`);
  const outpoint = `${txid}:${vout}`;
  if (outpointInUse(t.state, outpoint, id))
    throw new TreasuryError('deposit_in_use', `${outpoint} already backs another deposit`);
  const info = await t.ports.getTxOut(txid, vout);
  const value = checkOutput(info, txid, vout, dep.witnessScript);
  if (dep.status !== 'pending') throw new TreasuryError('deposit_not_free', `deposit ${id} is already ${dep.status}`);
  dep.outpoint = outpoint;
  dep.value = value;
  if (info!.confirmations >= t.state.config.minConfirmations) dep.status = 'free';
  await t.committer.commit();
  if (dep.status === 'pending') {
    throw new TreasuryError(
      'deposit_unconfirmed',
      `deposit ${id} has ${info!.confirmations} of ${t.state.config.minConfirmations} confirmations`,
    );
  }
  return depositView(t.state, dep);
}

/** Pays a free deposit back to `payoutAddress` on chain; returns the signed transaction for the host to broadcast. */
export async function releaseDeposit(t: TreasuryCore, id: string, address: string | undefined, feeRate: number) {
  t.assertLive();
  const payoutAddress = address ?? t.state.config.payoutAddress;
  if (t.committee) return releaseWithCommittee(t, id, payoutAddress, feeRate);
  const dep = getDeposit(t.state, id);
  if (dep.status !== 'free' || !dep.outpoint || dep.value === undefined) throw notFree(t.state, dep);
  const tx = buildReleaseTx({
    deposit: asSpendable(dep),
    payoutScript: payoutScriptFor(payoutAddress),
    feeRate,
  });
  dep.status = 'spent';
  dep.spentBy = tx.txid;
  dep.releaseHex = tx.hex;
  await t.committer.commit();
  return { deposit_id: id, txid: tx.txid, tx_hex: tx.hex, fee_sat: tx.fee.toString() };
}
