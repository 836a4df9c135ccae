/**
 * `npm run bench`: payment throughput and latency of Teechain-style treasuries, side by side in the same
 * run with a Lightning-style model, on real node processes (enclave workers, sealed durable state, TCP
 * on loopback) and the embedded regtest chain.
 *
 *   npm run bench                      full run (median of 3 runs per scenario)
 *   npm run bench -- --quick           smoke run, under 2 minutes
 *   npm run bench -- --out FILE        write the JSON there (default bench-results/latest.json)
 *   npm run bench -- --batch 1,10,100  batch sizes for the batched scenarios
 *
 * The "ldk" scenario runs two real LDK nodes (rust-lightning as WASM, src/ldk/) on the same chain: a
 * channel funded on chain, BOLT 11 invoices paid one at a time and 128 in flight, a cooperative close.
 *
 * The multi-hop scenario pays through a line of four nodes, 2 and 3 hops, naming only the destination.
 *
 * Prints a table and writes JSON and an SVG chart. Each scenario checks afterwards that the channel's
 * totals moved by exactly the sum paid on both sides; a scenario that fails the check is reported as such.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { cpus, totalmem, platform, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { AttestationService } from '../enclave-sim/attestation.ts';
import { startEmbeddedChain } from '../src/chain/embedded/index.ts';
import { spawnAgent, openFundedChannel, totals, movedExactly, type Agent } from '../src/bench/cluster.ts';
import { metered } from '../src/bench/usage.ts';
import { median } from '../src/bench/stats.ts';
import { renderChart } from '../src/bench/chart.ts';
import { table } from '../src/cli/format.ts';
import { runLnModel } from '../src/lnmodel/run.ts';
import { LdkPair, type LdkCloseResult } from '../src/ldk/run.ts';
import { readJoinTokens, writeSecretFile } from '../src/node/secret-file.ts';

interface Scenario {
  name: string;
  group: string;
  payments_per_s: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  runs_payments_per_s: number[];
  payments: number;
  batch: number | null;
  verified: boolean;
  cpu_ms_per_node?: number[];
  rss_mb_per_node?: number[];
  note?: string;
}

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    tiny: { type: 'boolean' },
    out: { type: 'string' },
    svg: { type: 'string' },
    batch: { type: 'string' },
    runs: { type: 'string' },
    pairs: { type: 'string' },
  },
});
const mode = values.tiny ? 'tiny' : values.quick ? 'quick' : 'full';
const SIZES = {
  tiny: {
    runs: 1,
    multihop: 10,
    committee: [2],
    committeeN: 40,
    unbatched: 20,
    pipelined: 200,
    batched: 400,
    both: 200,
    rest: 100,
    pairs: [1],
    pairN: 200,
    ln: 20,
    lnBatched: 100,
    ldk: 5,
    ldkPipelined: 40,
  },
  quick: {
    runs: 1,
    multihop: 100,
    committee: [1, 2, 3, 5],
    committeeN: 2_000,
    unbatched: 400,
    pipelined: 30_000,
    batched: 60_000,
    both: 20_000,
    rest: 2_000,
    pairs: [1, 2],
    pairN: 20_000,
    ln: 200,
    lnBatched: 3_000,
    ldk: 50,
    ldkPipelined: 500,
  },
  full: {
    runs: 3,
    multihop: 300,
    committee: [1, 2, 3, 5],
    committeeN: 20_000,
    unbatched: 2_000,
    pipelined: 150_000,
    batched: 300_000,
    both: 100_000,
    rest: 10_000,
    pairs: [1, 2, 4],
    pairN: 100_000,
    ln: 1_000,
    lnBatched: 20_000,
    ldk: 300,
    ldkPipelined: 2_000,
  },
}[mode];
const RUNS = values.runs ? Number(values.runs) : SIZES.runs;
const BATCHES = (values.batch ?? (mode === 'tiny' ? '10' : mode === 'quick' ? '100,1000' : '10,100,1000'))
  .split(',')
  .map(Number);
const PAIRS = values.pairs ? values.pairs.split(',').map(Number) : SIZES.pairs;
const OUT = values.out ?? 'bench-results/latest.json';
const SVG = values.svg ?? join(dirname(OUT), 'latest.svg');

// ───────────── progress ─────────────
const plan: string[] = [];
let done = 0;
function progress(label: string): void {
  done++;
  const width = 30;
  const filled = Math.round((done / Math.max(1, plan.length)) * width);
  process.stderr.write(
    `\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${plan.length} ${label.padEnd(48).slice(0, 48)}`,
  );
}

type Usage = Pick<Scenario, 'cpu_ms_per_node' | 'rss_mb_per_node'>;

/**
 * Runs `fn` on `nodes` and gives a scenario's usage fields: what each node's process spent meanwhile
 * (src/bench/usage.ts). Scenarios keep the figures of their last run, like their latencies.
 */
