/**
 * The harness side of the Lightning-style baseline: starts the payee and the payer as two processes
 * (src/lnmodel/main.ts) connected over our TCP transport on loopback, runs a closed-loop payment load,
 * and checks from both parties' files on disk that the balances moved by exactly the sum paid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { summarize, type LatencySummary } from '../bench/stats.ts';
import type { Fault, LoadResult, PartyUsage, Role } from './party.ts';
import type { ReadyLine } from './main.ts';
import { loadSnapshot, summarizeSnapshot, type SnapshotSummary } from './store.ts';
import { decodeJson, encodeJson, type LnMode } from './wire.ts';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), 'main.ts');

export interface LnModelOptions {
  payments: number;
  /** Payments per commitment update. In `htlc` mode at most 483 (BOLT 2 max_accepted_htlcs). */
  batchSize: number;
  amountSat: number | bigint;
  /** A fresh directory; the parties keep their durable state in dir/payer and dir/payee. */
  dir: string;
  /** `balance` (default): one round per batch, no HTLCs. `htlc`: an HTLC per payment, added then fulfilled. */
  mode?: LnMode;
  /** Batches the client keeps submitted at once (default 1). */
  window?: number;
  /** Channel capacity; by default enough for the whole run plus reserve and fees. */
  capacitySat?: bigint;
  /** Limit for the whole run (default 10 minutes). */
  timeoutMs?: number;
}

export interface ProcessUsage {
  pid: number;
  /** CPU time (user + system) the process spent during the run. */
  cpuMs: number;
  /** cpuMs over wall time: 100 = one core busy. */
  cpuPercent: number;
  rssMb: number;
  maxRssMb: number;
  /** Durable state writes during the run (fsync of file and directory each). */
  persists: number;
}

export interface LnModelResult {
  mode: LnMode;
  batchSize: number;
  payments: number;
  seconds: number;
  paymentsPerSec: number;
  latenciesMs: number[];
  latency: LatencySummary;
  /** Rounds of commitment_signed/revoke_and_ack the payer's commitment went through. */
  commitmentUpdates: number;
  processes: Record<Role, ProcessUsage>;
  totalPaidSat: bigint;
  /**
   * Both parties' durable states agree, the payer's balance fell and the payee's rose by exactly
   * totalPaidSat, nothing is pending. When false, verificationError says what differed.
   */
  verified: boolean;
  verificationError?: string;
  /** The committed balances (from disk) before and after, as both parties see them. */
  before: Record<Role, SnapshotSummary>;
  after: Record<Role, SnapshotSummary>;
}

interface Reply {
  id: number | null;
  ok: boolean;
  result?: unknown;
  error?: string;
}

/** A party process speaking the JSON-line control protocol of main.ts. */
class PartyProcess {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private stderrText = '';
  private exited = false;
  readonly ready: Promise<ReadyLine>;

