/** Starting the whole embedded chain in-process: bcoin node + Core-compatible JSON-RPC façade. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openEmbeddedNode, mineToSegwitActivation } from './node.ts';
import { MempoolPolicy } from './mempool-accept.ts';
import { SingleKeyWallet } from './wallet.ts';
import { AsyncLock } from './lock.ts';
import { startRpcServer } from './rpc-server.ts';
import type { ChainContext } from './methods.ts';

/** Cookie file name inside the data directory (bitcoind's name). */
export const COOKIE_FILE = '.cookie';

/** Options of {@link startEmbeddedChain}. */
export interface EmbeddedChainOptions {
  /** Data directory: chain, wallet key and cookie. Required unless `memory`. */
  datadir?: string;
  /** Keep the chain in memory (tests). A datadir, if also given, still receives the cookie. */
  memory?: boolean;
  /** RPC port (default: a free port). */
  port?: number;
  /** The IPv4 address the RPC server listens on (default 127.0.0.1). */
  host?: string;
  /** Fixed RPC credentials instead of a cookie password. */
  rpcUser?: string;
  rpcPassword?: string;
  /** Called when a client sends the `stop` RPC. */
  onStopRequest?: () => void;
}

/** A running embedded chain. */
export interface EmbeddedChain {
  rpcUrl: string;
  rpcUser: string;
  rpcPassword: string;
  /** The cookie (`user:password`), or null when there is no datadir. */
  cookieFile: string | null;
  /** Chain height once ready. */
  height: number;
  /** Blocks mined at start to activate segwit (0 when an existing chain was opened). */
  activationBlocksMined: number;
  /** The façade wallet's address (where activation coinbases went). */
  walletAddress: string;
  /** Stops the RPC server, then closes the node (flushing it to disk). Idempotent. */
  close(): Promise<void>;
}

/**
 * Opens (or creates) the regtest chain and serves Core JSON-RPC for it. A new chain is mined to
 * segwit activation (about 432 blocks, paying the façade wallet) before the server answers.
 */
export async function startEmbeddedChain(opts: EmbeddedChainOptions = {}): Promise<EmbeddedChain> {
  const memory = opts.memory ?? false;
  const datadir = opts.datadir ?? null;
  if (!memory && !datadir) throw new RangeError('startEmbeddedChain: datadir is required unless memory is set');
  if (datadir) mkdirSync(datadir, { recursive: true, mode: 0o700 }); // it holds the cookie and the wallet key

  const opened = await openEmbeddedNode({ memory, ...(datadir ? { datadir } : {}) });
  try {
    const { node } = opened;
    const policy = new MempoolPolicy(node);
    const wallet = SingleKeyWallet.open(node, policy, memory ? null : datadir);
    const activationBlocksMined =
      opened.fresh || !node.chain.state.hasWitness() ? await mineToSegwitActivation(node, wallet.script) : 0;
    const ctx: ChainContext = {
      node,
      policy,
      wallet,
      lock: new AsyncLock(),
      startedAt: Date.now(),
      ...(opts.onStopRequest ? { requestStop: opts.onStopRequest } : {}),
    };
    const server = await startRpcServer(ctx, {
      ...(opts.port !== undefined ? { port: opts.port } : {}),
      ...(opts.host !== undefined ? { host: opts.host } : {}),
      ...(opts.rpcUser !== undefined ? { user: opts.rpcUser } : {}),
      ...(opts.rpcPassword !== undefined ? { password: opts.rpcPassword } : {}),
      cookieFile: datadir ? join(datadir, COOKIE_FILE) : null,
    });
    let closing: Promise<void> | null = null;
    return {
      rpcUrl: server.url,
      rpcUser: server.user,
      rpcPassword: server.password,
      cookieFile: server.cookieFile,
      height: node.chain.height,
      activationBlocksMined,
      walletAddress: wallet.address,
      close() {
        // Let in-flight mutations finish before the database closes under them.
        closing ??= server.close().then(() => ctx.lock.run(() => opened.close()));
        return closing;
      },
    };
  } catch (err) {
    // The start's own error is the one to report; closing what it half opened is best effort.
    await opened.close().catch(() => {});
    throw err;
  }
}
