/**
 * Every member's own key of each committee deposit. The primary asks each backup for a fresh key when a
 * deposit is made (the deposit is m-of-n over all of them), and for its key again when the deposit joins a
 * channel, sealed for the channel peer. A member hands its key over only after its own replica shows the
 * deposit joining that channel, and splits it for a committee peer's roster it has verified itself.
 */
import { bytesToHex, hexToBytes } from '../../../enclave-sim/encoding.ts';
import { publicKeyOf, randomPrivateKey } from '../../crypto/secp256k1.ts';
import { TreasuryError } from '../treasury/errors.ts';
import { sealKeyTo, shareKeys } from './key-boxes.ts';
import type { Membership } from './membership.ts';
import type { CommitteeHost, HandedKey } from './ports.ts';
import type { Requests } from './requests.ts';
import { recheckPeerRoster } from './roster-change.ts';
import { splitSecret } from './shares.ts';

export class DepositKeys {
  constructor(
    private readonly host: CommitteeHost,
    private readonly chain: Membership,
    private readonly requests: Requests,
  ) {}

  private get c() {
    return this.chain.c;
  }

  /** Primary: one fresh key from every member for a new deposit (its own included); pubkeys in chain order. */
  async depositKeys(depId: string, ownPub: string): Promise<string[]> {
    const others = this.c.members.slice(1);
    const answers = await this.requests.ask(
      others.map((m) => m.node_id),
      { t: 'c_keygen', req: 0, dep: depId },
      others.length,
      (msg) => {
        if (msg.t !== 'c_keygen_res') return null;
        return msg.pubkey;
      },
    );
    return [ownPub, ...others.map((m) => answers.get(m.node_id)!)];
  }

  /**
   * Primary: every member's key of `depId` for the channel peer, in `pubkeys` order: sealed whole to a lone
   * peer, or split for a committee peer's roster (each member splits its own, so no one sees the others').
   */
  async handover(
    depId: string,
    pubkeys: string[],
    own: HandedKey,
  ): Promise<{ sealedKeys: string[] } | { shares: Array<{ pubkey: string; boxes: string[] }> }> {
    const others = this.c.members.slice(1);
    const split = 'boxes' in own;
    const answers = await this.requests.ask(
      others.map((m) => m.node_id),
      { t: 'c_handover', req: 0, dep: depId },
      others.length,
      (msg): HandedKey | null => {
        // Every member answers from its own replica: one that disagrees on whether the peer is a committee is not used.
        if (split && msg.t === 'c_handover_shares') return { pubkey: msg.pubkey, boxes: msg.boxes };
        if (!split && msg.t === 'c_handover_res') return { pubkey: msg.pubkey, box: msg.box };
        return null;
      },
    );
    const byPub = new Map<string, HandedKey>([
      [own.pubkey, own],
      ...[...answers.values()].map((a) => [a.pubkey, a] as [string, HandedKey]),
    ]);
    const handed = pubkeys.map((p) => {
      const h = byPub.get(p);
      if (!h) throw new TreasuryError('committee_unavailable', 'a member did not hand over its deposit key');
      return h;
    });
    if (split) return { shares: handed.map((h) => ({ pubkey: h.pubkey, boxes: (h as { boxes: string[] }).boxes })) };
    return { sealedKeys: handed.map((h) => (h as { box: string }).box) };
  }

  /**
   * This member's key of `depId` for the deposit's channel peer, after checking the replica says so: split
   * for the peer's roster (re-verified here: the primary's word for it is not enough), else sealed whole.
   */
  async sealOwnKey(depId: string, priv: string): Promise<HandedKey> {
    const dep = this.host.state.deposits[depId];
    const ch = dep?.channelId ? this.host.state.channels[dep.channelId] : undefined;
    if (!dep || !ch || dep.status !== 'in_channel')
      throw new TreasuryError('unknown_deposit', `deposit ${depId} is not joining a channel in this member's state`);
    const pubkey = bytesToHex(publicKeyOf(hexToBytes(priv)));
    if (!ch.peerRoster) return { pubkey, box: sealKeyTo(ch.peerId, priv) };
    let members: string[];
    let threshold: number;
    try {
      ({ members, threshold } = recheckPeerRoster(ch.peerRoster, ch.peerId, this.host.state.config));
    } catch (err) {
      throw new TreasuryError('roster_unknown', `the channel peer's roster does not verify: ${(err as Error).message}`);
    }
    const [shares] = await shareKeys(
      [priv],
      members.map((node_id) => ({ node_id, address: '' })),
      threshold,
      splitSecret,
    );
    return shares!;
  }

  /** Backup: its primary asks for this member's key of a new deposit; made once, sealed, then only its pubkey goes back. */
  async onKeygen(peerId: string, req: number, depId: string): Promise<void> {
    if (peerId !== this.c.primaryId) return;
    let key = this.c.memberKeys[depId];
    if (!key) {
      key = bytesToHex(randomPrivateKey());
      this.c.memberKeys[depId] = key;
      await this.host.commitLocal();
    }
    this.host.sendNow(peerId, { t: 'c_keygen_res', req, pubkey: bytesToHex(publicKeyOf(hexToBytes(key))) });
  }

  /** Backup: its primary asks for this member's key of a deposit joining a channel, sealed for the peer. */
  async onHandover(peerId: string, req: number, depId: string): Promise<void> {
    if (peerId !== this.c.primaryId) return;
    const key = this.c.memberKeys[depId];
    try {
      if (!key) throw new TreasuryError('unknown_deposit', `no key for deposit ${depId}`);
      const handed = await this.sealOwnKey(depId, key);
      this.host.sendNow(
        peerId,
        'boxes' in handed ? { t: 'c_handover_shares', req, ...handed } : { t: 'c_handover_res', req, ...handed },
      );
    } catch (err) {
      const e = err instanceof TreasuryError ? err : new TreasuryError('invalid_argument', String(err));
      this.host.sendNow(peerId, { t: 'c_error', req, code: e.code, message: e.message });
    }
  }
}
