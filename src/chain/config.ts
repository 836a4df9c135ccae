/**
 * Which chain backend to use, from the environment:
 * - `BITCOIND_RPC_URL` set: a user's own `bitcoind -regtest`, authenticated with
 *   `BITCOIND_RPC_COOKIE` (path of its `.cookie`) or `BITCOIND_RPC_USER` + `BITCOIND_RPC_PASSWORD`;
 *   `BITCOIND_RPC_WALLET` optionally names the wallet the faucet uses.
 * - otherwise: the embedded chain.
 */
import { BitcoinRpcClient } from './rpc-client.ts';

/** A chosen backend. */
export type ChainBackendConfig =
  | { kind: 'embedded' }
  | { kind: 'bitcoind'; url: string; cookieFile?: string; user?: string; password?: string; wallet?: string };

/** Reads the backend choice; throws an Error naming the missing variable when bitcoind settings are incomplete. */
export function chainBackendFromEnv(env: NodeJS.ProcessEnv = process.env): ChainBackendConfig {
  const url = env.BITCOIND_RPC_URL?.trim();
  if (!url) return { kind: 'embedded' };
  const wallet = env.BITCOIND_RPC_WALLET?.trim() || undefined;
  const cookieFile = env.BITCOIND_RPC_COOKIE?.trim();
  if (cookieFile) return { kind: 'bitcoind', url, cookieFile, ...(wallet ? { wallet } : {}) };
  const user = env.BITCOIND_RPC_USER;
  const password = env.BITCOIND_RPC_PASSWORD;
  if (user === undefined || password === undefined) {
    throw new Error(
      'BITCOIND_RPC_URL is set: also set BITCOIND_RPC_COOKIE, or BITCOIND_RPC_USER and BITCOIND_RPC_PASSWORD',
    );
  }
  return { kind: 'bitcoind', url, user, password, ...(wallet ? { wallet } : {}) };
}

/** A client for a bitcoind backend. */
export async function bitcoindClient(
  cfg: Extract<ChainBackendConfig, { kind: 'bitcoind' }>,
): Promise<BitcoinRpcClient> {
  const extra = cfg.wallet ? { wallet: cfg.wallet } : {};
  if (cfg.cookieFile) return BitcoinRpcClient.fromCookie(cfg.url, cfg.cookieFile, extra);
  return new BitcoinRpcClient({ url: cfg.url, user: cfg.user ?? '', password: cfg.password ?? '', ...extra });
}
