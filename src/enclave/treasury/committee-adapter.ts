/**
 * The treasury's side of its own committee (committee/coordinator.ts runs the protocol between members):
 * what the coordinator may ask of this treasury, the settlements and releases members sign together,
 * the plan each member rebuilds from its own state before it signs, and, on the primary, what the
 * members' settlement of a channel changes here (a closed channel's stale messages never leave).
 */
import { hexToBytes } from '../../../enclave-sim/encoding.ts';
import type { CommitteeHost, Planned, SignedSettlement, SignKind } from '../committee/coordinator.ts';
import type { ViewCert } from '../committee/view.ts';
import type { CommitteeMessage } from '../protocol/messages.ts';
import { heldBy, rewindTo } from './channel.ts';
import { paidSig, settledMessage } from './channel-wire.ts';
import type { TreasuryCore } from './core.ts';
import { TreasuryError } from './errors.ts';
import { planTau } from './multihop/committee-tau.ts';
import { asSpendable, getChannel, getDeposit, notFree } from './lookups.ts';
import type { Outgoing, TreasuryEvent } from './ports.ts';
import { announceView } from './peer-views.ts';
import { closeChannel, tauSettled } from './settlement.ts';
import { localBalance, remoteBalance, type Channel, type CommitteeMember } from './state.ts';
import { payoutScriptFor, planRelease, planSettlement } from './transactions.ts';

/** What the committee coordinator needs from this treasury (CommitteeHost in coordinator.ts). */
export function committeeHost(t: TreasuryCore): CommitteeHost {
  return {
    get state() {
      return t.state;
    },
    get nodeId() {
      return t.nodeId;
    },
    identityKey: () => hexToBytes(t.state.identityKey),
    sendNow: (peerId: string, msg: CommitteeMessage) => t.sendNow(peerId, msg),
    connected: (peerId: string) => t.sessions.connected(peerId),
    commitLocal: () => t.committer.commitLocal(),
    commitReplicated: () => t.committer.commit(),
    planFor: (kind: SignKind, id: string, feeRate: number) => t.planFor(kind, id, feeRate),
    markSigned: (kind: SignKind, id: string, txid: string, feeRate: number) => markSigned(t, kind, id, txid, feeRate),
    rosterChanged: (members: CommitteeMember[], index: number) =>
      t.ports.emit({ type: 'committee_roster', members, index }),
    settledByMembers: (s: SignedSettlement) => settledByMembers(t, s),
    joinRefused: (code: string) => t.ports.emit({ type: 'committee_join_refused', code }),
    // After the seal that holds them: the host journals only refs this member holds durably.
    refsHeld: () =>
      void t.committer.commitLocal().then(
        () => t.ports.emit({ type: 'pay_refs_held' }),
        () => undefined, // a failed seal halts the enclave
      ),
    updateRefused: (member: string, seq: number, code: string) =>
      t.ports.emit({ type: 'committee_update_refused', member, seq, code }),
    attest: (nonce: Uint8Array) => t.attest(nonce),
    rosterComplete: () => sendRosters(t),
    viewChanged: (cert: ViewCert) => viewChanged(t, cert),
    timeoutMs: t.ports.replyTimeoutMs ?? 10_000,
    promotionTimeoutMs: t.ports.promotionTimeoutMs ?? 0,
  };
}

/**
 * Settlement by any committee member: the channel is closed here first (this member never signs another
 * state for it), then m members' signatures and shares are gathered. If too few answer, the channel
 * stays closed with its settlement unsigned and a new call retries the very same transaction.
 */
