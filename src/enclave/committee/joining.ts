/**
 * Joining a committee and proving its roster. A backup asks its primary for the place at the tail of the
 * chain; the primary admits a newcomer only with a one-time join token from the operator (or, once the
 * committee is formed, on the operator's call on the primary: admission.ts), seals that before
 * answering, and then asks the newcomer for a quote over its node id. The roster proof (every
 * member's quote, in chain order) is what channel peers are shown, and exists only once all are in.
 */
import type { Quote } from '../../../enclave-sim/quote.ts';
import type { CommitteeMessage } from '../protocol/messages.ts';
import { TreasuryError } from '../treasury/errors.ts';
import type { Admission } from './admission.ts';
import { joinRefusal, useJoinToken } from './join-tokens.ts';
import type { Membership } from './membership.ts';
import type { CommitteeHost } from './ports.ts';
import type { PrimaryReplication } from './replication-primary.ts';
import { isRestUrl, signRestUrl, verifyRestUrl } from './rest-url.ts';
import { checkMemberQuote, MEMBER_QUOTE_NONCE, type RosterProof } from './roster.ts';

export class Joining {
  /** The join this member last asked for (not sealed: its host asks again at every start). */
  private asked?: { primaryId: string; msg: Extract<CommitteeMessage, { t: 'c_join' }> };

  constructor(
    private readonly host: CommitteeHost,
    private readonly chain: Membership,
    private readonly primary: PrimaryReplication,
    private readonly admission: Admission,
  ) {}

  private get c() {
    return this.chain.c;
  }

  private get isPrimary(): boolean {
    return this.chain.isPrimary;
  }

  private get formed(): boolean {
    return this.chain.formed;
  }

  /** Joining: the host dialled the primary; ask it for a place at the tail of its chain. */
  join(primaryId: string, address: string, token?: string, restUrl?: string): void {
    if (restUrl !== undefined && !isRestUrl(restUrl))
      throw new TreasuryError('invalid_argument', 'the REST URL must be an http(s) URL of at most 256 characters');
    // A member of a formed committee needs no join, whoever is primary now: its sessions catch it up. Only
    // a REST URL that changed since (a restart on another port) is told, and only to the current primary.
    if (this.chain.known && this.chain.isMember(primaryId)) {
      const own = this.c.members.find((m) => m.node_id === this.host.nodeId);
      if (restUrl !== undefined && own && own.rest_url !== restUrl && primaryId === this.c.primaryId)
        this.host.sendNow(primaryId, { t: 'c_join', address: own.address, ...this.signedUrl(restUrl) });
      return;
    }
    if (this.isPrimary) throw new TreasuryError('invalid_argument', 'a primary cannot join another committee');
    if (this.c.primaryId && this.c.primaryId !== primaryId)
      throw new TreasuryError('invalid_argument', `already a backup of ${this.c.primaryId.slice(0, 16)}…`);
    this.c.primaryId = primaryId;
    const msg = {
      t: 'c_join' as const,
      address,
      ...(token !== undefined ? { token } : {}),
      ...(restUrl !== undefined ? this.signedUrl(restUrl) : {}),
    };
    this.asked = { primaryId, msg };
    this.host.sendNow(primaryId, msg);
  }

  /** The primary this member asked to join admitted it (admission.ts): the same request, once more. */
  askAgain(primaryId: string): void {
    if (this.asked?.primaryId === primaryId) this.host.sendNow(primaryId, this.asked.msg);
  }

  /** This member's REST URL with its own signature of it, as c_join carries them (rest-url.ts). */
  private signedUrl(url: string) {
    return { rest_url: url, rest_url_sig: signRestUrl(this.host.identityKey(), url) };
  }

