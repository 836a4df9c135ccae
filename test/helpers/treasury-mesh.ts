/**
 * Any number of Treasury cores in one process, linked pairwise by in-memory wires, with the same test
 * doubles as treasury-pair.ts (fake chain, in-memory seals). For committee protocol tests: members can be
 * linked, unlinked ("killed") and fed frames by hand; the end-to-end tests use real processes.
 */
import assert from 'node:assert/strict';
import { payments } from 'bitcoinjs-lib';
import { createHash, randomBytes } from 'node:crypto';
import { AttestationService } from '../../enclave-sim/attestation.ts';
import type { CommitteeConfig, TreasuryEvent, TreasuryPorts } from '../../src/enclave/treasury/ports.ts';
import { Treasury } from '../../src/enclave/treasury/treasury.ts';
import { decodeState, type TreasuryState } from '../../src/enclave/treasury/state.ts';
import type { SessionMessage } from '../../src/enclave/protocol/messages.ts';
import type { SignedUpdate } from '../../src/enclave/committee/update.ts';
import type { AckSig } from '../../src/enclave/committee/acks.ts';
import { NETWORK } from '../../src/enclave/treasury/transactions.ts';
import { FakeChain, MEASUREMENT, waitFor } from './treasury-pair.ts';

/** The simulated platform a mesh node runs on: one per node, derived from its name. */
export function platformIdOf(name: string): string {
  return createHash('sha256').update(`platform:${name}`).digest('hex').slice(0, 32);
}

export interface MeshNode {
  name: string;
  treasury: Treasury;
  events: TreasuryEvent[];
  seals: number;
  payoutAddress: string;
  /** Frames this node sent to each peer (by peer name), for replay tests. */
  sent: Map<string, Uint8Array[]>;
  /** The last sealed state (what a restart after a crash comes back with). */
  sealed?: Uint8Array;
  /** The running instance: a crashed one can neither seal nor send any more. */
  incarnation: { crashed: boolean };
  /** A committee primary's one-time join tokens, as its enclave gave them out at creation. */
  joinTokens: string[];
  /** Every blob this node ever sealed, oldest first (a host keeps them all and may offer any at a restart). */
  blobs: SealedBlob[];
  /** The node's platform monotonic counter: its value and the tag of the blob committed at that value. */
  counter: { value: number; tag: number };
  /** Every c_update / c_ack this node sent, with the committee seq its counter-protected state held then. */
  committeeSent: Array<{
    to: string;
    t: 'c_update' | 'c_ack';
    seq: number;
    protectedSeq: number;
    update?: SignedUpdate;
    /** A c_update marked for passing on down the chain (a member out of the primary's reach). */
    relay?: true;
    /** A c_ack's signatures, as sent. */
    sigs?: AckSig[];
  }>;
}

/**
 * One sealed blob, with the counter header the enclave runtime puts on it (enclave-sim/runtime.ts,
 * SealedState): a protected seal advances the counter to `counter` and becomes the committed blob; an
 * unprotected one leaves the counter where it was and names the committed blob's tag as its predecessor.
 */
export interface SealedBlob {
  bytes: Uint8Array;
  protect: boolean;
  counter: number;
  tag: number;
  prevTag: number;
  /** The committee sequence number of the sealed state (0 outside a committee). */
  seq: number;
}

/** What a restart from an older sealed blob meets: the platform counter says it is not the latest state. */
export class RollbackError extends Error {
  readonly code = 'rollback';
}

/** Options of a Mesh: the protocol timeouts of every node (defaults: 1.5 s for replies, 1 s for multi-hop). */
export interface MeshOptions {
  replyTimeoutMs?: number;
  multihopTimeoutMs?: number;
  /** A committee backup's promotion timeout (absent: no promotion, as before view changes existed). */
  promotionTimeoutMs?: number;
}

/** How long a test waits for what must happen (an acknowledgement, a catch-up): far above what a loaded machine needs. */
export const WAIT_MS = 30_000;

/**
 * Crashes `victim` right after its first seal holding a multi-hop record in `phase`: that seal is durable,
 * but nothing it covers leaves the node (no message, no replication). Returns whether it has fired.
 */
export function crashAfterSealing(mesh: Mesh, victim: string, phase: string): () => boolean {
  let fired = false;
  mesh.onSeal = (name, bytes) => {
    if (fired || name !== victim) return;
    if (Object.values(decodeState(bytes).multihop ?? {}).some((r) => r.phase === phase)) {
      fired = true;
      mesh.crash(victim);
    }
  };
  return () => fired;
}

