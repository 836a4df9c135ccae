/**
 * A committee with one member in the attacker's hands (issue #15, the committee part of the adversarial
 * suite): P, B1, B2 (2-of-3) with a channel to an honest lone peer Q, funded both ways, all in one process
 * (test/helpers/treasury-mesh.ts: real signatures, real shares, a fake chain).
 *
 * The attacker's member is a real treasury whose enclave the attacker reads and drives: the harness gives
 * the test its keys and state, sends any committee message from it (forged, stale or replayed updates,
 * signing requests for any txid, acknowledgements of anything), drops what it would send, and records
 * everything it receives. Every contribution an honest member makes to a transaction (its signatures and
 * key shares, whoever asked) and every transaction an honest member's settle or release hands out is
 * collected, as if the attacker got all of it.
 *
 * The invariant (checkInvariant): every transaction the attacker can complete from those contributions plus
 * its own keys (its own signature is one of the m) pays Q at least Q's balance as Q's own enclave counts
 * it, pays the committee's part only to the committee's payout script, and a release pays only the
 * committee's payout address.
 */
import { payments, Transaction } from 'bitcoinjs-lib';
import { randomBytes } from 'node:crypto';
import { bytesToHex, hexToBytes } from '../../enclave-sim/encoding.ts';
import type { KeyedSignature, Spend } from '../../src/bitcoin/index.ts';
import type { Planned, PlannedInput, SignKind } from '../../src/enclave/committee/coordinator.ts';
import { signAck } from '../../src/enclave/committee/acks.ts';
import type { HeldSig } from '../../src/enclave/committee/paid-proof.ts';
import { combineShares } from '../../src/enclave/committee/shares.ts';
import { replicaOf, signUpdate, type SignedUpdate } from '../../src/enclave/committee/update.ts';
import { publicKeyOf } from '../../src/crypto/secp256k1.ts';
import type { CommitteeMessage, SessionMessage } from '../../src/enclave/protocol/messages.ts';
import type { TreasuryState } from '../../src/enclave/treasury/state.ts';
import { checkInputSignature, finishInput, NETWORK, signaturesFor } from '../../src/enclave/treasury/transactions.ts';
import { Mesh, type MeshNode } from './treasury-mesh.ts';
import { waitFor as waitForIn } from './treasury-pair.ts';

/** Conditions on a loaded machine: a generous limit (it only matters when the condition never comes). */
const waitFor = (cond: () => boolean, timeoutMs = 30_000) => waitForIn(cond, timeoutMs);

export type MemberName = 'p' | 'b1' | 'b2';
export const MEMBERS: readonly MemberName[] = ['p', 'b1', 'b2'];

export interface Contribution {
  sigs: Array<{ input: number; pubkey: string; sig: string }>;
  shares: Array<{ outpoint: string; pubkey: string; share: string }>;
}

/** One transaction an honest member contributed to: the unsigned spend it planned and what it gave. */
interface Given {
  member: string;
  kind: SignKind;
  id: string;
  txid: string;
  spend: Spend;
  inputs: PlannedInput[];
  part: Contribution;
}

interface Internals {
  committee: {
    handle(peerId: string, msg: CommitteeMessage): Promise<void>;
    contribution(planned: Planned): Contribution;
  };
  sendNow(peerId: string, msg: CommitteeMessage): void;
}

const internals = (m: MeshNode) => m.treasury as unknown as Internals;

export class CompromisedCommittee {
  readonly honest: MeshNode[];
  /** Everything the attacker's member received, in order. */
  readonly inbox: Array<{ from: string; msg: CommitteeMessage }> = [];
  /** Every update the attacker saw (sent or received), oldest first. */
  readonly updates: SignedUpdate[] = [];
  /** Honest contributions, by txid. */
  readonly given = new Map<string, Given[]>();
  /** Complete transactions handed out by honest members' settle and release calls. */
  readonly handedOut: Array<{ kind: SignKind; hex: string }> = [];
  /** The latest paid total of each channel the attacker's member's code signed as held (a backup's). */
  private readonly ownHeld = new Map<string, HeldSig>();
  /** Decides whether the attacker's member sends a committee message (default: everything). */
  outFilter: (to: MemberName, msg: CommitteeMessage) => boolean = () => true;
  /** The committee's payout script (releases) and the channel's committee-side payout script, at opening. */
  readonly committeePayout: string;
  readonly channelPayout: string;
  private readonly kinds = new Map<string, { kind: SignKind; id: string }>();
  private readonly completed = new Map<string, { count: number; hex: string | null }>();
  private nextReq = 900_000;

