/**
 * Threshold signing of a settlement or a release. The settler gathers, for every committee deposit the
 * transaction spends, m members' signatures, and for every key a committee channel peer handed over, m
 * members' shares of it. A member gives its part only when it rebuilds the very same transaction (same
 * txid) from its own replica, and never for a second transaction of the same channel or deposit.
 */
import { bytesToHex, hexToBytes } from '../../../enclave-sim/encoding.ts';
import type { KeyedSignature } from '../../bitcoin/index.ts';
import { publicKeyOf } from '../../crypto/secp256k1.ts';
import type { CommitteeMessage } from '../protocol/messages.ts';
import { TreasuryError, type TreasuryErrorCode } from '../treasury/errors.ts';
import type { PeerDeposit } from '../treasury/state.ts';
import { checkInputSignature, finishInput, signaturesFor } from '../treasury/transactions.ts';
import { ownShares } from './key-boxes.ts';
import type { Membership } from './membership.ts';
import type { CommitteeHost, Planned, SignKind } from './ports.ts';
import type { BackupReplication } from './replication-backup.ts';
import type { PrimaryReplication } from './replication-primary.ts';
import type { Requests } from './requests.ts';
import { combineShares } from './shares.ts';
import { signedKey } from './signed.ts';

/** One member's part of a transaction: its signature of each committee deposit, its share of each handed-over key. */
export interface Contribution {
  sigs: Array<{ input: number; pubkey: string; sig: string }>;
  /** `gen`: which split the share is from (PeerDeposit.gen): shares of two splits never combine. */
  shares: Array<{ outpoint: string; pubkey: string; share: string; gen?: number }>;
}

/**
 * Calls that go back through the coordinator object and are looked up there at each call, not bound once:
 * the adversarial tests replace these methods on the coordinator to record every part a member gives and
 * to lose a signer's notices to its primary.
 */
export interface SigningSeams {
  contribution(planned: Planned): Contribution;
  announceSigned(channelId: string): void;
}

export class ThresholdSigning {
  constructor(
    private readonly host: CommitteeHost,
    private readonly chain: Membership,
    private readonly requests: Requests,
    private readonly primary: PrimaryReplication,
    private readonly backup: BackupReplication,
    private readonly seams: SigningSeams,
  ) {}

  private get c() {
    return this.chain.c;
  }

  /**
   * Signs `planned` with this member's part and m − 1 other members' parts. The settler's own state must
   * already record the settlement (so it never signs another); `update` lets the others catch up first.
   */
  async sign(kind: SignKind, id: string, feeRate: number, planned: Planned): Promise<{ hex: string }> {
    const own = this.seams.contribution(planned);
    const sigs = new Map<number, KeyedSignature[]>();
    const shares = new Map<string, Uint8Array[]>(); // `${outpoint}/${pubkey}/${gen}` → shares
    const add = (part: Contribution) => {
      for (const s of part.sigs) {
        const pub = hexToBytes(s.pubkey);
        const sig = hexToBytes(s.sig);
        const input = planned.inputs[s.input];
        if (input?.kind !== 'own' || !input.pubkeys.includes(s.pubkey)) continue;
        if (!checkInputSignature(planned.plan.spend, s.input, pub, sig)) continue;
        const list = sigs.get(s.input) ?? [];
        if (!list.some((x) => bytesToHex(x.pubkey) === s.pubkey)) list.push({ pubkey: pub, signature: sig });
        sigs.set(s.input, list);
      }
      for (const s of part.shares) {
        const key = `${s.outpoint}/${s.pubkey}/${s.gen ?? 0}`;
        const list = shares.get(key) ?? [];
        if (!list.some((x) => bytesToHex(x) === s.share)) list.push(hexToBytes(s.share));
        shares.set(key, list);
      }
    };
    add(own);
    const enough = () =>
      planned.inputs.every((input, i) =>
        input.kind === 'other'
          ? true
          : input.kind === 'own'
            ? (sigs.get(i)?.length ?? 0) >= input.m
            : !input.deposit.shares ||
              input.deposit.shares.filter((s) => usableShares(shares, input.deposit, s.pubkey, this.c.threshold))
                .length >= input.deposit.m,
      );
    const others = this.c.members.map((m) => m.node_id).filter((n) => n !== this.host.nodeId && this.host.connected(n));
    // Every update kept, not the latest alone: a delta applies only onto its base, and a member may be several
    // behind. The primary knows what each backup signed as applied (sealed, so held across restarts too):
    // only the updates after the least of those; a backup asking cannot know, so it sends every one.
    const updates = this.chain.isPrimary
      ? this.primary.recent.after(Math.min(...others.map((n) => this.primary.heldBy(n))))
      : this.backup.recent.after();
    if (!enough()) {
      const refusals: string[] = [];
      await this.requests
        .ask(
          others,
          {
            t: 'c_sign',
            req: 0,
            kind,
            id,
            fee_rate: feeRate,
            txid: planned.plan.txid,
            epoch: this.chain.epoch,
            ...(updates.length > 0 ? { updates } : {}),
          },
          others.length,
          (msg, from) => {
            if (msg.t === 'c_error') {
              refusals.push(`${from.slice(0, 12)}…: ${msg.code}`);
              return 'refused';
            }
            if (msg.t !== 'c_sign_res') return null;
            add(msg);
            return 'ok';
          },
          enough,
        )
        .catch((err) => {
          if (!enough())
            throw new TreasuryError(
              'committee_unavailable',
              `${(err as Error).message}${refusals.length ? `; refused by ${refusals.join(', ')}` : ''}`,
            );
        });
      if (!enough())
        throw new TreasuryError(
          'committee_unavailable',
          `fewer than ${this.c.threshold} members signed${refusals.length ? `; refused by ${refusals.join(', ')}` : ''}`,
        );
    }
    const spend = planned.plan.spend;
    for (const [i, input] of planned.inputs.entries()) {
      if (input.kind === 'other') continue;
      if (input.kind === 'own') {
        finishInput(spend, i, sigs.get(i)!);
        continue;
      }
      const keys = input.deposit.shares ? await this.rebuildKeys(input.deposit, shares) : input.deposit.privkeys;
      finishInput(spend, i, signaturesFor(spend, i, keys.slice(0, input.deposit.m)));
    }
    return { hex: spend.tx.toHex() };
  }

