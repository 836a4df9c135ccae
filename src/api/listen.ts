/**
 * Starting an HTTP server (the REST API, the dashboard) with keep-alive timings that cannot close a socket
 * under a request the server has not read yet.
 *
 * Node closes an idle keep-alive socket after `keepAliveTimeout` (5 s by default), and clients such as
 * fetch reuse one until 2 s before the server's announced timeout. When the server's event loop is busy
 * (enclave calls, a loaded machine) while a client sends on a socket idle for 3 to 5 s, the loop's next turn
 * runs the expired timer before it reads the socket: the server destroys the socket under the request and the
 * client sees "other side closed" for a request that never ran. A long timeout makes that gap one a client
 * meets only after a minute of silence on one socket; headersTimeout stays above it, as Node requires.
 */
import type { Server } from 'node:http';

export const KEEP_ALIVE_TIMEOUT_MS = 65_000;

/** Anything that listens like an express app: `app.listen(port, host, callback)`. */
export interface Listenable {
  listen(port: number, host: string, callback: () => void): Server;
}

/** Listens on `host:port` (0: any free port) and resolves once the server is bound. */
export function listenHttp(app: Listenable, port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
    server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1_000;
    server.once('error', reject);
  });
}
