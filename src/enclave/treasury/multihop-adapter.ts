/**
 * The treasury's side of multi-hop payments (multihop.ts runs the protocol along the path): what the
 * engine may use of this treasury, and the two ecalls that start with the treasury's own checks.
 */
import { signedKey } from '../committee/signed.ts';
import type { ChannelMessage, MultiHopMessage, SpeakerProof } from '../protocol/messages.ts';
import type { TreasuryCore } from './core.ts';
import { TreasuryError } from './errors.ts';
import { ownInputs } from './multihop/committee-tau.ts';
import { identities, sessionOf, treasuryOf } from './multihop/identities.ts';
import { checkAmount } from './lookups.ts';
import type { MultiHopHost } from './multihop.ts';
import type { MultiHopNotice } from './multihop/host.ts';
import type { TreasuryEvent } from './ports.ts';
import { dropMhRefs, listMhRefs } from './multihop/payer-refs.ts';
import { defaultMaxFee } from './routing.ts';
import { closeChannel } from './settlement.ts';
import type { Channel } from './state.ts';
import { withWitnesses } from './transactions.ts';

/** What the multi-hop engine needs from this treasury (MultiHopHost in multihop.ts). */
export function multihopHost(t: TreasuryCore): MultiHopHost {
  return {
    get state() {
      return t.state;
    },
    get nodeId() {
      return t.committee ? t.committee.treasuryId : t.nodeId;
    },
    identityKey: () => t.state.identityKey,
    isCommittee: () => t.committee !== undefined,
    takesPart: () => t.committee === undefined || t.committee.isPrimary,
    ...(t.committee ? { signTau: (pid: string, tx: string) => signTauWithCommittee(t, pid, tx) } : {}),
    // The engine names neighbours by treasury identity; messages go to the session that speaks for one now.
    identityOf: (session: string) => treasuryOf(t.state, session),
    connected: (peer: string) => t.sessions.connected(sessionOf(t.state, peer)),
    peers: () => {
      const ids = identities(t.state);
      return [...new Set(t.sessions.peers().map((s) => ids.treasuryOf(s)))].filter((p): p is string => p !== null);
    },
    queue: (peer: string, msg: MultiHopMessage | ChannelMessage) => {
      t.outbox.pushMultihop({ peerId: sessionOf(t.state, peer), msg });
    },
    sendAhead: (peer: string, msg: MultiHopMessage) => {
      // Behind every payment, acknowledgement or multi-hop step of ours already sealed or being sealed,
      // ahead of its own seal. Queued when something waits for the next seal (it goes after that, in order),
      // and always at a committee, whose steps leave only once replicated.
      if (t.committee || t.outbox.holdsPeerMessages()) t.outbox.pushMultihop({ peerId: sessionOf(t.state, peer), msg });
      else t.committer.afterInFlight(() => t.sendNow(sessionOf(t.state, peer), msg));
    },
    sendNow: (peer: string, msg: MultiHopMessage) => t.sendNow(sessionOf(t.state, peer), msg),
    speakerProof: () => speakerProof(t),
    commit: () => t.committer.commit(),
    event: (e: TreasuryEvent) => {
      t.outbox.event(e);
    },
    notify: (e: MultiHopNotice) => t.ports.emit(e),
    closeChannel: (ch: Channel, s: NonNullable<Channel['settlement']>) => closeChannel(t, ch, s),
    random: (n: number) => t.ports.random(n),
    getTxOut: (txid: string, vout: number) => t.ports.getTxOut(txid, vout),
    timeoutMs: t.ports.multihopTimeoutMs ?? 5_000,
  };
}

/**
 * A committee primary of a later view than the founding one: why it signs the committee's announcements
 * (multihop/speakers.ts checks it), the roster proof its channel peers get and its view's certificate,
 * with the roster changes before it.
 */
function speakerProof(t: TreasuryCore): SpeakerProof | undefined {
  const c = t.committee;
  const cert = c?.isPrimary ? c.viewCert : undefined;
  const roster = cert && c!.rosterProof();
  if (!cert || !roster) return undefined;
  const chain = (c!.rosterViews ?? []).filter((v) => v.epoch < cert.epoch);
  return {
    threshold: roster.threshold,
    members: roster.members.map(({ node_id, quote }) => ({ node_id, quote })),
    cert,
    ...(chain.length ? { chain } : {}),
  };
}

