/**
 * `--chaos kill:S`, a nemesis for a stress run: every S on average (exponential gaps drawn from the run's
 * seed) a random node process of the network, a committee member too, is killed with SIGKILL, as a crash
 * would, and started again 2-4 s later with the same data dir, ports and arguments (the launcher's own
 * restart, src/cli/network.ts). Each fault is recorded with the time until the next payment through that
 * node succeeded. After the load, waitForRecovery waits until every process answers and every channel's
 * peers are connected again, so that the checks read a network that has come back.
 */
import { randomIndex, seededRandom, type Rand } from './random.ts';
import type { Recorder } from './recorder.ts';
import type { Nemesis, Treasury } from './target.ts';

export interface ChaosSpec {
  kind: 'kill';
  /** Mean time between kills. */
  meanMs: number;
}

export interface Fault {
  /** Seconds since the load started. */
  at: number;
  node: string;
  kind: 'kill';
  /** Seconds since the load started when it answered again; null if it could not be restarted. */
  restarted_at: number | null;
  /** From the kill until a payment sent after the restart, to, from or through that node, succeeded. */
  recovered_after_ms: number | null;
  /** Why it could not be killed or restarted, if so. */
  error?: string;
}

const DOWN_MIN_MS = 2_000;
const DOWN_SPAN_MS = 2_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const seconds = (ms: number) => Math.round(ms) / 1000;

interface Victim {
  name: string;
  treasury: number;
  /** The process payments go to (the treasury's primary): its in-memory history restarts empty. */
  primary: boolean;
}

export class Chaos {
  readonly faults: Fault[] = [];
  /** Treasuries whose primary was killed at least once: their payment history restarted empty. */
  readonly restarted = new Set<number>();
  private readonly rand: Rand;
  private readonly victims: Victim[];
  private readonly down = new Set<string>();
  private readonly pending: Array<Promise<void>> = [];
  private readonly awaiting: Array<{ fault: Fault; treasury: number; atMs: number; restartedMs: number | null }> = [];
  private stopped = false;
  private wake: () => void = () => undefined;
  private loop: Promise<void> = Promise.resolve();

  constructor(
    private readonly o: {
      spec: ChaosSpec;
      seed: number;
      nemesis: Nemesis;
      treasuries: Treasury[];
      recorder: Recorder;
      /** Treasury and node ids → treasury index, to read a payment's route. */
      idIndex: Map<string, number>;
      log(line: string): void;
    },
  ) {
    // Its own stream from the run's seed: the kills replay with the seed, and do not shift the workload's.
    this.rand = seededRandom((o.seed ^ 0x9e3779b9) >>> 0);
    this.victims = o.treasuries.flatMap((t, i) =>
      t.members.map((m, k) => ({ name: m.name, treasury: i, primary: k === 0 })),
    );
    o.recorder.onSucceeded = (p, outcome, sentAtMs) => {
      const involved = new Set([p.payer, p.payee]);
      for (const id of outcome.route ?? []) {
        const i = o.idIndex.get(id);
        if (i !== undefined) involved.add(i);
      }
      const now = this.elapsedMs();
      for (let k = this.awaiting.length - 1; k >= 0; k--) {
        const a = this.awaiting[k]!;
        if (a.restartedMs === null || sentAtMs < a.restartedMs || !involved.has(a.treasury)) continue;
        a.fault.recovered_after_ms = Math.round(now - a.atMs);
        this.awaiting.splice(k, 1);
      }
    };
  }

  start(): void {
    this.loop = this.run();
  }

  /** No more kills; resolves when every killed process has been started again (or failed to). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.loop;
    await Promise.all(this.pending);
  }

  private elapsedMs(): number {
    return performance.now() - this.o.recorder.started;
  }

  private async run(): Promise<void> {
    for (;;) {
      const gap = -Math.log(1 - this.rand()) * this.o.spec.meanMs;
      await new Promise<void>((r) => {
        const timer = setTimeout(r, gap);
        this.wake = () => {
          clearTimeout(timer);
          r();
        };
      });
      if (this.stopped) return;
      const up = this.victims.filter((v) => !this.down.has(v.name));
      if (up.length === 0) continue;
      const victim = up[randomIndex(this.rand, up.length)]!;
      const downMs = DOWN_MIN_MS + this.rand() * DOWN_SPAN_MS;
      const atMs = this.elapsedMs();
      const fault: Fault = {
        at: seconds(atMs),
        node: victim.name,
        kind: 'kill',
        restarted_at: null,
        recovered_after_ms: null,
      };
      this.faults.push(fault);
      if (victim.primary) this.restarted.add(victim.treasury);
      this.down.add(victim.name);
      this.o.log(`chaos: killing ${victim.name} (SIGKILL), restarting it in ${(downMs / 1000).toFixed(1)} s`);
      this.pending.push(this.killAndRestart(victim, downMs, fault, atMs));
    }
  }

  private async killAndRestart(victim: Victim, downMs: number, fault: Fault, atMs: number): Promise<void> {
    const waiting = { fault, treasury: victim.treasury, atMs, restartedMs: null as number | null };
    this.awaiting.push(waiting);
    try {
      await this.o.nemesis.kill(victim.name);
      await sleep(downMs);
      await this.o.nemesis.restart(victim.name);
      waiting.restartedMs = this.elapsedMs();
      fault.restarted_at = seconds(waiting.restartedMs);
      this.down.delete(victim.name);
      this.o.log(`chaos: ${victim.name} is back`);
    } catch (err) {
      // Left marked down: it is not killed again, and the wait for recovery reports it.
      fault.error = (err as Error).message.split('\n')[0]!;
      this.o.log(`chaos: ${victim.name}: ${fault.error}`);
    }
  }
}

/** Until every process answers and every open channel's peer is connected again: null, or what is still wrong. */
export async function waitForRecovery(treasuries: Treasury[], timeoutMs = 60_000): Promise<string | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const problem = await firstProblem(treasuries);
    if (problem === null || Date.now() > deadline) return problem;
    await sleep(250);
  }
}

async function firstProblem(treasuries: Treasury[]): Promise<string | null> {
  for (const t of treasuries) {
    for (const m of t.members) {
      const err = await m.api.request('GET', '/v1/getinfo', undefined, 5_000).then(
        () => null,
        (e: Error) => e.message,
      );
      if (err !== null) return `${m.name} does not answer (${err})`;
    }
    const answer = await t.api
      .request<{ channels: Array<{ status: string; peer_connected: boolean }> }>(
        'GET',
        '/v1/channels',
        undefined,
        5_000,
      )
      .catch((e: Error) => e);
    if (answer instanceof Error) return `${t.name}: its channels cannot be read (${answer.message})`;
    const cut = answer.channels.filter((c) => c.status === 'open' && !c.peer_connected).length;
    if (cut > 0) return `${t.name}: ${cut} open channel(s) whose peer is not connected`;
    if (t.members.length > 1) {
      const c = await t.api
        .request<{ formed: boolean; members: Array<{ connected: boolean }> }>('GET', '/v1/committee', undefined, 5_000)
        .catch(() => null);
      if (!c?.formed || !c.members.every((m) => m.connected)) return `${t.name}: its committee is not whole again`;
    }
  }
  return null;
}
