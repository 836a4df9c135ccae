/**
 * Finding what an operation names in the treasury's state, and refusing it with the stable error code
 * when it is missing or not in a state the operation can take. Pure functions over `TreasuryState`:
 * every treasury module uses them, so the refusals read the same whichever path a request takes.
 */
import { assertOpen } from './channel.ts';
import { TreasuryError } from './errors.ts';
import type { TxOutInfo } from './ports.ts';
import type { Channel, Deposit, TreasuryState } from './state.ts';
import { checkFundingOutput } from './transactions.ts';

const MAX_PAYMENT = 2_100_000_000_000_000;

/** A single payment's amount: a positive safe integer of satoshis, at most all bitcoin. */
export function checkAmount(amountSat: number): void {
  if (!Number.isSafeInteger(amountSat) || amountSat <= 0 || amountSat > MAX_PAYMENT) {
    throw new TreasuryError('invalid_argument', 'amount_sat must be a positive integer number of satoshis');
  }
}

export function getChannel(state: TreasuryState, id: string): Channel {
  const ch = state.channels[id];
  if (!ch) throw new TreasuryError('unknown_channel', `no channel ${id}`);
  return ch;
}

export function getOpenChannel(state: TreasuryState, id: string): Channel {
  const ch = getChannel(state, id);
  assertOpen(ch);
  return ch;
}

export function getDeposit(state: TreasuryState, id: string): Deposit {
  const d = state.deposits[id];
  if (!d) throw new TreasuryError('unknown_deposit', `no deposit ${id}`);
  return d;
}

/** Whether `outpoint` already backs a deposit (other than `exceptDeposit`) or a peer's deposit. */
export function outpointInUse(state: TreasuryState, outpoint: string, exceptDeposit?: string): boolean {
  if (Object.values(state.deposits).some((d) => d.outpoint === outpoint && d.id !== exceptDeposit)) return true;
  return Object.values(state.channels).some((c) => c.peerDeposits.some((d) => d.outpoint === outpoint));
}

/** The funding output as the host's chain shows it: it must exist, pay `witnessScript`, and be unspent. */
export function checkOutput(info: TxOutInfo | null, txid: string, vout: number, witnessScript: string): bigint {
  if (!info) throw new TreasuryError('funding_not_found', `${txid}:${vout} is not on chain`);
  const value = checkFundingOutput(info.txHex, txid, vout, witnessScript);
  if (!info.unspent) throw new TreasuryError('funding_spent', `${txid}:${vout} is spent`);
  return value;
}

/** A funded deposit of ours as a transaction input (with the keys this enclave holds for it). */
export function asSpendable(dep: Deposit) {
  return {
    outpoint: dep.outpoint!,
    value: dep.value!,
    m: dep.m,
    pubkeys: dep.pubkeys,
    privkeys: dep.privkeys,
    witnessScript: dep.witnessScript,
  };
}

/** Whether a deposit waits for the chain: its channel closed before the peer acknowledged it joining or leaving. */
export function awaitingChain(state: TreasuryState, d: Deposit): boolean {
  return (
    d.status === 'in_channel' &&
    d.channelId !== undefined &&
    (state.channels[d.channelId]?.undecided?.includes(d.id) ?? false)
  );
}

/** Why a deposit that is not free cannot be released. */
export function notFree(state: TreasuryState, d: Deposit): TreasuryError {
  if (awaitingChain(state, d)) {
    return new TreasuryError(
      'deposit_not_free',
      `deposit ${d.id} is awaiting the chain: channel ${d.channelId} closed before the peer acknowledged its addition or removal, and only the confirmed settlement shows whether it spent it`,
    );
  }
  return new TreasuryError('deposit_not_free', `deposit ${d.id} is ${d.status}`);
}
