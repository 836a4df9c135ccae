/**
 * Polls every node of the network (REST API and /metrics) and the chain, and turns what they say into one
 * Snapshot for the page, plus one point of the payments-per-second / latency chart per poll.
 *
 * Throughput and latency come from the nodes' Prometheus counters and histogram (deltas between two
 * polls), so the chart shows exactly what a Prometheus server scraping the nodes would.
 */
import { RpcCode, RpcError, type BitcoinRpcClient } from '../chain/rpc-client.ts';
import type { NetworkFile } from '../cli/client.ts';
import type { Logger } from '../log/logger.ts';
import { bucketsOf, parseExposition, sumOf, type Sample } from '../metrics/exposition.ts';
import type { ChannelView, DepositView } from '../enclave/treasury/interface.ts';
import { checkAttestation, type AttestationPolicy } from './attestation-check.ts';
import { NodeApi } from './node-api.ts';
import { CommitteeWatch } from './committees.ts';
import type {
  AttestationStatus,
  ChannelSnapshot,
  DepositSnapshot,
  NodeSnapshot,
  RatePoint,
  Snapshot,
} from './protocol.ts';

/** How often a node's attestation is checked again with a fresh nonce. */
const ATTEST_EVERY_MS = 30_000;
/** Points kept for the chart (at the default 1 s poll: five minutes). */
const HISTORY = 300;

interface NodeReading {
  info: { block_height: number | null; num_peers: number; num_channels: number } | null;
  channels: ChannelView[];
  deposits: DepositView[];
  metrics: Sample[] | null;
  error: string | null;
}

interface Totals {
  t: number;
  succeeded: number;
  failed: number;
  latencySum: number;
  latencyCount: number;
  buckets: Array<{ le: number; count: number }>;
}

export interface CollectorOptions {
  network: NetworkFile;
  rpc: BitcoinRpcClient;
  attestation: AttestationPolicy;
  logger: Logger;
}

export class Collector {
  readonly apis: NodeApi[];
  readonly points: RatePoint[] = [];
  latest: Snapshot | null = null;
  private readonly attested = new Map<string, AttestationStatus>();
  private readonly attestedAt = new Map<string, number>();
  /** Heights of confirmed transactions, so confirmations are counted without asking the chain again. */
  private readonly txHeight = new Map<string, number>();
  private readonly committees: CommitteeWatch;
  private readonly wasReachable = new Map<string, boolean>();
  private previous: Totals | null = null;

  constructor(private readonly opts: CollectorOptions) {
    this.apis = opts.network.nodes.map((n) => new NodeApi(n));
    this.committees = new CommitteeWatch(opts.network, opts.logger);
  }

  api(name: string): NodeApi | undefined {
    return this.apis.find((a) => a.node.name === name);
  }

  /** One poll of everything; never throws (what fails is shown as an error in the snapshot). */
  async poll(): Promise<Snapshot> {
    const [readings, height, committees] = await Promise.all([
      Promise.all(this.apis.map((a) => this.read(a))),
      this.height(),
      this.committees.poll(),
    ]);
    await this.refreshAttestations(readings);
    const nameOf = (id: string) => this.opts.network.nodes.find((n) => n.nodeId === id)?.name ?? id;
    const nodes: NodeSnapshot[] = this.apis.map((a, i) =>
      nodeSnapshot(a, readings[i]!, this.attested.get(a.node.name)),
    );
    const channels = dedupeChannels(
      this.apis.map((a, i) => ({ name: a.node.name, channels: readings[i]!.channels })),
      nameOf,
    );
    const deposits: DepositSnapshot[] = [];
    for (const [i, a] of this.apis.entries()) {
      for (const d of readings[i]!.deposits) {
        deposits.push({
          node: a.node.name,
          deposit_id: d.deposit_id,
          status: d.status === 'spent' ? 'settled' : d.status,
          value_sat: d.value_sat,
          outpoint: d.outpoint,
          confirmations: null,
          channel_id: d.channel_id,
          spent_by: d.spent_by,
        });
      }
    }
    if (height.height !== null) {
      const tip = height.height;
      await Promise.all([
        ...deposits.map(async (d) => {
          if (d.outpoint) d.confirmations = await this.confirmations(d.outpoint.split(':')[0]!, tip);
        }),
        ...channels.map(async (c) => {
          if (c.settlement_txid) c.settlement_confirmations = await this.confirmations(c.settlement_txid, tip);
        }),
      ]);
    }
    const rate = this.ratePoint(readings);
    if (rate) {
      this.points.push(rate);
      if (this.points.length > HISTORY) this.points.splice(0, this.points.length - HISTORY);
    }
    this.latest = {
      at: Date.now(),
      network: { topology: this.opts.network.topology ?? null, chain_rpc: this.opts.network.chain.rpcUrl },
      chain: height,
      nodes,
      channels,
      deposits,
      committees,
      view_changes: [...this.committees.viewChanges],
      rate,
    };
    return this.latest;
  }

