/**
 * The randomised run for committees (test/committee.adversary.test.ts runs a bounded one, scripts/adversary.ts
 * --committee long ones): one member of P, B1, B2 is the attacker's (the seed picks which), and for
 * thousands of seeded steps honest payments both ways mix with everything that member can do: withhold
 * acknowledgements or acknowledge what others never got, drop or hold its updates and frames, replay old updates, forge updates (the primary
 * with its real identity key, a backup with its own), ask the others to sign old, current or made-up
 * settlements and releases. Late in the run honest members settle too. After every step
 * CompromisedCommittee.checkInvariant runs. The same seed replays the same run.
 */
import { randomBytes } from 'node:crypto';
import { bytesToHex, hexToBytes } from '../../enclave-sim/encoding.ts';
import { signAck } from '../../src/enclave/committee/acks.ts';
import { CompromisedCommittee, MEMBERS, type MemberName } from './compromised-member.ts';
import { rng } from './hostile-host.ts';
import type { TreasuryState } from '../../src/enclave/treasury/state.ts';

export interface CommitteeRunOptions {
  seed: number;
  steps: number;
  log?: (line: string) => void;
}

export interface CommitteeRunReport {
  seed: number;
  steps: number;
  attacker: MemberName;
  actions: Record<string, number>;
  /** Payments (by P and by Q) that went through. */
  pPaid: number;
  qPaid: number;
  /** Payments refused, by payer and code (a member that starts a settlement freezes P's sending: channel_settling). */
  refused: { p: Record<string, number>; q: Record<string, number> };
  attackerMoves: number;
  /** Transactions honest members contributed to, and ones the attacker could complete or was handed. */
  contributedTo: number;
  completable: number;
}

const ATTACKER_MOVES = new Set([
  'fake_ack',
  'withhold_acks',
  'drop_updates',
  'silence',
  'replay',
  'forge',
  'record_plan',
  'sign_old',
  'sign_random',
  'sign_release',
  'sign_current',
  'hold',
  'release_held',
]);

