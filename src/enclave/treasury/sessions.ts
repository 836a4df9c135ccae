/**
 * Peer connections and their authenticated sessions. The host opens and closes connections and carries
 * frames; this module runs the attested handshake on each, then opens and seals every frame with the
 * session's keys, so the host sees only ciphertext and can drop or delay frames but not forge them.
 * One session per peer: a newer one replaces the older.
 */
import {
  encodeMessage,
  parseChannelMessage,
  parseHandshakeMessage,
  type SessionMessage,
} from '../protocol/messages.ts';
import { SessionError, type SecureSession } from '../protocol/session.ts';
import { TreasuryError } from './errors.ts';
import { Handshake, type HandshakeDeps } from './handshake.ts';
import type { Outgoing, TreasuryEvent, TreasuryPorts } from './ports.ts';

interface Connection {
  conn: string;
  handshake?: Handshake;
  session?: SecureSession;
  peerId?: string;
  /** Frames of one connection are applied strictly in order, even across awaits (handshake, chain look-ups). */
  queue: Promise<void>;
  closed: boolean;
}

/** What the treasury does with a session's traffic. */
export interface SessionHandlers {
  /** A message from an authenticated peer; the connection's next frame waits for it. */
  message(peerId: string, msg: SessionMessage): Promise<void>;
  /** A session with `peerId` was just established (the peer may have missed messages). */
  established(peerId: string): void;
  /** The session with `peerId` went down and no newer one replaced it. */
  lost(peerId: string): void;
}

export class PeerSessions {
  private readonly conns = new Map<string, Connection>();
  private readonly peerConn = new Map<string, string>();

  constructor(
    private readonly ports: TreasuryPorts,
    private readonly handshakeDeps: () => HandshakeDeps,
    private readonly on: SessionHandlers,
  ) {}

  /** The host opened a TCP connection to a peer: start the handshake. */
  connect(conn: string): void {
    const c = this.newConnection(conn);
    c.handshake = new Handshake(this.handshakeDeps(), 'initiator');
    this.ports.send(conn, [encodeMessage(c.handshake.hello())]);
  }

  /** The host accepted a TCP connection from a peer. */
  accept(conn: string): void {
    const c = this.newConnection(conn);
    c.handshake = new Handshake(this.handshakeDeps(), 'responder');
  }

  /** Frames received on a connection, in order. Resolves when they have been applied (not sealed). */
  receive(conn: string, frames: Uint8Array[]): Promise<void> {
    const c = this.conns.get(conn);
    if (!c || c.closed) return Promise.resolve();
    const run = c.queue.then(async () => {
      for (const frame of frames) {
        if (c.closed) return;
        try {
          await this.receiveFrame(c, frame);
        } catch (err) {
          const reason =
            err instanceof SessionError || err instanceof TreasuryError
              ? `${err.code}: ${err.message}`
              : `internal: ${String(err)}`;
          this.teardown(c, reason);
          return;
        }
      }
    });
    c.queue = run;
    return run;
  }

  disconnected(conn: string): void {
    const c = this.conns.get(conn);
    if (c) this.teardown(c, 'connection closed by host', false);
  }

  /** Whether a session with `peerId` is up. */
  connected(peerId: string): boolean {
    return this.peerConn.has(peerId);
  }

  /** Every peer with a session. */
  peers(): string[] {
    return [...this.peerConn.keys()];
  }

  requireSession(peerId: string): void {
    if (!this.peerConn.has(peerId))
      throw new TreasuryError('peer_not_connected', `peer ${peerId.slice(0, 16)}… is not connected`);
  }

  /** Ends the session with `peerId`, if any (its host may then dial someone else: peer-views.ts). */
  drop(peerId: string, reason: string): void {
    const conn = this.peerConn.get(peerId);
    const c = conn ? this.conns.get(conn) : undefined;
    if (c) this.teardown(c, reason);
  }

  /** Sends one message now, outside the group commit (no-op without a session). */
  sendNow(peerId: string, msg: SessionMessage): void {
    const conn = this.peerConn.get(peerId);
    const c = conn ? this.conns.get(conn) : undefined;
    if (!c?.session || c.closed) return;
    this.ports.send(c.conn, [c.session.seal(encodeMessage(msg))]);
  }

  /** A seal's messages and events, in order: events to the host, messages sealed into one batch per connection. */
  deliver(items: Array<Outgoing | TreasuryEvent>): void {
    const frames = new Map<string, Uint8Array[]>();
    for (const item of items) {
      if ('type' in item) {
        this.ports.emit(item);
        continue;
      }
      const conn = this.peerConn.get(item.peerId);
      const c = conn ? this.conns.get(conn) : undefined;
      if (!c?.session || c.closed) continue; // the peer catches up through `sync` when it reconnects
      let list = frames.get(c.conn);
      if (!list) frames.set(c.conn, (list = []));
      list.push(c.session.seal(encodeMessage(item.msg)));
    }
    for (const [conn, list] of frames) this.ports.send(conn, list);
  }

  private async receiveFrame(c: Connection, frame: Uint8Array): Promise<void> {
    if (c.session) {
      const msg = parseChannelMessage(c.session.open(frame));
      if (!msg) throw new TreasuryError('session_failed', 'peer sent a malformed message');
      await this.on.message(c.peerId!, msg);
      return;
    }
    const hs = parseHandshakeMessage(frame);
    if (!hs || !c.handshake) throw new TreasuryError('session_failed', 'malformed handshake message');
    const step = await c.handshake.receive(hs);
    if (step.reply) this.ports.send(c.conn, [encodeMessage(step.reply)]);
    if (!step.done) return;
    c.session = step.session;
    c.peerId = step.peerId;
    delete c.handshake;
    const old = this.peerConn.get(step.peerId);
    if (old && old !== c.conn) {
      const oc = this.conns.get(old);
      if (oc) this.teardown(oc, 'replaced by a newer session');
    }
    this.peerConn.set(step.peerId, c.conn);
    this.ports.emit({ type: 'peer_connected', conn: c.conn, peer_id: step.peerId });
    this.on.established(step.peerId);
  }

  private teardown(c: Connection, reason: string, closeSocket = true): void {
    if (c.closed) return;
    c.closed = true;
    this.conns.delete(c.conn);
    const lost = c.peerId !== undefined && this.peerConn.get(c.peerId) === c.conn;
    if (lost) this.peerConn.delete(c.peerId!);
    if (closeSocket) this.ports.close(c.conn, reason);
    this.ports.emit({ type: 'peer_disconnected', conn: c.conn, peer_id: c.peerId ?? null, reason });
    if (lost) this.on.lost(c.peerId!);
  }

  private newConnection(conn: string): Connection {
    if (this.conns.has(conn)) throw new TreasuryError('invalid_argument', `connection ${conn} already exists`);
    const c: Connection = { conn, queue: Promise.resolve(), closed: false };
    this.conns.set(conn, c);
    return c;
  }
}
