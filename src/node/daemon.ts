/**
 * One treasury node as a long-running process: chain client, enclave, P2P transport, REST API.
 * Used by `teechain node start` and by the local network launcher (one process per node).
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { AttestationService } from '../../enclave-sim/index.ts';
import { BitcoinRpcClient } from '../chain/rpc-client.ts';
import { Faucet } from '../chain/faucet.ts';
import { buildApp } from '../api/app.ts';
import { loadOrCreateTokens } from '../api/auth.ts';
import type { RegtestFaucet } from '../api/routes.ts';
import { NodeMetrics } from '../metrics/node-metrics.ts';
import { silentLogger, type Logger } from '../log/logger.ts';
import { logObserver } from '../log/node-log.ts';
import { RpcChainSource } from './chain-source.ts';
import { failureReporter } from './failure-reporter.ts';
import { combineObservers } from './observer.ts';
import { TreasuryNode } from './treasury-node.ts';
import { makePrivateDir } from './secret-file.ts';
import { listenHttp } from '../api/listen.ts';

export interface DaemonOptions {
  datadir: string;
  rpcUrl: string;
  rpcUser?: string;
  rpcPassword?: string;
  rpcCookie?: string;
  /** The attestation service's key file (the local network shares one; see docs/architecture.md). */
  attestationKey: string;
  allowedMeasurements?: string[];
  minConfirmations?: number;
  payoutAddress?: string;
  p2pHost?: string;
  p2pPort?: number;
  apiHost?: string;
  /** The host named in the REST URL and the P2P address others dial, if not the one listened on (apiHost). */
  advertiseHost?: string;
  apiPort?: number;
  /** Allow POST /v1/deposits {fund: true} from the chain's regtest wallet. */
  regtestFaucet?: boolean;
  /** A new primary's committee size and threshold (docs/protocol/committees.md). */
  committee?: { size: number; threshold?: number };
  /** host:port of the primary this node backs up. */
  backupOf?: string;
  /** How long a P2P connection has to complete its handshake (default 10 s, DEFAULT_PRE_AUTH in transport.ts). */
  handshakeTimeoutMs?: number;
  /** A backup's one-time join token (from --join-token-file or TEECHAIN_JOIN_TOKEN, never argv). */
  joinToken?: string;
  /** Silence from its primary after which a committee backup suspects it (--promotion-timeout-ms; 0: never). */
  promotionTimeoutMs?: number;
  /** Structured logs (src/log); default none. */
  logger?: Logger;
}

export interface RunningDaemon {
  node: TreasuryNode;
  metrics: NodeMetrics;
  restUrl: string;
  p2p: string;
  adminTokenFile: string;
  readonlyTokenFile: string;
  stop(): Promise<void>;
}

export async function startDaemon(opts: DaemonOptions): Promise<RunningDaemon> {
  await makePrivateDir(opts.datadir);
  const rpc = opts.rpcCookie
    ? await BitcoinRpcClient.fromCookie(opts.rpcUrl, opts.rpcCookie)
    : new BitcoinRpcClient({ url: opts.rpcUrl, user: opts.rpcUser ?? '', password: opts.rpcPassword ?? '' });
  const log = opts.logger ?? silentLogger();
  const metrics = new NodeMetrics();
  const observer = combineObservers(metrics.observer, logObserver(log));
  const chain = new RpcChainSource(rpc, { report: failureReporter(observer) });
  const attestation = await AttestationService.load(opts.attestationKey);
  // Bound before the node starts, so that its enclave knows the REST URL (a committee lists it in its roster);
  // until the API is ready, requests are answered 503.
  const host = opts.apiHost ?? '127.0.0.1';
  let serve: RequestListener = notReadyYet;
  const server: Server = await listenHttp(
    createServer((req, res) => serve(req, res)),
    opts.apiPort ?? 0,
    host,
  );
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const named = opts.advertiseHost ?? host;
  const restUrl = `http://${named.includes(':') ? `[${named}]` : named}:${port}`;
  let node: TreasuryNode;
  try {
    node = await TreasuryNode.start({
      restUrl,
      observer,
      datadir: opts.datadir,
      chain,
      attestation,
      allowedMeasurements: opts.allowedMeasurements,
      minConfirmations: opts.minConfirmations,
      payoutAddress: opts.payoutAddress,
      p2pHost: opts.p2pHost,
      ...(opts.advertiseHost !== undefined ? { advertiseHost: opts.advertiseHost } : {}),
      p2pPort: opts.p2pPort,
      ...(opts.committee ? { committee: opts.committee } : {}),
      ...(opts.backupOf ? { backupOf: opts.backupOf } : {}),
      ...(opts.handshakeTimeoutMs !== undefined ? { preAuth: { timeoutMs: opts.handshakeTimeoutMs } } : {}),
      ...(opts.joinToken ? { joinToken: opts.joinToken } : {}),
      ...(opts.promotionTimeoutMs !== undefined ? { promotionTimeoutMs: opts.promotionTimeoutMs } : {}),
    });
  } catch (err) {
    server.close();
    throw err;
  }
  metrics.attach({
    channels: () => node.channels(),
    deposits: () => node.deposits(),
    peers: () => node.peers(),
    blockHeight: () => chain.blockHeight(),
    committee: async () => (await node.info()).committee,
  });
  const tokens = await loadOrCreateTokens(opts.datadir);
  const faucet: RegtestFaucet | null = opts.regtestFaucet ? faucetFor(rpc) : null;
  serve = buildApp({ node, tokens, faucet, metrics, logger: log });
  log.info(
    {
      node_id: node.nodeId,
      measurement: node.measurement,
      rest_url: restUrl,
      p2p_port: node.p2pPort,
      datadir: opts.datadir,
    },
    'node started',
  );
  return {
    node,
    metrics,
    restUrl,
    p2p: node.p2pAddress,
    adminTokenFile: tokens.adminFile,
    readonlyTokenFile: tokens.readonlyFile,
    async stop() {
      log.info('node stopping');
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await node.stop();
    },
  };
}

/** The answer while the node is still starting (the same error shape as the API's). */
function notReadyYet(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
  res.end(JSON.stringify({ error: { code: 'not_initialized', message: 'the node is starting' } }));
}

function faucetFor(rpc: BitcoinRpcClient): RegtestFaucet {
  const faucet = new Faucet(rpc);
  return {
    async fundAndConfirm(address, amountSat, confirmations) {
      const out = await faucet.fund(address, amountSat);
      await faucet.mine(confirmations);
      await faucet.waitForConfirmations(out.txid, confirmations, { timeoutMs: 30_000 });
      return { txid: out.txid, vout: out.vout };
    },
  };
}
