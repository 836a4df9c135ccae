/**
 * An LDK node process for the benchmark: starts an LdkNode (argv[2] is its JSON options), reports
 * `{type:'ready', node_id, port}` over IPC, then answers `{id, cmd, …}` requests with `{id, ok, result}` or
 * `{id, ok:false, error}`. Amounts cross IPC as decimal strings (JSON has no bigint). Payment load runs
 * here, next to the node, as the Teechain bench agent's does (src/bench/agent.ts).
 */
import { LdkNode, type LdkNodeOptions } from './node.ts';
import { RPC_PASSWORD_ENV, takeEnv } from '../node/secret-file.ts';
import { summarize, type LatencySummary } from '../bench/stats.ts';

export interface LdkLoadResult {
  count: number;
  failed: number;
  seconds: number;
  latency: LatencySummary;
  /** The first few failure messages. */
  errors: string[];
}

/** Pays `invoices` with `window` payments in flight (1 = each waits for the previous one's PaymentSent). */
export async function payAll(node: LdkNode, invoices: string[], window: number): Promise<LdkLoadResult> {
  const latencies = new Float64Array(invoices.length);
  const errors: string[] = [];
  let next = 0;
  let failed = 0;
  const t0 = performance.now();
  const lane = async () => {
    while (next < invoices.length) {
      const i = next++;
      const start = performance.now();
      try {
        latencies[i] = await node.pay(invoices[i]!);
      } catch (err) {
        failed++;
        latencies[i] = performance.now() - start;
        if (errors.length < 5) errors.push((err as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, window) }, lane));
  return {
    count: invoices.length,
    failed,
    seconds: (performance.now() - t0) / 1000,
    latency: summarize(latencies),
    errors,
  };
}

type Request = { id: number; cmd: string; [k: string]: unknown };

function usage() {
  const cpu = process.cpuUsage();
  return { cpu_ms: Math.round((cpu.user + cpu.system) / 1000), rss_mb: Math.round(process.memoryUsage().rss / 1e6) };
}

async function handle(node: LdkNode, req: Request): Promise<unknown> {
  switch (req.cmd) {
    case 'connect':
      await node.connect(String(req.host), Number(req.port), String(req.nodeId));
      return null;
    case 'open':
      return node.openChannel(String(req.peer), BigInt(String(req.capacitySat)), Number(req.timeoutMs ?? 30_000));
    case 'sync':
      await node.sync();
      return null;
    case 'waitReady':
      await node.waitChannelReady(Number(req.timeoutMs));
      return null;
    case 'state': {
      const c = node.channel();
      return {
        channel: c && {
          ...c,
          capacitySat: String(c.capacitySat),
          outboundMsat: String(c.outboundMsat),
          inboundMsat: String(c.inboundMsat),
        },
        claimable_sat: String(node.claimableOnCloseSat()),
        claimed_msat: String(node.claimedMsat),
        claimed_count: node.claimedCount,
        broadcast: node.broadcaster.broadcast,
        shutdown_script: node.shutdownScript(),
        store: node.store.stats,
      };
    }
    case 'invoices':
      return node.createInvoices(Number(req.count), BigInt(String(req.amountMsat)));
    case 'load':
      return payAll(node, req.invoices as string[], Number(req.window));
    case 'close':
      await node.closeChannel(Number(req.timeoutMs ?? 30_000));
      return null;
    case 'waitClosed':
      return node.waitClosed(Number(req.timeoutMs ?? 30_000));
    case 'usage':
      return usage();
    default:
      throw new Error(`unknown command ${req.cmd}`);
  }
}

async function main(): Promise<void> {
  const opts = {
    ...(JSON.parse(process.argv[2] ?? '{}') as Omit<LdkNodeOptions, 'rpcPassword'>),
    rpcPassword: takeEnv(RPC_PASSWORD_ENV) ?? '',
  };
  const node = await LdkNode.start(opts);
  const stop = () => void node.stop().finally(() => process.exit(0));
  process.send!({ type: 'ready', node_id: node.nodeId, port: node.port });
  process.on('message', (req: Request) => {
    if (req.cmd === 'stop') return stop();
    handle(node, req).then(
      (result) => process.send!({ id: req.id, ok: true, result }),
      (err: Error) => process.send!({ id: req.id, ok: false, error: err.message }),
    );
  });
  process.on('disconnect', stop);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    if (process.send) process.send({ type: 'error', message }, () => process.exit(1));
    else {
      process.stderr.write(`ldk node: ${message}\n`);
      process.exit(1);
    }
  });
}
