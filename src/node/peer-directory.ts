/**
 * The host's side of the P2P network: the TCP transport the enclave's frames travel over, the dialling of
 * peers (and re-dialling of those saved in peers.json), and which attested peer is on which connection.
 * The enclave runs every handshake and decides who is attested; this only relays, and learns the outcome
 * from the enclave's peer_connected / peer_disconnected events.
 */
import { Transport, type PreAuthLimits } from '../network/transport.ts';
import type { ReportFailure } from './failure-reporter.ts';
import type { EcallPort } from './enclave-client.ts';
import { NodeError } from './errors.ts';
import { loadPeers, savePeers } from './peers-file.ts';

/** An attested peer as GET /v1/peers shows it. */
export interface PeerInfo {
  peer_id: string;
  conn: string;
  /** The address we dialled it at; null for a peer that dialled us. */
  address: string | null;
}

export interface PeerDirectoryOptions {
  datadir: string;
  enclave: EcallPort;
  report: ReportFailure;
  /** True once the node is stopping: no more dialling, and closed connections are not mourned. */
  stopping: () => boolean;
  /** What a connection may send before its handshake completes (defaults: DEFAULT_PRE_AUTH in transport.ts). */
  preAuth?: Partial<PreAuthLimits>;
}

/** Redial backoff: from 200 ms, doubling, at most 5 s. */
export const nextBackoff = (delayMs: number): number => Math.min(5_000, Math.max(200, delayMs * 2));

export class PeerDirectory {
  private readonly transport: Transport;
  /** Dials waiting for their handshake's outcome, by connection. */
  private readonly waiters = new Map<string, { resolve: (peer: string) => void; reject: (e: NodeError) => void }>();
  /** Where each peer we dialled listens, by node id. */
  private readonly addresses = new Map<string, string>();
  /** The attested peer on each connection. */
  private readonly peerOfConn = new Map<string, string>();
  /** Addresses of peers we dialled, kept in peers.json so a restarted node reconnects by itself. */
  private readonly saved = new Set<string>();
  /** The address each of our outgoing connections was dialled at. */
  private readonly outgoing = new Map<string, string>();
  /** Addresses with a redial loop running (one loop per address). */
  private readonly redialing = new Set<string>();
  /** Dialled connections the enclave closed itself, whose waiter its peer_disconnected event answers. */
  private readonly closedByEnclave = new Set<string>();

  constructor(private readonly opts: PeerDirectoryOptions) {
    const { enclave, report } = opts;
    this.transport = new Transport(
      {
        onOpen: (conn, outgoing) => {
          void enclave.call(outgoing ? 'peer_connect' : 'peer_accept', { conn }).catch((err: unknown) => {
            report('peer_handshake', err, { conn });
            this.transport.close(conn);
          });
        },
        // The promise lets the transport tell a handshake still being applied from a peer over its limits.
        onFrames: (conn, frames) =>
          enclave.call('peer_recv', { conn, frames }).catch((err: unknown) => {
            report('peer_recv', err, { conn });
            this.transport.close(conn);
          }),
        onClose: (conn) => this.closed(conn),
      },
      opts.preAuth ? { preAuth: opts.preAuth } : {},
    );
  }

  /** Listens for peers; resolves with the port. */
  listen(host: string, port: number): Promise<number> {
    return this.transport.listen(host, port);
  }

  /** The enclave's net_send ocall. */
  send(conn: string, frames: Uint8Array[]): void {
    this.transport.send(conn, frames);
  }

  /** The enclave's net_close ocall. */
  close(conn: string): void {
    // The enclave ended it and says why in its peer_disconnected event: a dial waiting on it hears that reason.
    if (this.waiters.has(conn)) this.closedByEnclave.add(conn);
    this.transport.close(conn);
  }