/**
 * In a committee whose first four members are p, b1, b2, b3 (chain order): b3 crashes and p removes it
 * (the next epoch), then p crashes and b1 is promoted (the epoch after). Returns when b1 is primary.
 */
export async function removeLastThenLosePrimary(mesh: Mesh, [p, b1, b2, b3]: readonly MeshNode[]): Promise<void> {
  mesh.crash(b3!.name);
  await waitFor(
    () => !p!.treasury.info().committee!.members.find((m) => m.node_id === b3!.treasury.nodeId)!.connected,
    WAIT_MS,
  );
  await p!.treasury.removeMember(b3!.treasury.nodeId);
  await waitFor(() => [b1!, b2!].every((n) => n.treasury.info().committee!.size === 3), WAIT_MS);
  mesh.crash(p!.name);
  await waitFor(() => b1!.treasury.info().committee!.role === 'primary', WAIT_MS);
}

/**
 * `from` pays `amounts` on `channelId` in one batch, each accepted, and waits (up to `timeoutMs`) until the
 * last one is acknowledged: the peer's signed total covers it, and in a committee every member holds it.
 */
export async function payAndWait(
  from: MeshNode,
  channelId: string,
  amounts: number[],
  timeoutMs = WAIT_MS,
): Promise<void> {
  const results = await from.treasury.pay(amounts.map((amount_sat) => ({ channel_id: channelId, amount_sat })));
  assert.ok(
    results.every((r) => r.ok),
    JSON.stringify(results.find((r) => !r.ok)),
  );
  const last = (results[results.length - 1] as { position: string }).position;
  await waitFor(() => from.treasury.channel(channelId).total_acked_sat === last, timeoutMs);
}

/** Every session message `node` sends from now on (its running instance), with the receiver's node id. */
export function spy(node: MeshNode): Array<{ to: string; msg: SessionMessage }> {
  const out: Array<{ to: string; msg: SessionMessage }> = [];
  const t = node.treasury as unknown as { sendNow(peerId: string, msg: SessionMessage): void };
  const send = t.sendNow.bind(node.treasury);
  t.sendNow = (peerId, msg) => {
    out.push({ to: peerId, msg: structuredClone(msg) });
    send(peerId, msg);
  };
  return out;
}

export class Mesh {
  constructor(private readonly options: MeshOptions = {}) {}

  readonly service = AttestationService.create();
  readonly chain = new FakeChain();
  readonly nodes = new Map<string, MeshNode>();
  private readonly dead = new Set<string>();
  private readonly links = new Set<string>();
  /**
   * Which session each link carries (a new one at every `link`): frames still on their way when a session
   * drops are lost with it, never handed to a later session on the same link, as with a real connection.
   */
  private readonly sessionOf = new Map<string, number>();
  private sessions = 0;
  /** Called with every state a node seals, before that seal's messages leave (tests crash nodes here). */
  onSeal?: (name: string, state: Uint8Array) => void;
  /** Awaited by every seal (of node `name`) before it is durable (a disk write takes time): code that sends before its seal shows. */
  sealLatency?: (name: string) => Promise<void>;
  private nextTag = 1;

  async add(name: string, committee?: CommitteeConfig): Promise<MeshNode> {
    const payoutAddress = payments.p2wpkh({ hash: randomBytes(20), network: NETWORK }).address!;
    const config = {
      trustAnchor: this.service.trustAnchor,
      allowedMeasurements: [MEASUREMENT],
      minConfirmations: 1,
      payoutAddress,
    };
    const node: MeshNode = {
      name,
      treasury: undefined as never,
      events: [],
      seals: 0,
      payoutAddress,
      sent: new Map(),
      incarnation: { crashed: false },
      joinTokens: [],
      blobs: [],
      counter: { value: 0, tag: 0 },
      committeeSent: [],
    };
    node.treasury = this.instance(node, Treasury.create(config, committee, node.joinTokens));
    await node.treasury.commit();
    this.nodes.set(name, node);
    return node;
  }

  /**
   * A crashed node (see kill) comes back from its last sealed state (or from `from`, any blob it sealed
   * before), with a new enclave instance, and redials `peers`. Everything it had not sealed is gone. The
   * blob is checked against the platform counter as the enclave runtime does: an older state than the
   * committed one throws RollbackError (and the node stays down).
   */
  async restart(name: string, peers: string[], from?: SealedBlob): Promise<MeshNode> {
    const node = this.get(name);
    const blob = from ?? node.blobs[node.blobs.length - 1]!;
    const c = node.counter;
    if (blob.counter !== c.value || (blob.tag !== c.tag && blob.prevTag !== c.tag)) {
      throw new RollbackError(
        `${name}: blob sealed at counter ${blob.counter} (seq ${blob.seq}) is not the committed state at counter ${c.value}`,
      );
    }
    node.incarnation = { crashed: false };
    node.sealed = blob.bytes;
    node.treasury = this.instance(node, decodeState(blob.bytes));
    this.dead.delete(name);
    for (const p of peers) await this.link(name, p);
    return node;
  }

