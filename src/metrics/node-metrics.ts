/**
 * A treasury node's Prometheus metrics (prom-client), served at GET /metrics by its REST API.
 *
 * Counters and histograms are fed by the host's observer hooks (src/node/observer.ts) as things happen;
 * the gauges that describe state (channel balances, deposits, peers, chain height) are read from the node
 * when Prometheus scrapes, so they are never stale and cost nothing between scrapes. Every metric and its
 * labels is listed in docs/operations.md ("Metrics").
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ChannelView, CommitteeView, DepositView } from '../enclave/treasury/interface.ts';
import { BACKGROUND_TASKS } from '../node/background-tasks.ts';
import type { NodeObserver } from '../node/observer.ts';

/** What the state gauges read at scrape time; TreasuryNode provides it (see daemon.ts). */
export interface MetricsSource {
  channels(): Promise<ChannelView[]>;
  deposits(): Promise<DepositView[]>;
  peers(): unknown[];
  blockHeight(): Promise<number>;
  /** This node's committee, when it has one (GET /v1/committee). */
  committee?(): Promise<CommitteeView | null>;
}

/** Latency buckets (seconds): a payment on loopback takes ~1 ms alone and tens of ms in a batch under load. */
const PAYMENT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** An fdatasync takes from tens of µs (tmpfs, cache) to tens of ms (a busy disk). */
const SEAL_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

export class NodeMetrics {
  readonly registry = new Registry();
  private source: MetricsSource | null = null;

