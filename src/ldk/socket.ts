/**
 * LDK's network port: a SocketDescriptor over a Node TCP socket, and the glue that feeds what the socket
 * reads into the PeerManager (which does the BOLT 8 Noise handshake and encryption itself).
 *
 * Contract (PeerManager docs): bytes read go to `read_event`; when it answers true, reading pauses until
 * LDK passes `resume_read` to `send_data`. `read_event` never writes, so `process_events` must follow it
 * (the node's pump does that). When LDK itself disconnects (disconnect_socket) or `read_event` fails,
 * `socket_disconnected` must not be called; when the peer or the OS closes the socket, it must.
 */
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import * as ldk from 'lightningdevkit';

export class PeerSockets {
  private nextId = 1n;
  private readonly sockets = new Set<Socket>();
  private server: Server | null = null;

  constructor(
    private readonly peers: () => ldk.PeerManager,
    /** Asks the node to run process_events soon (after reads and disconnections). */
    private readonly kick: () => void,
    private readonly log: (msg: string) => void,
  ) {}

  /** Accepts inbound connections on `host:port` (0 = any free port); resolves to the bound port. */
  listen(port: number, host = '127.0.0.1'): Promise<number> {
    return new Promise((resolve, reject) => {
      const server = createServer((socket) => this.attach(socket, null));
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        this.server = server;
        resolve((server.address() as { port: number }).port);
      });
    });
  }

  /** Dials `host:port` and starts the Noise handshake towards `nodeId`. @throws when the TCP connect fails. */
  connect(host: string, port: number, nodeId: Uint8Array, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = tcpConnect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect ${host}:${port}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`connect ${host}:${port}: ${err.message}`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        try {
          this.attach(socket, nodeId);
          resolve();
        } catch (err) {
          reject(err as Error);
        }
      });
    });
  }

  /** Runs `fn` with every socket corked, so the messages LDK sends in one pass leave in few TCP segments. */
  corked(fn: () => void): void {
    for (const s of this.sockets) s.cork();
    try {
      fn();
    } finally {
      for (const s of this.sockets) s.uncork();
    }
  }

  close(): void {
    this.server?.close();
    for (const s of this.sockets) s.destroy();
  }

  private attach(socket: Socket, outboundTo: Uint8Array | null): void {
    socket.setNoDelay(true);
    const id = this.nextId++;
    let ldkClosed = false;
    const descriptor = ldk.SocketDescriptor.new_impl({
      send_data: (data, resumeRead) => {
        if (socket.destroyed) return 0;
        if (resumeRead && socket.isPaused()) socket.resume();
        // Node buffers what the kernel does not take yet, so everything counts as sent.
        socket.write(data);
        return data.length;
      },
      disconnect_socket: () => {
        ldkClosed = true;
        socket.destroy();
      },
      eq: (other) => other.hash() === id,
      hash: () => id,
    });
    this.sockets.add(socket);
    socket.on('error', (err) => this.log(`peer socket ${id}: ${err.message}`));
    socket.on('close', () => {
      this.sockets.delete(socket);
      if (!ldkClosed) this.peers().socket_disconnected(descriptor);
      this.kick();
    });
    socket.on('data', (chunk: Buffer) => {
      if (ldkClosed) return;
      const r = this.peers().read_event(descriptor, new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
      if (r instanceof ldk.Result_boolPeerHandleErrorZ_OK) {
        if (r.res) socket.pause();
      } else {
        ldkClosed = true; // LDK has dropped the peer: close without telling it again
        socket.destroy();
      }
      this.kick();
    });
    if (outboundTo) {
      const init = this.peers().new_outbound_connection(
        outboundTo,
        descriptor,
        ldk.Option_SocketAddressZ.constructor_none(),
      );
      if (!(init instanceof ldk.Result_CVec_u8ZPeerHandleErrorZ_OK)) {
        ldkClosed = true;
        socket.destroy();
        throw new Error('LDK refused the outbound connection (already connected to that node?)');
      }
      socket.write(init.res);
    } else {
      const r = this.peers().new_inbound_connection(descriptor, ldk.Option_SocketAddressZ.constructor_none());
      if (!(r instanceof ldk.Result_NonePeerHandleErrorZ_OK)) {
        ldkClosed = true;
        socket.destroy();
        this.log('LDK refused an inbound connection');
      }
    }
    this.kick();
  }
}
