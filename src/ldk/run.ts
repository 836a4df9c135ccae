/**
 * The harness side of the LDK scenario: two LDK node processes (src/ldk/main.ts), a payer and a payee, on
 * the same regtest chain and TCP loopback as the Teechain nodes. `startLdkPair` connects them, opens a
 * channel funded by the payer's regtest wallet, mines the confirmations and waits for channel_ready;
 * `run` pays payee-made BOLT 11 invoices and checks both balances moved by exactly the sum paid;
 * `close` closes cooperatively, mines, and checks the closing transaction's outputs on chain.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BitcoinRpcClient } from '../chain/rpc-client.ts';
import { Faucet } from '../chain/faucet.ts';
import type { LatencySummary } from '../bench/stats.ts';
import { metered } from '../bench/usage.ts';
import type { LdkLoadResult } from './main.ts';
import type { LdkNodeOptions } from './node.ts';
import { RPC_PASSWORD_ENV } from '../node/secret-file.ts';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), 'main.ts');

export interface ChainAccess {
  rpcUrl: string;
  rpcUser: string;
  rpcPassword: string;
}

/** A node's state as main.ts reports it (amounts as decimal strings). */
export interface NodeState {
  channel: {
    channelId: string;
    fundingTxid: string | null;
    capacitySat: string;
    ready: boolean;
    usable: boolean;
    outboundMsat: string;
    inboundMsat: string;
    pendingHtlcs: number;
  } | null;
  claimable_sat: string;
  claimed_msat: string;
  claimed_count: number;
  broadcast: string[];
  shutdown_script: string;
  store: { writes: number; bytesWritten: number; writeMs: number };
}

