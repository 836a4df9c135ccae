/**
 * What becomes of a closed channel's deposits and keys, decided from the transaction that spent it.
 *
 * At close, only the deposits both sides certainly count (ours acknowledged and not being removed, the
 * peer's) are known to be in whichever settlement wins. A deposit whose addition or removal was not
 * acknowledged may or may not be in the winner: the peer's settlement follows the peer's view, ours
 * follows ours, and either may confirm. Such a deposit stays bound to the closed channel until the
 * enclave is shown a confirmed, validly signed spend of the channel, whose inputs then decide.
 */
import { Transaction } from 'bitcoinjs-lib';
import { bytesToHex } from '../../../enclave-sim/encoding.ts';
import type { Channel, TreasuryState } from './state.ts';

/**
 * Confirmations a spend of the channel needs before it decides undecided deposits: the same depth the
 * owner asks of a deposit's funding (at least 1: a mempool spend may still lose to the other settlement).
 */
export function decidingDepth(minConfirmations: number): number {
  return Math.max(1, minConfirmations);
}

/**
 * Confirmations after which a closed channel's keys are forgotten. Six is where reorganisations stop
 * happening in practice, and never less than what the owner requires of its own deposits. The count is
 * the host's word; a host that lies only makes this enclave forget early, which harms no one but its own
 * owner: a closed channel is never signed for again, so the keys would only ever serve a conflicting spend.
 */
export function finalDepth(minConfirmations: number): number {
  return Math.max(6, minConfirmations);
}

/** Outpoints (txid:vout) a transaction spends. */
export function inputOutpoints(txHex: string): Set<string> {
  const tx = Transaction.fromHex(txHex);
  return new Set(tx.ins.map((i) => `${bytesToHex(Uint8Array.from(i.hash).reverse())}:${i.index}`));
}

/**
 * Closing: our deposits the peer certainly credited are spent by the settlement; deposits being added or
 * removed stay in_channel, listed in `ch.undecided`. Returns nothing: it edits `state` in place.
 */
export function settleDepositsAtClose(
  state: TreasuryState,
  ch: Channel,
  settlementTxid: string,
  peerSpendsNothing: boolean,
): void {
  const undecided = [...ch.removing, ...ch.adding];
  for (const id of ch.myDeposits) {
    const d = state.deposits[id];
    if (d && !undecided.includes(id)) {
      d.status = 'spent';
      d.spentBy = settlementTxid;
    }
  }
  ch.adding = [];
  ch.undecided = [...(ch.undecided ?? []), ...undecided];
  // The peer settled with no input at all: no transaction of its will spend them, and we signed none.
  if (peerSpendsNothing) decideFromInputs(state, ch, new Set(), settlementTxid);
}

/**
 * A confirmed spend of the closed channel `ch`: it decides the undecided deposits, and the deposits it
 * spends are recorded as spent by it (the other side's settlement may have won over the one we recorded).
 */
export function learnSpend(state: TreasuryState, ch: Channel, inputs: Set<string>, txid: string): void {
  decideFromInputs(state, ch, inputs, txid);
  for (const id of ownSpentDeposits(state, ch)) {
    const d = state.deposits[id]!;
    if (d.outpoint && inputs.has(d.outpoint)) d.spentBy = txid;
  }
}

/** Each undecided deposit of `ch`: spent by `txid` if it is one of `inputs`, free again otherwise. */
export function decideFromInputs(state: TreasuryState, ch: Channel, inputs: Set<string>, txid: string): void {
  for (const id of ch.undecided ?? []) {
    const d = state.deposits[id];
    if (!d) continue;
    if (d.outpoint && inputs.has(d.outpoint)) {
      d.status = 'spent';
      d.spentBy = txid;
    } else {
      d.status = 'free';
      delete d.channelId;
    }
  }
  ch.undecided = [];
}

/** Whether the enclave still holds any private key (or key share) of the channel's spent deposits. */
export function channelKeysHeld(state: TreasuryState, ch: Channel): boolean {
  if (ch.peerDeposits.some((d) => d.privkeys.length > 0 || (d.shares?.length ?? 0) > 0 || d.reshare)) return true;
  return ownSpentDeposits(state, ch).some((id) => {
    const d = state.deposits[id]!;
    return d.privkeys.length > 0 || d.sealedKeys !== undefined || state.committee?.memberKeys[id] !== undefined;
  });
}

/**
 * Wipes the keys of a finally settled channel: every key the peer handed over (or our shares of them)
 * and ours of the deposits the channel spent. Public keys, scripts and the signed settlement stay, which
 * is all a re-broadcast or a later look at the history needs.
 */
export function forgetChannelKeys(state: TreasuryState, ch: Channel): void {
  for (const d of ch.peerDeposits) {
    d.privkeys = [];
    delete d.shares;
    delete d.reshare;
  }
  for (const id of ownSpentDeposits(state, ch)) {
    const d = state.deposits[id]!;
    d.privkeys = [];
    delete d.sealedKeys;
    if (state.committee) delete state.committee.memberKeys[id];
  }
}

/** Our deposits the channel spent (those it never held, or gave back, have another or no channelId). */
function ownSpentDeposits(state: TreasuryState, ch: Channel): string[] {
  return Object.values(state.deposits)
    .filter((d) => d.status === 'spent' && d.channelId === ch.id)
    .map((d) => d.id);
}
