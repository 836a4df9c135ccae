/**
 * The node host's TCP transport: a listening socket for peers that dial in, outgoing connections to
 * peers we dial, and nothing else. It knows frames, not messages: everything meaningful is encrypted
 * by the enclaves at both ends, so this layer is untrusted by design.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { encodeFrames, FrameDecoder } from './framing.ts';

export interface TransportHandlers {
  /** A connection is up; `outgoing` tells who dialled. */
  onOpen(conn: string, outgoing: boolean, remote: string): void;
  onFrames(conn: string, frames: Uint8Array[]): void;
  onClose(conn: string, reason: string): void;
}

export class Transport {
  private server?: Server;
  private readonly sockets = new Map<string, Socket>();
  private next = 1;

  constructor(private readonly handlers: TransportHandlers) {}

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
      const timer = setTimeout(() => { socket.destroy(); reject(new Error(`connect to ${host}:${port} timed out`)); }, timeoutMs);
      socket.once('error', (err) => { clearTimeout(timer); reject(err); });
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

  async stop(): Promise<void> {
    for (const s of this.sockets.values()) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private adopt(socket: Socket, outgoing: boolean): string {
    const conn = `c${this.next++}`;
    socket.setNoDelay(true);
    this.sockets.set(conn, socket);
    const decoder = new FrameDecoder();
    let reason = 'closed by peer';
    socket.on('data', (chunk: Buffer) => {
      try {
        const frames = decoder.push(chunk);
        if (frames.length > 0) this.handlers.onFrames(conn, frames);
      } catch (err) {
        reason = (err as Error).message;
        socket.destroy();
      }
    });
    socket.on('error', (err) => { reason = err.message; });
    socket.on('close', () => {
      this.sockets.delete(conn);
      this.handlers.onClose(conn, reason);
    });
    this.handlers.onOpen(conn, outgoing, `${socket.remoteAddress}:${socket.remotePort}`);
    return conn;
  }
}