  private async read(a: NodeApi): Promise<NodeReading> {
    const r: NodeReading = { info: null, channels: [], deposits: [], metrics: null, error: null };
    const [info, channels, deposits, metrics] = await Promise.all([
      a.request('GET', '/v1/getinfo', undefined, 10_000),
      a.request('GET', '/v1/channels', undefined, 10_000),
      a.request('GET', '/v1/deposits', undefined, 10_000),
      a.request<string>('GET', '/metrics', undefined, 10_000),
    ]);
    const failed = [info, channels, deposits].find((x) => x.status !== 200);
    if (failed)
      r.error = failed.body?.error
        ? `${failed.body.error.code}: ${failed.body.error.message}`
        : `HTTP ${failed.status}`;
    if (info.status === 200) r.info = info.body;
    if (channels.status === 200) r.channels = channels.body.channels;
    if (deposits.status === 200) r.deposits = deposits.body.deposits;
    if (metrics.status === 200 && typeof metrics.body === 'string') r.metrics = parseExposition(metrics.body);
    const reachable = r.info !== null;
    if (this.wasReachable.get(a.node.name) !== reachable) {
      if (reachable) this.opts.logger.info({ node: a.node.name }, 'node reachable');
      else this.opts.logger.warn({ node: a.node.name, error: r.error }, 'node unreachable');
      this.wasReachable.set(a.node.name, reachable);
    }
    return r;
  }

  private async refreshAttestations(readings: NodeReading[]): Promise<void> {
    const now = Date.now();
    await Promise.all(
      this.apis.map(async (a, i) => {
        if (readings[i]!.info === null) return; // unreachable: keep the last verdict
        if (now - (this.attestedAt.get(a.node.name) ?? 0) < ATTEST_EVERY_MS) return;
        this.attestedAt.set(a.node.name, now);
        const status = await checkAttestation(a, this.opts.attestation);
        if (!status.verified)
          this.opts.logger.warn({ node: a.node.name, detail: status.detail }, 'attestation not verified');
        this.attested.set(a.node.name, status);
      }),
    );
  }

  private async height(): Promise<Snapshot['chain']> {
    try {
      return { height: await this.opts.rpc.getBlockCount(), error: null };
    } catch (err) {
      return { height: null, error: (err as Error).message };
    }
  }

  /** Confirmations of a transaction at chain height `tip`: 0 in the mempool, null if the chain does not know it. */
  private async confirmations(txid: string, tip: number): Promise<number | null> {
    const known = this.txHeight.get(txid);
    if (known !== undefined) return tip - known + 1;
    try {
      const tx = await this.opts.rpc.getRawTransaction(txid);
      if (tx.confirmations > 0) this.txHeight.set(txid, tip - tx.confirmations + 1);
      return tx.confirmations;
    } catch (err) {
      // Not known to the chain is an answer (null); any other failure is that too, but worth a log line.
      if (!(err instanceof RpcError && err.code === RpcCode.INVALID_ADDRESS_OR_KEY))
        this.opts.logger.warn({ txid, error: (err as Error).message }, 'confirmations lookup failed');
      return null;
    }
  }

