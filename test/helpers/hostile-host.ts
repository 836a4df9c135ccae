/**
 * A hostile host against real treasury enclaves: two treasury programs launched by enclave-sim (real worker
 * isolates, real sealing, real monotonic counters on disk), wired to each other by a wire the test owns
 * frame by frame, with a chain, a sealed-blob store and ocall answers the test can falsify at will.
 *
 * Side `a` is the attacker's: its host may drop, delay, duplicate, reorder or corrupt any frame in either
 * direction (it owns a's end of the socket), answer any ocall with anything, restore any sealed blob it was
 * ever given (or a truncated, grown or foreign one), restart the enclave at any moment and call any ecall
 * with any arguments. Side `b` is honest: its host relays what it is given and stores what it is told.
 *
 * The invariant (`checkInvariant`) is the project's one promise, "the host cannot take what is not its
 * own", stated on what the enclaves signed: over every set of signed transactions that could confirm
 * together (no two spending the same output), what pays `a` never exceeds a's deposits minus what b's
 * enclave has credited from a plus what b's enclave has paid a, and nothing pays more than its inputs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transaction, payments } from 'bitcoinjs-lib';
import { randomBytes } from 'node:crypto';
import { AttestationService, Platform, type EnclaveHandle, type SealedStore } from '../../enclave-sim/index.ts';
import { TreasuryInterface, type TreasuryEventMsg } from '../../src/enclave/treasury/interface.ts';
import { TREASURY_PROGRAM } from '../../src/node/enclave-client.ts';
import { NETWORK } from '../../src/enclave/treasury/transactions.ts';
import { bytesToHex } from '../../enclave-sim/encoding.ts';
import { FakeChain, waitFor } from './treasury-pair.ts';

export type Handle = EnclaveHandle<typeof TreasuryInterface>;
export type Dir = 'ab' | 'ba';

/** A seeded PRNG (mulberry32): a failing randomised run replays exactly from its seed. */
export { prng as rng } from './seeded.ts';

/** A store that keeps every blob ever given to it, answering loads with whatever the attacker picks. */
export class RecordingStore implements SealedStore {
  readonly blobs: Uint8Array[] = [];
  /** When set, the next load answers this instead of the latest blob. */
  nextLoad: Uint8Array | null | undefined = undefined;
  /** When set, stores fail (the host's disk "fails"). */
  failStores = false;
  /** When set, stores claim success without keeping the blob (a lying disk). */
  dropStores = false;

  async store(blob: Uint8Array): Promise<void> {
    if (this.failStores) throw new Error('disk failure (hostile host)');
    if (this.dropStores) return;
    this.blobs.push(blob.slice());
  }

  async load(): Promise<Uint8Array | null> {
    if (this.nextLoad !== undefined) {
      const b = this.nextLoad;
      this.nextLoad = undefined;
      return b;
    }
    return this.blobs.at(-1) ?? null;
  }
}

export interface SideOf {
  name: 'a' | 'b';
  platform: Platform;
  store: RecordingStore;
  enclave: Handle;
  nodeId: string;
  payoutAddress: string;
  payoutScript: string;
  events: TreasuryEventMsg[];
  /** The connection id the enclave knows its session by, or null while disconnected. */
  conn: string | null;
  /** Launches so far (restarts included). */
  launches: number;
}

/** Everything the enclaves ever signed and handed out, by txid. */
export type Signed = Map<string, string>;

export class HostilePair {
  readonly chain = new FakeChain();
  readonly signed: Signed = new Map();
  /** Frames the enclaves sent, waiting for the test to deliver, drop or mangle them. */
  readonly queue: Record<Dir, Uint8Array[]> = { ab: [], ba: [] };
  /** Deliver frames as soon as they are sent (set-up), or only when the test says so. */
  autoDeliver = true;
  /** Chain answers to side a go through this (the attacker may lie); b always gets the truth. */
  lieToA:
    ((txid: string, vout: number, truth: ReturnType<FakeChain['lookup']>) => ReturnType<FakeChain['lookup']>) | null =
    null;
  a!: SideOf;
  b!: SideOf;
  private nextConn = 1;
  private readonly dirs: string[] = [];

  private constructor(
    readonly root: string,
    readonly service: AttestationService,
  ) {}