  private constructor(
    readonly mesh: Mesh,
    readonly members: Record<MemberName, MeshNode>,
    readonly q: MeshNode,
    readonly attackerName: MemberName,
    readonly channelId: string,
    readonly freeDeposit: string,
  ) {
    this.honest = MEMBERS.filter((n) => n !== attackerName).map((n) => members[n]);
    this.committeePayout = bytesToHex(payments.p2wpkh({ address: members.p.payoutAddress, network: NETWORK }).output!);
    this.channelPayout = members.p.treasury.state.channels[channelId]!.myPayout;
    this.instrument();
  }

  /** The committee, Q, a channel funded with `committeeSat` and `qSat`, and one free committee deposit. */
  static async create(
    attacker: MemberName,
    opts: { committeeSat?: bigint; qSat?: bigint } = {},
  ): Promise<CompromisedCommittee> {
    const mesh = new Mesh();
    const [p, b1, b2] = (await mesh.committee(['p', 'b1', 'b2'])) as [MeshNode, MeshNode, MeshNode];
    const q = await mesh.add('q');
    await mesh.link('p', 'q');
    const depP = await mesh.deposit('p', opts.committeeSat ?? 200_000n);
    const depQ = await mesh.deposit('q', opts.qSat ?? 200_000n);
    const free = await mesh.deposit('p', 30_000n);
    const ch = await p.treasury.openChannel(q.treasury.nodeId, p.payoutAddress);
    await p.treasury.addDeposit(ch.channel_id, depP);
    await q.treasury.addDeposit(ch.channel_id, depQ);
    await waitFor(
      () =>
        [p, b1, b2].every((m) => {
          const v = m.treasury.channels().find((c) => c.channel_id === ch.channel_id);
          return v && v.local_deposits.length === 1 && v.remote_deposits.length === 1;
        }) && q.treasury.channel(ch.channel_id).remote_deposits.length === 1,
    );
    const c = p.treasury.info().committee!;
    await waitFor(() => p.treasury.info().committee!.acked_seq === c.seq);
    return new CompromisedCommittee(mesh, { p, b1, b2 }, q, attacker, ch.channel_id, free);
  }

  get attacker(): MeshNode {
    return this.members[this.attackerName];
  }

  /** The attacker's enclave state: its keys (privkeys, memberKeys), its replica, its identity key. */
  get attackerState(): TreasuryState {
    return this.attacker.treasury.state;
  }

  nameOf(nodeId: string): string {
    for (const [n, m] of [...Object.entries(this.members), ['q', this.q] as const])
      if (m.treasury.nodeId === nodeId) return n;
    return nodeId.slice(0, 8);
  }

  private instrument(): void {
    const atk = internals(this.attacker);
    const handle = atk.committee.handle.bind(atk.committee);
    atk.committee.handle = async (peerId, msg) => {
      this.inbox.push({ from: this.nameOf(peerId), msg });
      if (msg.t === 'c_update') this.updates.push(msg.update);
      return handle(peerId, msg);
    };
    const send = atk.sendNow.bind(atk);
    this.rawSend = send;
    atk.sendNow = (peerId, msg) => {
      const to = this.nameOf(peerId) as MemberName;
      if (msg.t === 'c_update') this.updates.push(msg.update);
      // Its own code's signed paid totals (paid-proof.ts), sent or not: an honest acknowledgement carries them.
      if (msg.t === 'c_ack') for (const h of msg.sigs?.[0]?.held ?? []) this.ownHeld.set(h.ch, h);
      if (MEMBERS.includes(to) && !this.outFilter(to, msg)) return;
      send(peerId, msg);
    };
    for (const m of this.honest) {
      const t = m.treasury as unknown as { planFor(kind: SignKind, id: string, rate: number): Planned };
      const planFor = t.planFor.bind(t);
      t.planFor = (kind, id, rate) => {
        const planned = planFor(kind, id, rate);
        this.kinds.set(planned.plan.txid, { kind, id });
        return planned;
      };
      const co = internals(m).committee;
      const contribution = co.contribution.bind(co);
      co.contribution = (planned) => {
        const part = contribution(planned);
        const k = this.kinds.get(planned.plan.txid) ?? { kind: 'settle' as const, id: '' };
        const list = this.given.get(planned.plan.txid) ?? [];
        list.push({
          member: m.name,
          ...k,
          txid: planned.plan.txid,
          inputs: planned.inputs,
          part: structuredClone(part),
          spend: { tx: planned.plan.spend.tx.clone(), inputs: planned.plan.spend.inputs },
        });
        this.given.set(planned.plan.txid, list);
        return part;
      };
    }
  }

