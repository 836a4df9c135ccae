/**
 * Routing gossip for multi-hop payments: the enclave announces this node's channels to its peers. The
 * host only says when: twice a second (the enclave sends only when the announcement changed), to a new
 * peer as soon as it is attested, and at once when a channel changed, so that a multi-hop payment made
 * right after funding a channel does not meet its old capacity of 0.
 */
import type { ReportFailure } from './failure-reporter.ts';
import type { EcallPort } from './enclave-client.ts';

const GOSSIP_TICK_MS = 500;

export interface RouteGossipOptions {
  enclave: EcallPort;
  report: ReportFailure;
  stopping: () => boolean;
}

export class RouteGossip {
  private timer?: ReturnType<typeof setInterval>;

  constructor(private readonly opts: RouteGossipOptions) {}

  start(): void {
    this.timer = setInterval(() => this.announce(), GOSSIP_TICK_MS);
    this.timer.unref();
  }

  /** Announces now: to every peer whose view is out of date, or to `peerId` alone (a new session). */
  announce(peerId?: string): void {
    if (this.opts.stopping()) return;
    void this.opts.enclave
      .call('mh_gossip', peerId ? { peer_id: peerId } : {})
      .catch((err: unknown) => this.opts.report('gossip', err, peerId ? { peer_id: peerId } : {}));
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
