/**
 * One party of the Lightning-style baseline: a Channel driven over our TCP transport, with durable state
 * and group commit.
 *
 * Work happens in turns: a turn takes every message that has arrived (and, on the payer, the next batch of
 * submitted payments), runs the protocol on them, persists the new state once if it changed, and only then
 * sends the turn's messages. Messages arriving while a turn waits for its fsync are handled together in
 * the next turn, so one fsync covers all of them; nothing leaves a party before the state it implies is
 * on disk (the same rule as the Teechain side: persist before acknowledging).
 */
import { randomBytes } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import { Transport } from '../network/transport.ts';
import {
  Channel,
  configFromOpen,
  DEFAULT_CHANNEL_PARAMS,
  FUNDING_TX_HASH,
  PaymentRejected,
  ProtocolError,
  type TurnEvents,
} from './channel.ts';
import { basepointsOf, generateChannelSecrets, type ChannelSecrets } from './keys.ts';
import { CommitmentSecrets } from './revocation.ts';
import { saveKeys, saveSnapshot, summarizeSnapshot, type SnapshotSummary } from './store.ts';
import { decodeMessage, encodeMessage, WireError, type LnMessage, type LnMode, type OpenChannel } from './wire.ts';

export type Role = 'payer' | 'payee';

/** Test-only misbehaviour: the next message of that kind this party sends is corrupted. */
export type Fault = 'bad_commitment_signature' | 'bad_revocation_secret';

/** The counterparty failed the channel (it sent `error`), or the connection dropped. */
export class PeerFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeerFailure';
  }
}

export interface LoadOptions {
  payments: number;
  /** Payments per commitment update (per round). */
  batchSize: number;
  amountSat: bigint;
  /** Batches the client keeps submitted at once (1: submit the next batch when the previous one is final). */
  window?: number;
}

export interface LoadResult {
  payments: number;
  seconds: number;
  paymentsPerSec: number;
  /** Per payment, ms from submission until the payer's revoke_and_ack made it final (see docs/benchmarks.md, "The Lightning-style baseline"). */
  latenciesMs: number[];
  /** How many times the payer's own commitment advanced during the run. */
  commitmentUpdates: number;
}

export interface PartyUsage {
  pid: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  rssMb: number;
  maxRssMb: number;
  /** Durable writes of the channel state (each one fsyncs the file and the directory). */
  persists: number;
  framesIn: number;
  framesOut: number;
}

interface QueuedPayment {
  amountSat: bigint;
  resolve(finishedAt: number): void;
  reject(err: Error): void;
}

interface Waiter {
  pred: () => boolean;
  resolve(): void;
  reject(err: Error): void;
}

const DEFAULT_BATCH = 1;

export class Party {
  private readonly transport: Transport;
  private conn: string | null = null;
  private channel: Channel | null = null;
  private readonly inbox: LnMessage[] = [];
  private wakeSetup: (() => void) | null = null;
  private turnRunning = false;
  private readonly queue: QueuedPayment[] = [];
  private readonly inflight = new Map<number, QueuedPayment>();
  private readonly waiters: Waiter[] = [];
  private failure: Error | null = null;
  private fault: Fault | null = null;
  private stopping = false;
  private batchSize = DEFAULT_BATCH;
  private persists = 0;
  private framesIn = 0;
  private framesOut = 0;
  /** Settles when the channel is open (both commitment 0 signed and persisted). */
  readonly opened: Promise<void>;
  private markOpened!: () => void;
  private markOpenFailed!: (err: Error) => void;

  constructor(
    readonly role: Role,
    readonly dir: string,
  ) {
    this.opened = new Promise((resolve, reject) => {
      this.markOpened = resolve;
      this.markOpenFailed = reject;
    });
    this.opened.catch(() => {}); // observed through waitUntil / connect
    this.transport = new Transport({
      onOpen: (conn) => this.onOpen(conn),
      onFrames: (conn, frames) => this.onFrames(conn, frames),
      onClose: (conn, reason) => {
        if (conn === this.conn && !this.stopping) this.fail(new PeerFailure(`connection closed: ${reason}`), false);
      },
    });
  }

