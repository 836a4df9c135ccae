export { startEmbeddedChain, COOKIE_FILE, type EmbeddedChain, type EmbeddedChainOptions } from './start.js';
export { COOKIE_USER } from './rpc-server.js';
export { METHOD_NAMES } from './methods.js';