export async function settleWithCommittee(t: TreasuryCore, ch: Channel, feeRate: number) {
  if (
    ch.status === 'closed' &&
    (ch.settlement?.by !== 'local' || ch.settlement.hex || ch.settlement.txid === '0'.repeat(64))
  ) {
    throw new TreasuryError(
      'channel_closed',
      `channel ${ch.id} was already settled${ch.settlement ? ` by ${ch.settlement.txid}` : ''}`,
    );
  }
  if (ch.status !== 'closed' && heldBy(ch)) {
    // Held by a multi-hop payment, as a lone treasury decides (settlement.ts): before its commit the old
    // state (the payment aborts); committed, only τ, complete in this member's replica.
    const tau = await t.multihop.localSettle(ch);
    if (tau) return tauSettled(ch, tau);
  }
  const rate = ch.settlement?.feeRate ?? feeRate;
  const c = t.state.committee!;
  if (ch.myDeposits.length + ch.peerDeposits.length === 0) {
    closeChannel(t, ch, { txid: '0'.repeat(64), by: 'local' });
    await t.committer.commitLocal();
    return {
      channel_id: ch.id,
      txid: null,
      tx_hex: null,
      fee_sat: '0',
      local_balance_sat: localBalance(t.state, ch).toString(),
      remote_balance_sat: remoteBalance(ch).toString(),
    };
  }
  const planned = t.planFor('settle', ch.id, rate);
  const done = c.signed[ch.id];
  if (done && done !== planned.plan.txid)
    throw new TreasuryError('already_signed', `this member already signed ${done} for channel ${ch.id}`);
  c.signed[ch.id] = planned.plan.txid;
  markSigned(t, 'settle', ch.id, planned.plan.txid, rate);
  if (heldBy(ch)) t.multihop.closedLocally(ch);
  t.outbox.push({ peerId: ch.peerId, msg: { t: 'settled', ch: ch.id, txid: planned.plan.txid } });
  await t.committer.commitLocal();
  t.committee!.announceSigned(ch.id);
  const { hex } = await t.committee!.sign('settle', ch.id, rate, planned);
  ch.settlement!.hex = hex;
  await t.committer.commitLocal();
  return {
    channel_id: ch.id,
    txid: planned.plan.txid,
    tx_hex: hex,
    fee_sat: planned.plan.fee.toString(),
    local_balance_sat: localBalance(t.state, ch).toString(),
    remote_balance_sat: remoteBalance(ch).toString(),
  };
}

/** A committee deposit goes back only to the treasury's replicated payout address, which every member checks. */
export async function releaseWithCommittee(t: TreasuryCore, id: string, address: string, feeRate: number) {
  if (address !== t.state.config.payoutAddress) {
    throw new TreasuryError(
      'invalid_argument',
      `a committee treasury releases deposits only to its payout address ${t.state.config.payoutAddress}`,
    );
  }
  const dep = getDeposit(t.state, id);
  const c = t.state.committee!;
  const retry = dep.status === 'spent' && c.signed[id] && !dep.releaseHex;
  if (dep.status !== 'free' && !retry) throw notFree(t.state, dep);
  const planned = t.planFor('release', id, feeRate);
  if (c.signed[id] && c.signed[id] !== planned.plan.txid)
    throw new TreasuryError('already_signed', `this member already signed ${c.signed[id]} for ${id}`);
  c.signed[id] = planned.plan.txid;
  markSigned(t, 'release', id, planned.plan.txid, feeRate);
  await t.committer.commitLocal();
  const { hex } = await t.committee!.sign('release', id, feeRate, planned);
  dep.releaseHex = hex;
  await t.committer.commitLocal();
  return { deposit_id: id, txid: planned.plan.txid, tx_hex: hex, fee_sat: planned.plan.fee.toString() };
}