  /** A crash: the instance stops at once (nothing more sealed or sent), its sessions drop (see restart). */
  crash(name: string): void {
    this.get(name).incarnation.crashed = true;
    this.kill(name);
  }

  /** Frames from `from` to `to` are dropped from now on (a lossy host; the session breaks at the next frame). */
  block(from: string, to: string): void {
    this.blocked.add(`${from}|${to}`);
  }

  private readonly blocked = new Set<string>();

  /** Frames from `from` to `to` pass again (see block). */
  unblock(from: string, to: string): void {
    this.blocked.delete(`${from}|${to}`);
  }

  /** Frames from `from` to `to` are held back from now on (a host that picks the timing); `deliver` lets them through, in order. */
  hold(from: string, to: string): void {
    if (!this.held.has(`${from}|${to}`)) this.held.set(`${from}|${to}`, []);
  }

  deliver(from: string, to: string): void {
    const conn = `${from}|${to}`;
    const frames = this.held.get(conn) ?? [];
    this.held.delete(conn);
    if (frames.length > 0 && this.links.has(conn) && !this.dead.has(from) && !this.dead.has(to))
      void this.nodes.get(to)!.treasury.receive(`${to}|${from}`, frames);
  }

  /** How many frames are held back on `from` → `to`. */
  holding(from: string, to: string): number {
    return this.held.get(`${from}|${to}`)?.length ?? 0;
  }

  private readonly held = new Map<string, Uint8Array[]>();

  /** A treasury on `state` for `node`, whose committee messages are logged in `node.committeeSent`. */
  private instance(node: MeshNode, state: TreasuryState): Treasury {
    const t = new Treasury(state, this.ports(node.name, node));
    const internals = t as unknown as { sendNow(peerId: string, msg: SessionMessage): void };
    const sendNow = internals.sendNow.bind(t);
    internals.sendNow = (peerId, msg) => {
      if (msg.t === 'c_update' || msg.t === 'c_ack') {
        const to = [...this.nodes.values()].find((n) => n.treasury.nodeId === peerId)?.name ?? peerId;
        const committed = node.blobs.find((b) => b.tag === node.counter.tag);
        node.committeeSent.push({
          to,
          t: msg.t,
          seq: msg.t === 'c_update' ? msg.update.seq : msg.seq,
          protectedSeq: committed?.seq ?? 0,
          ...(msg.t === 'c_update' ? { update: msg.update, ...(msg.relay ? { relay: true as const } : {}) } : {}),
          ...(msg.t === 'c_ack' && msg.sigs ? { sigs: msg.sigs } : {}),
        });
      }
      sendNow(peerId, msg);
    };
    return t;
  }

  private ports(name: string, node: MeshNode): TreasuryPorts {
    const me = node.incarnation;
    return {
      seal: async (bytes, protect) => {
        if (me.crashed) throw new Error('crashed');
        if (this.sealLatency) await this.sealLatency(name);
        if (me.crashed) throw new Error('crashed');
        // As the runtime seals (enclave-sim/runtime.ts): a protected seal advances the counter with it.
        const cur = node.counter;
        const blob: SealedBlob = {
          bytes,
          protect,
          counter: protect ? cur.value + 1 : cur.value,
          tag: this.nextTag++,
          prevTag: cur.tag,
          seq: decodeState(bytes).committee?.seq ?? 0,
        };
        node.blobs.push(blob);
        if (protect) node.counter = { value: blob.counter, tag: blob.tag };
        node.seals++;
        node.sealed = bytes;
        this.onSeal?.(name, bytes);
      },
      send: (conn, frames) => {
        const to = conn.split('|')[1]!;
        if (me.crashed || this.dead.has(name) || this.dead.has(to) || !this.links.has(conn) || this.blocked.has(conn))
          return;
        const list = node.sent.get(to) ?? [];
        list.push(...frames);
        node.sent.set(to, list);
        const held = this.held.get(conn);
        if (held) {
          held.push(...frames);
          return;
        }
        const session = this.sessionOf.get(conn);
        setImmediate(() => {
          // Frames of an instance that crashed meanwhile die with its connection, even if it restarted at once;
          // so do frames to one, and any sent on a session that has since dropped (sessionOf).
          if (me.crashed || this.dead.has(name) || this.dead.has(to) || !this.links.has(conn)) return;
          if (this.sessionOf.get(conn) !== session) return;
          void this.nodes.get(to)!.treasury.receive(`${to}|${name}`, frames);
        });
      },
      close: () => undefined,
      emit: (e) => node.events.push(e),
      getTxOut: async (txid, vout) => this.chain.lookup(txid, vout),
      // Each node on its own platform, as real deployments are (a committee roster needs distinct platforms).
      quote: async (reportData, nonce) =>
        this.service.issueQuote({
          measurement: MEASUREMENT,
          reportData,
          nonce,
          debug: false,
          platformId: platformIdOf(name),
        }),
      random: (n) => new Uint8Array(randomBytes(n)),
      replyTimeoutMs: this.options.replyTimeoutMs ?? 1_500,
      multihopTimeoutMs: this.options.multihopTimeoutMs ?? 1_000,
      ...(this.options.promotionTimeoutMs !== undefined ? { promotionTimeoutMs: this.options.promotionTimeoutMs } : {}),
    };
  }