/** One LDK node process. */
export class LdkProcess {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(
    readonly name: string,
    private readonly proc: ChildProcess,
    readonly nodeId: string,
    readonly port: number,
    private stderr: () => string,
  ) {
    proc.on('message', (m: { id?: number; ok?: boolean; result?: unknown; error?: string }) => {
      const w = m.id === undefined ? undefined : this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id!);
      if (m.ok) w.resolve(m.result);
      else w.reject(new Error(`${name}: ${m.error}`));
    });
    proc.on('exit', (code) => {
      for (const w of this.waiting.values())
        w.reject(new Error(`${name}: LDK node exited (${code}) ${this.stderr().trim()}`));
      this.waiting.clear();
    });
  }

  /** Spawns the process; rejects with the node's own message when it cannot start (e.g. the chain is unreachable). */
  static async spawn(name: string, opts: LdkNodeOptions, startTimeoutMs = 60_000): Promise<LdkProcess> {
    // LDK_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" profiles the nodes (NODE_OPTIONS refuses --cpu-prof).
    const extra = (process.env.LDK_NODE_ARGS ?? '').split(' ').filter(Boolean);
    // argv is readable by every local user: the RPC password goes in the environment instead.
    const { rpcPassword, ...visible } = opts;
    const env = { ...process.env, [RPC_PASSWORD_ENV]: rpcPassword };
    const proc = spawn(process.execPath, [...extra, '--import', 'tsx', MAIN, JSON.stringify(visible)], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env,
    });
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const ready = await new Promise<{ node_id: string; port: number }>((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`${name}: LDK node did not start within ${startTimeoutMs} ms`));
      }, startTimeoutMs);
      proc.once('message', (m: { type?: string; node_id: string; port: number; message?: string }) => {
        clearTimeout(timer);
        if (m.type === 'ready') resolve(m);
        else reject(new Error(`${name}: ${m.message}`));
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${name}: LDK node exited (${code}) before it was ready ${stderr.trim()}`));
      });
    });
    return new LdkProcess(name, proc, ready.node_id, ready.port, () => stderr);
  }

  request<T>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.proc.exitCode !== null || !this.proc.connected)
        return reject(new Error(`${this.name}: LDK node is not running`));
      const id = this.nextId++;
      // The node process (main.ts) answers `cmd` with its T: the one place that is taken on trust.
      this.waiting.set(id, { resolve: (v) => resolve(v as T), reject });
      this.proc.send({ id, cmd, ...args });
    });
  }

  state(): Promise<NodeState> {
    return this.request('state');
  }

  usage(): Promise<{ cpu_ms: number; rss_mb: number }> {
    return this.request('usage');
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    if (this.proc.connected) this.proc.send({ cmd: 'stop' });
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }
}

export interface LdkPairOptions extends ChainAccess {
  dir: string;
  capacitySat: bigint;
  /** Blocks mined on the funding transaction (LDK's default minimum depth is 6). */
  confirmations?: number;
  /** How long to wait for channel_ready after mining (default 30 s). */
  readyTimeoutMs?: number;
  logLevel?: LdkNodeOptions['logLevel'];
}

export interface LdkRunResult {
  payments: number;
  window: number;
  seconds: number;
  paymentsPerSec: number;
  latency: LatencySummary;
  failed: number;
  /** Sum of the payments that succeeded, and how much the payee's claimable balance grew (sat). */
  paidSat: bigint;
  payeeGainSat: bigint;
  /** Payee's claimable balance rose, and the payer's fell, by exactly payments × amount; every payment claimed. */
  verified: boolean;
  verificationError?: string;
  /** CPU (ms) each process spent during the run, payer then payee; their RSS (MB) after it. */
  cpuMs: [number, number];
  rssMb: [number, number];
  /** Durable store writes during the run, payer + payee. */
  storeWrites: number;
}

export interface LdkCloseResult {
  closingTxid: string;
  payeeOutputSat: bigint;
  payerOutputSat: bigint;
  feeSat: bigint;
  verified: boolean;
  verificationError?: string;
}

/** Waits for `cond` (polled), or throws `what` after `timeoutMs`. */
async function poll(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`${what} (waited ${timeoutMs} ms)`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export class LdkPair {
  private constructor(
    readonly payer: LdkProcess,
    readonly payee: LdkProcess,
    readonly rpc: BitcoinRpcClient,
    readonly faucet: Faucet,
    readonly capacitySat: bigint,
    readonly fundingTxid: string,
  ) {}

  /** Two nodes, connected, with a confirmed, ready channel from payer to payee. Stops both on failure. */
  static async start(opts: LdkPairOptions): Promise<LdkPair> {
    const node = (role: string): LdkNodeOptions => ({
      datadir: join(opts.dir, role),
      rpcUrl: opts.rpcUrl,
      rpcUser: opts.rpcUser,
      rpcPassword: opts.rpcPassword,
      logLevel: opts.logLevel ?? 'info',
    });
    const started: LdkProcess[] = [];
    try {
      const [payer, payee] = await Promise.all([
        LdkProcess.spawn('ldk payer', node('payer')),
        LdkProcess.spawn('ldk payee', node('payee')),
      ]);
      started.push(payer, payee);
      const rpc = new BitcoinRpcClient({ url: opts.rpcUrl, user: opts.rpcUser, password: opts.rpcPassword });
      const faucet = new Faucet(rpc);
      await payer.request('connect', { host: '127.0.0.1', port: payee.port, nodeId: payee.nodeId });
      const fundingTxid = await payer.request<string>('open', {
        peer: payee.nodeId,
        capacitySat: String(opts.capacitySat),
      });
      await faucet.mine(opts.confirmations ?? 6);
      await Promise.all([payer.request('sync'), payee.request('sync')]);
      const readyTimeoutMs = opts.readyTimeoutMs ?? 30_000;
      await Promise.all([
        payer.request('waitReady', { timeoutMs: readyTimeoutMs }),
        payee.request('waitReady', { timeoutMs: readyTimeoutMs }),
      ]);
      return new LdkPair(payer, payee, rpc, faucet, opts.capacitySat, fundingTxid);
    } catch (err) {
      await Promise.all(started.map((p) => p.stop().catch(() => undefined)));
      throw err;
    }
  }

  /** Pays `payments` invoices of `amountSat` each, `window` in flight, and checks the balances. */
  async run(payments: number, window: number, amountSat: bigint, settleTimeoutMs = 60_000): Promise<LdkRunResult> {
    const [payerBefore, payeeBefore] = await Promise.all([this.payer.state(), this.payee.state()]);
    // The payee makes the invoices before the clock starts, as a shop hands out invoices before it is paid.
    const invoices = await this.payee.request<string[]>('invoices', {
      count: payments,
      amountMsat: String(amountSat * 1000n),
    });
    const [load, spent] = await metered([this.payer, this.payee], () =>
      this.payer.request<LdkLoadResult>('load', { invoices, window }),
    );
    const paid = BigInt(payments - load.failed) * amountSat;
    let verificationError: string | undefined;
    // The last fulfils finish their commitment round after PaymentSent: wait until no HTLC is left.
    let payerAfter = payerBefore;
    let payeeAfter = payeeBefore;
    try {
      await poll(
        async () => {
          [payerAfter, payeeAfter] = await Promise.all([this.payer.state(), this.payee.state()]);
          return (
            payerAfter.channel?.pendingHtlcs === 0 &&
            payeeAfter.channel?.pendingHtlcs === 0 &&
            payeeAfter.claimed_count - payeeBefore.claimed_count === payments - load.failed
          );
        },
        settleTimeoutMs,
        'HTLCs still pending after the run',
      );
    } catch (err) {
      verificationError = (err as Error).message;
    }
    const payeeGain = BigInt(payeeAfter.claimable_sat) - BigInt(payeeBefore.claimable_sat);
    const payerLoss = BigInt(payerBefore.claimable_sat) - BigInt(payerAfter.claimable_sat);
    const claimed = BigInt(payeeAfter.claimed_msat) - BigInt(payeeBefore.claimed_msat);
    if (!verificationError && load.failed > 0)
      verificationError = `${load.failed} payments failed: ${load.errors.join('; ')}`;
    if (!verificationError && claimed !== paid * 1000n)
      verificationError = `payee claimed ${claimed} msat, expected ${paid * 1000n}`;
    if (!verificationError && payeeGain !== paid)
      verificationError = `payee balance grew by ${payeeGain} sat, expected ${paid}`;
    if (!verificationError && payerLoss !== paid)
      verificationError = `payer balance fell by ${payerLoss} sat, expected ${paid}`;
    return {
      payments,
      window,
      seconds: load.seconds,
      paymentsPerSec: payments / load.seconds,
      latency: load.latency,
      failed: load.failed,
      paidSat: paid,
      payeeGainSat: payeeGain,
      verified: verificationError === undefined,
      ...(verificationError ? { verificationError } : {}),
      cpuMs: [spent.cpu_ms[0]!, spent.cpu_ms[1]!],
      rssMb: [spent.rss_mb[0]!, spent.rss_mb[1]!],
      storeWrites:
        payerAfter.store.writes + payeeAfter.store.writes - payerBefore.store.writes - payeeBefore.store.writes,
    };
  }

  /**
   * Cooperative close, initiated by the payer, mined; then the closing transaction is read back from the
   * chain: it must spend the funding output and pay the payee exactly its channel balance to its shutdown
   * script, and the payer its balance less the closing fee (the funder pays it) to its own.
   */
  async close(timeoutMs = 30_000): Promise<LdkCloseResult> {
    const [payerState, payeeState] = await Promise.all([this.payer.state(), this.payee.state()]);
    await this.payer.request('close', { timeoutMs });
    await this.payee.request('waitClosed', { timeoutMs });
    const candidates = [
      ...new Set([...(await this.payer.state()).broadcast, ...(await this.payee.state()).broadcast]),
    ].filter((t) => t !== this.fundingTxid);
    await this.faucet.mine(1);
    for (const txid of candidates) {
      const tx = await this.rpc.getRawTransaction(txid).catch(() => null);
      if (!tx || !tx.vin.some((i) => i.txid === this.fundingTxid)) continue;
      const out = (script: string) => tx.vout.find((o) => o.scriptPubKey.hex === script)?.valueSat ?? 0n;
      const payeeOutputSat = out(payeeState.shutdown_script);
      const payerOutputSat = out(payerState.shutdown_script);
      const feeSat = this.capacitySat - tx.vout.reduce((s, o) => s + o.valueSat, 0n);
      const payeeSat = BigInt(payeeState.claimable_sat);
      const payerSat = BigInt(payerState.claimable_sat);
      let verificationError: string | undefined;
      if (tx.confirmations < 1) verificationError = `closing transaction ${txid} is not confirmed`;
      else if (payeeOutputSat !== payeeSat)
        verificationError = `payee output ${payeeOutputSat} sat, its balance was ${payeeSat}`;
      // The funder's balance already excludes the commitment fee; the closing fee is at most that, and the
      // difference goes back to the funder.
      else if (payerOutputSat + feeSat < payerSat || payerOutputSat + payeeOutputSat + feeSat !== this.capacitySat) {
        verificationError = `payer output ${payerOutputSat} sat + fee ${feeSat} sat does not account for its balance ${payerSat} sat`;
      }
      return {
        closingTxid: txid,
        payeeOutputSat,
        payerOutputSat,
        feeSat,
        verified: verificationError === undefined,
        ...(verificationError ? { verificationError } : {}),
      };
    }
    throw new Error(`no broadcast transaction spends the funding output ${this.fundingTxid}`);
  }

  async stop(): Promise<void> {
    await Promise.all([this.payer.stop(), this.payee.stop()]);
  }
}