/**
 * A committee hop's own deposit inputs of τ, signed by m members. The record at its signing step is sealed
 * and replicated first: each member rebuilds τ from its own replica and signs only that (committee-tau.ts),
 * and records that it did (it never signs another τ for the payment).
 */
async function signTauWithCommittee(t: TreasuryCore, pid: string, tx: string): Promise<string> {
  await t.committer.commit();
  const planned = t.planFor('tau', pid, 1);
  const c = t.state.committee!;
  const key = signedKey('tau', pid);
  const done = c.signed[key];
  if (done && done !== planned.plan.txid)
    throw new TreasuryError('already_signed', `this member already signed ${done} for payment ${pid}`);
  c.signed[key] = planned.plan.txid;
  const feeRate = t.state.multihop![pid]!.feeRate;
  const { hex } = await t.committee!.sign('tau', pid, feeRate, planned);
  return withWitnesses(tx, hex, ownInputs(planned));
}

/** Pays `amount_sat` to `dest` through a path of channels (docs/protocol/multihop.md). */
export async function payMultihop(
  t: TreasuryCore,
  dest: string,
  amountSat: number,
  feeRate: number,
  maxFeeSat?: number,
) {
  t.assertLive();
  t.committee?.assertReady();
  checkAmount(amountSat);
  const amount = BigInt(amountSat);
  return t.multihop.pay(dest, amount, feeRate, maxFeeOf(maxFeeSat, amount));
}

/** One payment of a round as the host asks it. */
export interface RoundPaymentArg {
  amount_sat: number;
  max_fee_sat?: number;
  payment_id?: string;
  /** A keyed payment: hashes of its idempotency key and request (multihop/payer-refs.ts). */
  ref?: { key: string; fp: string };
}

/**
 * Pays every payment of `payments` to `dest` in one path round (docs/protocol/multihop.md, "Rounds"):
 * answers once the round is released or aborted, each payment with its own outcome.
 */
export async function payMultihopRound(
  t: TreasuryCore,
  dest: string,
  payments: RoundPaymentArg[],
  feeRate: number,
  journaled?: readonly string[],
) {
  t.assertLive();
  t.committee?.assertReady();
  // The host journaled these keys' outcomes: their refs go first, making room for this round's.
  if (journaled) dropMhRefs(t.state, journaled);
  // Checked in full before anything moves: one malformed payment refuses the call, not the round.
  const asked = payments.map((p) => {
    checkAmount(p.amount_sat);
    const amount = BigInt(p.amount_sat);
    return {
      amount,
      maxFee: maxFeeOf(p.max_fee_sat, amount),
      ...(p.payment_id ? { ref: p.payment_id } : {}),
      ...(p.ref ? { key: { key: p.ref.key, fp: p.ref.fp } } : {}),
    };
  });
  const { round, outcomes } = await t.multihop.payRound(dest, asked, feeRate);
  return {
    payment_id: round?.payment_id ?? null,
    route: round?.route ?? [],
    results: outcomes.map((o) =>
      o.ok
        ? { ok: true as const, fee_sat: o.fee.toString(), channel_id: round!.channel_id }
        : { ok: false as const, code: o.code, message: o.message },
    ),
  };
}

function maxFeeOf(maxFeeSat: number | undefined, amount: bigint): bigint {
  if (maxFeeSat === undefined) return defaultMaxFee(amount);
  if (!Number.isSafeInteger(maxFeeSat) || maxFeeSat < 0)
    throw new TreasuryError('invalid_argument', 'max_fee_sat must be a non-negative integer number of satoshis');
  return BigInt(maxFeeSat);
}

/**
 * The refs of keyed routed payments whose outcome the host has not journaled (its start-up recovery, and
 * after a round ends); `drop` first forgets those it has journaled (only resolved ones go).
 */
export function multihopRefs(t: TreasuryCore, drop?: readonly string[]) {
  if (drop) dropMhRefs(t.state, drop);
  return listMhRefs(t.state);
}

/** What this treasury charges to forward a multi-hop payment (announced to the network). */
export async function setFees(t: TreasuryCore, base: number, ppm: number) {
  t.assertLive();
  if (!Number.isSafeInteger(base) || base < 0 || !Number.isSafeInteger(ppm) || ppm < 0 || ppm > 1_000_000) {
    throw new TreasuryError('invalid_argument', 'fees: base_sat ≥ 0 and 0 ≤ ppm ≤ 1,000,000');
  }
  t.state.config.fees = { base, ppm };
  await t.committer.commit();
  t.multihop.gossip();
  return { base_sat: base, ppm };
}
