/**
 * Benchmark plumbing: agents (real node processes that generate load on command), funded channels
 * between them, and the checks that the payments really happened.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiClient } from '../cli/client.ts';
import { openChannelBetween } from '../cli/channels.ts';
import type { DaemonOptions } from '../node/daemon.ts';
import { JOIN_TOKEN_ENV, RPC_PASSWORD_ENV } from '../node/secret-file.ts';
import type { LoadRequest, LoadResult } from './agent.ts';

const AGENT = join(dirname(fileURLToPath(import.meta.url)), 'agent.ts');

export interface Agent {
  name: string;
  nodeId: string;
  p2p: string;
  api: ApiClient;
  load(req: Omit<LoadRequest, 'cmd'>): Promise<LoadResult>;
  usage(): Promise<{ rss_mb: number; cpu_ms: number }>;
  stop(): Promise<void>;
  /** kill -9: the node gets no chance to close anything (the promotion figure's fault). */
  kill(): Promise<void>;
}

/** What an agent process says over IPC (src/bench/agent.ts). */
type AgentMessage =
  | { type: 'ready'; node_id: string; p2p: string; rest_url: string; token_file: string }
  | { type: 'result'; result: LoadResult }
  | { type: 'usage'; rss_mb: number; cpu_ms: number }
  | { type: 'error'; message: string };

export async function spawnAgent(name: string, opts: DaemonOptions): Promise<Agent> {
  // BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=prof" profiles every agent (NODE_OPTIONS refuses --cpu-prof).
  const extra = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  // The options travel in argv, which every local user can read: the secrets go in the environment.
  const { rpcPassword, joinToken, ...visible } = opts;
  const env = {
    ...process.env,
    ...(rpcPassword !== undefined ? { [RPC_PASSWORD_ENV]: rpcPassword } : {}),
    ...(joinToken !== undefined ? { [JOIN_TOKEN_ENV]: joinToken } : {}),
  };
  const proc: ChildProcess = spawn(process.execPath, [...extra, '--import', 'tsx', AGENT, JSON.stringify(visible)], {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    env,
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const ready = await new Promise<Extract<AgentMessage, { type: 'ready' }>>((resolve, reject) => {
    proc.once('message', (m: AgentMessage) =>
      m.type === 'ready' ? resolve(m) : reject(new Error(m.type === 'error' ? m.message : `agent ${name}: ${m.type}`)),
    );
    proc.once('exit', (code) => reject(new Error(`agent ${name} exited ${code}: ${stderr}`)));
  });
  const api = await ApiClient.forNode({ restUrl: ready.rest_url, tokenFile: ready.token_file });
  const ask = <K extends 'result' | 'usage'>(msg: object, type: K) =>
    new Promise<Extract<AgentMessage, { type: K }>>((resolve, reject) => {
      const on = (m: AgentMessage) => {
        if (m.type === type) {
          proc.off('message', on);
          resolve(m as Extract<AgentMessage, { type: K }>);
        }
        if (m.type === 'error') {
          proc.off('message', on);
          reject(new Error(m.message));
        }
      };
      proc.on('message', on);
      proc.send(msg);
    });
  return {
    name,
    nodeId: ready.node_id,
    p2p: ready.p2p,
    api,
    load: async (req) => (await ask({ cmd: 'load', ...req }, 'result')).result,
    usage: () => ask({ cmd: 'usage' }, 'usage'),
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.send({ cmd: 'stop' });
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
    kill: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** Funds a deposit on each side from the faucet, connects a → b and opens a channel with both deposits. */
export async function openFundedChannel(a: Agent, b: Agent, depositSat: number): Promise<string> {
  const [da, db] = await Promise.all([
    a.api.request<{ deposit_id: string }>('POST', '/v1/deposits', { amount_sat: depositSat, fund: true }),
    b.api.request<{ deposit_id: string }>('POST', '/v1/deposits', { amount_sat: depositSat, fund: true }),
  ]);
  return openChannelBetween(a, b, [da.deposit_id], [db.deposit_id]);
}

export interface ChannelTotals {
  aSent: bigint;
  aReceived: bigint;
  bSent: bigint;
  bReceived: bigint;
}

export async function totals(a: Agent, b: Agent, channelId: string): Promise<ChannelTotals> {
  const [va, vb] = await Promise.all([
    a.api.request('GET', `/v1/channels/${channelId}`),
    b.api.request('GET', `/v1/channels/${channelId}`),
  ]);
  return {
    aSent: BigInt(va.total_sent_sat),
    aReceived: BigInt(va.total_received_sat),
    bSent: BigInt(vb.total_sent_sat),
    bReceived: BigInt(vb.total_received_sat),
  };
}

/** True when each side's payee credited exactly what its payer sent over the run, and both sides agree. */
export function movedExactly(before: ChannelTotals, after: ChannelTotals, aPaid: bigint, bPaid: bigint): boolean {
  return (
    after.aSent - before.aSent === aPaid &&
    after.bReceived - before.bReceived === aPaid &&
    after.bSent - before.bSent === bPaid &&
    after.aReceived - before.aReceived === bPaid
  );
}
