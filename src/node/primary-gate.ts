/**
 * Writes a committee backup cannot do (payments, deposits, channel changes, fees) are refused by the host
 * before they reach the enclave or leave a trace (a failed payment in the log, a journaled idempotency
 * key), with `409 not_primary` naming the committee's current primary so that a client can go there. The
 * enclave refuses them too (its own check stays): the host's gate only answers early and says where to go.
 *
 * Whether this member is a backup is what the enclave last said (the committee view at start, then every
 * roster or view event); the primary named in the answer is read afresh from the enclave's committee view
 * each time, never kept: after a promotion it is whoever the view says.
 */
import type { CommitteeView, TreasuryEventMsg } from '../enclave/treasury/interface.ts';
import { NodeError, type PrimaryHint } from './errors.ts';

export class PrimaryGate {
  private backup = false;

  constructor(private readonly view: () => Promise<CommitteeView | null>) {}

  /** The enclave's committee view at start (null: a lone treasury, never gated). */
  started(view: CommitteeView | null): void {
    this.backup = view !== null && view.role === 'backup';
  }

  /** Follows the enclave's events that say where this member stands in its chain. */
  onEvent(e: TreasuryEventMsg): void {
    if (e.type === 'committee_view') this.backup = e.members[e.index]?.node_id !== e.primary;
    else if (e.type === 'committee_roster') this.backup = e.index !== 0;
  }

  /** Null when this member may take the write; otherwise a rejection with `not_primary` and the primary. */
  refusal(): Promise<never> | null {
    if (!this.backup) return null;
    return this.notPrimary().then((err) => Promise.reject(err));
  }

  /** Throws `not_primary` (with the primary) when this member is a backup. */
  async check(): Promise<void> {
    await this.refusal();
  }

  /** `not_primary` naming the primary of this member's current committee view. */
  async notPrimary(): Promise<NodeError> {
    const primary = primaryOf(await this.view().catch(() => null));
    return new NodeError(
      'not_primary',
      primary
        ? `this member is a committee backup: send writes to the primary ${primary.rest_url ?? primary.node_id}`
        : 'this member is a committee backup and does not know its primary yet: try again shortly',
      primary ?? undefined,
    );
  }
}

/** The primary of a committee view: the first member in chain order. */
export function primaryOf(view: CommitteeView | null): PrimaryHint | null {
  const p = view?.members[0];
  return p ? { node_id: p.node_id, rest_url: p.rest_url ?? null } : null;
}
