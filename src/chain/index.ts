// The chain layer's public surface. The embedded node (bcoin) is deliberately not re-exported here:
// importing it loads bcoin; get it from './embedded/index.ts' where it is wanted.
export {
  SATS_PER_BTC,
  MAX_MONEY_SATS,
  btcToSats,
  satsToBtcString,
  satsToBtcNumber,
  assertMoneyRange,
} from './amounts.ts';
export { RpcCode, RpcError, RpcTransportError, RpcInvalidDataError } from './rpc-errors.ts';
export { BitcoinRpcClient, DEFAULT_RPC_TIMEOUT_MS, type RpcClientOptions, type CallOptions } from './rpc-client.ts';
export type * from './rpc-types.ts';
export { Faucet, ConfirmationTimeoutError, type FaucetOptions, type FundedOutput, type WaitOptions } from './faucet.ts';
export {
  ChainWatcher,
  type OutPoint,
  type ConfirmationEvent,
  type SpendEvent,
  type ChainWatcherEvents,
  type ChainWatcherOptions,
} from './watcher.ts';
export { chainBackendFromEnv, bitcoindClient, type ChainBackendConfig } from './config.ts';
