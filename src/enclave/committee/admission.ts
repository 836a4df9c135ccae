/**
 * Adding a member to a formed committee (docs/protocol/committees.md, "Roster change"), both ends of it.
 *
 * The primary's side. A formed committee admits no join token any more (`committee_full`): the operator's
 * authenticated call on the primary is what admits a node. The primary's host has dialled the node (the
 * session's mutual attestation checked it runs this code); the enclave seals a one-shot admission for
 * that node id before it asks anything, asks the node to join (`c_admit`: only a node started as a
 * backup of this very primary answers, with `c_join`), asks for its quote over its node id and checks it
 * as a channel peer will (this code's measurement, a platform no member quotes from). Only then does the
 * roster change get proposed (roster-ops.ts), with the newcomer appended at the tail.
 *
 * The newcomer's side. It knows nothing of the committee, so, as at formation, it takes the roster from
 * the primary it was started to follow: `c_welcome` carries the certificate that appended it (checked
 * for shape: this primary first, the newcomer last, q votes that verify over the view), the roster
 * changes before it (what it shows channel peers if it is ever primary) and the formation order peers
 * split keys in (resharing.ts gives it shares of handed-over keys afterwards). The primary's full snapshot of the new view follows on the same session, and catches it up.
 */
import { TreasuryError } from '../treasury/errors.ts';
import type { CommitteeMember } from '../treasury/state.ts';
import type { Quote } from '../../../enclave-sim/quote.ts';
import type { Membership } from './membership.ts';
import type { CommitteeHost } from './ports.ts';
import { checkMemberQuote } from './roster.ts';
import { isRestUrl, verifyRestUrl } from './rest-url.ts';
import { NODE_ID, quorum, voteValid, type ViewCert } from './view.ts';

/** The largest committee a roster proof may describe (roster.ts). */
export const MAX_MEMBERS = 15;

