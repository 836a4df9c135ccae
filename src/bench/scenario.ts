/**
 * What a benchmark scenario is, and what it reports. A scenario has a stable `id` (what ratios and
 * documents refer to; its `name` is only for people and may change), a set-up it shares with the scenarios
 * of its stage, a load, and a check that the load's payments really happened. The runner (runner.ts) owns
 * everything they have in common: repeats, medians, CPU/memory metering, progress, failure rows.
 */
import type { Agent } from './cluster.ts';
import type { Metered } from './usage.ts';

/** Rows of a group are compared with each other; the chart colours the baselines by group. */
export type Group =
  | 'teechain'
  | 'teechain-committee'
  | 'teechain-multihop'
  | 'teechain-scale'
  | 'teechain-rest'
  | 'lightning-model'
  | 'lightning-model-htlc'
  | 'ldk';

export interface Latency {
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  /** Only where the load measured it (the agents' own loads). */
  max_ms?: number;
}

/** Per node process the scenario ran on, over its last run: CPU ms spent, RSS MB after. */
export interface Usage {
  cpu_ms_per_node?: number[];
  rss_mb_per_node?: number[];
}

/** One row of the bench's JSON and table. */
export interface ScenarioRow extends Latency, Usage {
  id: string;
  name: string;
  group: Group;
  /** Median over the runs. */
  payments_per_s: number;
  runs_payments_per_s: number[];
  payments: number;
  batch: number | null;
  /** Every run's payments accounted for on both sides (the scenario's own check). */
  verified: boolean;
  note?: string;
  /** Committee scenarios: the mean bytes of one replication update (one per group commit) over the last run. */
  update_bytes?: number;
}

/** What describes a scenario before it runs: enough to plan, show progress and name its row. */
export interface ScenarioSpec {
  id: string;
  name: string;
  group: Group;
  /** Payments per run (the row's `payments`, unless the run reports how many it made). */
  payments: number;
  batch: number | null;
  note?: string;
  /** Run once whatever the repeat count: a load too large, or too slow to set up, to repeat. */
  once?: boolean;
}

/** One run's figures, as the scenario measured and checked them. */
export interface Run {
  payments_per_s: number;
  latency: Latency;
  verified: boolean;
  usage: Usage;
  /** When the run itself decides how many payments it made (a fixed number of HTTP requests, say). */
  payments?: number;
  note?: string;
  /** Committee scenarios: the mean bytes of one replication update (one per group commit). */
  update_bytes?: number;
}

/** What a metered load gives back: its result, the wall time it took, and what the nodes spent meanwhile. */
export interface Metering<T> {
  result: T;
  seconds: number;
  usage: Usage;
}

/** Runs a load on `nodes` and meters it; the runner provides it, so every scenario meters the same way. */
export type Meter = <T>(nodes: Metered[], load: () => Promise<T>) => Promise<Metering<T>>;

export interface Scenario<F> extends ScenarioSpec {
  /** One run on the stage's fixture: snapshot, metered load, check. */
  measure(fixture: F, meter: Meter): Promise<Run>;
}

/** Two treasury nodes and the channel between them, `a` the payer. */
export interface ChannelPair {
  a: Agent;
  b: Agent;
  id: string;
}

export interface AgentOptions {
  committee?: { size: number };
  backupOf?: string;
  joinToken?: string;
  /** A committee backup's --promotion-timeout-ms (the node's default otherwise). */
  promotionTimeoutMs?: number;
}

/** What the run provides every stage: the chain, the node spawner and the channel opened first. */
export interface BenchEnv {
  dir: string;
  chain: { rpcUrl: string; rpcUser: string; rpcPassword: string };
  /** alice → bob, opened before any scenario; most scenarios pay on it, one after the other. */
  main: ChannelPair;
  /** Spawns a treasury node on the bench's chain; the run stops it at the end if its stage did not. */
  agent(name: string, extra?: AgentOptions): Promise<Agent>;
  stop(agents: readonly Agent[]): Promise<void>;
}

/** What the runner offers a stage while it runs. */
export interface StageContext {
  env: BenchEnv;
  /** Runs a scenario the configured number of times and records its row. */
  measure(spec: ScenarioSpec, run: (meter: Meter) => Promise<Run>): Promise<void>;
  /** Records a failed row for a scenario that could not run (only stages that keep going on failure). */
  fail(spec: ScenarioSpec, err: unknown, during?: string): void;
  /** Shows what is being prepared, without counting a step. */
  show(label: string): void;
}

/** Scenarios that share one set-up, set up before the first and torn down after the last. */
export interface Stage {
  scenarios: readonly ScenarioSpec[];
  run(ctx: StageContext): Promise<void>;
}

export interface StageDef<F> {
  /** Shown while the set-up runs. */
  title: string;
  setUp(env: BenchEnv): Promise<F>;
  tearDown?(fixture: F, env: BenchEnv): Promise<void>;
  scenarios: Array<Scenario<F>>;
  /**
   * A failure becomes that scenario's failed row (its message in the note) and the bench goes on, instead of
   * ending the bench. For an external implementation (LDK) whose failure should not cost the other rows.
   */
  failuresAreRows?: boolean;
}

/** Binds scenarios to their fixture; the fixture's type stays inside, so stages of any fixture list together. */
export function stage<F>(def: StageDef<F>): Stage {
  return {
    scenarios: def.scenarios,
    async run(ctx) {
      ctx.show(def.title);
      let fixture: F;
      try {
        fixture = await def.setUp(ctx.env);
      } catch (err) {
        if (!def.failuresAreRows) throw err;
        for (const s of def.scenarios) ctx.fail(s, err, def.title);
        return;
      }
      try {
        for (const s of def.scenarios) {
          try {
            await ctx.measure(s, (meter) => s.measure(fixture, meter));
          } catch (err) {
            if (!def.failuresAreRows) throw err;
            ctx.fail(s, err);
          }
        }
      } finally {
        await def.tearDown?.(fixture, ctx.env);
      }
    },
  };
}

/** The worst of several loads' latencies, side by side (both directions of one channel, say). */
export function worstLatency(ls: readonly Latency[]): Latency {
  return {
    p50_ms: Math.max(...ls.map((l) => l.p50_ms)),
    p95_ms: Math.max(...ls.map((l) => l.p95_ms)),
    p99_ms: Math.max(...ls.map((l) => l.p99_ms)),
  };
}
