/**
 * Deposit grants: how a deposit's keys cross to the channel peer. We grant ours whole to a lone peer,
 * sealed to a committee's members or split into shares for them; a peer's grant is checked here before
 * its deposit counts in the channel: keys against public keys, script, value and depth on our own chain.
 */
import { bytesToHex, hexToBytes } from '../../../enclave-sim/encoding.ts';
import { publicKeyOf } from '../../crypto/secp256k1.ts';
import { openSealedKey } from '../committee/coordinator.ts';
import { formationOrder } from '../committee/share-holders.ts';
import type { DepositGrant } from '../protocol/messages.ts';
import type { TreasuryCore } from './core.ts';
import { TreasuryError } from './errors.ts';
import { checkOutput } from './lookups.ts';
import type { Deposit, PeerDeposit } from './state.ts';
import { buildDepositScript } from './transactions.ts';

/** The grant that hands a deposit of ours to the channel peer: its keys whole, sealed to members, or as shares. */
export function grantFor(dep: Deposit): DepositGrant {
  const base = { outpoint: dep.outpoint!, value: dep.value!.toString(), m: dep.m, pubkeys: dep.pubkeys };
  if (dep.peerShares) return { ...base, privkeys: [], shares: dep.peerShares };
  return dep.sealedKeys ? { ...base, privkeys: [], sealed_keys: dep.sealedKeys } : { ...base, privkeys: dep.privkeys };
}

/** Checks a granted deposit against the chain through our own host: keys, script, value, unspent, confirmed. */
export async function verifyGrant(t: TreasuryCore, grant: DepositGrant): Promise<PeerDeposit> {
  const c = t.state.committee;
  // Peers split for the roster proof, which lists the formation order (a re-split follows roster changes).
  if (c) return verifySharedGrant(t, grant, formationOrder(c).length);
  if (grant.shares)
    throw new TreasuryError('funding_mismatch', 'a lone treasury takes handed-over keys whole, not as shares');
  let privkeys = grant.privkeys;
  if (grant.sealed_keys?.length) {
    privkeys = grant.sealed_keys
      .map((b) => openSealedKey(hexToBytes(t.state.identityKey), b))
      .filter((k): k is string => k !== null);
  }
  if (privkeys.length < grant.m || grant.m > grant.pubkeys.length)
    throw new TreasuryError('funding_mismatch', 'grant does not carry enough keys');
  for (const k of privkeys) {
    if (!grant.pubkeys.includes(bytesToHex(publicKeyOf(hexToBytes(k)))))
      throw new TreasuryError('funding_mismatch', 'granted key does not match the deposit');
  }
  const { witnessScript, value } = await checkGrantOutput(t, grant);
  return { outpoint: grant.outpoint, value, m: grant.m, pubkeys: grant.pubkeys, privkeys, witnessScript };
}

/** The granted deposit's output as our own host's chain shows it: its script, value and confirmations. */
async function checkGrantOutput(
  t: TreasuryCore,
  grant: DepositGrant,
): Promise<{ witnessScript: string; value: bigint }> {
  const { witnessScript } = buildDepositScript(grant.m, grant.pubkeys);
  const [txid, voutStr] = grant.outpoint.split(':') as [string, string];
  const vout = Number(voutStr);
  const info = await t.ports.getTxOut(txid, vout);
  const value = checkOutput(info, txid, vout, witnessScript);
  if (value !== BigInt(grant.value))
    throw new TreasuryError('funding_mismatch', 'deposit value differs from the chain');
  if (info!.confirmations < t.state.config.minConfirmations) throw new TreasuryError('deposit_unconfirmed');
  return { witnessScript, value };
}

/**
 * A committee's side of a grant: the keys come split for our roster, share i sealed to member i by the
 * granting enclave(s), and never whole: not even this primary ever holds one. A grant with whole or
 * sealed keys is refused (a committee never asks for them; opening one would put a whole key here).
 */
async function verifySharedGrant(t: TreasuryCore, grant: DepositGrant, n: number): Promise<PeerDeposit> {
  if (grant.privkeys.length > 0 || grant.sealed_keys !== undefined)
    throw new TreasuryError('funding_mismatch', 'a committee takes handed-over keys only as secret shares');
  const shares = grant.shares ?? [];
  if (grant.m > grant.pubkeys.length || shares.length < grant.m)
    throw new TreasuryError('funding_mismatch', 'grant does not carry enough key shares');
  const seen = new Set<string>();
  for (const s of shares) {
    if (!grant.pubkeys.includes(s.pubkey) || seen.has(s.pubkey))
      throw new TreasuryError('funding_mismatch', 'key shares do not match the deposit');
    if (s.boxes.length !== n)
      throw new TreasuryError('funding_mismatch', `key shares are not one per member (${s.boxes.length} of ${n})`);
    seen.add(s.pubkey);
  }
  const { witnessScript, value } = await checkGrantOutput(t, grant);
  return {
    outpoint: grant.outpoint,
    value,
    m: grant.m,
    pubkeys: [...grant.pubkeys],
    privkeys: [],
    witnessScript,
    shares: shares.map((s) => ({ pubkey: s.pubkey, boxes: [...s.boxes] })),
  };
}
