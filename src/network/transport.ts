/**
 * The node host's TCP transport: a listening socket for peers that dial in, outgoing connections to
 * peers we dial, and nothing else. It knows frames, not messages: everything meaningful is encrypted
 * by the enclaves at both ends, so this layer is untrusted by design.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { encodeFrames, FrameDecoder, FrameError, MAX_FRAME_BYTES } from './framing.ts';

export interface TransportHandlers {
  /** A connection is up; `outgoing` tells who dialled. */
  onOpen(conn: string, outgoing: boolean, remote: string): void;
  /**
   * Frames in order. A promise returned settles when the frames have been applied: before
   * authentication, the transport waits for it before deciding a connection went over its limits.
   */
  onFrames(conn: string, frames: Uint8Array[]): void | Promise<unknown>;
  onClose(conn: string, reason: string): void;
}

/**
 * What a connection may send before `authenticated(conn)`: anyone who can reach the port gets this
 * much of the host's memory and time, no more. The handshake needs three frames (measured: hs_hello
 * 240 bytes, hs_reply 703, hs_finish 480; quotes have a fixed schema, so under 1 KiB each), so the
 * defaults leave a wide margin and still bound an unauthenticated peer to 256 KiB and 10 s.
 */
export interface PreAuthLimits {
  /** Largest frame before authentication (default 64 KiB); MAX_FRAME_BYTES after. */
  maxFrameBytes: number;
  /** Bytes in all before authentication (default 256 KiB). */
  maxBytes: number;
  /** Time from connecting to authentication, silent or not (default 10 s). */
  timeoutMs: number;
}

export const DEFAULT_PRE_AUTH: PreAuthLimits = { maxFrameBytes: 64 * 1024, maxBytes: 256 * 1024, timeoutMs: 10_000 };

export interface TransportOptions {
  preAuth?: Partial<PreAuthLimits>;
}

interface Conn {
  socket: Socket;
  decoder: FrameDecoder;
  authed: boolean;
  preAuthBytes: number;
  /** Deliveries made before authentication whose promise has not settled. */
  inFlight: number;
  /** Why the connection is over a pre-authentication limit, while waiting for inFlight to drain. */
  held?: string;
  timer?: ReturnType<typeof setTimeout>;
  reason: string;
}

export class Transport {
  private server?: Server;
  private readonly sockets = new Map<string, Socket>();
  private readonly conns = new Map<string, Conn>();
  private next = 1;
  private readonly preAuth: PreAuthLimits;

  constructor(
    private readonly handlers: TransportHandlers,
    opts: TransportOptions = {},
  ) {
    this.preAuth = { ...DEFAULT_PRE_AUTH, ...opts.preAuth };
  }

  /** Listens on host:port (port 0 picks a free one); resolves with the bound port. */
  listen(host: string, port: number): Promise<number> {
    const server = createServer((socket) => this.adopt(socket, false));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        const addr = server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  /** Dials host:port; resolves with the connection id once the TCP connection is up. */
  dial(host: string, port: number, timeoutMs = 5_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${host}:${port} timed out`));
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(this.adopt(socket, true));
      });
    });
  }

  send(conn: string, frames: Uint8Array[]): void {
    const s = this.sockets.get(conn);
    if (s && !s.destroyed) s.write(encodeFrames(frames));
  }

  close(conn: string): void {
    this.sockets.get(conn)?.destroy();
  }

  /** The peer on `conn` proved who it is: the pre-authentication limits no longer apply to it. */
  authenticated(conn: string): void {
    const c = this.conns.get(conn);
    if (!c || c.authed) return;
    c.authed = true;
    c.decoder.maxFrameBytes = MAX_FRAME_BYTES;
    clearTimeout(c.timer);
    // A held connection resumes when its deliveries have drained (settled()), keeping frames in order.
  }

  async stop(): Promise<void> {
    for (const s of this.sockets.values()) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private adopt(socket: Socket, outgoing: boolean): string {
    const conn = `c${this.next++}`;
    socket.setNoDelay(true);
    this.sockets.set(conn, socket);
    const c: Conn = {
      socket,
      decoder: new FrameDecoder({ maxFrameBytes: this.preAuth.maxFrameBytes }),
      authed: false,
      preAuthBytes: 0,
      inFlight: 0,
      reason: 'closed by peer',
    };
    this.conns.set(conn, c);
    c.timer = setTimeout(() => {
      if (!c.authed) this.refuse(c, `not authenticated within ${this.preAuth.timeoutMs} ms`);
    }, this.preAuth.timeoutMs);
    c.timer.unref();
    socket.on('data', (chunk: Buffer) => {
      if (!c.authed) c.preAuthBytes += chunk.length;
      c.decoder.append(chunk);
      try {
        this.pump(conn, c);
      } catch (err) {
        this.refuse(c, (err as Error).message);
      }
    });
    socket.on('error', (err) => {
      c.reason = err.message;
    });
    socket.on('close', () => {
      clearTimeout(c.timer);
      this.sockets.delete(conn);
      this.conns.delete(conn);
      this.handlers.onClose(conn, c.reason);
    });
    this.handlers.onOpen(conn, outgoing, `${socket.remoteAddress}:${socket.remotePort}`);
    return conn;
  }

  /** Hands on every whole frame buffered, then enforces the limits. */
  private pump(conn: string, c: Conn): void {
    if (c.held !== undefined || c.socket.destroyed) return;
    const frames: Uint8Array[] = [];
    let over: string | undefined;
    const budget = `more than ${this.preAuth.maxBytes} bytes before authentication`;
    try {
      for (;;) {
        if (!c.authed) {
          // Only frames wholly inside the budget are handed on before authentication.
          const len = c.decoder.nextLength();
          const handedOn = c.preAuthBytes - c.decoder.buffered;
          if (len !== null && len <= c.decoder.maxFrameBytes && handedOn + 4 + len > this.preAuth.maxBytes) {
            over = budget;
            break;
          }
        }
        const f = c.decoder.next();
        if (f === null) break;
        frames.push(f);
      }
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      over = c.authed ? err.message : `${err.message} before authentication`;
    }
    if (over === undefined && !c.authed && c.preAuthBytes > this.preAuth.maxBytes) over = budget;
    if (frames.length > 0) this.deliver(conn, c, frames);
    if (over === undefined) return;
    if (c.authed || c.inFlight === 0) return this.refuse(c, over);
    // Frames already handed on may be the end of the handshake, and what follows them the peer's
    // first authenticated traffic: decide once they have been applied.
    c.held = over;
    c.socket.pause();
  }

  private deliver(conn: string, c: Conn, frames: Uint8Array[]): void {
    const applied = this.handlers.onFrames(conn, frames);
    if (c.authed || !(applied instanceof Promise)) return;
    c.inFlight++;
    const settled = () => {
      c.inFlight--;
      if (c.inFlight > 0 || c.held === undefined) return;
      const over = c.held;
      c.held = undefined;
      if (!c.authed) return this.refuse(c, over);
      c.socket.resume();
      try {
        this.pump(conn, c);
      } catch (err) {
        this.refuse(c, (err as Error).message);
      }
    };
    applied.then(settled, settled);
  }

  private refuse(c: Conn, reason: string): void {
    if (c.socket.destroyed) return;
    c.reason = reason;
    c.socket.destroy();
  }
}
