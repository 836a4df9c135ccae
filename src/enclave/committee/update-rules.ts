/**
 * What a backup checks in each update before adopting it: the rules every honest state change follows.
 *
 * The primary's signature only says the primary sent it; a compromised primary could sign any state
 * (a new payout address, totals it likes) and the backups would then sign settlements and releases
 * rebuilt from it. So each update is compared with the member's own replica: the roster and payout
 * address are fixed, cumulative totals only grow, credits rise only to totals the channel peer signed,
 * deposits keep their scripts and keys, statuses only move forward. A pure function of the replica and
 * the incoming body; the refusal's code goes back up the chain in c_refuse.
 *
 * A delta (update.ts) is checked as the state it makes, base plus changes, would be as a whole snapshot:
 * every record it carries is checked against the replica's copy, and a channel whose balance a changed
 * deposit enters is checked again; a record it does not carry is the replica's own, which passed when it
 * was adopted. So the cost follows the records that changed, not the size of the state.
 */
import { bytesToHex, hexToBytes } from '../../../enclave-sim/encoding.ts';
import { publicKeyOf } from '../../crypto/secp256k1.ts';
import { verifyPaid, verifyPayout } from '../protocol/peer-sigs.ts';
import type { Channel, ChannelStatus, Deposit, DepositStatus, TreasuryState } from '../treasury/state.ts';
import { buildDepositScript, payoutScriptFor } from '../treasury/transactions.ts';
import { checkMultihop, type MultihopRuleCode } from './multihop-rules.ts';
import { restUrlFault } from './rest-url.ts';
import { recordsOf } from './replicated.ts';
import type { ReplicaBody } from './update.ts';
import { followPeerView, storedRosterHolds } from './roster-change.ts';
import type { RosterTrust } from './roster.ts';
import { peerSharesFault } from './reshare-rules.ts';
import { formationOrder } from './share-holders.ts';

export type UpdateRuleCode =
  | MultihopRuleCode
  | 'roster_changed'
  | 'payout_changed'
  | 'channel_changed'
  | 'status_regressed'
  | 'total_decreased'
  | 'acked_exceeds_sent'
  | 'balance_negative'
  | 'unsigned_received'
  | 'unsigned_peer_payout'
  | 'deposit_changed'
  | 'deposit_key_missing'
  | 'shares_changed'
  | 'entry_missing'
  | 'malformed_record';

export interface RuleRefusal {
  code: UpdateRuleCode;
  reason: string;
}

const CHANNEL_RANK: Record<ChannelStatus, number> = { opening: 0, open: 1, closed: 2 };
const DEPOSIT_NEXT: Record<DepositStatus, DepositStatus[]> = {
  pending: ['pending', 'free'],
  free: ['free', 'in_channel', 'spent'],
  in_channel: ['in_channel', 'free', 'spent'],
  spent: ['spent'],
};

const no = (code: UpdateRuleCode, reason: string): RuleRefusal => ({ code, reason });

/** Null when `body` may follow `replica` (this member's state), else the first rule it breaks. */
export function checkUpdate(replica: TreasuryState, body: ReplicaBody): RuleRefusal | null {
  return (
    checkRoster(replica, body) ??
    checkRestUrls(replica, body) ??
    checkPayout(replica, body) ??
    checkGone(replica, body) ??
    checkDeposits(replica, body) ??
    checkChannels(replica, body) ??
    checkMultihop(replica, body, body.treasuryId ?? body.members[0]!.node_id)
  );
}