interface Waiter {
  nodeId: string;
  /** The newcomer's record once it asked to join; its quote is what completes the admission. */
  joiner?: CommitteeMember;
  resolve: (member: CommitteeMember) => void;
  reject: (err: unknown) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class Admission {
  private waiter?: Waiter;

  constructor(
    private readonly host: CommitteeHost,
    private readonly chain: Membership,
    /** Newcomer: sends its c_join again (Joining.askAgain), when the primary says it is admitted. */
    private readonly askAgain: (primaryId: string) => void,
  ) {}

  private get c() {
    return this.chain.c;
  }

  /** Whether an admission is being completed (a second one waits: one roster change at a time). */
  get busy(): boolean {
    return this.waiter !== undefined;
  }

  // ───────────────────────────── the primary ─────────────────────────────

  /**
   * Admits `nodeId` (an attested session is up): sealed, then the node is asked to join and to attest.
   * Resolves with its record once its quote checks out; rejects (and forgets the admission) otherwise.
   */
  async start(nodeId: string, address: string, waitMs: number): Promise<CommitteeMember> {
    this.c.admission = { node_id: nodeId, address };
    // Waiting from now on (busy: a second addition is refused at once), the answer bounded by `waitMs`.
    const member = new Promise<CommitteeMember>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(
          this.waiter?.joiner
            ? new TreasuryError('attestation_failed', 'the node gave no quote over its node id in time')
            : new TreasuryError(
                'join_not_requested',
                'the node did not ask to join this committee: start it with --backup-of this primary',
              ),
        );
      }, waitMs);
      this.waiter = { nodeId, resolve, reject, timer };
    });
    try {
      // Sealed before the node hears anything: the operator's say is durable before it is acted on.
      await this.host.commitLocal();
    } catch (err) {
      this.fail(err);
    }
    if (this.waiter?.nodeId === nodeId) this.host.sendNow(nodeId, { t: 'c_admit' });
    return member;
  }

  /** The admission did not lead to a roster change: it is forgotten (sealed), so it admits no one later. */
  async forget(): Promise<void> {
    const admitted = this.c.admission;
    if (!admitted) return;
    delete this.c.admission;
    // Quotes are kept for members only: a node not voted in leaves none behind (the next update drops it everywhere).
    if (!this.c.members.some((m) => m.node_id === admitted.node_id)) delete this.c.quotes?.[admitted.node_id];
    await this.host.commitLocal();
  }

  private fail(err: unknown): void {
    const w = this.waiter;
    if (!w) return;
    clearTimeout(w.timer);
    this.waiter = undefined;
    w.reject(err);
  }

  /** Whether `peerId` is the node the operator admitted, not yet a member. */
  admits(peerId: string): boolean {
    return (
      this.c.admission?.node_id === peerId &&
      this.waiter?.nodeId === peerId &&
      !this.c.members.some((m) => m.node_id === peerId)
    );
  }

  /** The admitted node asks to join: its record is kept (its REST URL only if it signed it), then its quote is asked for. */
  onJoin(peerId: string, address: string, rest?: { url: string | undefined; sig: string | undefined }): void {
    const w = this.waiter;
    if (!w || !this.admits(peerId)) return;
    const signed = rest?.url !== undefined && isRestUrl(rest.url) && verifyRestUrl(peerId, rest.url, rest.sig);
    w.joiner = {
      node_id: peerId,
      // The address the operator gave (and the host dialled) unless the node names its own.
      address: address !== '' ? address : this.c.admission!.address,
      ...(signed ? { rest_url: rest.url!, rest_url_sig: rest.sig! } : {}),
    };
    this.host.sendNow(peerId, { t: 'c_quote_req', req: 0 });
  }

  /**
   * The admitted node's quote over its node id: checked as channel peers check a roster proof (this
   * code's measurement, our trust anchor, a platform of its own), then kept with the members' quotes.
   */
  async onQuote(peerId: string, quote: Quote): Promise<void> {
    const w = this.waiter;
    if (!w?.joiner || !this.admits(peerId)) return;
    const trust = this.host.state.config;
    let platform: string;
    try {
      platform = checkMemberQuote(peerId, quote, trust);
    } catch (err) {
      return this.fail(new TreasuryError('attestation_failed', `the node's quote does not verify: ${String(err)}`));
    }
    const quotes = (this.c.quotes ??= {});
    const taken = this.c.members.some((m) => {
      const q = quotes[m.node_id];
      try {
        return q !== undefined && checkMemberQuote(m.node_id, q, trust) === platform;
      } catch {
        return false;
      }
    });
    if (taken)
      return this.fail(new TreasuryError('attestation_failed', 'the node quotes from the platform of a member'));
    quotes[peerId] = structuredClone(quote);
    clearTimeout(w.timer);
    this.waiter = undefined;
    w.resolve(w.joiner);
  }

  // ───────────────────────────── the newcomer ─────────────────────────────

  /** Newcomer: the primary it asked to join admitted it; it asks again (c_join), now to be let in. */
  onAdmit(peerId: string): void {
    if (this.chain.isPrimary || this.chain.known || peerId !== this.c.primaryId) return;
    this.askAgain(peerId);
  }

  /**
   * Newcomer: the certificate that appended it, from the primary it asked to join. Adopted if it has the
   * shape of such a view; the full snapshot that follows on the same session fills in the rest.
   */
  async onWelcome(peerId: string, cert: ViewCert, chain: ViewCert[], shareOrder: string[]): Promise<boolean> {
    const c = this.c;
    const me = this.host.nodeId;
    if (this.chain.isPrimary || this.chain.known || peerId !== c.primaryId) return false;
    const n = cert.members.length;
    const m = cert.threshold;
    const ids = new Set(cert.members);
    if (
      cert.members[0] !== peerId ||
      cert.members[n - 1] !== me ||
      ids.size !== n ||
      n > MAX_MEMBERS ||
      m === undefined ||
      m < 2 ||
      n < m + 1 ||
      !cert.members.every((id) => NODE_ID.test(id)) ||
      !NODE_ID.test(cert.treasury_id)
    )
      return false;
    // q members other than itself voted for it (the newcomer cannot know the roster before; this much it checks).
    const voters = new Set(
      cert.votes
        .filter((v) => v.node_id !== me && ids.has(v.node_id) && voteValid(cert, v.node_id, v.sig))
        .map((v) => v.node_id),
    );
    if (voters.size < quorum(n - 1, m)) return false;
    const order = [...new Set(shareOrder)];
    // The formation order peers split keys in (the newcomer is not in it: it gets shares by a re-split).
    if (order.length !== shareOrder.length || !order.every((id) => NODE_ID.test(id))) return false;
    c.treasuryId = cert.treasury_id;
    c.epoch = cert.epoch;
    c.view = structuredClone(cert);
    c.rosterViews = [...structuredClone(chain), structuredClone(cert)];
    c.shareOrder = order;
    c.threshold = m;
    c.size = n;
    // Addresses come with the primary's snapshot (update-rules lets an empty one be filled once).
    c.members = cert.members.map((node_id) => ({ node_id, address: '' }));
    await this.host.commitLocal();
    return true;
  }
}