  /** Dials a peer at host:port and runs mutual attestation; resolves with its node id. */
  async connect(address: string, timeoutMs = 10_000): Promise<string> {
    if (this.opts.stopping()) throw new NodeError('node_stopping');
    const m = /^([^:]+):(\d{1,5})$/.exec(address);
    if (!m) throw new NodeError('invalid_argument', 'address must be host:port');
    let conn: string;
    try {
      conn = await this.transport.dial(m[1]!, Number(m[2]), timeoutMs);
    } catch (err) {
      throw new NodeError('peer_unreachable', `cannot reach ${address}: ${(err as Error).message}`);
    }
    this.outgoing.set(conn, address);
    const peerId = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(conn);
        this.transport.close(conn);
        // Definite, not `timeout` (504: outcome unknown): the connection is closed here, so the peer is not
        // connected and nothing was saved. No payment waits on this dial (payments only use sessions that
        // are up); its callers are POST /v1/peers, the redials and a committee's joins.
        reject(new NodeError('peer_unreachable', `handshake timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(conn, {
        resolve: (p) => {
          clearTimeout(timer);
          resolve(p);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
    this.addresses.set(peerId, address);
    if (!this.saved.has(address)) {
      this.saved.add(address);
      await savePeers(this.opts.datadir, this.saved);
    }
    return peerId;
  }

  /** The enclave attested the peer on `conn` (its peer_connected event). */
  authenticated(conn: string, peerId: string): void {
    this.transport.authenticated(conn);
    this.peerOfConn.set(conn, peerId);
    this.waiters.get(conn)?.resolve(peerId);
    this.waiters.delete(conn);
  }

  /** The enclave ended the session on `conn` (its peer_disconnected event): a handshake refused, or a peer gone. */
  disconnected(conn: string, reason: string): void {
    this.peerOfConn.delete(conn);
    this.closedByEnclave.delete(conn);
    this.waiters.get(conn)?.reject(new NodeError('attestation_failed', reason));
    this.waiters.delete(conn);
  }

  peers(): PeerInfo[] {
    return [...this.peerOfConn.entries()].map(([conn, peer_id]) => ({
      peer_id,
      conn,
      address: this.addresses.get(peer_id) ?? null,
    }));
  }

  /** Whether we dialled this node (and so know where it listens). */
  dialled(peerId: string): boolean {
    return this.addresses.has(peerId);
  }

  /** Re-dials every peer in peers.json (at start-up); an unreadable file is reported and dials none. */
  async redialSaved(): Promise<void> {
    let saved: string[] = [];
    try {
      saved = await loadPeers(this.opts.datadir);
    } catch (err) {
      this.opts.report('peers_file', err);
    }
    for (const address of saved) {
      this.saved.add(address);
      this.redial(address, 0);
    }
  }

  /** Re-dials `address` until a session is up again (backoff up to 5 s); one loop per address. */
  redial(address: string, delayMs: number): void {
    if (this.opts.stopping() || this.redialing.has(address)) return;
    this.redialing.add(address);
    setTimeout(() => {
      // A session the peer opened meanwhile replaced ours (each side once dialled the other, as a committee
      // primary and the member it adds do): dialling again would only replace that one, and so on for ever.
      if (this.connectedAt(address)) {
        this.redialing.delete(address);
        return;
      }
      this.connect(address, 5_000).then(
        () => {
          this.redialing.delete(address);
        },
        (err: unknown) => {
          this.redialing.delete(address);
          const retryMs = nextBackoff(delayMs);
          this.opts.report('redial', err, { address, retry_ms: retryMs });
          this.redial(address, retryMs);
        },
      );
    }, delayMs).unref();
  }

  /** Whether the peer we once dialled at `address` has a session now (on whichever connection). */
  private connectedAt(address: string): boolean {
    const up = new Set(this.peerOfConn.values());
    for (const [peerId, a] of this.addresses) if (a === address && up.has(peerId)) return true;
    return false;
  }

  /** Closes the listener and every connection. */
  stop(): Promise<void> {
    return this.transport.stop();
  }

  private closed(conn: string): void {
    if (this.opts.stopping()) return;
    void this.opts.enclave
      .call('peer_disconnected', { conn })
      .catch((err: unknown) => this.opts.report('peer_disconnect', err, { conn }));
    const address = this.outgoing.get(conn);
    this.outgoing.delete(conn);
    if (address && this.saved.has(address)) this.redial(address, 200);
    if (this.closedByEnclave.delete(conn)) return; // its reason comes with the enclave's event (disconnected)
    this.waiters.get(conn)?.reject(new NodeError('peer_unreachable', 'connection closed during the handshake'));
    this.waiters.delete(conn);
  }
}