function checkRoster(replica: TreasuryState, body: ReplicaBody): RuleRefusal | null {
  const c = replica.committee!;
  // The formation order is fixed: a member that knows it (or still has the formation roster) keeps it.
  const order = body.shareOrder;
  if (
    order !== undefined &&
    (!Array.isArray(order) ||
      order.length > 15 ||
      !order.every((id) => typeof id === 'string') ||
      (c.size > 0 && order.join() !== formationOrder(c).join()))
  )
    return no('roster_changed', 'the formation order peers split keys in changed');
  if (
    !Number.isInteger(body.size) ||
    !Number.isInteger(body.threshold) ||
    body.threshold < 2 ||
    body.threshold > body.size ||
    body.size > 15 ||
    body.members.length > body.size
  ) {
    return no(
      'roster_changed',
      `not a valid committee: ${body.threshold}-of-${body.size} with ${body.members.length} members`,
    );
  }
  if (c.size === 0) return null; // the first update this member sees: it learns the committee from it
  if (c.treasuryId && body.treasuryId !== undefined && body.treasuryId !== c.treasuryId)
    return no('roster_changed', "the committee's identity changed");
  if (body.size !== c.size || body.threshold !== c.threshold)
    return no('roster_changed', `m-of-n changed from ${c.threshold}-of-${c.size} to ${body.threshold}-of-${body.size}`);
  const formed = c.members.length === c.size;
  const kept = c.members.every(
    // An address left empty by a roster change's certificate (promotion.ts) is filled by the next update.
    (m, i) => body.members[i]?.node_id === m.node_id && (m.address === '' || body.members[i]?.address === m.address),
  );
  if (!kept || (formed && body.members.length !== c.members.length))
    return no(
      'roster_changed',
      formed ? 'the roster of a formed committee changed' : 'members were replaced or reordered',
    );
  return null;
}

/** Members' REST URLs: each one its own member signed (rest-url.ts), so a primary cannot swap a backup's. */
function checkRestUrls(replica: TreasuryState, body: ReplicaBody): RuleRefusal | null {
  const why = restUrlFault(replica.committee!.members, body.members);
  return why ? no('roster_changed', why) : null;
}

function checkPayout(replica: TreasuryState, body: ReplicaBody): RuleRefusal | null {
  try {
    payoutScriptFor(body.payoutAddress);
  } catch {
    return no('payout_changed', 'the payout address is not an address');
  }
  if (replica.committee!.lastUpdate && body.payoutAddress !== replica.config.payoutAddress)
    return no('payout_changed', "the committee's payout address changed");
  return null;
}

/** Collections whose records never disappear (a multi-hop payment's record goes once resolved). */
const NEVER_REMOVED = ['deposits', 'channels'] as const;

/** No deposit or channel ever disappears: absent from a full snapshot, or listed as gone in a delta. */
function checkGone(replica: TreasuryState, body: ReplicaBody): RuleRefusal | null {
  for (const k of NEVER_REMOVED) {
    const held = recordsOf(replica, k);
    const gone = body.base === undefined ? Object.keys(held).filter((id) => !body[k][id]) : (body.gone?.[k] ?? []);
    const lost = gone.find((id) => held[id] !== undefined);
    if (lost !== undefined) return no('entry_missing', `${k.replace(/s$/, '')} ${lost} disappeared`);
  }
  return null;
}

function checkDeposits(replica: TreasuryState, body: ReplicaBody): RuleRefusal | null {
  if (body.nextDeposit < replica.nextDeposit) return no('deposit_changed', 'deposit numbering went back');
  const c = replica.committee!;
  for (const [id, d] of Object.entries(body.deposits)) {
    if (d.id !== id) return no('deposit_changed', `deposit ${id} is filed under another id`);
    const old = replica.deposits[id];
    if (!old) {
      const why = newDepositFault(d, body.threshold, c.memberKeys[id]);
      if (why) return why;
      continue;
    }
    if (old.status === 'spent' && c.signed[id]) continue; // signed away here: the replica keeps it spent, whatever comes
    if (
      d.m !== old.m ||
      d.witnessScript !== old.witnessScript ||
      d.address !== old.address ||
      d.pubkeys.join() !== old.pubkeys.join()
    )
      return no('deposit_changed', `deposit ${id}: its script changed`);
    if (old.outpoint !== undefined && (d.outpoint !== old.outpoint || d.value !== old.value))
      return no('deposit_changed', `deposit ${id}: its funding output changed`);
    // Spent here by a channel this member closed (signed, or seen on chain) before the primary knew: its
    // settlement or the chain decides, not the status (a channel it signed is held by the channel_settled check).
    if (old.status !== 'spent' && !DEPOSIT_NEXT[old.status].includes(d.status))
      return no('status_regressed', `deposit ${id}: ${old.status} → ${d.status}`);
  }
  return null;
}