  get(name: string): MeshNode {
    return this.nodes.get(name)!;
  }

  /** Opens an attested session from `a` to `b` (a dials). */
  async link(a: string, b: string): Promise<void> {
    this.links.add(`${a}|${b}`);
    this.links.add(`${b}|${a}`);
    const session = ++this.sessions;
    this.sessionOf.set(`${a}|${b}`, session);
    this.sessionOf.set(`${b}|${a}`, session);
    const ta = this.get(a).treasury;
    const tb = this.get(b).treasury;
    tb.accept(`${b}|${a}`);
    await ta.connect(`${a}|${b}`);
    await waitFor(() => ta.info().peers.includes(tb.nodeId) && tb.info().peers.includes(ta.nodeId));
  }

  /** A crash as the others see it: the node stops sending and receiving, its sessions drop. */
  kill(name: string): void {
    this.dead.add(name);
    for (const l of [...this.links]) {
      const [x, y] = l.split('|') as [string, string];
      if (x === name) {
        this.links.delete(l);
        this.links.delete(`${y}|${x}`);
        this.get(y).treasury.disconnected(`${y}|${x}`);
      }
    }
  }

  /** The session between `a` and `b` drops and stays down (a partition between two nodes only; `link` heals it). */
  unlink(a: string, b: string): void {
    for (const [x, y] of [
      [a, b],
      [b, a],
    ] as const) {
      if (!this.links.delete(`${x}|${y}`)) continue;
      this.get(x).treasury.disconnected(`${x}|${y}`);
    }
  }

  /** A network partition around `name`: like kill, but the node runs on and sees its own sessions drop too (see heal). */
  partition(name: string): void {
    const conns = [...this.links].filter((l) => l.startsWith(`${name}|`));
    this.kill(name);
    for (const c of conns) this.get(name).treasury.disconnected(c);
  }

  /** The end of a partition: the same running instance redials `peers`, with what it holds in memory. */
  async heal(name: string, peers: string[]): Promise<void> {
    this.dead.delete(name);
    for (const p of peers) await this.link(name, p);
  }

  /** A host that silently stops relaying (no disconnection seen by anyone); `unmute` lets frames through again. */
  mute(name: string): void {
    this.dead.add(name);
  }

  unmute(name: string): void {
    this.dead.delete(name);
  }

  /** A committee: `names[0]` primary of size names.length (threshold default), the others join in order, each with one of its tokens. */
  async committee(names: string[], threshold?: number): Promise<MeshNode[]> {
    const [p, ...backups] = names as [string, ...string[]];
    await this.add(p, { role: 'primary', size: names.length, address: `${p}:1`, ...(threshold ? { threshold } : {}) });
    for (const b of backups) await this.add(b, { role: 'backup' });
    for (const [i, b] of backups.entries()) {
      for (const earlier of names.slice(0, i + 1)) await this.link(b, earlier);
      this.get(b).treasury.joinCommittee(this.get(p).treasury.nodeId, `${b}:1`, this.get(p).joinTokens[i]);
      await waitFor(() => this.get(b).treasury.info().committee!.index === i + 1);
    }
    const primary = this.get(p).treasury;
    await waitFor(
      () => primary.info().committee!.formed && primary.info().committee!.acked_seq === primary.info().committee!.seq,
    );
    return names.map((n) => this.get(n));
  }

  /** A funded, confirmed deposit of `value` on the fake chain. */
  async deposit(name: string, value: bigint): Promise<string> {
    const t = this.get(name).treasury;
    const dep = await t.newDeposit();
    const out = this.chain.fund(dep.address, value);
    await t.depositFunded(dep.deposit_id, out.txid, out.vout);
    return dep.deposit_id;
  }
}