  /** Rebuilds m of the peer's handed-over keys from members' shares, each checked against its public key. */
  private async rebuildKeys(dep: PeerDeposit, shares: Map<string, Uint8Array[]>): Promise<string[]> {
    const keys: string[] = [];
    for (const s of dep.shares!) {
      const list = usableShares(shares, dep, s.pubkey, this.c.threshold);
      if (!list) continue;
      const key = await combineShares(list.slice(0, this.c.threshold));
      if (bytesToHex(publicKeyOf(key)) !== s.pubkey)
        throw new TreasuryError('committee_unavailable', 'secret shares did not rebuild the handed-over key');
      keys.push(bytesToHex(key));
      if (keys.length === dep.m) break;
    }
    return keys;
  }

  /** This member's part: its signature of each committee deposit, its share of each handed-over key. */
  ownPart(planned: Planned): Contribution {
    const sigs: Contribution['sigs'] = [];
    const shares: Contribution['shares'] = [];
    for (const [i, input] of planned.inputs.entries()) {
      if (input.kind === 'other') continue;
      if (input.kind === 'own') {
        const key = this.chain.isPrimary
          ? this.host.state.deposits[input.depositId]?.privkeys[0]
          : this.c.memberKeys[input.depositId];
        if (!key) continue;
        for (const s of signaturesFor(planned.plan.spend, i, [key]))
          sigs.push({ input: i, pubkey: bytesToHex(s.pubkey), sig: bytesToHex(s.signature) });
        continue;
      }
      shares.push(...ownShares(input.deposit, this.c, this.host.nodeId, this.host.identityKey()));
    }
    return { sigs, shares };
  }

  /** Another member asks for this member's part of a transaction: given only for the very same txid. */
  async onSign(peerId: string, msg: Extract<CommitteeMessage, { t: 'c_sign' }>): Promise<void> {
    const refuse = (code: TreasuryErrorCode, message: string) =>
      this.host.sendNow(peerId, { t: 'c_error', req: msg.req, code, message });
    if (!this.c.members.some((m) => m.node_id === peerId)) return;
    if ((msg.epoch ?? 0) < this.chain.epoch)
      return refuse('stale_epoch', 'the request comes from an older committee view');
    // Whatever the txid, a member is settling the channel: the primary pays no more on it.
    if (this.chain.isPrimary && msg.kind === 'settle') this.primary.settlingSeen(msg.id);
    for (const update of this.chain.isPrimary ? [] : (msg.updates ?? [])) {
      const refused = await this.backup.applyUpdate(update);
      // An update it cannot apply onto its own state (one it has, or a delta from another base) is left
      // aside: the transaction is then rebuilt from this member's own replica, and signed only if the txid
      // matches.
      if (refused && refused.code !== 'stale_update' && refused.code !== 'base_mismatch')
        return refuse(refused.code as TreasuryErrorCode, 'an attached update was refused');
    }
    const key = signedKey(msg.kind, msg.id);
    const done = this.c.signed[key];
    if (done && done !== msg.txid) return refuse('already_signed', `this member already signed ${done} for ${msg.id}`);
    let planned: Planned;
    try {
      planned = this.host.planFor(msg.kind, msg.id, msg.fee_rate);
    } catch (err) {
      return refuse(err instanceof TreasuryError ? err.code : 'invalid_argument', (err as Error).message);
    }
    if (planned.plan.txid !== msg.txid)
      return refuse('state_mismatch', "the transaction does not match this member's latest state");
    this.c.signed[key] = msg.txid;
    this.host.markSigned(msg.kind, msg.id, msg.txid, msg.fee_rate);
    await this.host.commitLocal();
    if (msg.kind === 'settle') this.seams.announceSigned(msg.id);
    this.host.sendNow(peerId, { t: 'c_sign_res', req: msg.req, ...this.seams.contribution(planned) });
  }
}

/**
 * The shares gathered for one handed-over key, of whichever split has m of them, or undefined: while a
 * re-split is under way members hold the old split, the new one or both (each is checked against the
 * public key once combined).
 */
function usableShares(
  shares: Map<string, Uint8Array[]>,
  dep: PeerDeposit,
  pubkey: string,
  m: number,
): Uint8Array[] | undefined {
  const prefix = `${dep.outpoint}/${pubkey}/`;
  for (const [key, list] of shares) if (key.startsWith(prefix) && list.length >= m) return list;
  return undefined;
}