  private readonly paymentsSent = new Counter({
    name: 'teechain_payments_sent_total',
    help: 'Outgoing payments that reached an end, by status (succeeded = the peer acknowledged)',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  private readonly paymentsReceived = new Counter({
    name: 'teechain_payments_received_total',
    help: 'Incoming payments credited to this node',
    registers: [this.registry],
  });
  private readonly sentSat = new Counter({
    name: 'teechain_payment_sent_sat_total',
    help: 'Satoshis paid by succeeded outgoing payments',
    registers: [this.registry],
  });
  private readonly receivedSat = new Counter({
    name: 'teechain_payment_received_sat_total',
    help: 'Satoshis received by incoming payments',
    registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: 'teechain_payment_latency_seconds',
    help: "Outgoing payment latency, from the request to the peer enclave's acknowledgement",
    buckets: PAYMENT_BUCKETS,
    registers: [this.registry],
  });
  private readonly sealedWrites = new Counter({
    name: 'teechain_sealed_writes_total',
    help: 'Sealed-state writes by the host (one per enclave commit), by result',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  private readonly sealedWriteSeconds = new Histogram({
    name: 'teechain_sealed_write_seconds',
    help: 'Latency of a durable sealed-state write (write + fdatasync)',
    buckets: SEAL_BUCKETS,
    registers: [this.registry],
  });
  private readonly backgroundFailures = new Counter({
    name: 'teechain_background_failures_total',
    help: 'Failures of work the host does on its own (redials, chain following, journal writes…), by task',
    labelNames: ['task'] as const,
    registers: [this.registry],
  });
  private readonly viewChanges = new Counter({
    name: 'teechain_committee_view_changes_total',
    help: 'Committee views this member adopted since it started (a promotion, members changed), by its role in the new view',
    labelNames: ['role'] as const,
    registers: [this.registry],
  });
  constructor(opts: { processMetrics?: boolean } = {}) {
    const metrics = this;
    new Gauge({
      name: 'teechain_committee_replication_lag_updates',
      help: 'Replication updates not acknowledged yet: issued but not acknowledged by every backup (primary), applied but not yet acknowledged by this member (backup); no series without a committee',
      labelNames: ['role', 'index'] as const,
      registers: [this.registry],
      async collect() {
        const c = metrics.source?.committee ? await metrics.source.committee().catch(() => null) : null;
        this.reset();
        if (c && c.index >= 0) this.set({ role: c.role, index: String(c.index) }, Math.max(0, c.seq - c.acked_seq));
      },
    });
    new Gauge({
      name: 'teechain_committee_members_connected',
      help: 'Committee members with a live session to this one (itself included)',
      labelNames: ['role'] as const,
      registers: [this.registry],
      async collect() {
        const c = metrics.source?.committee ? await metrics.source.committee().catch(() => null) : null;
        this.reset();
        if (c) this.set({ role: c.role }, c.members.filter((m) => m.connected).length);
      },
    });
    new Gauge({
      name: 'teechain_channel_balance_sat',
      help: 'Balance of each open channel, per side (local = this node)',
      labelNames: ['channel_id', 'peer_id', 'side'] as const,
      registers: [this.registry],
      async collect() {
        const channels = await metrics.read((s) => s.channels());
        if (!channels) return;
        this.reset(); // closed channels drop out
        for (const c of channels) {
          if (c.status !== 'open') continue;
          this.set({ channel_id: c.channel_id, peer_id: c.peer_id, side: 'local' }, Number(c.local_balance_sat));
          this.set({ channel_id: c.channel_id, peer_id: c.peer_id, side: 'remote' }, Number(c.remote_balance_sat));
        }
      },
    });
    new Gauge({
      name: 'teechain_channels',
      help: 'Channels by status',
      labelNames: ['status'] as const,
      registers: [this.registry],
      async collect() {
        const channels = await metrics.read((s) => s.channels());
        if (!channels) return;
        for (const status of ['opening', 'open', 'closed'] as const)
          this.set({ status }, channels.filter((c) => c.status === status).length);
      },
    });
    new Gauge({
      name: 'teechain_deposits_sat',
      help: "Satoshis in this node's deposits, by status",
      labelNames: ['status'] as const,
      registers: [this.registry],
      async collect() {
        const deposits = await metrics.read((s) => s.deposits());
        if (!deposits) return;
        for (const status of ['pending', 'free', 'in_channel', 'spent'] as const) {
          this.set(
            { status },
            deposits.filter((d) => d.status === status).reduce((sum, d) => sum + Number(d.value_sat ?? 0), 0),
          );
        }
      },
    });
    new Gauge({
      name: 'teechain_peers',
      help: 'Connected, attested peers',
      registers: [this.registry],
      collect() {
        if (metrics.source) this.set(metrics.source.peers().length);
      },
    });
    new Gauge({
      name: 'teechain_chain_height',
      help: 'Block height of the chain as this node last saw it',
      registers: [this.registry],
      async collect() {
        const h = await metrics.read((s) => s.blockHeight());
        if (h !== null) this.set(h);
      },
    });
    // Every label value present from the start, at 0, so rate() works before the first failure.
    for (const status of ['succeeded', 'failed'] as const) this.paymentsSent.inc({ status }, 0);
    for (const result of ['ok', 'error'] as const) this.sealedWrites.inc({ result }, 0);
    for (const task of BACKGROUND_TASKS) this.backgroundFailures.inc({ task }, 0);
    for (const role of ['primary', 'backup'] as const) this.viewChanges.inc({ role }, 0);
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** The hooks the node host calls (TreasuryNodeOptions.observer). */
  readonly observer: NodeObserver = {
    paymentResolved: (p) => {
      if (p.direction !== 'outgoing') return;
      this.paymentsSent.inc({ status: p.status === 'succeeded' ? 'succeeded' : 'failed' });
      if (p.status !== 'succeeded') return;
      this.sentSat.inc(p.amount_sat);
      if (p.resolved_at !== null) this.latency.observe(Math.max(0, p.resolved_at - p.created_at) / 1000);
    },
    paymentsReceived: (_channel, amounts) => {
      this.paymentsReceived.inc(amounts.length);
      this.receivedSat.inc(amounts.reduce((sum, a) => sum + a, 0));
    },
    sealedWrite: (seconds, _bytes, ok) => {
      this.sealedWrites.inc({ result: ok ? 'ok' : 'error' });
      if (ok) this.sealedWriteSeconds.observe(seconds);
    },
    backgroundFailed: (task) => {
      this.backgroundFailures.inc({ task });
    },
    enclaveEvent: (e) => {
      if (e.type === 'committee_view')
        this.viewChanges.inc({ role: e.members[e.index]?.node_id === e.primary ? 'primary' : 'backup' });
    },
  };

  /** Where the state gauges read from; until it is set they are absent. */
  attach(source: MetricsSource): void {
    this.source = source;
  }

  /** The exposition text and its content type, for GET /metrics. */
  async expose(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** A state read for a gauge; null when the node cannot answer now (busy enclave, chain down), so the gauge keeps its last value. */
  private async read<T>(f: (s: MetricsSource) => Promise<T>): Promise<T | null> {
    if (!this.source) return null;
    try {
      return await f(this.source);
    } catch {
      return null;
    }
  }
}
