/**
 * The façade's HTTP JSON-RPC server, shaped like bitcoind's: POST on 127.0.0.1, HTTP basic auth,
 * a `.cookie` file (`__cookie__:<random>`) when no fixed credentials are given, JSON-RPC 1.0 and 2.0,
 * batches. A bad request is answered, never allowed to crash the chain process.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { RpcCode } from '../rpc-errors.ts';
import { RpcFailure } from './errors.ts';
import { dispatch, type ChainContext } from './methods.ts';
import { toJson } from './json.ts';

/** Cookie user name, as bitcoind writes it. */
export const COOKIE_USER = '__cookie__';

const MAX_BODY_BYTES = 32 * 1024 * 1024;

/** Options of {@link startRpcServer}. */
export interface RpcServerOptions {
  /** TCP port; 0 (default) picks a free one. */
  port?: number;
  /** The IPv4 address to listen on (default 127.0.0.1); the URL names it. */
  host?: string;
  /** Fixed credentials; when absent a random cookie password is made. */
  user?: string;
  password?: string;
  /** Where to write the cookie (`user:password`); null writes none. */
  cookieFile?: string | null;
}

/** A running server. */
export interface RpcServer {
  url: string;
  port: number;
  user: string;
  password: string;
  cookieFile: string | null;
  close(): Promise<void>;
}

interface Reply {
  status: number;
  body: string;
}

function errorObject(err: unknown): { code: number; message: string } {
  if (err instanceof RpcFailure) return { code: err.code, message: err.message };
  // Anything else is a bug or a bcoin internal failure: answer like Core answers an exception.
  process.stderr.write(`embedded chain: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
  return { code: RpcCode.MISC_ERROR, message: (err as Error)?.message ?? String(err) };
}

function legacyStatus(code: number): number {
  if (code === RpcCode.INVALID_REQUEST) return 400;
  if (code === RpcCode.METHOD_NOT_FOUND) return 404;
  return 500;
}

/** Handles one request object; `null` for a JSON-RPC 2.0 notification (no reply). */
async function handleCall(ctx: ChainContext, req: unknown): Promise<{ json: string; code: number | null } | null> {
  if (req === null || typeof req !== 'object' || Array.isArray(req)) {
    return {
      json: toJson({
        result: null,
        error: { code: RpcCode.INVALID_REQUEST, message: 'Invalid Request object' },
        id: null,
      }),
      code: RpcCode.INVALID_REQUEST,
    };
  }
  const call = req as { jsonrpc?: unknown; method?: unknown; params?: unknown; id?: unknown };
  const v2 = call.jsonrpc === '2.0';
  const id = call.id === undefined ? null : call.id;
  const answer = (result: unknown, error: { code: number; message: string } | null) =>
    v2 ? toJson(error ? { jsonrpc: '2.0', error, id } : { jsonrpc: '2.0', result, id }) : toJson({ result, error, id });
  if (typeof call.method !== 'string') {
    const error = { code: RpcCode.INVALID_REQUEST, message: 'Method must be a string' };
    return { json: answer(null, error), code: error.code };
  }
  try {
    const result = await dispatch(ctx, call.method, call.params);
    if (v2 && call.id === undefined) return null;
    return { json: answer(result === undefined ? null : result, null), code: null };
  } catch (err) {
    const error = errorObject(err);
    if (v2 && call.id === undefined) return null;
    return { json: answer(null, error), code: v2 ? null : error.code };
  }
}

async function handleBody(ctx: ChainContext, body: string): Promise<Reply> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return {
      status: 500,
      body: toJson({ result: null, error: { code: RpcCode.PARSE_ERROR, message: 'Parse error' }, id: null }),
    };
  }
  if (Array.isArray(parsed)) {
    const replies = await Promise.all(parsed.map((r) => handleCall(ctx, r)));
    return {
      status: 200,
      body: `[${replies
        .filter((r) => r !== null)
        .map((r) => r.json)
        .join(',')}]`,
    };
  }
  const reply = await handleCall(ctx, parsed);
  if (reply === null) return { status: 204, body: '' };
  return { status: reply.code === null ? 200 : legacyStatus(reply.code), body: reply.json };
}

function checkAuth(header: string | undefined, expected: Buffer): boolean {
  if (!header || !header.startsWith('Basic ')) return false;
  const given = Buffer.from(Buffer.from(header.slice(6).trim(), 'base64').toString('utf8'));
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function readBody(req: IncomingMessage): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        resolve(null);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Starts the server on 127.0.0.1, or on `opts.host`. */
export async function startRpcServer(ctx: ChainContext, opts: RpcServerOptions = {}): Promise<RpcServer> {
  const user = opts.user ?? COOKIE_USER;
  const password = opts.password ?? randomBytes(32).toString('hex');
  const expected = Buffer.from(`${user}:${password}`);

  const send = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(body),
      ...headers,
    });
    res.end(body);
  };

  const server = createServer((req, res) => {
    void (async () => {
      if (!checkAuth(req.headers.authorization, expected)) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="jsonrpc"', 'Content-Length': 0 });
        res.end();
        return;
      }
      if (req.method !== 'POST') return send(res, 405, '');
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      if (path !== '/' && !path.startsWith('/wallet/')) return send(res, 404, '');
      const body = await readBody(req);
      if (body === null) return send(res, 413, '');
      const reply = await handleBody(ctx, body);
      send(res, reply.status, reply.body);
    })().catch((err) => {
      process.stderr.write(`embedded chain: request failed: ${(err as Error)?.stack ?? String(err)}\n`);
      if (!res.headersSent)
        send(
          res,
          500,
          toJson({ result: null, error: { code: RpcCode.INTERNAL_ERROR, message: 'Internal error' }, id: null }),
        );
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 30_000;

  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const cookieFile = opts.cookieFile ?? null;
  if (cookieFile) {
    // A stale cookie (after a crash) may have any mode: never write the new password into it.
    rmSync(cookieFile, { force: true });
    writeFileSync(cookieFile, `${user}:${password}`, { mode: 0o600, flag: 'wx' });
    chmodSync(cookieFile, 0o600);
  }

  let closed = false;
  return {
    url: `http://${host}:${port}/`,
    port,
    user,
    password,
    cookieFile,
    async close() {
      if (closed) return;
      closed = true;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      // bitcoind removes its cookie on shutdown, so a stale one never looks valid.
      if (cookieFile) rmSync(cookieFile, { force: true });
    },
  };
}
