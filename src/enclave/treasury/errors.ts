/**
 * The treasury's error codes: one table, shared by the enclave (which raises them), the node host and the
 * REST API (which maps them to HTTP statuses in src/api/errors.ts). Stable strings; clients match on them.
 */
export const TREASURY_ERRORS = {
  invalid_argument: 'a field is missing, malformed or out of range',
  not_initialized: 'the treasury has not been initialised',
  unknown_channel: 'no such channel',
  unknown_deposit: 'no such deposit',
  unknown_peer: 'no such peer',
  peer_not_connected: 'the peer is not connected',
  self_connection: 'a treasury cannot open a session with itself',
  channel_not_open: 'the channel is not open',
  channel_closed: 'the channel has been settled',
  insufficient_funds: 'the balance does not cover the amount',
  deposit_not_free: 'the deposit is not free (unconfirmed, in a channel or spent)',
  deposit_in_use: 'the deposit is already used in a channel',
  deposit_unconfirmed: 'the deposit does not have enough confirmations',
  funding_not_found: 'the funding transaction or output does not exist on chain',
  funding_mismatch: 'the funding output does not pay this deposit',
  funding_spent: 'the funding output is already spent',
  fee_exceeds_balance: "the fee is larger than the settling side's balance",
  dust_output: 'the amount left after the fee would be dust',
  peer_refused: "the peer's enclave refused the request",
  timeout: 'the peer did not answer in time; the request stays pending (its outcome is not known yet)',
  path_timeout: 'the path did not answer in time: the multi-hop payment aborted and nothing was paid',
  attestation_failed: "the peer's attestation did not verify",
  session_failed: 'the secure session failed and was torn down',
  not_primary: 'this treasury is a committee backup: use its primary',
  committee_incomplete: 'not every committee member has joined yet',
  roster_unknown:
    'the channel peer is a committee whose roster proof is missing or does not verify: keys go to it only as shares of a verified roster',
  committee_unavailable: 'too few committee members are reachable to replicate or sign',
  stale_update: 'the replication update is older than the one already applied',
  forged_update: "the replication update is not signed by the committee's primary",
  base_mismatch: 'the replication update is a delta from a state this member does not hold',
  state_mismatch: "the transaction does not match this member's replicated state",
  already_signed: 'this member already signed a different transaction for it',
  stale_epoch: 'the message comes from an older committee view than this member is in',
  view_unknown: 'the message comes from a newer committee view whose certificate this member has not seen',
  channel_settled: 'this member signed a settlement of the channel: it refuses updates that move it',
  channel_settling: 'committee members are settling the channel: it takes no more payments',
  join_token_required: 'joining a committee needs one of the join tokens its primary issued',
  join_token_invalid: "the join token is not one this committee's primary issued",
  join_token_used: 'the join token has already admitted another member',
  committee_full: 'every place in the committee is taken',
  not_a_member: 'no committee member has that node id',
  already_a_member: 'that node is a member of the committee already',
  join_not_requested:
    'the node did not ask to join this committee: start it with --backup-of this primary, then add it again',
  roster_too_small: 'the change would leave fewer than m + 1 live members',
  roster_change_busy: 'a view change is under way: retry when it is over',
  roster_change_refused: 'a quorum of the current members did not vote for the new roster',
  channel_busy: 'a multi-hop payment holds the channel; retry shortly',
  unknown_destination: 'no node with that id is known to the channel graph',
  no_route: 'no path of open channels leads to the destination',
  insufficient_capacity: 'no path has enough capacity for the amount (plus fees)',
  multihop_in_doubt: 'the channel is committed to a multi-hop payment whose outcome is not known yet',
  fee_insufficient: 'the fee left for an intermediary is below what it charges',
  fee_limit_exceeded: 'every path to the destination charges more in fees than the payment allows (max_fee_sat)',
} as const;

export type TreasuryErrorCode = keyof typeof TREASURY_ERRORS;

export class TreasuryError extends Error {
  constructor(
    readonly code: TreasuryErrorCode,
    message?: string,
  ) {
    super(message ?? TREASURY_ERRORS[code]);
    this.name = 'TreasuryError';
  }
}