  constructor(
    readonly role: Role,
    readonly proc: ChildProcess,
    timeoutMs: number,
  ) {
    proc.stderr!.on('data', (d: Buffer) => {
      this.stderrText += d.toString();
    });
    let onReady!: (r: ReadyLine) => void;
    let onFail!: (e: Error) => void;
    this.ready = new Promise<ReadyLine>((resolve, reject) => {
      onReady = resolve;
      onFail = reject;
    });
    const timer = setTimeout(
      () => onFail(new Error(`${role} not ready after ${timeoutMs} ms: ${this.stderrText.trim()}`)),
      timeoutMs,
    );
    let first = true;
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      let msg: unknown;
      try {
        msg = decodeJson(Buffer.from(line));
      } catch {
        return; // not ours
      }
      if (first) {
        first = false;
        clearTimeout(timer);
        onReady(msg as ReadyLine);
        return;
      }
      const reply = msg as Reply;
      const p = typeof reply.id === 'number' ? this.pending.get(reply.id) : undefined;
      if (!p) return;
      this.pending.delete(reply.id!);
      if (reply.ok) p.resolve(reply.result);
      else p.reject(new Error(`${role}: ${reply.error}`));
    });
    proc.once('exit', (code, signal) => {
      this.exited = true;
      clearTimeout(timer);
      const err = new Error(`${role} exited (${code ?? signal}): ${this.stderrText.trim()}`);
      onFail(err);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    });
  }

  request<T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 600_000): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.role} has exited: ${this.stderrText.trim()}`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.role}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.proc.stdin!.write(Buffer.concat([encodeJson({ id, cmd, ...args }), Buffer.from('\n')]));
    });
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.stdin!.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(timer);
  }

  stderr(): string {
    return this.stderrText;
  }
}

/**
 * Extra Node flags for both party processes, e.g. LNMODEL_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"
 * to see where a party's time goes (NODE_OPTIONS does not accept --cpu-prof).
 */
export const NODE_ARGS_ENV = 'LNMODEL_NODE_ARGS';

function spawnParty(role: Role, args: string[]): ChildProcess {
  // Resolve tsx from this package, so the harness works from any working directory.
  const tsx = import.meta.resolve('tsx');
  const extra = (process.env[NODE_ARGS_ENV] ?? '').split(' ').filter(Boolean);
  return spawn(process.execPath, [...extra, '--import', tsx, MAIN, '--role', role, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** A payer and a payee with an open channel, each in its own process. */
export class LnPair {
  private constructor(
    readonly dir: string,
    readonly payer: PartyProcess,
    readonly payee: PartyProcess,
  ) {}

  /** Starts the payee, then the payer, which opens a channel of `capacitySat` to it. */
  static async start(opts: { dir: string; mode: LnMode; capacitySat: bigint; timeoutMs?: number }): Promise<LnPair> {
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const payeeDir = join(opts.dir, 'payee');
    const payerDir = join(opts.dir, 'payer');
    await mkdir(payeeDir, { recursive: true });
    await mkdir(payerDir, { recursive: true });
    const payee = new PartyProcess('payee', spawnParty('payee', ['--port', '0', '--datadir', payeeDir]), timeoutMs);
    let payer: PartyProcess | null = null;
    try {
      const ready = await payee.ready;
      payer = new PartyProcess(
        'payer',
        spawnParty('payer', [
          '--peer',
          `127.0.0.1:${ready.port}`,
          '--datadir',
          payerDir,
          '--mode',
          opts.mode,
          '--capacity-sat',
          opts.capacitySat.toString(),
        ]),
        timeoutMs,
      );
      await payer.ready;
      return new LnPair(opts.dir, payer, payee);
    } catch (err) {
      await Promise.all([payee.stop(), payer?.stop()]);
      throw err;
    }
  }

  party(role: Role): PartyProcess {
    return role === 'payer' ? this.payer : this.payee;
  }

  /** Runs the load on the payer (see Party.runLoad). */
  run(
    load: { payments: number; batchSize: number; amountSat: bigint; window?: number },
    timeoutMs?: number,
  ): Promise<LoadResult> {
    return this.payer.request<LoadResult>('run', load, timeoutMs);
  }

  usage(role: Role): Promise<PartyUsage> {
    return this.party(role).request<PartyUsage>('usage');
  }

  /** Waits until `role` is settled with at least these commitment numbers; its in-memory summary. */
  settled(
    role: Role,
    min: { localIndex?: number; remoteIndex?: number } = {},
    timeoutMs = 30_000,
  ): Promise<SnapshotSummary> {
    return this.party(role).request<SnapshotSummary>(
      'state',
      { minLocalIndex: min.localIndex ?? 0, minRemoteIndex: min.remoteIndex ?? 0 },
      timeoutMs,
    );
  }

  inject(role: Role, fault: Fault): Promise<unknown> {
    return this.party(role).request('inject', { fault });
  }

  /** What `role` has on disk right now. */
  async onDisk(role: Role): Promise<SnapshotSummary> {
    const snap = await loadSnapshot(join(this.dir, role));
    if (!snap) throw new Error(`${role} has no channel state on disk`);
    return summarizeSnapshot(snap);
  }

  async stop(): Promise<void> {
    await Promise.all([this.payer.stop(), this.payee.stop()]);
  }
}

/**
 * Checks that both parties' durable states agree and that exactly `paidSat` moved from payer to payee
 * between `before` and `after`. @throws Error describing the first mismatch.
 */
export function verifyTransfer(
  before: Record<Role, SnapshotSummary>,
  after: Record<Role, SnapshotSummary>,
  paidSat: bigint,
): void {
  const fail = (what: string) => {
    throw new Error(
      `lnmodel verification failed: ${what} (before ${JSON.stringify(before, jsonBig)}, after ${JSON.stringify(after, jsonBig)})`,
    );
  };
  const { payer, payee } = after;
  for (const [role, s] of Object.entries(after)) {
    if (s.awaitingRevocation || s.pendingUpdates > 0) fail(`${role} is not settled`);
    if (s.local.htlcs !== 0 || s.remote.htlcs !== 0) fail(`${role} still has pending HTLCs`);
    if (s.local.openerSat !== s.remote.openerSat || s.local.acceptorSat !== s.remote.acceptorSat)
      fail(`${role}'s two commitments disagree`);
  }
  if (payer.localIndex !== payee.remoteIndex || payer.remoteIndex !== payee.localIndex)
    fail('commitment numbers disagree');
  if (payer.local.openerSat !== payee.local.openerSat || payer.local.acceptorSat !== payee.local.acceptorSat)
    fail('balances disagree between the parties');
  if (before.payer.local.openerSat - payer.local.openerSat !== paidSat)
    fail(`payer balance moved by ${before.payer.local.openerSat - payer.local.openerSat}, not ${paidSat}`);
  if (payee.local.acceptorSat - before.payee.local.acceptorSat !== paidSat)
    fail(`payee balance moved by ${payee.local.acceptorSat - before.payee.local.acceptorSat}, not ${paidSat}`);
}