/** The unsigned transaction this member would sign for a settlement or a release, from its own state. */
export function planFor(t: TreasuryCore, kind: SignKind, id: string, feeRate: number): Planned {
  if (kind === 'tau') return planTau(t.state, id);
  if (kind === 'release') {
    const dep = getDeposit(t.state, id);
    const signedHere = t.state.committee?.signed[id];
    // Spent is fine in two cases: this member signed that very release (a retry), or the release the
    // primary recorded before asking (its update shows the deposit spent by it); checked on the plan below.
    const spentByRelease =
      dep.status === 'spent' && dep.spentBy !== undefined && (!signedHere || signedHere === dep.spentBy);
    if (dep.status !== 'free' && !spentByRelease) {
      throw new TreasuryError('deposit_not_free', `deposit ${id} is ${dep.status}`);
    }
    if (!dep.outpoint || dep.value === undefined)
      throw new TreasuryError('deposit_not_free', `deposit ${id} is not funded`);
    const plan = planRelease({
      deposit: asSpendable(dep),
      payoutScript: payoutScriptFor(t.state.config.payoutAddress),
      feeRate,
    });
    // Only the very transaction it is spent by: never a release that would double-spend a settlement.
    if (dep.status === 'spent' && !signedHere && plan.txid !== dep.spentBy)
      throw new TreasuryError('deposit_not_free', `deposit ${id} is spent by ${dep.spentBy}`);
    return { plan, inputs: [{ kind: 'own', depositId: id, m: dep.m, pubkeys: dep.pubkeys }] };
  }
  const ch = getChannel(t.state, id);
  if (ch.settlement?.by === 'remote')
    throw new TreasuryError('channel_closed', `channel ${id} was settled by the peer (${ch.settlement.txid})`);
  const own = ch.myDeposits.map((d) => t.state.deposits[d]!);
  const plan = planSettlement({
    inputs: [...own.map((d) => asSpendable(d)), ...ch.peerDeposits],
    local: { script: hexToBytes(ch.myPayout), value: localBalance(t.state, ch) },
    remote: { script: ch.peerPayout ? hexToBytes(ch.peerPayout) : null, value: remoteBalance(ch) },
    feeRate,
  });
  return {
    plan,
    inputs: [
      ...own.map((d) => ({ kind: 'own' as const, depositId: d.id, m: d.m, pubkeys: d.pubkeys })),
      ...ch.peerDeposits.map((d) => ({ kind: 'peer' as const, deposit: d })),
    ],
  };
}

/** Records in this member's state what it signed: the channel is closed, the deposit spent. */
function markSigned(t: TreasuryCore, kind: SignKind, id: string, txid: string, feeRate: number): void {
  if (kind === 'tau') return; // `signed` records it; the payment's record moves on by the protocol alone
  if (kind === 'release') {
    const dep = getDeposit(t.state, id);
    dep.status = 'spent';
    dep.spentBy = txid;
    return;
  }
  const ch = getChannel(t.state, id);
  if (ch.status !== 'closed') closeChannel(t, ch, { txid, by: 'local', feeRate });
}

/**
 * Primary: members signed a settlement of `s.ch` (maybe without it). Their replicas are never ahead of
 * this state, so debits beyond the signed totals were never acknowledged to the peer: the channel closes
 * at the signed totals, provided they rebuild the very transaction signed, and the next update is one
 * the signers accept. Messages already queued beyond those totals are dropped at delivery.
 */
function settledByMembers(t: TreasuryCore, s: SignedSettlement): void {
  const ch = t.state.channels[s.ch];
  if (!ch) return;
  let txid: string | undefined;
  // Refused above our totals, and below what the peer acknowledged (released payments were in the replicas).
  const signedHere = rewindTo(ch, s, () => {
    try {
      txid = t.planFor('settle', ch.id, s.feeRate).plan.txid;
    } catch {
      txid = undefined;
    }
    return txid === s.txid;
  });
  // Not the transaction signed from this state: the channel stays frozen (isSettling) and as it was.
  if (!signedHere || txid === undefined) return;
  // Committee members settled at these totals: payments within them are in the settlement, the rest never left.
  // Members settled a channel a multi-hop payment holds: in the old state (they settle a held channel only
  // before its commit, or the new state once released), so the payment follows as for a peer's settlement.
  if (heldBy(ch)) t.multihop.settledElsewhere(ch, txid, () => false);
  closeChannel(t, ch, { txid, by: 'local', feeRate: s.feeRate }, ch.sent);
  t.state.committee!.signed[ch.id] = txid;
  t.outbox.push({ peerId: ch.peerId, msg: settledMessage(ch) });
  void t.committer.commit().catch(() => undefined);
}

/**
 * A committee primary's queued message or event that reports more than a closed channel now records
 * (queued before members' settlement closed it at lower totals): must not leave, or the peer would
 * credit what the signed settlement leaves out. Null to drop; sync entries are rewritten.
 */