async function meteredRun<T>(nodes: Agent[], fn: () => Promise<T>): Promise<[T, Usage]> {
  const [result, spent] = await metered(nodes, fn);
  return [result, { cpu_ms_per_node: spent.cpu_ms, rss_mb_per_node: spent.rss_mb }];
}

/** Waits until a primary's committee has every member joined, connected and caught up. */
async function waitForCommittee(primary: Agent): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const c = await primary.api
      .request<{ formed: boolean; seq: number; acked_seq: number; members: Array<{ connected: boolean }> }>(
        'GET',
        '/v1/committee',
      )
      .catch(() => null);
    if (c?.formed && c.members.every((m) => m.connected) && c.acked_seq === c.seq) return;
    if (Date.now() > deadline) throw new Error(`the committee of ${primary.name} did not form within 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'teechain-bench-'));
  process.stderr.write(`bench (${mode}): starting the regtest chain and treasury nodes…\n`);
  const chain = await startEmbeddedChain({ memory: true });
  const keyFile = join(dir, 'attestation.key');
  await AttestationService.create().save(keyFile);
  const agents: Agent[] = [];
  const agent = async (
    name: string,
    extra: { committee?: { size: number }; backupOf?: string; joinToken?: string } = {},
  ) => {
    const a = await spawnAgent(name, {
      datadir: join(dir, name),
      rpcUrl: chain.rpcUrl,
      rpcUser: chain.rpcUser,
      rpcPassword: chain.rpcPassword,
      attestationKey: keyFile,
      regtestFaucet: true,
      ...extra,
    });
    agents.push(a);
    return a;
  };
  const scenarios: Scenario[] = [];
  let ldkClose: LdkCloseResult | null = null;
  try {
    const alice = await agent('alice');
    const bob = await agent('bob');
    // A network.json for the run, so `teechain dashboard --datadir DIR` can follow it live (README "Dashboard").
    const nodes = [alice, bob].map((x) => ({
      name: x.name,
      nodeId: x.nodeId,
      restUrl: x.api.restUrl,
      tokenFile: join(dir, x.name, 'admin.token'),
      p2p: x.p2p,
    }));
    await writeSecretFile(
      join(dir, 'network.json'),
      JSON.stringify({
        chain: { rpcUrl: chain.rpcUrl, rpcUser: chain.rpcUser, rpcPassword: chain.rpcPassword, embedded: true },
        nodes,
        topology: 'line',
      }),
    );
    process.stderr.write(`watch it live: npx teechain dashboard --datadir ${dir} --port 0\n`);
    const ch = await openFundedChannel(alice, bob, 50_000_000);

    plan.push('ldk channel', 'ldk unbatched', 'ldk pipelined', 'ldk close');
    plan.push(
      ...SIZES.committee.flatMap((l) => [`committee L=${l} unbatched`, `committee L=${l} batch=100`]),
      'multi-hop 2 hops',
      'multi-hop 3 hops',
    );
    plan.push(
      'unbatched',
      'pipelined',
      ...BATCHES.map((b) => `batch=${b}`),
      'both',
      ...PAIRS.map((p) => `pairs=${p}`),
      'rest c=1',
      'rest c=32',
      'ln unbatched',
      ...BATCHES.map((b) => `ln batch=${b}`),
      'ln htlc unbatched',
      'ln htlc batch=100',
    );

    const oneWay = async (name: string, count: number, batch: number, window: number) => {
      const runs: number[] = [];
      let last: Awaited<ReturnType<Agent['load']>> | undefined;
      let usage: Usage = {};
      let verified = true;
      for (let r = 0; r < RUNS; r++) {
        const before = await totals(alice, bob, ch);
        [last, usage] = await meteredRun([alice, bob], () =>
          alice.load({ channelId: ch, count, batch, window, amountSat: 1 }),
        );
        const after = await totals(alice, bob, ch);
        verified &&= last.failed === 0 && movedExactly(before, after, BigInt(count), 0n);
        runs.push(count / last.seconds);
      }
      scenarios.push({
        name,
        group: 'teechain',
        payments_per_s: Math.round(median(runs)),
        ...last!.latency,
        runs_payments_per_s: runs.map(Math.round),
        payments: count,
        batch,
        verified,
        ...usage,
      });
      progress(name);
    };

    await oneWay('teechain 1ch unbatched (1 in flight)', SIZES.unbatched, 1, 1);
    await oneWay('teechain 1ch pipelined (256 in flight)', SIZES.pipelined, 1, 256);
    for (const b of BATCHES) await oneWay(`teechain 1ch batch=${b}`, Math.max(SIZES.batched, b * 4), b, 4);

    // both directions at once
    {
      const runs: number[] = [];
      let lat = { p50_ms: NaN, p95_ms: NaN, p99_ms: NaN };
      let usage: Usage = {};
      let verified = true;
      for (let r = 0; r < RUNS; r++) {
        const before = await totals(alice, bob, ch);
        const t0 = performance.now();
        const [[ra, rb], runUsage] = await meteredRun([alice, bob], () =>
          Promise.all([
            alice.load({ channelId: ch, count: SIZES.both, batch: 1, window: 256, amountSat: 1 }),
            bob.load({ channelId: ch, count: SIZES.both, batch: 1, window: 256, amountSat: 1 }),
          ]),
        );
        usage = runUsage;
        const secs = (performance.now() - t0) / 1000;
        const after = await totals(alice, bob, ch);
        verified &&= ra.failed + rb.failed === 0 && movedExactly(before, after, BigInt(SIZES.both), BigInt(SIZES.both));
        runs.push((2 * SIZES.both) / secs);
        lat = {
          p50_ms: Math.max(ra.latency.p50_ms, rb.latency.p50_ms),
          p95_ms: Math.max(ra.latency.p95_ms, rb.latency.p95_ms),
          p99_ms: Math.max(ra.latency.p99_ms, rb.latency.p99_ms),
        };
      }
      scenarios.push({
        name: 'teechain 1ch both directions (pipelined)',
        group: 'teechain',
        payments_per_s: Math.round(median(runs)),
        ...lat,
        runs_payments_per_s: runs.map(Math.round),
        payments: 2 * SIZES.both,
        batch: 1,
        verified,
        ...usage,
      });
      progress('both directions');
    }

    // committee chains: both treasuries replicated over L members (L processes each), each its own enclave
    for (const length of SIZES.committee) {
      const side = async (name: string) => {
        if (length === 1) return [await agent(`${name}-c1`)];
        const primary = await agent(`${name}-c${length}`, { committee: { size: length } });
        const members = [primary];
        const tokens = await readJoinTokens(join(dir, primary.name)); // the operator's say for each backup
        for (let i = 1; i < length; i++)
          members.push(await agent(`${name}-c${length}-b${i}`, { backupOf: primary.p2p, joinToken: tokens[i - 1]! }));
        await waitForCommittee(primary);
        return members;
      };
      const [xs, ys] = [await side('alice'), await side('bob')];
      const [x, y] = [xs[0]!, ys[0]!];
      const c = await openFundedChannel(x, y, 50_000_000);
      for (const [label, batch, window, count] of [
        ['unbatched (1 in flight)', 1, 1, Math.max(20, Math.round(SIZES.committeeN / 20))],
        ['batch=100', 100, 4, SIZES.committeeN],
      ] as const) {
        const runs: number[] = [];
        let last: Awaited<ReturnType<Agent['load']>> | undefined;
        let usage: Usage = {};
        let verified = true;
        for (let r = 0; r < RUNS; r++) {
          const before = await totals(x, y, c);
          [last, usage] = await meteredRun([...xs, ...ys], () =>
            x.load({ channelId: c, count, batch, window, amountSat: 1 }),
          );
          const after = await totals(x, y, c);
          verified &&= last.failed === 0 && movedExactly(before, after, BigInt(count), 0n);
          runs.push(count / last.seconds);
        }
        scenarios.push({
          name: `teechain committee length ${length} ${label}`,
          group: 'teechain-committee',
          payments_per_s: Math.round(median(runs)),
          ...last!.latency,
          runs_payments_per_s: runs.map(Math.round),
          payments: count,
          batch,
          verified,
          ...usage,
          note: `${2 * length} processes: each side a primary${length > 1 ? ` and ${length - 1} backup${length > 2 ? 's' : ''}, ${Math.floor(length / 2) + 1}-of-${length}` : ' alone'}`,
        });
        progress(`committee L=${length} ${label}`);
      }
      for (const m of [...xs, ...ys]) {
        await m.stop();
        agents.splice(agents.indexOf(m), 1);
      }
    }

    // multi-hop: a line m0 – m1 – m2 – m3; m0 pays m2 (2 hops) and m3 (3 hops) naming only the destination.
    // One payment in flight: a multi-hop payment holds every channel of its path until it is released.
    {
      const line = [await agent('m0'), await agent('m1'), await agent('m2'), await agent('m3')];
      const chans: string[] = [];
      for (let i = 0; i + 1 < line.length; i++) chans.push(await openFundedChannel(line[i]!, line[i + 1]!, 50_000_000));
      const deadline = Date.now() + 30_000;
      for (;;) {
        // Every channel announced by both ends, with the capacity its deposit gives it: an announcement made
        // between a channel's opening and its deposits says 0, and a payment routed on it fails.
        const g = await line[0]!.api.request<{ nodes: Array<{ channels: Array<{ capacity_sat: string }> }> }>(
          'GET',
          '/v1/graph',
        );
        const caps = g.nodes.flatMap((x) => x.channels.map((c) => BigInt(c.capacity_sat)));
        if (g.nodes.length === line.length && caps.length >= 2 * chans.length && caps.every((c) => c > 0n)) break;
        if (Date.now() > deadline) throw new Error('multi-hop: the channel graph did not reach m0 within 30 s');
        await new Promise((r) => setTimeout(r, 100));
      }
      for (const hops of [2, 3]) {
        const count = SIZES.multihop;
        const runs: number[] = [];
        let lat: number[] = [];
        let usage: Usage = {};
        let verified = true;
        for (let r = 0; r < RUNS; r++) {
          const before = await Promise.all(chans.slice(0, hops).map((c, i) => totals(line[i]!, line[i + 1]!, c)));
          lat = [];
          const t0 = performance.now();
          let failed = 0;
          [, usage] = await meteredRun(line.slice(0, hops + 1), async () => {
            for (let k = 0; k < count; k++) {
              const s0 = performance.now();
              const p = await line[0]!.api
                .request<{ status: string }>('POST', '/v1/payments', { dest: line[hops]!.nodeId, amount_sat: 1 })
                .catch(() => null);
              if (p?.status !== 'succeeded') failed++;
              lat.push(performance.now() - s0);
            }
          });
          runs.push(count / ((performance.now() - t0) / 1000));
          const after = await Promise.all(chans.slice(0, hops).map((c, i) => totals(line[i]!, line[i + 1]!, c)));
          verified &&= failed === 0 && before.every((b, i) => movedExactly(b, after[i]!, BigInt(count), 0n));
        }
        lat.sort((a, b) => a - b);
        const q = (x: number) => Math.round(lat[Math.min(lat.length - 1, Math.floor(x * lat.length))]! * 100) / 100;
        scenarios.push({
          name: `teechain multi-hop ${hops} hops (1 in flight, REST)`,
          group: 'teechain-multihop',
          payments_per_s: Math.round(median(runs)),
          p50_ms: q(0.5),
          p95_ms: q(0.95),
          p99_ms: q(0.99),
          runs_payments_per_s: runs.map(Math.round),
          payments: count,
          batch: 1,
          verified,
          ...usage,
          note: `${hops + 1} node processes; lock, sign, commit, release: 4 sealed steps per hop; every channel of the path checked to move by exactly the sum paid`,
        });
        progress(`multi-hop ${hops} hops`);
      }
      for (const m of line) {
        await m.stop();
        agents.splice(agents.indexOf(m), 1);
      }
    }

    // many channels: N independent pairs, all loaded at once
    for (const n of PAIRS) {
      const pairs: Array<[Agent, Agent, string]> = [[alice, bob, ch]];
      for (let i = 1; i < n; i++) {
        const x = await agent(`p${n}-${i}a`);
        const y = await agent(`p${n}-${i}b`);
        pairs.push([x, y, await openFundedChannel(x, y, 50_000_000)]);
      }
      const before = await Promise.all(pairs.map(([x, y, c]) => totals(x, y, c)));
      const t0 = performance.now();
      const [res, usage] = await meteredRun(
        pairs.flatMap(([x, y]) => [x, y]),
        () =>
          Promise.all(
            pairs.map(([x, , c]) => x.load({ channelId: c, count: SIZES.pairN, batch: 1, window: 256, amountSat: 1 })),
          ),
      );
      const secs = (performance.now() - t0) / 1000;
      const after = await Promise.all(pairs.map(([x, y, c]) => totals(x, y, c)));
      const verified =
        res.every((r) => r.failed === 0) &&
        pairs.every((_, i) => movedExactly(before[i]!, after[i]!, BigInt(SIZES.pairN), 0n));
      const tput = (n * SIZES.pairN) / secs;
      scenarios.push({
        name: `teechain ${n} channel pair${n > 1 ? 's' : ''} (${2 * n} processes)`,
        group: 'teechain-scale',
        payments_per_s: Math.round(tput),
        p50_ms: median(res.map((r) => r.latency.p50_ms)),
        p95_ms: median(res.map((r) => r.latency.p95_ms)),
        p99_ms: Math.max(...res.map((r) => r.latency.p99_ms)),
        runs_payments_per_s: [Math.round(tput)],
        payments: n * SIZES.pairN,
        batch: 1,
        verified,
        ...usage,
      });
      for (const [x, y] of pairs.slice(1)) {
        await x.stop();
        await y.stop();
      }
      progress(`pairs=${n}`);
    }

    // through the REST API, with concurrent HTTP clients (autocannon)
    for (const connections of [1, 32]) {
      const before = await totals(alice, bob, ch);
      // A fixed number of requests (not a duration), so the payments made are known exactly.
      const amount = connections === 1 ? Math.max(20, Math.round(SIZES.rest / 5)) : SIZES.rest;
      const t0 = performance.now();
      const [r, usage] = await meteredRun([alice, bob], () =>
        autocannon({
          url: `${alice.api.restUrl}/v1/payments`,
          method: 'POST',
          connections,
          amount,
          headers: { authorization: `Bearer ${alice.api.token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ channel_id: ch, amount_sat: 1 }),
        }),
      );
      const secs = (performance.now() - t0) / 1000;
      const after = await totals(alice, bob, ch);
      const paid = after.aSent - before.aSent;
      scenarios.push({
        name: `teechain REST POST /v1/payments (${connections} client${connections > 1 ? 's' : ''})`,
        group: 'teechain-rest',
        payments_per_s: Math.round(r.requests.total / secs),
        p50_ms: r.latency.p50,
        p95_ms: r.latency.p97_5,
        p99_ms: r.latency.p99,
        runs_payments_per_s: [Math.round(r.requests.total / secs)],
        payments: r.requests.total,
        batch: 1,
        verified:
          r.non2xx === 0 && r.errors === 0 && paid === BigInt(amount) && after.bReceived - before.bReceived === paid,
        note: 'p95 column is autocannon p97.5',
        ...usage,
      });
      progress(`rest c=${connections}`);
    }

    // the Lightning-style model: same transport, same durability, real signatures
    // 'balance' mode moves balances without HTLC outputs (favours Lightning: the headline ratio uses it);
    // 'htlc' mode adds one HTLC per payment with its own signature and a fulfil round, as real Lightning does.
    const lnRun = async (name: string, payments: number, batchSize: number, mode: 'balance' | 'htlc' = 'balance') => {
      const runs: number[] = [];
      let last: Awaited<ReturnType<typeof runLnModel>> | undefined;
      for (let r = 0; r < RUNS; r++) {
        last = await runLnModel({
          payments,
          batchSize,
          mode,
          amountSat: mode === 'htlc' ? 1_000 : 1,
          dir: join(dir, `ln-${mode}-${batchSize}-${r}`),
        });
        runs.push(last.paymentsPerSec);
      }
      scenarios.push({
        name,
        group: mode === 'htlc' ? 'lightning-model-htlc' : 'lightning-model',
        payments_per_s: Math.round(median(runs)),
        p50_ms: last!.latency.p50_ms,
        p95_ms: last!.latency.p95_ms,
        p99_ms: last!.latency.p99_ms,
        runs_payments_per_s: runs.map(Math.round),
        payments,
        batch: batchSize,
        verified: last!.verified,
        cpu_ms_per_node: [last!.processes.payer.cpuMs, last!.processes.payee.cpuMs].map(Math.round),
        rss_mb_per_node: [last!.processes.payer.rssMb, last!.processes.payee.rssMb].map(Math.round),
      });
      progress(name);
    };
    await lnRun('lightning-model unbatched (1 in flight)', SIZES.ln, 1);
    for (const b of BATCHES) await lnRun(`lightning-model batch=${b}`, Math.max(SIZES.lnBatched, b * 4), b);
    await lnRun('lightning-model htlc unbatched', Math.max(10, Math.round(SIZES.ln / 2)), 1, 'htlc');
    await lnRun('lightning-model htlc batch=100', Math.max(200, Math.round(SIZES.lnBatched / 10)), 100, 'htlc');
    ldkClose = await runLdk(join(dir, 'ldk'), chain, scenarios);
  } finally {
    process.stderr.write('\n');
    for (const a of agents) await a.stop().catch(() => undefined);
    await chain.close();
  }

  const find = (prefix: string) => scenarios.find((s) => s.name.startsWith(prefix))?.payments_per_s ?? NaN;
  const ratio = (x: number, y: number) => (y > 0 ? Math.round((x / y) * 10) / 10 : null);
  const bestBatch = BATCHES.includes(100) ? 100 : BATCHES[BATCHES.length - 1]!;
  const result = {
    when: new Date().toISOString(),
    mode,
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memory_gb: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      os: `${platform()} ${release()}`,
    },
    ratio_vs_lightning: {
      unbatched: ratio(find('teechain 1ch unbatched'), find('lightning-model unbatched')),
      batched: ratio(find(`teechain 1ch batch=${bestBatch}`), find(`lightning-model batch=${bestBatch}`)),
      batch_size: bestBatch,
      unbatched_vs_htlc: ratio(find('teechain 1ch unbatched'), find('lightning-model htlc unbatched')),
      batched_vs_htlc: ratio(find('teechain 1ch batch=100'), find('lightning-model htlc batch=100')),
      best_vs_best: ratio(
        Math.max(...scenarios.filter((s) => s.group === 'teechain').map((s) => s.payments_per_s)),
        Math.max(...scenarios.filter((s) => s.group === 'lightning-model').map((s) => s.payments_per_s)),
      ),
    },
    ratio_vs_ldk: {
      unbatched: ratio(find('teechain 1ch unbatched'), find('ldk 1ch unbatched')),
      pipelined: ratio(find('teechain 1ch pipelined'), find('ldk 1ch pipelined')),
    },
    ldk_close: ldkClose && {
      closing_txid: ldkClose.closingTxid,
      payee_output_sat: Number(ldkClose.payeeOutputSat),
      payer_output_sat: Number(ldkClose.payerOutputSat),
      fee_sat: Number(ldkClose.feeSat),
      verified: ldkClose.verified,
      error: ldkClose.verificationError ?? null,
    },
    scenarios,
  };
  await mkdir(dirname(OUT), { recursive: true });
  await writeFile(
    OUT,
    `${JSON.stringify(result, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`,
  );
  await writeFile(
    SVG,
    renderChart(
      scenarios.filter((s) => s.payments_per_s > 0),
      `teechain-ts vs Lightning-style model and LDK — ${result.machine.cores} cores, ${result.machine.node}`,
    ),
  );
  const f = (x: number) => (Number.isFinite(x) ? (x < 10 ? x.toFixed(2) : x.toFixed(0)) : '-');
  // CPU of all the scenario's nodes per 1,000 payments of its last run (rows of different sizes compare),
  // and the largest node's RSS; the JSON has both per node.
  const usageCell = (s: Scenario) => {
    if (!s.cpu_ms_per_node?.length || !s.rss_mb_per_node?.length || !s.payments) return '-';
    const cpu = s.cpu_ms_per_node.reduce((a, b) => a + b, 0);
    return `${Math.round((cpu * 1000) / s.payments).toLocaleString('en-US')} | ${Math.max(...s.rss_mb_per_node)}`;
  };
  process.stdout.write(
    `${table(
      ['scenario', 'payments/s', 'p50 ms', 'p95 ms', 'p99 ms', 'CPU ms/1k | RSS MB', 'checked'],
      scenarios.map((s) => [
        s.name,
        s.payments_per_s ? s.payments_per_s.toLocaleString('en-US') : (s.note ?? '-'),
        f(s.p50_ms),
        f(s.p95_ms),
        f(s.p99_ms),
        usageCell(s),
        s.group === 'unavailable' ? '-' : s.verified ? 'yes' : 'NO',
      ]),
    )}\n\nratio vs Lightning-style model: unbatched ${result.ratio_vs_lightning.unbatched}x, batch=${bestBatch} ${result.ratio_vs_lightning.batched}x, best vs best ${result.ratio_vs_lightning.best_vs_best}x; against the HTLC model: unbatched ${result.ratio_vs_lightning.unbatched_vs_htlc}x, batch=100 ${result.ratio_vs_lightning.batched_vs_htlc ?? '-'}x\nratio vs LDK: unbatched ${result.ratio_vs_ldk.unbatched ?? '-'}x, pipelined ${result.ratio_vs_ldk.pipelined ?? '-'}x; LDK cooperative close ${ldkClose ? (ldkClose.verified ? `checked on chain (${ldkClose.closingTxid})` : `NOT checked: ${ldkClose.verificationError}`) : 'not reached'}\nJSON: ${OUT}\nchart: ${SVG}\n`,
  );
  if (scenarios.some((s) => s.group !== 'unavailable' && !s.verified) || !ldkClose?.verified) process.exitCode = 1;
}