  static async create(): Promise<HostilePair> {
    const root = await mkdtemp(join(tmpdir(), 'hostile-'));
    const pair = new HostilePair(root, AttestationService.create());
    pair.a = await pair.launchSide('a');
    pair.b = await pair.launchSide('b');
    return pair;
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.a?.enclave.terminate(), this.b?.enclave.terminate()]);
    await rm(this.root, { recursive: true, force: true });
  }

  side(name: 'a' | 'b'): SideOf {
    return name === 'a' ? this.a : this.b;
  }

  private async launchSide(name: 'a' | 'b', prev?: SideOf): Promise<SideOf> {
    const platform =
      prev?.platform ?? (await Platform.open({ dir: join(this.root, `${name}-platform`), attestation: this.service }));
    const store = prev?.store ?? new RecordingStore();
    const payoutAddress = prev?.payoutAddress ?? payments.p2wpkh({ hash: randomBytes(20), network: NETWORK }).address!;
    const side: SideOf = prev ?? {
      name,
      platform,
      store,
      enclave: undefined as never,
      nodeId: '',
      payoutAddress,
      payoutScript: bytesToHex(payments.p2wpkh({ address: payoutAddress, network: NETWORK }).output!),
      events: [],
      conn: null,
      launches: 0,
    };
    side.enclave = await platform.launch({
      entry: TREASURY_PROGRAM,
      iface: TreasuryInterface,
      store,
      ocalls: {
        net_send: ({ conn, frames }) => {
          if (conn === side.conn) this.sent(name === 'a' ? 'ab' : 'ba', frames);
          return null;
        },
        net_close: ({ conn }) => {
          if (conn === side.conn) this.disconnect();
          return null;
        },
        event: ({ event }) => {
          side.events.push(event);
          return null;
        },
        chain_get_txout: ({ txid, vout }) => {
          const truth = this.chain.lookup(txid, vout);
          const r = name === 'a' && this.lieToA ? this.lieToA(txid, vout, truth) : truth;
          return r ? { tx_hex: r.txHex, confirmations: r.confirmations, unspent: r.unspent } : null;
        },
      },
    });
    side.launches++;
    const init = await side.enclave.ecall('init', {
      trust_anchor: this.service.trustAnchor,
      allowed_measurements: [side.enclave.measurement],
      min_confirmations: 1,
      payout_address: payoutAddress,
    });
    side.nodeId = init.node_id;
    return side;
  }

  /**
   * Kills side `name`'s enclave (sessions drop) and launches it again; its next load answers `blob` (default:
   * the latest stored). Resolves with the launch's refusal code, or null when the enclave came back.
   */
  async restart(name: 'a' | 'b', blob?: Uint8Array | null): Promise<string | null> {
    const s = this.side(name);
    this.disconnect();
    await s.enclave.terminate();
    if (blob !== undefined) s.store.nextLoad = blob;
    try {
      await this.launchSide(name, s);
      return null;
    } catch (err) {
      return (err as { code?: string }).code ?? 'unknown';
    }
  }

  /** Both sides forget the session, as after a dropped TCP connection. */
  disconnect(): void {
    for (const s of [this.a, this.b]) {
      if (!s?.conn) continue;
      const conn = s.conn;
      s.conn = null;
      void s.enclave.ecall('peer_disconnected', { conn }).catch(() => undefined);
    }
    this.queue.ab = [];
    this.queue.ba = [];
  }

  /** A fresh session a → b (handshake delivered whatever the delivery mode). */
  async connect(): Promise<void> {
    this.disconnect();
    const auto = this.autoDeliver;
    this.autoDeliver = true;
    try {
      this.a.conn = `a${this.nextConn}`;
      this.b.conn = `b${this.nextConn++}`;
      await this.b.enclave.ecall('peer_accept', { conn: this.b.conn });
      await this.a.enclave.ecall('peer_connect', { conn: this.a.conn });
      await waitFor(() => this.peered(), 10_000);
    } finally {
      this.autoDeliver = auto;
    }
  }

  peered(): boolean {
    const up = (s: SideOf, other: SideOf) =>
      s.conn !== null &&
      s.events.some((e) => e.type === 'peer_connected' && e.conn === s.conn && e.peer_id === other.nodeId);
    return up(this.a, this.b) && up(this.b, this.a);
  }

  private sent(dir: Dir, frames: Uint8Array[]): void {
    this.queue[dir].push(...frames);
    if (this.autoDeliver) setImmediate(() => void this.deliver(dir));
  }

  /** Delivers up to `n` queued frames of `dir` (all by default) to the receiving enclave, in one ecall. */
  async deliver(dir: Dir, n = Infinity, mangle?: (frames: Uint8Array[]) => Uint8Array[]): Promise<void> {
    const to = dir === 'ab' ? this.b : this.a;
    const frames = this.queue[dir].splice(0, Math.min(n, this.queue[dir].length));
    const out = mangle ? mangle(frames) : frames;
    if (!to.conn || out.length === 0) return;
    await to.enclave.ecall('peer_recv', { conn: to.conn, frames: out }).catch(() => undefined);
  }

  /** A funded, confirmed deposit of `value` on side `name` (the honest chain). */
  async fundedDeposit(name: 'a' | 'b', value: bigint): Promise<string> {
    const e = this.side(name).enclave;
    const dep = await e.ecall('deposit_new', {});
    const out = this.chain.fund(dep.address, value);
    await e.ecall('deposit_funded', { deposit_id: dep.deposit_id, txid: out.txid, vout: out.vout });
    return dep.deposit_id;
  }

  /** A channel a → b with one deposit on each side. */
  async openChannel(
    aValue: bigint,
    bValue: bigint,
  ): Promise<{ channelId: string; aDeposit: string; bDeposit: string }> {
    const aDeposit = await this.fundedDeposit('a', aValue);
    const bDeposit = await this.fundedDeposit('b', bValue);
    const ch = await this.a.enclave.ecall('channel_open', {
      peer_id: this.b.nodeId,
      payout_address: this.a.payoutAddress,
    });
    await this.a.enclave.ecall('channel_add_deposit', { channel_id: ch.channel_id, deposit_id: aDeposit });
    await this.b.enclave.ecall('channel_add_deposit', { channel_id: ch.channel_id, deposit_id: bDeposit });
    return { channelId: ch.channel_id, aDeposit, bDeposit };
  }

  /** Records every signed transaction an ecall result or a view carries. */
  record(value: unknown): void {
    const seen = new Set<unknown>();
    const walk = (v: unknown): void => {
      if (v === null || typeof v !== 'object' || seen.has(v)) return;
      seen.add(v);
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        if (
          (k === 'tx_hex' || k === 'settlement_tx_hex' || k === 'release_tx_hex') &&
          typeof x === 'string' &&
          x.length > 0
        ) {
          try {
            this.signed.set(Transaction.fromHex(x).getId(), x);
          } catch {
            /* not a transaction: nothing anyone could broadcast */
          }
        } else walk(x);
      }
    };
    walk(value);
  }

  /** Everything both enclaves currently show (channel and deposit views carry the transactions they signed). */
  async harvest(): Promise<void> {
    for (const s of [this.a, this.b]) {
      try {
        this.record(await s.enclave.ecall('list_channels', {}));
        this.record(await s.enclave.ecall('list_deposits', {}));
      } catch {
        /* a halted or restarting enclave shows nothing now; what it signed was recorded when it answered */
      }
    }
  }

  /**
   * The invariant, checked against the honest side's enclave (b): throws with the offending transactions when
   * some set of signed transactions that can confirm together pays a more than it owns, or pays out more
   * than it spends.
   */
  async checkInvariant(
    channelIds: string | string[],
    aDepositsTotal: bigint,
    opts: { harvest?: boolean } = {},
  ): Promise<void> {
    if (opts.harvest !== false) await this.harvest();
    let credited = 0n;
    let paid = 0n;
    for (const id of [channelIds].flat()) {
      const ch = await this.b.enclave.ecall('get_channel', { channel_id: id });
      credited += BigInt(ch.total_received_sat);
      paid += BigInt(ch.total_sent_sat);
    }
    const aMax = aDepositsTotal - credited + paid;
    const bScripts = new Set([this.b.payoutScript]);
    const txs = [...this.signed.values()].map((hex) => Transaction.fromHex(hex));
    const inputsOf = (tx: Transaction) =>
      tx.ins.map((i) => `${bytesToHex(Uint8Array.from(i.hash).reverse())}:${i.index}`);
    const toA = (tx: Transaction) =>
      tx.outs.reduce((s, o) => (bScripts.has(bytesToHex(o.script)) ? s : s + o.value), 0n);
    for (const tx of txs) {
      const spent = inputsOf(tx).reduce((s, op) => s + this.valueOf(op), 0n);
      const out = tx.outs.reduce((s, o) => s + o.value, 0n);
      if (out > spent) throw new Error(`signed ${tx.getId()} pays ${out} sat out of ${spent} sat of inputs`);
    }
    // Maximum over conflict-free subsets (few transactions: plain search with pruning).
    let best = 0n;
    let bestSet: Transaction[] = [];
    const search = (i: number, used: Set<string>, sum: bigint, set: Transaction[]) => {
      if (sum > best) {
        best = sum;
        bestSet = [...set];
      }
      for (let j = i; j < txs.length; j++) {
        const ins = inputsOf(txs[j]!);
        if (ins.some((x) => used.has(x))) continue;
        const next = new Set(used);
        for (const x of ins) next.add(x);
        set.push(txs[j]!);
        search(j + 1, next, sum + toA(txs[j]!), set);
        set.pop();
      }
    };
    search(0, new Set(), 0n, []);
    if (best > aMax) {
      throw new Error(
        `the attacker's side can be paid ${best} sat by signed transactions that confirm together (${bestSet.map((t) => t.getId().slice(0, 12)).join(', ')}), ` +
          `more than its deposits ${aDepositsTotal} − credited by b ${credited} + paid by b ${paid} = ${aMax} sat`,
      );
    }
  }

  private valueOf(outpoint: string): bigint {
    const [txid, vout] = outpoint.split(':') as [string, string];
    const t = this.chain.txs.get(txid);
    return t ? (Transaction.fromHex(t.hex).outs[Number(vout)]?.value ?? 0n) : 0n;
  }

  /** A throwaway temp dir for a scenario that needs one. */
  async scratch(): Promise<string> {
    const d = await mkdtemp(join(this.root, 'scratch-'));
    this.dirs.push(d);
    return d;
  }
}
