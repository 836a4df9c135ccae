/**
 * What a settlement we signed ourselves pays the peer of our `sent` total, once the chain shows which
 * settlement spent the channel's deposits. Ours pays all of it (it was signed over our latest state).
 * A peer's settlement that raced ours pays what the peer's enclave said it had received, if its
 * authenticated `settled` message reached us; otherwise the answer is unknown and stays so: the host
 * leaves those payments in flight rather than guess.
 */
import type { Channel } from './state.ts';

export function paidBySettlement(ch: Channel, spendingTxid: string): bigint | undefined {
  const s = ch.settlement;
  if (!s || s.by !== 'local') return undefined;
  if (spendingTxid === s.txid) return ch.sent;
  if (s.peer && s.peer.txid === spendingTxid && s.peer.received !== undefined)
    return s.peer.received < ch.sent ? s.peer.received : ch.sent;
  return undefined;
}