function newDepositFault(d: Deposit, threshold: number, memberKey: string | undefined): RuleRefusal | null {
  if (d.m !== threshold) return no('deposit_changed', `deposit ${d.id} is ${d.m}-of-n, not ${threshold}-of-n`);
  const built = buildDepositScript(d.m, d.pubkeys);
  if (built.witnessScript !== d.witnessScript || built.address !== d.address)
    return no('deposit_changed', `deposit ${d.id}: its script is not its m-of-n over its keys`);
  if (memberKey && !d.pubkeys.includes(bytesToHex(publicKeyOf(hexToBytes(memberKey)))))
    return no('deposit_key_missing', `deposit ${d.id} does not list this member's key`);
  return null;
}

const ZERO = { sent: 0n, received: 0n, acked: 0n };

/** The channels to check: every one a full snapshot holds; a delta's, and those its changed deposits back. */
function channelsToCheck(replica: TreasuryState, body: ReplicaBody): Array<[string, Channel]> {
  if (body.base === undefined) return Object.entries(body.channels);
  const ids = new Set(Object.keys(body.channels));
  for (const d of Object.values(body.deposits)) {
    for (const id of [d.channelId, replica.deposits[d.id]?.channelId])
      if (id !== undefined && (body.channels[id] ?? replica.channels[id])) ids.add(id);
  }
  return [...ids].map((id) => [id, body.channels[id] ?? replica.channels[id]!]);
}

function checkChannels(replica: TreasuryState, body: ReplicaBody): RuleRefusal | null {
  const payout = bytesToHex(payoutScriptFor(body.payoutAddress));
  // A delta leaves out the deposits that did not change: those are the replica's.
  const deposit = (id: string): Deposit | undefined =>
    body.deposits[id] ?? (body.base !== undefined ? replica.deposits[id] : undefined);
  for (const [id, ch] of channelsToCheck(replica, body)) {
    const old: Channel | undefined = replica.channels[id];
    if (old?.status === 'closed') continue; // closed here (signed or seen on chain): the replica keeps its own copy
    if (ch.id !== id || (old && (ch.initiator !== old.initiator || !peerKeptOrRebound(old, ch, replica.config))))
      return no('channel_changed', `channel ${id}: its id, peer or initiator changed`);
    if (ch.myPayout !== payout)
      return no('payout_changed', `channel ${id} does not pay our side to the committee's payout address`);
    if (old && CHANNEL_RANK[ch.status] < CHANNEL_RANK[old.status])
      return no('status_regressed', `channel ${id}: ${old.status} → ${ch.status}`);
    const shares = old ? peerSharesFault(replica, body, old, ch) : null;
    if (shares) return shares;
    if (old?.peerPayout !== undefined && ch.peerPayout !== old.peerPayout)
      return no('channel_changed', `channel ${id}: the peer's payout changed`);
    if (
      ch.peerPayout !== undefined &&
      old?.peerPayout === undefined &&
      !verifyPayout(ch.peerId, id, ch.peerPayout, ch.peerPayoutSig)
    ) {
      return no('unsigned_peer_payout', `channel ${id}: the peer's payout does not carry its signature`);
    }
    const was = old ?? ZERO;
    const fault = totalsFault(replica, id, ch, was);
    if (fault) return fault;
    if (ch.received > was.received && !peerSigned(ch, old))
      return no('unsigned_received', `channel ${id}: received ${ch.received} is more than the peer signed it paid`);
    let mine = 0n;
    for (const d of ch.myDeposits) mine += deposit(d)?.value ?? 0n;
    if (mine - ch.sent + ch.received < 0n)
      return no('balance_negative', `channel ${id}: our balance would be negative`);
  }
  return null;
}