  private rawSend!: (peerId: string, msg: CommitteeMessage) => void;

  /** Sends `msg` from the attacker's member, past its own filter (the attacker picks what leaves). */
  send(to: MemberName, msg: CommitteeMessage): void {
    this.rawSend(this.members[to].treasury.nodeId, msg);
  }

  /** Sends `msg` from the attacker's member to the channel peer Q (as its enclave, once broken, can). */
  sendToQ(msg: SessionMessage): void {
    (internals(this.attacker).sendNow as (peerId: string, m: SessionMessage) => void)(this.q.treasury.nodeId, msg);
  }

  /** A signing request from the attacker's member; returns its request number (answers land in `inbox`). */
  askSign(to: MemberName[], kind: SignKind, id: string, txid: string, feeRate = 2, update?: SignedUpdate): number {
    const req = this.nextReq++;
    for (const n of to)
      this.send(n, { t: 'c_sign', req, kind, id, fee_rate: feeRate, txid, ...(update ? { updates: [update] } : {}) });
    return req;
  }

  /** The answers (c_sign_res or c_error) to request `req`, by member name. */
  answers(req: number): Map<string, CommitteeMessage> {
    const out = new Map<string, CommitteeMessage>();
    for (const { from, msg } of this.inbox)
      if ((msg.t === 'c_sign_res' || msg.t === 'c_error') && msg.req === req) out.set(from, msg);
    return out;
  }

  /** An update signed by the primary's identity key (only the attacker-primary can make one the others accept). */
  forgeUpdate(edit: (s: TreasuryState) => void, seq = this.members.p.treasury.info().committee!.seq + 1): SignedUpdate {
    const forged = structuredClone(this.attackerState);
    edit(forged);
    if (!forged.committee) throw new Error('not a committee member');
    return signUpdate(replicaOf(forged, seq), this.attackerState.identityKey);
  }

  /** The acknowledgement the attacker's member owes its predecessor now, as its honest code would make it. */
  honestAck(): CommitteeMessage {
    const c = this.attackerState.committee!;
    const index = c.members.findIndex((m) => m.node_id === this.attacker.treasury.nodeId);
    const next = MEMBERS[index + 1];
    const down = next ? [...this.inbox].reverse().find((e) => e.from === next && e.msg.t === 'c_ack')?.msg : undefined;
    const sigs = down?.t === 'c_ack' ? (down.sigs ?? []) : [];
    const seq = Math.min(c.seq, ...sigs.map((s) => s.seq));
    const own = signAck(c.primaryId!, seq, hexToBytes(this.attackerState.identityKey));
    return { t: 'c_ack', seq, sigs: [{ ...own, held: [...this.ownHeld.values()] }, ...sigs] };
  }

  /** The attacker's current settlement plan for the channel, from its own replica. */
  attackerPlan(feeRate = 2): Planned {
    return this.attacker.treasury.planFor('settle', this.channelId, feeRate);
  }

  /** The settlement plan the attacker's enclave code makes from `state` (a forged one, say) instead of its own. */
  planOf(state: TreasuryState, feeRate = 2): Planned {
    const t = this.attacker.treasury as unknown as { state: TreasuryState };
    const own = t.state;
    t.state = state;
    try {
      return this.attacker.treasury.planFor('settle', this.channelId, feeRate);
    } finally {
      t.state = own;
    }
  }

