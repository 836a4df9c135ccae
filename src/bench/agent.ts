/**
 * A benchmark agent: one real treasury node (its own process, enclave worker, sealed state on disk,
 * TCP to its peers, REST API) that also generates payment load locally when the harness asks over IPC,
 * the way an application embedded with the node would (and as Teechain's own benchmark writes payments
 * straight to its node). Latency is measured per payment, from submission to the peer's acknowledgement.
 */
import { startDaemon, type DaemonOptions } from '../node/daemon.ts';
import { JOIN_TOKEN_ENV, RPC_PASSWORD_ENV, takeEnv } from '../node/secret-file.ts';
import type { TreasuryNode } from '../node/treasury-node.ts';
import { summarize, type LatencySummary } from './stats.ts';

export interface LoadRequest {
  cmd: 'load';
  channelId: string;
  count: number;
  /** Payments submitted together in one tick (one enclave call, one sealed state, one message). */
  batch: number;
  /** Batches in flight at once (1 = wait for each batch's acknowledgement before the next). */
  window: number;
  amountSat: number;
}

export interface LoadResult {
  count: number;
  failed: number;
  seconds: number;
  latency: LatencySummary;
  cpu_ms: number;
  rss_mb: number;
}

/** Runs the load: `count` payments in batches of `batch`, `window` batches outstanding. */
export async function runLoad(node: TreasuryNode, req: LoadRequest): Promise<LoadResult> {
  const latencies = new Float64Array(req.count);
  let next = 0;
  let failed = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const lane = async () => {
    while (next < req.count) {
      const n = Math.min(req.batch, req.count - next);
      const first = next;
      next += n;
      const start = performance.now();
      await Promise.all(
        Array.from({ length: n }, (_, i) =>
          node.pay(req.channelId, req.amountSat).then(
            () => {
              latencies[first + i] = performance.now() - start;
            },
            () => {
              failed++;
              latencies[first + i] = performance.now() - start;
            },
          ),
        ),
      );
    }
  };
  await Promise.all(Array.from({ length: req.window }, lane));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    count: req.count,
    failed,
    seconds,
    latency: summarize(latencies),
    cpu_ms: Math.round((cpu.user + cpu.system) / 1000),
    rss_mb: Math.round(process.memoryUsage().rss / 1e6),
  };
}

async function main(): Promise<void> {
  const opts = JSON.parse(process.argv[2] ?? '{}') as DaemonOptions;
  const rpcPassword = takeEnv(RPC_PASSWORD_ENV);
  const joinToken = takeEnv(JOIN_TOKEN_ENV);
  const daemon = await startDaemon({
    ...opts,
    ...(rpcPassword !== undefined ? { rpcPassword } : {}),
    ...(joinToken !== undefined ? { joinToken } : {}),
  });
  const info = await daemon.node.info();
  process.send!({
    type: 'ready',
    node_id: info.node_id,
    p2p: daemon.p2p,
    rest_url: daemon.restUrl,
    token_file: daemon.adminTokenFile,
  });
  process.on('message', (msg: LoadRequest | { cmd: 'stop' } | { cmd: 'usage' }) => {
    if (msg.cmd === 'load') {
      void runLoad(daemon.node, msg).then(
        (r) => process.send!({ type: 'result', result: r }),
        (e: Error) => process.send!({ type: 'error', message: e.message }),
      );
    } else if (msg.cmd === 'usage') {
      process.send!({
        type: 'usage',
        rss_mb: Math.round(process.memoryUsage().rss / 1e6),
        cpu_ms: Math.round((process.cpuUsage().user + process.cpuUsage().system) / 1000),
      });
    } else if (msg.cmd === 'stop') {
      void daemon.stop().then(() => process.exit(0));
    }
  });
  process.on('disconnect', () => void daemon.stop().then(() => process.exit(0)));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench agent: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
