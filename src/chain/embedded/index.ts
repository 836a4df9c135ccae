export { startEmbeddedChain, COOKIE_FILE, type EmbeddedChain, type EmbeddedChainOptions } from './start.ts';
export { COOKIE_USER } from './rpc-server.ts';
export { METHOD_NAMES } from './methods.ts';