  /** Primary: a member (or a newcomer) asks for its place in the chain. */
  async onJoin(
    peerId: string,
    address: string,
    token: string | undefined,
    rest?: { url: string | undefined; sig: string | undefined },
  ): Promise<void> {
    if (!this.isPrimary) return;
    // Kept only if the joiner's own enclave signed it: update-rules lets no one else change it (rest-url.ts).
    const url =
      rest?.url !== undefined && isRestUrl(rest.url) && verifyRestUrl(peerId, rest.url, rest.sig) ? rest : null;
    const known = this.c.members.find((m) => m.node_id === peerId);
    // A formed committee takes a newcomer only on its operator's call on this primary (admission.ts).
    if (!known && this.formed && this.admission.admits(peerId)) return this.admission.onJoin(peerId, address, rest);
    if (!known) {
      // A newcomer needs the operator's say (a one-time token) on top of a valid attestation.
      const refused = this.formed ? 'committee_full' : joinRefusal(this.c, token);
      if (refused) {
        this.host.sendNow(peerId, { t: 'c_join_refused', code: refused });
        return;
      }
      useJoinToken(this.c, token!, peerId);
      this.c.members.push({ node_id: peerId, address, ...(url ? { rest_url: url.url, rest_url_sig: url.sig } : {}) });
      this.chain.rosterChanged();
    } else if (url && known.rest_url !== url.url) {
      // A member re-joining after a restart may listen elsewhere now: the roster follows (a hint, not its address).
      known.rest_url = url.url;
      known.rest_url_sig = url.sig;
      this.chain.rosterChanged();
    }
    // The newcomer holds nothing yet: the update this seal issues is a full snapshot.
    this.primary.wantFull();
    // Sealed before the newcomer hears anything: a restarted primary never lets the token admit another.
    await this.host.commitLocal();
    // The newcomer cannot get updates from its predecessor until it knows whom to dial: send it the latest.
    if (this.primary.lastIssued) this.host.sendNow(peerId, { t: 'c_update', update: this.primary.lastIssued });
    this.requestQuote(peerId);
  }

  /**
   * Primary: its own REST URL (from its host at every start), signed like a joiner's and replicated with
   * the roster. Returns whether the roster changed (then the caller seals it).
   */
  advertiseRestUrl(url: string): boolean {
    if (!isRestUrl(url))
      throw new TreasuryError('invalid_argument', 'the REST URL must be an http(s) URL of at most 256 characters');
    const own = this.c.members.find((m) => m.node_id === this.host.nodeId);
    if (!this.isPrimary || !own || own.rest_url === url) return false;
    own.rest_url = url;
    own.rest_url_sig = signRestUrl(this.host.identityKey(), url);
    this.chain.rosterChanged();
    return true;
  }

  /** Every member's quote over its node id, in chain order; null until each member has joined and answered. */
  rosterProof(): RosterProof | null {
    if (!this.isPrimary || !this.formed) return null;
    const quotes = this.c.quotes ?? {};
    if (!this.c.members.every((m) => quotes[m.node_id])) return null;
    // In the formation order, whoever is primary now: peers split their keys in this order (shareOrder).
    const address = new Map(this.c.members.map((m) => [m.node_id, m.address]));
    return {
      threshold: this.c.threshold,
      members: this.chain.shareOrder.map((node_id) => ({
        node_id,
        quote: quotes[node_id]!,
        ...(address.get(node_id) ? { address: address.get(node_id)! } : {}),
      })),
    };
  }

  /** Primary: asks a listed member for its quote, unless it has it already. */
  requestQuote(peerId: string): void {
    if (!this.isPrimary || this.c.quotes?.[peerId] || !this.c.members.some((m) => m.node_id === peerId)) return;
    this.host.sendNow(peerId, { t: 'c_quote_req', req: 0 });
  }

  /** Backup: its primary asks for a quote over this member's identity. */
  async onQuoteReq(peerId: string, req: number): Promise<void> {
    if (this.isPrimary || peerId !== this.c.primaryId) return;
    this.host.sendNow(peerId, { t: 'c_quote', req, quote: await this.host.attest(MEMBER_QUOTE_NONCE) });
  }

  /** Primary: a member's quote; kept only if it attests that member. */
  async onQuote(peerId: string, quote: Quote): Promise<void> {
    if (this.isPrimary && this.admission.admits(peerId)) return this.admission.onQuote(peerId, quote);
    if (!this.isPrimary || !this.c.members.some((m) => m.node_id === peerId) || this.c.quotes?.[peerId]) return;
    try {
      checkMemberQuote(peerId, quote, this.host.state.config);
    } catch {
      return; // a member that cannot attest keeps the roster incomplete: no channel peer is asked to trust it
    }
    const quotes = (this.c.quotes ??= {});
    quotes[peerId] = structuredClone(quote);
    if (!quotes[this.host.nodeId]) quotes[this.host.nodeId] = await this.host.attest(MEMBER_QUOTE_NONCE);
    await this.host.commitLocal();
    if (this.rosterProof()) this.host.rosterComplete();
  }
}
