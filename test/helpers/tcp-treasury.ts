/**
 * An enclave core in the test's own process behind a real TCP transport: a node whose enclave the test
 * (the attacker) controls, reaching real node processes over real, authenticated sessions. Attested with
 * the test's attestation key, on a platform of its own; it seals nothing (its state lives in memory).
 */
import { randomBytes } from 'node:crypto';
import { payments } from 'bitcoinjs-lib';
import { AttestationService } from '../../enclave-sim/attestation.ts';
import { Transport } from '../../src/network/transport.ts';
import { Treasury } from '../../src/enclave/treasury/treasury.ts';
import { NETWORK } from '../../src/enclave/treasury/transactions.ts';
import type { TreasuryEvent } from '../../src/enclave/treasury/ports.ts';

export interface TcpTreasuryOptions {
  /** The attestation key of the test's nodes (their trust anchor). */
  key: string;
  /** The measurement this node accepts in its peers' quotes. */
  accepts: string;
  /** The measurement its own quotes carry (default `accepts`: the same code as its peers). */
  measurement?: string;
  replyTimeoutMs: number;
  /** Each event of its enclave, after a new session was marked authenticated. */
  onEvent?: (e: TreasuryEvent, transport: Transport) => void;
}

/** A committee backup's enclave core, listening on loopback: `address` is its p2p address. */
export async function tcpTreasury(opts: TcpTreasuryOptions) {
  const service = await AttestationService.load(opts.key);
  const payoutAddress = payments.p2wpkh({ hash: randomBytes(20), network: NETWORK }).address!;
  const state = Treasury.create(
    { trustAnchor: service.trustAnchor, allowedMeasurements: [opts.accepts], minConfirmations: 1, payoutAddress },
    { role: 'backup' },
  );
  const platformId = randomBytes(16).toString('hex');
  const measurement = opts.measurement ?? opts.accepts;
  let treasury: Treasury;
  const transport = new Transport({
    onOpen: (conn, outgoing) => (outgoing ? void treasury.connect(conn) : treasury.accept(conn)),
    onFrames: (conn, frames) => treasury.receive(conn, frames),
    onClose: (conn) => treasury.disconnected(conn),
  });
  treasury = new Treasury(state, {
    seal: async () => undefined,
    send: (conn, frames) => transport.send(conn, frames),
    close: (conn) => transport.close(conn),
    emit: (e) => {
      if (e.type === 'peer_connected') transport.authenticated(e.conn);
      opts.onEvent?.(e, transport);
    },
    getTxOut: async () => null,
    quote: async (reportData, nonce) =>
      service.issueQuote({ measurement, reportData, nonce, debug: false, platformId }),
    random: (n) => new Uint8Array(randomBytes(n)),
    replyTimeoutMs: opts.replyTimeoutMs,
  });
  await treasury.commit();
  const address = `127.0.0.1:${await transport.listen('127.0.0.1', 0)}`;
  return { treasury, transport, address, stop: () => transport.stop() };
}