/**
 * Two LDK nodes on the bench's chain: open a channel (mined), pay unbatched and pipelined (RUNS runs each,
 * on the same channel), close cooperatively and check the close on chain. A failure (the chain unreachable,
 * the channel not ready in time, a payment lost) becomes a failed row with its message, not a hang.
 */
async function runLdk(
  dir: string,
  chain: { rpcUrl: string; rpcUser: string; rpcPassword: string },
  scenarios: Scenario[],
): Promise<LdkCloseResult | null> {
  // A channel holds at most 483 HTLCs each way, counting those whose removal is still being committed, so
  // 256 outstanding payments (as the Teechain row) can overflow it, and LDK then finds no route instead of
  // queueing; 128 in flight never does.
  const LDK_WINDOW = 128;
  const amountSat = 1_000n; // as the HTLC model: above the dust threshold, so every HTLC gets an output and signatures
  const fail = (name: string, err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    // The table row gets the first line; the whole message (an LDK process's stderr, say) goes to stderr.
    process.stderr.write(`\n${name} failed: ${message}\n`);
    const first = message.split('\n')[0]!;
    scenarios.push({
      name,
      group: 'ldk',
      payments_per_s: 0,
      p50_ms: NaN,
      p95_ms: NaN,
      p99_ms: NaN,
      runs_payments_per_s: [],
      payments: 0,
      batch: null,
      verified: false,
      note: `FAILED: ${first.length > 160 ? `${first.slice(0, 157)}...` : first}`,
    });
  };
  let pair: LdkPair;
  try {
    // 16M sat: under the 2^24-sat channel limit LDK keeps without option_support_large_channel.
    pair = await LdkPair.start({
      dir,
      rpcUrl: chain.rpcUrl,
      rpcUser: chain.rpcUser,
      rpcPassword: chain.rpcPassword,
      capacitySat: 16_000_000n,
      logLevel: 'warn',
    });
  } catch (err) {
    fail('ldk 1ch (channel open)', err);
    done += 3;
    progress('ldk failed');
    return null;
  }
  try {
    progress('ldk channel');
    for (const [name, count, window] of [
      ['ldk 1ch unbatched (1 in flight)', SIZES.ldk, 1],
      ['ldk 1ch pipelined (128 in flight)', SIZES.ldkPipelined, LDK_WINDOW],
    ] as const) {
      try {
        const runs: number[] = [];
        let last: Awaited<ReturnType<LdkPair['run']>> | undefined;
        let verified = true;
        for (let r = 0; r < RUNS; r++) {
          last = await pair.run(count, window, amountSat);
          verified &&= last.verified;
          if (!last.verified) process.stderr.write(`\n${name}: ${last.verificationError}\n`);
          runs.push(last.paymentsPerSec);
        }
        scenarios.push({
          name,
          group: 'ldk',
          payments_per_s: Math.round(median(runs)),
          p50_ms: last!.latency.p50_ms,
          p95_ms: last!.latency.p95_ms,
          p99_ms: last!.latency.p99_ms,
          runs_payments_per_s: runs.map(Math.round),
          payments: count,
          batch: 1,
          verified,
          cpu_ms_per_node: last!.cpuMs,
          rss_mb_per_node: last!.rssMb,
          note: `${(last!.storeWrites / count).toFixed(1)} durable writes per payment (both nodes)`,
        });
      } catch (err) {
        fail(name, err);
      }
      progress(name);
    }
    const close = await pair
      .close()
      .catch((err: Error) => ({
        closingTxid: '',
        payeeOutputSat: 0n,
        payerOutputSat: 0n,
        feeSat: 0n,
        verified: false,
        verificationError: err.message,
      }));
    progress('ldk close');
    return close;
  } finally {
    await pair.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`\nbench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