function jsonBig(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

function usageDelta(a: PartyUsage, b: PartyUsage, seconds: number): ProcessUsage {
  const cpuMs = b.cpuUserMs + b.cpuSystemMs - (a.cpuUserMs + a.cpuSystemMs);
  const r = (x: number) => Math.round(x * 10) / 10;
  return {
    pid: b.pid,
    cpuMs: r(cpuMs),
    cpuPercent: r(cpuMs / 10 / seconds),
    rssMb: r(b.rssMb),
    maxRssMb: r(b.maxRssMb),
    persists: b.persists - a.persists,
  };
}

/** Runs one measured load on an open pair and verifies it from disk. */
export async function measureOnPair(
  pair: LnPair,
  opts: { payments: number; batchSize: number; amountSat: bigint; window?: number; mode: LnMode; timeoutMs?: number },
): Promise<LnModelResult> {
  // Settle both sides first so "before" is a quiet, durable state.
  await pair.settled('payer');
  const payerBefore = await pair.onDisk('payer');
  await pair.settled('payee', { localIndex: payerBefore.remoteIndex, remoteIndex: payerBefore.localIndex });
  const before = { payer: payerBefore, payee: await pair.onDisk('payee') };
  const [u0payer, u0payee] = await Promise.all([pair.usage('payer'), pair.usage('payee')]);
  const load = await pair.run(
    { payments: opts.payments, batchSize: opts.batchSize, amountSat: opts.amountSat, window: opts.window ?? 1 },
    opts.timeoutMs,
  );
  const [u1payer, u1payee] = await Promise.all([pair.usage('payer'), pair.usage('payee')]);
  const payerMem = await pair.settled('payer');
  await pair.settled('payee', { localIndex: payerMem.remoteIndex, remoteIndex: payerMem.localIndex });
  const after = { payer: await pair.onDisk('payer'), payee: await pair.onDisk('payee') };
  const totalPaidSat = opts.amountSat * BigInt(opts.payments);
  let verificationError: string | undefined;
  try {
    verifyTransfer(before, after, totalPaidSat);
  } catch (err) {
    verificationError = (err as Error).message;
  }
  return {
    mode: opts.mode,
    batchSize: opts.batchSize,
    payments: load.payments,
    seconds: load.seconds,
    paymentsPerSec: load.paymentsPerSec,
    latenciesMs: load.latenciesMs,
    latency: summarize(load.latenciesMs),
    commitmentUpdates: load.commitmentUpdates,
    processes: { payer: usageDelta(u0payer, u1payer, load.seconds), payee: usageDelta(u0payee, u1payee, load.seconds) },
    totalPaidSat,
    verified: verificationError === undefined,
    ...(verificationError === undefined ? {} : { verificationError }),
    before,
    after,
  };
}

/** Capacity that covers `total` plus the 1% reserve and the largest commitment fee, with room to spare. */
export function defaultCapacity(totalSat: bigint): bigint {
  return (totalSat * 102n) / 100n + 100_000n;
}

/**
 * The Lightning-style baseline end to end: opens a channel between two fresh processes, pays `payments`
 * of `amountSat` in commitment updates of `batchSize`, verifies the result on disk, stops both processes.
 */
export async function runLnModel(opts: LnModelOptions): Promise<LnModelResult> {
  const mode = opts.mode ?? 'balance';
  const amountSat = BigInt(opts.amountSat);
  if (!Number.isSafeInteger(opts.payments) || opts.payments <= 0)
    throw new RangeError('payments must be a positive integer');
  if (!Number.isSafeInteger(opts.batchSize) || opts.batchSize <= 0)
    throw new RangeError('batchSize must be a positive integer');
  if (mode === 'htlc' && opts.batchSize > 483)
    throw new RangeError('htlc mode: batchSize is at most 483 (max_accepted_htlcs)');
  const pair = await LnPair.start({
    dir: opts.dir,
    mode,
    capacitySat: opts.capacitySat ?? defaultCapacity(amountSat * BigInt(opts.payments)),
  });
  try {
    return await measureOnPair(pair, {
      payments: opts.payments,
      batchSize: opts.batchSize,
      amountSat,
      window: opts.window,
      mode,
      timeoutMs: opts.timeoutMs,
    });
  } finally {
    await pair.stop();
  }
}