export async function runCommitteeRandomised(opts: CommitteeRunOptions): Promise<CommitteeRunReport> {
  const rand = rng(opts.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const attacker = pick(MEMBERS);
  const report: CommitteeRunReport = {
    seed: opts.seed,
    steps: 0,
    attacker,
    actions: {},
    pPaid: 0,
    qPaid: 0,
    refused: { p: {}, q: {} },
    attackerMoves: 0,
    contributedTo: 0,
    completable: 0,
  };
  const trail: string[] = [];
  const note = (s: string) => {
    trail.push(s);
    if (trail.length > 40) trail.shift();
  };
  const cc = await CompromisedCommittee.create(attacker, { committeeSat: 5_000_000n, qSat: 5_000_000n });
  const { mesh } = cc;
  const id = cc.channelId;
  const others = MEMBERS.filter((n) => n !== attacker);
  let withholdAcks = false;
  let dropUpdates = false;
  let silent = false;
  cc.outFilter = (_to, msg) =>
    !silent && !(withholdAcks && msg.t === 'c_ack') && !(dropUpdates && msg.t === 'c_update');
  const plans: Array<{ txid: string; rate: number }> = [];
  const held = new Set<MemberName>();
  const tick = async (n: number) => {
    for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
  };
  const pay = (from: 'p' | 'q') => {
    const t = from === 'p' ? cc.members.p.treasury : cc.q.treasury;
    const n = int(1, 4);
    void t.pay(Array.from({ length: n }, () => ({ channel_id: id, amount_sat: int(1, 3_000) }))).then(
      (r) => {
        const ok = r.filter((x) => x.ok).length;
        if (from === 'p') report.pPaid += ok;
        else report.qPaid += ok;
        for (const x of r) if (!x.ok) report.refused[from][x.code] = (report.refused[from][x.code] ?? 0) + 1;
      },
      () => undefined,
    );
  };
  const late = () => report.steps >= opts.steps * 0.8;

  const actions: Record<string, () => Promise<void> | void> = {
    pay_p: () => pay('p'),
    pay_q: () => pay('q'),
    tick: () => tick(int(1, 30)),
    withhold_acks: () => {
      withholdAcks = rand() < 0.5;
    },
    drop_updates: () => {
      dropUpdates = rand() < 0.4;
    },
    silence: () => {
      silent = rand() < 0.2;
    },
    replay: () => {
      const u = cc.updates.length ? cc.updates[int(0, cc.updates.length - 1)]! : undefined;
      const to = pick(others.filter((n) => n !== 'p'));
      if (u && to) cc.send(to, { t: 'c_update', update: u });
    },
    forge: () => {
      const tamper = pick(['received_up', 'sent_down', 'payout', 'deposit_value', 'noop'] as const);
      const amount = BigInt(int(1, 50_000));
      // A primary's valid update ahead of its own count would make its own code release payments unreplicated:
      // that is the open case of the test 'two different updates with one sequence number', left out here.
      const seq =
        cc.members.p.treasury.info().committee!.seq + (attacker === 'p' && tamper === 'noop' ? -int(0, 2) : int(0, 2));
      let forged: TreasuryState | undefined;
      const update = cc.forgeUpdate((s) => {
        const ch = s.channels[id];
        if (!ch) return;
        if (tamper === 'received_up') ch.received += amount;
        if (tamper === 'sent_down') ch.sent = ch.sent > amount ? ch.sent - amount : 0n;
        if (tamper === 'payout') s.config.payoutAddress = CompromisedCommittee.thiefAddress();
        if (tamper === 'deposit_value') for (const d of ch.peerDeposits) d.value += amount;
        forged = s;
      }, seq);
      const to = pick(others.filter((n) => n !== 'p'));
      if (to) cc.send(to, { t: 'c_update', update });
      // What a member that took the forged update would sign: worth asking for later.
      if (forged) {
        const rate = int(1, 4);
        try {
          plans.push({ txid: cc.planOf(forged, rate).plan.txid, rate });
        } catch {
          /* closed */
        }
      }
    },
    fake_ack: () => {
      // Acknowledge more than the members after it hold: bare, with its own signature, or with theirs relabelled.
      if (attacker === 'p') return;
      const honest = cc.honestAck();
      if (honest.t !== 'c_ack') return;
      const seq = cc.attackerState.committee!.seq + int(0, 2);
      const prev = attacker === 'b1' ? 'p' : 'b1';
      const own = signAck(cc.members.p.treasury.nodeId, seq, hexToBytes(cc.attackerState.identityKey));
      const rest = (honest.sigs ?? []).slice(1);
      const form = pick(['bare', 'own', 'relabelled'] as const);
      cc.send(
        prev,
        form === 'bare'
          ? { t: 'c_ack', seq }
          : { t: 'c_ack', seq, sigs: [own, ...(form === 'own' ? rest : rest.map((x) => ({ ...x, seq })))] },
      );
    },
    record_plan: () => {
      const rate = int(1, 4);
      try {
        plans.push({ txid: cc.attackerPlan(rate).plan.txid, rate });
      } catch {
        /* closed here */
      }
    },
    sign_old: () => {
      if (plans.length === 0) return;
      const { txid, rate } = plans[int(0, plans.length - 1)]!;
      // A plan of the current state is sign_current's business (late in the run): this one asks for the past.
      try {
        if (cc.attackerPlan(rate).plan.txid === txid) return;
      } catch {
        /* closed here */
      }
      cc.askSign(
        others.filter(() => rand() < 0.7),
        'settle',
        id,
        txid,
        rate,
      );
    },
    sign_random: () => {
      cc.askSign(
        others,
        rand() < 0.5 ? 'settle' : 'release',
        rand() < 0.5 ? id : cc.freeDeposit,
        bytesToHex(new Uint8Array(randomBytes(32))),
        int(1, 4),
      );
    },
    sign_release: () => {
      try {
        cc.askSign(
          others,
          'release',
          cc.freeDeposit,
          cc.attacker.treasury.planFor('release', cc.freeDeposit, 1).plan.txid,
          1,
        );
      } catch {
        /* spent */
      }
    },
    sign_current: () => {
      if (!late()) return;
      try {
        const rate = int(1, 4);
        cc.askSign(
          others.filter(() => rand() < 0.6),
          'settle',
          id,
          cc.attackerPlan(rate).plan.txid,
          rate,
        );
      } catch {
        /* closed */
      }
    },
    honest_settle: () => {
      if (late()) void cc.honestSettle(pick(others), int(1, 4));
    },
    hold: () => {
      const to = pick(others);
      held.add(to);
      mesh.hold(attacker, to);
    },
    release_held: () => {
      for (const to of held) mesh.deliver(attacker, to);
      held.clear();
    },
  };
  const weighted: Array<[string, number]> = [
    ['pay_p', 16],
    ['pay_q', 12],
    ['tick', 30],
    ['withhold_acks', 2],
    ['drop_updates', 2],
    ['fake_ack', 2],
    ['silence', 1],
    ['replay', 4],
    ['forge', 3],
    ['record_plan', 4],
    ['sign_old', 3],
    ['sign_random', 1],
    ['sign_release', 0.5],
    ['sign_current', 1],
    ['honest_settle', 0.5],
    ['hold', 1],
    ['release_held', 2],
  ];
  const total = weighted.reduce((s, [, w]) => s + w, 0);
  try {
    for (let step = 0; step < opts.steps; step++) {
      let r = rand() * total;
      const name = weighted.find(([, w]) => (r -= w) < 0)?.[0] ?? 'tick';
      note(`${step}: ${name}`);
      report.actions[name] = (report.actions[name] ?? 0) + 1;
      if (ATTACKER_MOVES.has(name)) report.attackerMoves++;
      await actions[name]!();
      await tick(2);
      await cc.checkInvariant();
      report.steps = step + 1;
      if (opts.log && step % 100 === 0) {
        const c = cc.members.p.treasury.info().committee!;
        opts.log(
          `step ${step}/${opts.steps} (attacker ${attacker}): seq ${c.seq} acked ${c.acked_seq}, b1 ${cc.members.b1.treasury.info().committee!.seq}, b2 ${cc.members.b2.treasury.info().committee!.seq}, Q received ${cc.q.treasury.channel(id).total_received_sat}, ${cc.given.size} transactions contributed to`,
        );
      }
    }
    // The end: the attacker lets everything through; an honest member settles; the invariant holds for that too.
    withholdAcks = dropUpdates = silent = false;
    for (const to of held) mesh.deliver(attacker, to);
    await tick(50);
    await cc.honestSettle(others[0]!);
    await tick(20);
    const { completable } = await cc.checkInvariant();
    report.completable = completable;
    report.contributedTo = cc.given.size;
    return report;
  } catch (err) {
    throw new Error(
      `committee adversarial run with seed ${opts.seed} (attacker ${attacker}) failed at step ${report.steps}: ${(err as Error).message}\nlast steps: ${trail.join(' | ')}`,
    );
  }
}
