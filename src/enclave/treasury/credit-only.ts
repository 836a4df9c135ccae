/**
 * Which seals need the platform counter (docs/protocol/durability.md, and docs/enclave-sim.md "Sealed state and
 * rollback" for the unseal rule).
 *
 * A seal normally advances the platform's monotonic counter, so the host can never restart the enclave
 * from an older state: otherwise it could undo a debit the peer has already been told about, and have
 * the enclave sign a settlement that pays us twice. Undoing a *credit* is different: it only gives the
 * peer back what it paid us, and the peer re-sends its cumulative `sent` total on the next session, so
 * the credit comes back. Such seals may skip the counter (one durable write instead of two), which is
 * what a payee does on every payment.
 *
 * The judgement is made on the data, not on which code path ran: a state qualifies if it equals the
 * state of the last protected seal except that channels' `received` and `acked` totals went up.
 */
import { bytesEqual } from '../../../enclave-sim/encoding.ts';
import { encodeState, type TreasuryState } from './state.ts';

interface Totals {
  received: bigint;
  acked: bigint;
}

export class CreditOnlyCheck {
  private constructor(
    private bytes: Uint8Array,
    private totals: Map<string, Totals>,
  ) {}

  /** The base is `state` as it is now: what was restored, or what a protected seal has just covered. */
  static from(state: TreasuryState): CreditOnlyCheck {
    return new CreditOnlyCheck(encodeState(state), totalsOf(state));
  }

  /** A protected seal of `bytes` (the encoding of `state`) makes it the new base. */
  rebase(state: TreasuryState, bytes: Uint8Array): void {
    this.bytes = bytes;
    this.totals = totalsOf(state);
  }

  /**
   * True if `state` differs from the base only by higher `received` / `acked` totals. Never true for a
   * committee member (its seals are replicated updates, each of which the members count on).
   */
  onlyCredits(state: TreasuryState): boolean {
    if (state.committee) return false;
    const channels = Object.values(state.channels);
    if (channels.length !== this.totals.size) return false;
    for (const ch of channels) {
      const base = this.totals.get(ch.id);
      if (!base || ch.received < base.received || ch.acked < base.acked) return false;
    }
    // The state with the base's totals put back (in copies: the live channels are never touched, their totals
    // change only through channel.ts): equal bytes mean nothing else moved.
    const asBase: TreasuryState = {
      ...state,
      channels: Object.fromEntries(
        Object.entries(state.channels).map(([id, ch]) => [id, { ...ch, ...this.totals.get(ch.id)! }]),
      ),
    };
    return bytesEqual(encodeState(asBase), this.bytes);
  }
}

function totalsOf(state: TreasuryState): Map<string, Totals> {
  return new Map(Object.values(state.channels).map((ch) => [ch.id, { received: ch.received, acked: ch.acked }]));
}