/** Funds a deposit of `value` sat for node `name` (the fake chain's by default, or the regtest chain's). */
export type Funder = (mesh: Mesh, name: string, value: bigint) => Promise<string>;

const byMesh: Funder = (mesh, name, value) => mesh.deposit(name, value);

/**
 * A 2-of-3 committee p, b1, b2 and a lone channel peer q, linked to p, with a channel p–q funded with
 * 100,000 sat on p's side and 50,000 on q's: the set-up of the committee tests that watch one channel.
 */
export async function committeeWithPeer(options: MeshOptions = {}) {
  const mesh = new Mesh(options);
  const [p, b1, b2] = (await mesh.committee(['p', 'b1', 'b2'])) as [MeshNode, MeshNode, MeshNode];
  const q = await mesh.add('q');
  await mesh.link('p', 'q');
  const ch = (await p.treasury.openChannel(q.treasury.nodeId, p.payoutAddress)).channel_id;
  await p.treasury.addDeposit(ch, await mesh.deposit('p', 100_000n));
  await q.treasury.addDeposit(ch, await mesh.deposit('q', 50_000n));
  return { mesh, p, b1, b2, q, ch };
}

/** Links `a` and `b`, and opens a channel between them funded with `deposit` sat on both sides. */
export async function fundedChannel(
  mesh: Mesh,
  a: MeshNode,
  b: MeshNode,
  deposit: bigint,
  fund: Funder = byMesh,
): Promise<string> {
  await mesh.link(a.name, b.name);
  const da = await fund(mesh, a.name, deposit);
  const db = await fund(mesh, b.name, deposit);
  const ch = await a.treasury.openChannel(b.treasury.nodeId, a.payoutAddress);
  await a.treasury.addDeposit(ch.channel_id, da);
  await b.treasury.addDeposit(ch.channel_id, db);
  return ch.channel_id;
}

/** n treasuries in a line, each channel funded with `deposit` sat on both sides, the graph gossiped everywhere. */
export async function line(n: number, deposit = 100_000n, fund: Funder = byMesh) {
  const mesh = new Mesh();
  const names = Array.from({ length: n }, (_, i) => `n${i}`);
  for (const name of names) await mesh.add(name);
  const channels: string[] = [];
  for (let i = 0; i + 1 < n; i++)
    channels.push(await fundedChannel(mesh, mesh.get(names[i]!), mesh.get(names[i + 1]!), deposit, fund));
  await gossip(mesh, names);
  return { mesh, nodes: names.map((x) => mesh.get(x)), channels };
}

/** Every node announces its channels once; announcements are flooded on: wait until every node has them all. */
export async function gossip(mesh: Mesh, names: string[]): Promise<void> {
  for (const name of names) mesh.get(name).treasury.multihop.gossip();
  await waitFor(() => names.every((x) => mesh.get(x).treasury.multihop.graph.size === names.length));
}

/**
 * Starts a payment from the first to the last of three nodes in a line and returns once the middle hop has
 * committed. From that seal on, the wire from the middle node to the last is cut (`both`: in both
 * directions), so the last node never hears of the commit. `paying` is the payment itself (wrapped:
 * returned bare, the caller's await would wait for it); `outcome()` is null while it is pending, then
 * whether it succeeded. `pay` starts the payment (a round of many payments, say).
 */
export async function payUntilMiddleCommitted(
  mesh: Mesh,
  [payer, middle, payee]: [MeshNode, MeshNode, MeshNode],
  amountSat: number,
  cut: 'onward' | 'both' = 'both',
  pay: (payer: MeshNode, dest: string, amountSat: number) => Promise<unknown> = (p, dest, amountSat) =>
    p.treasury.payMultihop(dest, amountSat, 1),
): Promise<{ paying: Promise<unknown>; outcome: () => boolean | null }> {
  const committed = (records: Array<{ phase: string }>) => records.some((r) => r.phase === 'committed');
  mesh.onSeal = (name, bytes) => {
    if (name !== middle.name || !committed(Object.values(decodeState(bytes).multihop ?? {}))) return;
    mesh.block(middle.name, payee.name);
    if (cut === 'both') mesh.block(payee.name, middle.name);
  };
  let outcome: boolean | null = null;
  const paying = pay(payer, payee.treasury.nodeId, amountSat);
  paying.then(
    () => {
      outcome = true;
    },
    () => {
      outcome = false;
    },
  );
  await waitFor(() => committed(Object.values(middle.treasury.state.multihop ?? {})));
  mesh.onSeal = undefined;
  return { paying, outcome: () => outcome };
}