  /** Payee: listens for the payer (port 0 picks one); resolves with the bound port. */
  listen(host: string, port: number): Promise<number> {
    if (this.role !== 'payee') throw new Error('only the payee listens');
    return this.transport.listen(host, port);
  }

  /** Payer: dials the payee and opens a channel of `capacitySat`, funded entirely by the payer. */
  async connect(host: string, port: number, opts: { mode: LnMode; capacitySat: bigint }): Promise<void> {
    if (this.role !== 'payer') throw new Error('only the payer dials');
    await this.transport.dial(host, port);
    await this.openAsPayer(opts.mode, opts.capacitySat).catch((err: Error) => {
      this.fail(err, err instanceof ProtocolError || err instanceof WireError);
      throw err;
    });
  }

  /** Submits one payment; resolves with the time (performance.now()) it became final. */
  pay(amountSat: bigint): Promise<number> {
    if (this.role !== 'payer') return Promise.reject(new Error('only the payer pays'));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.queue.push({ amountSat, resolve, reject });
      this.kick();
    });
  }

  /**
   * Closed-loop load: `window` clients each submit `batchSize` payments, wait until all are final, submit the
   * next batch. Waits for the channel to settle (every round complete) before returning.
   */
  async runLoad(opts: LoadOptions): Promise<LoadResult> {
    await this.opened;
    const ch = this.channel!;
    if (!(opts.payments > 0 && opts.batchSize > 0)) throw new Error('payments and batchSize must be positive');
    this.batchSize = opts.batchSize;
    const latencies = new Float64Array(opts.payments);
    const startIndex = ch.local.index;
    let next = 0;
    const t0 = performance.now();
    const client = async () => {
      while (next < opts.payments) {
        const n = Math.min(opts.batchSize, opts.payments - next);
        const first = next;
        next += n;
        const submitted = performance.now();
        const done: Promise<void>[] = [];
        for (let i = 0; i < n; i++)
          done.push(
            this.pay(opts.amountSat).then((at) => {
              latencies[first + i] = at - submitted;
            }),
          );
        await Promise.all(done);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, opts.window ?? 1) }, client));
    const seconds = (performance.now() - t0) / 1000;
    await this.waitUntil(() => ch.quiescent());
    return {
      payments: opts.payments,
      seconds,
      paymentsPerSec: opts.payments / seconds,
      latenciesMs: Array.from(latencies, (x) => Math.round(x * 1000) / 1000),
      commitmentUpdates: ch.local.index - startIndex,
    };
  }

  /** Resolves once `pred` holds between turns (state persisted); rejects if the channel fails. */
  waitUntil(pred: () => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ pred, resolve, reject });
      this.notifyWaiters();
    });
  }

  /**
   * Waits until the channel is settled (no round in progress) with at least these commitment numbers,
   * then summarises the in-memory state (which equals what is on disk at that point).
   */
  async settledState(min: { localIndex?: number; remoteIndex?: number } = {}): Promise<SnapshotSummary> {
    await this.waitUntil(() => {
      const ch = this.channel;
      return (
        !!ch && ch.quiescent() && ch.local.index >= (min.localIndex ?? 0) && ch.remote.index >= (min.remoteIndex ?? 0)
      );
    });
    return summarizeSnapshot(this.channel!.snapshot());
  }

  inject(fault: Fault): void {
    this.fault = fault;
  }

  usage(): PartyUsage {
    const cpu = process.cpuUsage();
    return {
      pid: process.pid,
      cpuUserMs: cpu.user / 1000,
      cpuSystemMs: cpu.system / 1000,
      rssMb: process.memoryUsage().rss / 1e6,
      maxRssMb: process.resourceUsage().maxRSS / 1e3,
      persists: this.persists,
      framesIn: this.framesIn,
      framesOut: this.framesOut,
    };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.transport.stop();
  }

  // --- connection and channel opening ---

  private onOpen(conn: string): void {
    if (this.conn !== null) {
      this.transport.close(conn); // one channel, one peer
      return;
    }
    this.conn = conn;
    // The baseline has no attestation handshake to wait for: its one peer is trusted from the start.
    this.transport.authenticated(conn);
    if (this.role === 'payee') {
      this.openAsPayee().catch((err: Error) =>
        this.fail(err, err instanceof ProtocolError || err instanceof WireError),
      );
    }
  }

  private onFrames(conn: string, frames: Uint8Array[]): void {
    if (conn !== this.conn || this.failure) return;
    try {
      for (const f of frames) this.inbox.push(decodeMessage(f));
      this.framesIn += frames.length;
    } catch (err) {
      this.fail(err as Error, true);
      return;
    }
    if (this.channel) this.kick();
    else this.wakeSetup?.();
  }

  private async nextSetupMessage<T extends LnMessage['type']>(type: T): Promise<Extract<LnMessage, { type: T }>> {
    for (;;) {
      if (this.failure) throw this.failure;
      const m = this.inbox.shift();
      if (m) {
        if (m.type === 'error') throw new PeerFailure(`peer failed the channel: ${m.message}`);
        if (m.type !== type) throw new ProtocolError(`expected ${type}, got ${m.type}`);
        return m as Extract<LnMessage, { type: T }>;
      }
      await new Promise<void>((resolve) => {
        this.wakeSetup = resolve;
      });
      this.wakeSetup = null;
    }
  }

  private async openAsPayer(mode: LnMode, capacitySat: bigint): Promise<void> {
    const secrets = generateChannelSecrets();
    const own = new CommitmentSecrets(secrets.commitmentSeed);
    const open: OpenChannel = {
      type: 'open_channel',
      mode,
      capacitySat,
      fundingTxHash: FUNDING_TX_HASH,
      fundingVout: 0,
      toSelfDelay: DEFAULT_CHANNEL_PARAMS.toSelfDelay,
      dustLimitSat: DEFAULT_CHANNEL_PARAMS.dustLimitSat,
      feeratePerKw: DEFAULT_CHANNEL_PARAMS.feeratePerKw,
      reserveSat: capacitySat / 100n,
      basepoints: basepointsOf(secrets),
      firstPoints: [own.point(0), own.point(1)],
    };
    this.send([open]);
    const accept = await this.nextSetupMessage('accept_channel');
    const ch = Channel.opened(configFromOpen(open, accept), secrets, 'opener', mode, accept.firstPoints);
    this.send([{ type: 'funding_created', signature: ch.signInitialCommitment() }]);
    const signed = await this.nextSetupMessage('funding_signed');
    ch.acceptInitialSignature(signed.signature);
    await this.persistOpened(ch, { secrets, open, accept });
  }

  private async openAsPayee(): Promise<void> {
    const open = await this.nextSetupMessage('open_channel');
    if (open.capacitySat <= 0n || open.reserveSat >= open.capacitySat)
      throw new ProtocolError('unacceptable channel parameters');
    const secrets = generateChannelSecrets();
    const own = new CommitmentSecrets(secrets.commitmentSeed);
    const accept = {
      type: 'accept_channel' as const,
      basepoints: basepointsOf(secrets),
      firstPoints: [own.point(0), own.point(1)],
    };
    const ch = Channel.opened(configFromOpen(open, accept), secrets, 'acceptor', open.mode, open.firstPoints);
    this.send([accept]);
    const created = await this.nextSetupMessage('funding_created');
    ch.acceptInitialSignature(created.signature);
    const signature = ch.signInitialCommitment();
    await this.persistOpened(ch, { secrets, open, accept });
    this.send([{ type: 'funding_signed', signature }]);
  }

  private async persistOpened(
    ch: Channel,
    keys: { secrets: ChannelSecrets; open: OpenChannel; accept: LnMessage & { type: 'accept_channel' } },
  ): Promise<void> {
    await saveKeys(this.dir, keys);
    await saveSnapshot(this.dir, ch.snapshot());
    ch.dirty = false;
    this.persists++;
    this.channel = ch;
    this.markOpened();
    if (this.inbox.length > 0) this.kick();
    this.notifyWaiters();
  }

  // --- turns ---

  private kick(): void {
    if (this.turnRunning || this.failure || !this.channel) return;
    this.turnRunning = true;
    queueMicrotask(() => void this.runTurns());
  }

  private canPropose(): boolean {
    return this.role === 'payer' && this.queue.length > 0 && !!this.channel?.canProposePayments();
  }

  private async runTurns(): Promise<void> {
    const ch = this.channel!;
    try {
      for (;;) {
        const msgs = this.inbox.splice(0);
        const out: LnMessage[] = [];
        const events: TurnEvents = { finalised: [] };
        for (const m of msgs) {
          if (m.type === 'error') throw new PeerFailure(`peer failed the channel: ${m.message}`);
          ch.receive(m, out, events);
        }
        if (this.role === 'payee' && ch.mode === 'htlc') ch.fulfillCommittedHtlcs(out);
        if (this.canPropose()) this.proposeBatch(ch, out);
        if (ch.dirty) {
          await saveSnapshot(this.dir, ch.snapshot());
          ch.dirty = false;
          this.persists++;
        }
        if (this.failure) return;
        if (out.length > 0) this.send(out);
        if (events.finalised.length > 0) {
          const now = performance.now();
          for (const id of events.finalised) {
            const p = this.inflight.get(id);
            if (p) {
              this.inflight.delete(id);
              p.resolve(now);
            }
          }
        }
        if (this.inbox.length === 0 && !this.canPropose()) break;
      }
    } catch (err) {
      this.fail(err as Error, !(err instanceof PeerFailure));
    } finally {
      this.turnRunning = false;
      this.notifyWaiters();
    }
  }

  private proposeBatch(ch: Channel, out: LnMessage[]): void {
    const batch = this.queue.splice(0, this.batchSize);
    try {
      const ids = ch.proposePayments(
        batch.map((p) => p.amountSat),
        out,
      );
      ids.forEach((id, i) => this.inflight.set(id, batch[i]!));
    } catch (err) {
      if (!(err instanceof PaymentRejected)) throw err;
      for (const p of batch) p.reject(err);
    }
  }

  private send(out: LnMessage[]): void {
    if (!this.conn) return;
    const frames = out.map((m) => encodeMessage(this.applyFault(m)));
    this.framesOut += frames.length;
    this.transport.send(this.conn, frames);
  }

  private applyFault(m: LnMessage): LnMessage {
    if (this.fault === 'bad_commitment_signature' && m.type === 'commitment_signed') {
      this.fault = null;
      const signature = Uint8Array.from(m.signature);
      signature[40]! ^= 0x01;
      return { ...m, signature };
    }
    if (this.fault === 'bad_revocation_secret' && m.type === 'revoke_and_ack') {
      this.fault = null;
      // A well-formed secret that is simply not the one committed to.
      return { ...m, perCommitmentSecret: sha256(Uint8Array.from([...m.perCommitmentSecret, ...randomBytes(1)])) };
    }
    return m;
  }

  private fail(err: Error, tellPeer: boolean): void {
    if (this.failure) return;
    this.failure = err;
    if (tellPeer && this.conn) this.transport.send(this.conn, [encodeMessage({ type: 'error', message: err.message })]);
    for (const p of this.queue.splice(0)) p.reject(err);
    for (const p of this.inflight.values()) p.reject(err);
    this.inflight.clear();
    this.markOpenFailed(err);
    this.wakeSetup?.();
    this.notifyWaiters();
  }

  private notifyWaiters(): void {
    if (this.turnRunning) return;
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!;
      if (this.failure) {
        this.waiters.splice(i, 1);
        w.reject(this.failure);
      } else if (w.pred()) {
        this.waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  /** Why the channel failed, if it did. */
  failed(): Error | null {
    return this.failure;
  }
}
