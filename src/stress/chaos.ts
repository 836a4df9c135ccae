/**
 * `--chaos kill:S,partition:S`, a nemesis for a stress run. `kill`: every S on average (exponential gaps
 * drawn from the run's seed) a random node process of the network, a committee member too, is killed with
 * SIGKILL, as a crash would, and started again 2-4 s later with the same data dir, ports and arguments (the
 * launcher's own restart, src/cli/network.ts). `partition` (with --hosts netns): every S on average a random
 * node process's link is taken off the bridge of its namespace (src/stress/netns.ts) for 2-6 s, then put
 * back. Each kind draws from a stream of its own. Each fault is recorded with the time until the next
 * payment through that node succeeded. After the load, waitForRecovery waits until every process answers and every channel's
 * peers are connected again, so that the checks read a network that has come back.
 */
import { randomIndex, seededRandom, type Rand } from './random.ts';
import type { Recorder } from './recorder.ts';
import type { Nemesis, Treasury } from './target.ts';

export interface ChaosSpec {
  kind: 'kill' | 'partition';
  /** Mean time between two faults of this kind. */
  meanMs: number;
}

export interface Fault {
  /** Seconds since the load started. */
  at: number;
  node: string;
  kind: 'kill' | 'partition';
  /** A kill: seconds since the load started when it answered again; null if it could not be restarted. */
  restarted_at?: number | null;
  /** A partition: seconds since the load started when its link was back; null if it could not be put back. */
  healed_at?: number | null;
  /** From the fault until a payment sent after the restart (or heal), to, from or through that node, succeeded. */
  recovered_after_ms: number | null;
  /** Why it could not be killed, restarted, cut off or put back, if so. */
  error?: string;
}

/** How long a victim stays down (killed) or cut off (partitioned): min + a uniform draw of span. */
const DOWN: Record<ChaosSpec['kind'], { minMs: number; spanMs: number }> = {
  kill: { minMs: 2_000, spanMs: 2_000 },
  partition: { minMs: 2_000, spanMs: 4_000 },
};
/** Each kind's stream of the run's seed: kills replay the same with or without partitions, and vice versa. */
const STREAM: Record<ChaosSpec['kind'], number> = { kill: 0x9e3779b9, partition: 0x85ebca6b };

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
  private readonly victims: Victim[];
  /** Processes killed or cut off right now: neither kind picks them again until they are back. */
  private readonly down = new Set<string>();
  private readonly pending: Array<Promise<void>> = [];
  private readonly awaiting: Array<{ fault: Fault; treasury: number; atMs: number; restartedMs: number | null }> = [];
  private stopped = false;
  private readonly wakes = new Set<() => void>();
  private loops: Array<Promise<void>> = [];

  constructor(
    private readonly o: {
      specs: ChaosSpec[];
      seed: number;
      nemesis: Nemesis;
      treasuries: Treasury[];
      recorder: Recorder;
      /** Treasury and node ids → treasury index, to read a payment's route. */
      idIndex: Map<string, number>;
      log(line: string): void;
    },
  ) {
    if (o.specs.some((c) => c.kind === 'partition') && !o.nemesis.partition)
      throw new Error('--chaos partition needs a network on namespaces (--hosts netns)');
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
    this.loops = this.o.specs.map((spec) => this.run(spec));
  }

  /** No more faults; resolves when every killed process is started again and every cut link back (or failed). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const wake of this.wakes) wake();
    await Promise.all(this.loops);
    await Promise.all(this.pending);
  }

  private elapsedMs(): number {
    return performance.now() - this.o.recorder.started;
  }

  private async run(spec: ChaosSpec): Promise<void> {
    // Its own stream from the run's seed: the faults replay with the seed, and do not shift the workload's.
    const rand: Rand = seededRandom((this.o.seed ^ STREAM[spec.kind]) >>> 0);
    for (;;) {
      const gap = -Math.log(1 - rand()) * spec.meanMs;
      await new Promise<void>((r) => {
        const wake = () => {
          clearTimeout(timer);
          this.wakes.delete(wake);
          r();
        };
        const timer = setTimeout(wake, gap);
        this.wakes.add(wake);
      });
      if (this.stopped) return;
      const up = this.victims.filter((v) => !this.down.has(v.name));
      if (up.length === 0) continue;
      const victim = up[randomIndex(rand, up.length)]!;
      const downMs = DOWN[spec.kind].minMs + rand() * DOWN[spec.kind].spanMs;
      const atMs = this.elapsedMs();
      const fault: Fault = {
        at: seconds(atMs),
        node: victim.name,
        kind: spec.kind,
        ...(spec.kind === 'kill' ? { restarted_at: null } : { healed_at: null }),
        recovered_after_ms: null,
      };
      this.faults.push(fault);
      this.down.add(victim.name);
      if (spec.kind === 'kill') {
        if (victim.primary) this.restarted.add(victim.treasury);
        this.o.log(`chaos: killing ${victim.name} (SIGKILL), restarting it in ${(downMs / 1000).toFixed(1)} s`);
        this.pending.push(this.killAndRestart(victim, downMs, fault, atMs));
      } else {
        this.o.log(`chaos: cutting ${victim.name} off the bridge for ${(downMs / 1000).toFixed(1)} s`);
        this.pending.push(this.partitionAndHeal(victim, downMs, fault, atMs));
      }
    }
  }

  private async partitionAndHeal(victim: Victim, downMs: number, fault: Fault, atMs: number): Promise<void> {
    const waiting = { fault, treasury: victim.treasury, atMs, restartedMs: null as number | null };
    this.awaiting.push(waiting);
    try {
      await this.o.nemesis.partition!(victim.name);
      await sleep(downMs);
      await this.o.nemesis.heal!(victim.name);
      waiting.restartedMs = this.elapsedMs();
      fault.healed_at = seconds(waiting.restartedMs);
      this.down.delete(victim.name);
      this.o.log(`chaos: ${victim.name} is on the bridge again`);
    } catch (err) {
      // Left marked down: it is not picked again, and the wait for recovery reports it.
      fault.error = (err as Error).message.split('\n')[0]!;
      this.o.log(`chaos: ${victim.name}: ${fault.error}`);
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