function totalsFault(
  replica: TreasuryState,
  id: string,
  ch: Channel,
  was: { sent: bigint; received: bigint; acked: bigint },
): RuleRefusal | null {
  const grew = ch.sent >= was.sent && ch.received >= was.received && ch.acked >= was.acked;
  // Lower totals only in the closure at a settlement a member after us reported signing (docs/protocol/committees.md).
  const r = replica.committee!.reported?.[id];
  if (
    !grew &&
    !(r && ch.status === 'closed' && ch.settlement?.txid === r.txid && ch.sent === r.sent && ch.received === r.received)
  ) {
    return no('total_decreased', `channel ${id}: a cumulative total went down`);
  }
  if (ch.acked > ch.sent) return no('acked_exceeds_sent', `channel ${id}: acknowledged ${ch.acked} > sent ${ch.sent}`);
  return null;
}

/** The peer signed a paid total at least `ch.received` (a signature already checked when adopted is not checked again). */
function peerSigned(ch: Channel, old: Channel | undefined): boolean {
  const p = ch.peerPaid;
  if (!p || typeof p.total !== 'bigint' || p.total < ch.received) return false;
  if (old?.peerPaid && old.peerPaid.total === p.total && old.peerPaid.sig === p.sig) return true;
  return verifyPaid(ch.peerId, ch.id, p.total, p.sig);
}

/**
 * The channel's peer is the same, or a committee peer's new primary proven by a view certificate of the
 * roster this member stored (peer-views.ts): a primary cannot hand the channel to anyone else. The
 * stored proof never changes; the members those roster changes added come with quotes that verify (the
 * same check the primary made), so no unattested member is ever followed.
 */
function peerKeptOrRebound(old: Channel, ch: Channel, trust: RosterTrust): boolean {
  const before = old.peerRoster;
  const after = ch.peerRoster;
  const sameView = JSON.stringify(before?.view ?? null) === JSON.stringify(after?.view ?? null);
  // A roster first stored (the peer announced it after the channel opened) is the primary's check, as before.
  const sameProof =
    !before ||
    !after ||
    (JSON.stringify(before.proof) === JSON.stringify(after.proof) &&
      JSON.stringify(before.added ?? []) === JSON.stringify(after.added ?? []));
  if (ch.peerId === old.peerId && sameView && sameProof) return true;
  // A roster first stored past the peer committee's founding view: checked again from its proof alone.
  if (!before && after?.view && ch.peerId === old.peerId) return storedRosterHolds(after, ch.peerId, trust);
  if (!before || !after?.view) return false;
  if (after.threshold !== before.threshold || after.members.join() !== before.members.join()) return false;
  try {
    // The same proof the peer's primary checked: a chain from the stored view through roster changes.
    const known = before.changes?.length ?? 0;
    const added = (after.changes ?? []).slice(known);
    if (JSON.stringify(after.changes?.slice(0, known) ?? []) !== JSON.stringify(before.changes ?? [])) return false;
    if (JSON.stringify(after.proof) !== JSON.stringify(before.proof)) return false;
    const had = before.added ?? [];
    if (JSON.stringify((after.added ?? []).slice(0, had.length)) !== JSON.stringify(had)) return false;
    const extra = (after.added ?? []).slice(had.length);
    const quotes = Object.fromEntries(extra.map((m) => [m.node_id, m.quote]));
    const followed = followPeerView(before, after.view, added, { quotes, trust });
    return (
      followed.cert.members[0] === ch.peerId &&
      followed.links.length === added.length &&
      followed.added.map((m) => m.node_id).join() === extra.map((m) => m.node_id).join()
    );
  } catch {
    return false;
  }
}