  /** An honest member settles or releases; what its host gets back is recorded. Resolves to an error code or null. */
  async honestSettle(name: MemberName, feeRate = 2): Promise<string | null> {
    try {
      const r = await this.members[name].treasury.settle(this.channelId, feeRate);
      if (r.tx_hex) this.handedOut.push({ kind: 'settle', hex: r.tx_hex });
      return null;
    } catch (err) {
      return (err as { code?: string }).code ?? String(err);
    }
  }

  async honestRelease(name: MemberName, depositId = this.freeDeposit): Promise<string | null> {
    try {
      const r = await this.members[name].treasury.releaseDeposit(depositId, undefined, 1);
      this.handedOut.push({ kind: 'release', hex: r.tx_hex });
      return null;
    } catch (err) {
      return (err as { code?: string }).code ?? String(err);
    }
  }

  /**
   * The transaction for `txid` the attacker can finish: the honest contributions for it plus its own
   * signatures and shares (computed by its own enclave code) and any whole key its state holds, each
   * signature checked against the input's keys, each rebuilt key against its public key. Null when some
   * input lacks m signatures.
   */
  async complete(txid: string, extra: Contribution[] = []): Promise<string | null> {
    const base = this.given.get(txid)?.[0];
    if (!base) return null;
    const fresh = (): Spend => ({ tx: base.spend.tx.clone(), inputs: base.spend.inputs });
    const own = internals(this.attacker).committee.contribution({
      plan: { spend: fresh(), txid, fee: 0n },
      inputs: base.inputs,
    });
    const whole = new Map<string, string[]>();
    for (const ch of Object.values(this.attackerState.channels))
      for (const d of ch.peerDeposits) whole.set(d.outpoint, d.privkeys);
    const parts = [own, ...extra, ...(this.given.get(txid) ?? []).map((g) => g.part)];
    return completeSpend(
      { plan: { spend: fresh(), txid, fee: 0n }, inputs: base.inputs },
      parts,
      this.attackerState.committee!.threshold,
      whole,
    );
  }

  /** The attacker's own signatures and shares for `planned`, as its enclave code makes them. */
  ownContribution(planned: Planned): Contribution {
    return internals(this.attacker).committee.contribution({
      plan: { ...planned.plan, spend: { tx: planned.plan.spend.tx.clone(), inputs: planned.plan.spend.inputs } },
      inputs: planned.inputs,
    });
  }

  /** Finishes `planned` from the given parts and the whole keys the attacker's state holds, or null. */
  completeWith(planned: Planned, parts: Contribution[]): Promise<string | null> {
    const whole = new Map<string, string[]>();
    for (const ch of Object.values(this.attackerState.channels))
      for (const d of ch.peerDeposits) whole.set(d.outpoint, d.privkeys);
    return completeSpend(
      {
        plan: { ...planned.plan, spend: { tx: planned.plan.spend.tx.clone(), inputs: planned.plan.spend.inputs } },
        inputs: planned.inputs,
      },
      parts,
      this.attackerState.committee!.threshold,
      whole,
    );
  }

  /** Checks the invariant over everything collected so far; throws with a description on a violation. */
  async checkInvariant(): Promise<{ completable: number }> {
    const qView = this.q.treasury.channel(this.channelId);
    const qBalance = BigInt(qView.local_balance_sat);
    const qScript = this.q.treasury.state.channels[this.channelId]!.myPayout;
    const txs: Array<{ kind: SignKind; hex: string; how: string }> = this.handedOut.map((h) => ({
      ...h,
      how: 'handed out by an honest settle/release',
    }));
    for (const [txid, list] of this.given) {
      const seen = this.completed.get(txid);
      let hex = seen?.hex ?? null;
      if (!seen || (seen.hex === null && seen.count !== list.length)) {
        hex = await this.complete(txid);
        this.completed.set(txid, { count: list.length, hex });
      }
      if (hex)
        txs.push({
          kind: list[0]!.kind,
          hex,
          how: `completed by the attacker from ${list.map((g) => g.member).join('+')} and its own keys`,
        });
    }
    for (const { kind, hex, how } of txs) {
      const tx = Transaction.fromHex(hex);
      const outs = tx.outs.map((o) => ({ script: bytesToHex(o.script), value: o.value }));
      if (kind === 'release') {
        const stray = outs.find((o) => o.script !== this.committeePayout);
        if (stray)
          throw new Error(
            `a release ${how} pays ${stray.value} sat to ${stray.script}, not the committee's payout address`,
          );
        continue;
      }
      const toQ = outs.filter((o) => o.script === qScript).reduce((s, o) => s + o.value, 0n);
      if (toQ < qBalance)
        throw new Error(
          `a settlement ${how} (${tx.getId()}) pays Q ${toQ} sat, below Q's acknowledged balance ${qBalance}`,
        );
      const stray = outs.find((o) => o.script !== qScript && o.script !== this.channelPayout);
      if (stray)
        throw new Error(`a settlement ${how} pays ${stray.value} sat to ${stray.script}, neither Q nor the committee`);
    }
    return { completable: txs.length };
  }

