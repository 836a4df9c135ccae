/**
 * The randomised adversarial run (test/adversary.test.ts runs a bounded one, scripts/adversary.ts a long
 * one): a hostile host drives side a of a real pair of treasury enclaves through thousands of seeded
 * steps, mixing honest payments in both directions with everything its powers allow (frames dropped,
 * duplicated, reordered, corrupted or held; the enclave restarted from any blob it ever stored, or from
 * a truncated, grown or foreign one; failing or lying storage; a lying chain; settlements, releases and
 * deposit changes at any moment; ecalls with garbage). After every step the pair's invariant is checked
 * (HostilePair.checkInvariant). The same seed replays the same run.
 */
import { Transaction } from 'bitcoinjs-lib';
import { HostilePair, rng, type Dir } from './hostile-host.ts';

export interface RunOptions {
  seed: number;
  steps: number;
  /** Progress and the step log go here (the test prints only on failure). */
  log?: (line: string) => void;
}

export interface RunReport {
  seed: number;
  steps: number;
  actions: Record<string, number>;
  restarts: number;
  refusedLaunches: number;
  signed: number;
  aPaid: number;
  bPaid: number;
}

export async function runRandomised(opts: RunOptions): Promise<RunReport> {
  const rand = rng(opts.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const pair = await HostilePair.create();
  const report: RunReport = {
    seed: opts.seed,
    steps: 0,
    actions: {},
    restarts: 0,
    refusedLaunches: 0,
    signed: 0,
    aPaid: 0,
    bPaid: 0,
  };
  const trail: string[] = [];
  const note = (s: string) => {
    trail.push(s);
    if (trail.length > 40) trail.shift();
  };
  try {
    await pair.connect();
    // Three channels, so that a settlement mid-run (the channel closes for good) leaves traffic elsewhere.
    const opened = [
      await pair.openChannel(1_000_000n, 1_000_000n),
      await pair.openChannel(500_000n, 500_000n),
      await pair.openChannel(200_000n, 200_000n),
    ];
    const channels = opened.map((o) => o.channelId);
    let aDeposits = 1_700_000n;
    const aDepositIds = opened.map((o) => o.aDeposit);
    const ch = () => pick(channels);
    pair.autoDeliver = false;
    const background = (p: Promise<unknown>) =>
      void p.then(
        (r) => pair.record(r),
        () => undefined,
      );

    const actions: Record<string, () => Promise<void>> = {
      async pay_a() {
        const n = int(1, 20);
        background(
          pair.a.enclave
            .ecall('pay', {
              payments: Array.from({ length: n }, () => ({ channel_id: ch(), amount_sat: int(1, 5_000) })),
            })
            .then((r) => {
              report.aPaid += r.results.filter((x) => x.ok).length;
              return r;
            }),
        );
      },
      async pay_b() {
        const n = int(1, 20);
        background(
          pair.b.enclave
            .ecall('pay', {
              payments: Array.from({ length: n }, () => ({ channel_id: ch(), amount_sat: int(1, 5_000) })),
            })
            .then((r) => {
              report.bPaid += r.results.filter((x) => x.ok).length;
              return r;
            }),
        );
      },
      async deliver() {
        const dir: Dir = rand() < 0.5 ? 'ab' : 'ba';
        await pair.deliver(dir, int(1, 8));
      },
      async deliver_all() {
        await pair.deliver('ab');
        await pair.deliver('ba');
      },
      async drop() {
        const dir: Dir = rand() < 0.5 ? 'ab' : 'ba';
        pair.queue[dir].splice(0, int(1, 3));
      },
      async duplicate() {
        const dir: Dir = rand() < 0.5 ? 'ab' : 'ba';
        await pair.deliver(dir, int(1, 3), (fs) => [...fs, ...fs]);
      },
      async reorder() {
        const dir: Dir = rand() < 0.5 ? 'ab' : 'ba';
        await pair.deliver(dir, int(2, 4), (fs) => fs.reverse());
      },
      async corrupt() {
        const dir: Dir = rand() < 0.5 ? 'ab' : 'ba';
        await pair.deliver(dir, 1, (fs) =>
          fs.map((f) => {
            const c = f.slice();
            if (c.length) c[int(0, c.length - 1)]! ^= 1 << int(0, 7);
            return c;
          }),
        );
      },
      async replay_old() {
        // A frame sent earlier in this session, sent again.
        const dir: Dir = rand() < 0.5 ? 'ab' : 'ba';
        const held = pair.queue[dir][0];
        if (held) await pair.deliver(dir, 1, (fs) => [...fs, held]);
      },
      async reconnect() {
        await pair.connect().catch(() => undefined);
      },
      async restart_latest() {
        report.restarts++;
        if (await pair.restart('a')) report.refusedLaunches++;
      },
      async restart_older() {
        // The rollback attack: any blob the host was ever given.
        report.restarts++;
        const blobs = pair.a.store.blobs;
        const old = blobs[int(0, Math.max(0, blobs.length - 1))] ?? null;
        const refused = await pair.restart('a', old);
        if (refused) {
          report.refusedLaunches++;
          await pair.restart('a');
        }
      },
      async restart_mangled() {
        report.restarts++;
        const latest = pair.a.store.blobs.at(-1);
        if (!latest) return;
        const kind = pick(['truncated', 'grown', 'flipped', 'foreign', 'empty'] as const);
        const blob =
          kind === 'truncated'
            ? latest.slice(0, int(0, latest.length - 1))
            : kind === 'grown'
              ? new Uint8Array([...latest, ...new Uint8Array(int(1, 64))])
              : kind === 'flipped'
                ? (() => {
                    const c = latest.slice();
                    c[int(0, c.length - 1)]! ^= 1;
                    return c;
                  })()
                : kind === 'foreign'
                  ? (pair.b.store.blobs.at(-1) ?? latest)
                  : null;
        const refused = await pair.restart('a', blob);
        if (refused) {
          report.refusedLaunches++;
          await pair.restart('a');
        }
      },
      async disk_fails() {
        // The next seals fail: the enclave must stop rather than act on what it did not make durable.
        pair.a.store.failStores = true;
        background(pair.a.enclave.ecall('pay', { payments: [{ channel_id: ch(), amount_sat: int(1, 100) }] }));
        await new Promise((r) => setImmediate(r));
        await new Promise((r) => setTimeout(r, 2));
        pair.a.store.failStores = false;
      },
      async settle_a() {
        pair.record(
          await pair.a.enclave.ecall('channel_settle', { channel_id: ch(), fee_rate: int(1, 5) }).catch(() => null),
        );
      },
      async release_a() {
        const id = pick(aDepositIds);
        pair.record(await pair.a.enclave.ecall('deposit_release', { deposit_id: id, fee_rate: 1 }).catch(() => null));
      },
      async new_deposit_a() {
        if (aDepositIds.length >= 5) return;
        const value = BigInt(int(10_000, 200_000));
        const id = await pair.fundedDeposit('a', value).catch(() => null);
        if (!id) return;
        aDepositIds.push(id);
        aDeposits += value;
      },
      async add_deposit_a() {
        background(pair.a.enclave.ecall('channel_add_deposit', { channel_id: ch(), deposit_id: pick(aDepositIds) }));
      },
      async remove_deposit_a() {
        background(pair.a.enclave.ecall('channel_remove_deposit', { channel_id: ch(), deposit_id: pick(aDepositIds) }));
      },
      async lie_spent() {
        // The host claims the channel was settled on chain with a transaction no enclave signed.
        const tx = new Transaction();
        tx.addInput(new Uint8Array(32).fill(int(0, 255)), 0);
        tx.addOutput(new Uint8Array([0x00, 0x14, ...new Uint8Array(20)]), 1000n);
        background(pair.a.enclave.ecall('channel_spent', { channel_id: ch(), tx_hex: tx.toHex() }));
      },
      async lie_chain() {
        // For a while, the chain a's host reports says every output is spent, or unconfirmed, or missing.
        const mode = pick(['spent', 'unconfirmed', 'missing', 'truth'] as const);
        pair.lieToA =
          mode === 'truth'
            ? null
            : (_t, _v, truth) =>
                mode === 'missing' || !truth
                  ? null
                  : {
                      ...truth,
                      unspent: mode !== 'spent',
                      confirmations: mode === 'unconfirmed' ? 0 : truth.confirmations,
                    };
      },
      async garbage_ecall() {
        const name = pick([
          'pay',
          'peer_recv',
          'channel_settle',
          'deposit_release',
          'channel_spent',
          'mh_pay',
          'get_channel',
        ] as const);
        const junk = pick([
          {},
          { channel_id: ch() },
          { payments: [{ channel_id: ch(), amount_sat: -1 }] },
          { conn: pair.a.conn ?? 'x', frames: [new Uint8Array(int(0, 64))] },
          null,
          7,
          'x',
        ]);
        await pair.a.enclave.ecallUnchecked(name, junk).catch(() => undefined);
      },
    };
    // Weights: mostly traffic, some disorder, a few big moves.
    const weighted: Array<[string, number]> = [
      ['pay_a', 14],
      ['pay_b', 14],
      ['deliver', 20],
      ['deliver_all', 8],
      ['drop', 3],
      ['duplicate', 2],
      ['reorder', 2],
      ['corrupt', 2],
      ['replay_old', 2],
      ['reconnect', 5],
      ['restart_latest', 1],
      ['restart_older', 2],
      ['restart_mangled', 1],
      ['disk_fails', 1],
      ['settle_a', 0.3],
      ['release_a', 2],
      ['new_deposit_a', 1],
      ['add_deposit_a', 2],
      ['remove_deposit_a', 2],
      ['lie_spent', 1],
      ['lie_chain', 1],
      ['garbage_ecall', 3],
    ];
    const total = weighted.reduce((s, [, w]) => s + w, 0);
    for (let step = 0; step < opts.steps; step++) {
      let r = rand() * total;
      const name = weighted.find(([, w]) => (r -= w) < 0)?.[0] ?? 'deliver';
      note(`${step}: ${name}`);
      report.actions[name] = (report.actions[name] ?? 0) + 1;
      await actions[name]!();
      // A reconnect now and then, so that disorder does not end the run's traffic for good.
      if (!pair.peered() && rand() < 0.2)
        await pair.connect().catch(async () => {
          report.restarts++;
          await pair.restart('a');
        });
      // Every signed transaction is recorded when an ecall hands it out; the views are read now and then.
      await pair.checkInvariant(channels, aDeposits, { harvest: step % 50 === 0 });
      report.steps = step + 1;
      if (opts.log && step % 250 === 0)
        opts.log(`step ${step}/${opts.steps}, ${pair.signed.size} signed transactions so far`);
    }
    // The end: everything delivered, both sides settle; the invariant holds for the final transactions too.
    pair.autoDeliver = true;
    pair.lieToA = null;
    await pair.connect().catch(async () => {
      await pair.restart('a');
      await pair.connect().catch(() => undefined);
    });
    await pair.deliver('ab');
    await pair.deliver('ba');
    for (const id of channels) {
      pair.record(await pair.a.enclave.ecall('channel_settle', { channel_id: id, fee_rate: 1 }).catch(() => null));
      pair.record(await pair.b.enclave.ecall('channel_settle', { channel_id: id, fee_rate: 1 }).catch(() => null));
    }
    await pair.checkInvariant(channels, aDeposits);
    report.signed = pair.signed.size;
    return report;
  } catch (err) {
    throw new Error(
      `adversarial run with seed ${opts.seed} failed at step ${report.steps}: ${(err as Error).message}\nlast steps: ${trail.join(' | ')}`,
    );
  } finally {
    await pair.close();
  }
}