export function stillTrue(t: TreasuryCore, item: Outgoing | TreasuryEvent): Outgoing | TreasuryEvent | null {
  const closed = (id: string) => {
    const ch = t.state.channels[id];
    return ch?.status === 'closed' ? ch : undefined;
  };
  if ('type' in item) {
    if (item.type !== 'pay_received') return item;
    const ch = closed(item.channel_id);
    return ch && BigInt(item.total) > ch.received ? null : item;
  }
  const msg = item.msg;
  if (msg.t === 'sync') {
    const channels = msg.channels.map((e) => {
      const ch = closed(e.ch);
      return ch
        ? {
            ch: e.ch,
            sent: ch.sent.toString(),
            received: ch.received.toString(),
            closed: true,
            ...paidSig(t.state, ch, ch.sent),
          }
        : e;
    });
    return { peerId: item.peerId, msg: { t: 'sync', channels } };
  }
  if (!('ch' in msg) || msg.t === 'settled' || msg.t.startsWith('mh_')) return item;
  const ch = closed(msg.ch);
  if (!ch) return item;
  if (msg.t === 'pay') return BigInt(msg.total) <= ch.sent ? item : null;
  if (msg.t === 'pay_ack') return BigInt(msg.total) <= ch.received ? item : null;
  return null;
}

/**
 * A committee primary's `pay`, `sync` or multi-hop `mh_commit` as it leaves, after the seal it reports is
 * acknowledged: each paid total carries the backups' proof that they hold it (paid-proof.ts), and a COMMIT
 * their proof that they hold it committed (committed-proof.ts), which a neighbour that verified our roster
 * requires before it credits or commits. Built at delivery, not at the seal: the backups' signatures come
 * with the very acknowledgements that release the message.
 */
export function withReplicationProof(t: TreasuryCore, item: Outgoing | TreasuryEvent): Outgoing | TreasuryEvent {
  const proofOf = (ch: string, total: string) => t.committee?.paidProof(ch, BigInt(total));
  if ('type' in item) return item;
  const msg = item.msg;
  if (msg.t === 'pay') {
    const proof = proofOf(msg.ch, msg.total);
    return proof ? { peerId: item.peerId, msg: { ...msg, proof } } : item;
  }
  if (msg.t === 'mh_commit') {
    const proof = t.committee?.committedProof(msg.pid);
    return proof ? { peerId: item.peerId, msg: { ...msg, proof } } : item;
  }
  if (msg.t !== 'sync') return item;
  const channels = msg.channels.map((e) => {
    const proof = proofOf(e.ch, e.sent);
    return proof ? { ...e, proof } : e;
  });
  return { peerId: item.peerId, msg: { t: 'sync', channels } };
}

/** Primary: the roster proof to every channel peer (once every member has attested). */
function sendRosters(t: TreasuryCore): void {
  const proof = t.committee?.rosterProof();
  if (!proof) return;
  for (const ch of Object.values(t.state.channels)) {
    if (ch.status !== 'closed') t.outbox.push({ peerId: ch.peerId, msg: { t: 'roster', ch: ch.id, ...proof } });
  }
  void t.committer.commit().catch(() => undefined);
}

/** This member adopted a view: the host hears of it; a new primary shows it to its channel peers and resyncs. */
function viewChanged(t: TreasuryCore, cert: ViewCert): void {
  const c = t.state.committee!;
  const index = c.members.findIndex((m) => m.node_id === t.nodeId);
  t.ports.emit({ type: 'committee_view', epoch: cert.epoch, primary: cert.members[0]!, members: c.members, index });
  if (c.role !== 'primary') {
    // A former primary's channel peers must find the new one: their hosts dial the other members when this drops.
    for (const ch of Object.values(t.state.channels))
      if (!c.members.some((m) => m.node_id === ch.peerId)) t.sessions.drop(ch.peerId, 'no longer the primary');
    return;
  }
  t.multihop.tookOver();
  announceView(t);
  void t.committer.commit().catch(() => undefined);
}