  private ratePoint(readings: NodeReading[]): RatePoint | null {
    const withMetrics = readings.map((r) => r.metrics).filter((m): m is Sample[] => m !== null);
    const totals: Totals = {
      t: Date.now() / 1000,
      succeeded: 0,
      failed: 0,
      latencySum: 0,
      latencyCount: 0,
      buckets: [],
    };
    const buckets = new Map<number, number>();
    for (const m of withMetrics) {
      totals.succeeded += sumOf(m, 'teechain_payments_sent_total', { status: 'succeeded' });
      totals.failed += sumOf(m, 'teechain_payments_sent_total', { status: 'failed' });
      totals.latencySum += sumOf(m, 'teechain_payment_latency_seconds_sum');
      totals.latencyCount += sumOf(m, 'teechain_payment_latency_seconds_count');
      for (const b of bucketsOf(m, 'teechain_payment_latency_seconds'))
        buckets.set(b.le, (buckets.get(b.le) ?? 0) + b.count);
    }
    totals.buckets = [...buckets.entries()].map(([le, count]) => ({ le, count })).sort((x, y) => x.le - y.le);
    const prev = this.previous;
    this.previous = totals;
    // A node restarting resets its counters: skip that interval rather than plot a negative rate.
    if (!prev || totals.succeeded < prev.succeeded || totals.failed < prev.failed) return null;
    const dt = Math.max(0.001, totals.t - prev.t);
    const n = totals.latencyCount - prev.latencyCount;
    return {
      t: totals.t,
      payments_per_s: round((totals.succeeded - prev.succeeded) / dt),
      failed_per_s: round((totals.failed - prev.failed) / dt),
      latency_ms: n > 0 ? round(((totals.latencySum - prev.latencySum) / n) * 1000) : null,
      latency_p95_ms: n > 0 ? percentile(totals.buckets, prev.buckets, 0.95) : null,
    };
  }
}

function nodeSnapshot(a: NodeApi, r: NodeReading, attestation: AttestationStatus | undefined): NodeSnapshot {
  const sum = (ds: DepositView[]) => ds.reduce((s, d) => s + BigInt(d.value_sat ?? '0'), 0n).toString();
  const m = r.metrics ?? [];
  return {
    name: a.node.name,
    node_id: a.node.nodeId,
    rest_url: a.node.restUrl,
    reachable: r.info !== null,
    error: r.error,
    attestation: attestation ?? { verified: false, measurement: null, detail: 'not checked yet', checked_at: null },
    block_height: r.info?.block_height ?? null,
    num_peers: r.info?.num_peers ?? null,
    num_channels: r.info?.num_channels ?? null,
    deposits: {
      free_sat: sum(r.deposits.filter((d) => d.status === 'free')),
      in_channels_sat: sum(r.deposits.filter((d) => d.status === 'in_channel')),
      pending_sat: sum(r.deposits.filter((d) => d.status === 'pending')),
    },
    payments: {
      sent_succeeded: sumOf(m, 'teechain_payments_sent_total', { status: 'succeeded' }),
      sent_failed: sumOf(m, 'teechain_payments_sent_total', { status: 'failed' }),
      received: sumOf(m, 'teechain_payments_received_total'),
    },
  };
}

/**
 * Each channel appears in both ends' lists; it is shown once, from the opener's view when the opener
 * answered (so "a" is always the opener), else from the other end's.
 */
export function dedupeChannels(
  views: Array<{ name: string; channels: ChannelView[] }>,
  nameOf: (nodeId: string) => string,
): ChannelSnapshot[] {
  const byId = new Map<string, ChannelSnapshot & { fromOpener: boolean }>();
  for (const { name, channels } of views) {
    for (const c of channels) {
      const seen = byId.get(c.channel_id);
      if (seen?.fromOpener) continue;
      const peer = nameOf(c.peer_id);
      const me = { node: name, balance_sat: c.local_balance_sat };
      const them = { node: peer, balance_sat: c.remote_balance_sat };
      byId.set(c.channel_id, {
        channel_id: c.channel_id,
        status: c.status,
        a: c.initiator ? me : them,
        b: c.initiator ? them : me,
        peer_connected: c.peer_connected,
        settlement_txid: c.settlement_txid,
        settled_by: c.settled_by === null ? null : c.settled_by === 'local' ? name : peer,
        settlement_confirmations: null,
        fromOpener: c.initiator,
      });
    }
  }
  return [...byId.values()].map(({ fromOpener: _, ...c }) => c);
}

/** The q-quantile of the observations between two cumulative histograms, at the upper bound of its bucket (in ms). */
function percentile(now: Totals['buckets'], before: Totals['buckets'], q: number): number | null {
  const prev = new Map(before.map((b) => [b.le, b.count]));
  const delta = now.map((b) => ({ le: b.le, count: b.count - (prev.get(b.le) ?? 0) }));
  const total = delta.at(-1)?.count ?? 0;
  if (total <= 0) return null;
  const bucket = delta.find((b) => b.count >= q * total);
  if (!bucket || !Number.isFinite(bucket.le)) return null;
  return round(bucket.le * 1000);
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