  /** Q's balance as Q's enclave counts it. */
  qBalance(): bigint {
    return BigInt(this.q.treasury.channel(this.channelId).local_balance_sat);
  }

  /** A payout address of the attacker's. */
  static thiefAddress(): string {
    return payments.p2wpkh({ hash: randomBytes(20), network: NETWORK }).address!;
  }
}

/** Finishes `planned` from contributions and whole keys; null unless every input gets its m signatures. */
export async function completeSpend(
  planned: Planned,
  parts: Contribution[],
  threshold: number,
  whole = new Map<string, string[]>(),
): Promise<string | null> {
  const sigs = collectSigs(planned, parts);
  const keys = new Map<number, string[]>();
  for (const [i, input] of planned.inputs.entries()) {
    if (input.kind !== 'peer') continue;
    const found: string[] = [...(whole.get(input.deposit.outpoint) ?? [])];
    for (const s of input.deposit.shares ?? []) {
      const list = [
        ...new Set(
          parts.flatMap((p) =>
            p.shares.filter((x) => x.outpoint === input.deposit.outpoint && x.pubkey === s.pubkey).map((x) => x.share),
          ),
        ),
      ];
      if (list.length < threshold) continue;
      const key = await combineShares(list.slice(0, threshold).map(hexToBytes));
      if (bytesToHex(publicKeyOf(key)) === s.pubkey) found.push(bytesToHex(key));
    }
    keys.set(
      i,
      found.filter((k) => input.deposit.pubkeys.includes(bytesToHex(publicKeyOf(hexToBytes(k))))),
    );
  }
  return finish(planned, sigs, keys);
}

function collectSigs(planned: Planned, parts: Contribution[]): Map<number, KeyedSignature[]> {
  const sigs = new Map<number, KeyedSignature[]>();
  for (const part of parts) {
    for (const s of part.sigs) {
      const input = planned.inputs[s.input];
      if (input?.kind !== 'own' || !input.pubkeys.includes(s.pubkey)) continue;
      if (!checkInputSignature(planned.plan.spend, s.input, hexToBytes(s.pubkey), hexToBytes(s.sig))) continue;
      const list = sigs.get(s.input) ?? [];
      if (!list.some((x) => bytesToHex(x.pubkey) === s.pubkey))
        list.push({ pubkey: hexToBytes(s.pubkey), signature: hexToBytes(s.sig) });
      sigs.set(s.input, list);
    }
  }
  return sigs;
}

function finish(planned: Planned, sigs: Map<number, KeyedSignature[]>, keys: Map<number, string[]>): string | null {
  const spend = planned.plan.spend;
  for (const [i, input] of planned.inputs.entries()) {
    if (input.kind === 'own') {
      const list = sigs.get(i) ?? [];
      if (list.length < input.m) return null;
      finishInput(spend, i, list.slice(0, input.m));
      continue;
    }
    if (input.kind === 'other') continue;
    const k = [...new Set(keys.get(i) ?? [])];
    if (k.length < input.deposit.m) return null;
    finishInput(spend, i, signaturesFor(spend, i, k.slice(0, input.deposit.m)));
  }
  return spend.tx.toHex();
}
