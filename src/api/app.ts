/**
 * The REST wallet API as an express app, built from the route table (routes.ts) and separate from
 * listen(), so tests can call it in-process as well as over real sockets.
 *
 * Every error answer is `{ "error": { "code", "message" } }` with the status from the one error table
 * (src/node/errors.ts); bad input is a 4xx, never a stack trace. `not_primary` (a write sent to a committee
 * backup) also carries `primary: { node_id, rest_url }`, the committee's current primary.
 *
 * GET /metrics serves the node's Prometheus metrics (src/metrics) and, like every other route, needs a
 * token (the read-only one will do): the metrics carry channel balances, which are nobody else's business.
 * Requests are logged at `debug` (method, path, status, time; never headers or bodies, so never a token).
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { NodeError } from '../node/errors.ts';
import type { TreasuryNode } from '../node/treasury-node.ts';
import { grantOf, type Tokens } from './auth.ts';
import type { NodeMetrics } from '../metrics/node-metrics.ts';
import type { Logger } from '../log/logger.ts';
import { openApiDocument } from './openapi.ts';
import { routes, type RegtestFaucet } from './routes.ts';

export interface ApiOptions {
  node: TreasuryNode;
  tokens: Pick<Tokens, 'admin' | 'readonly'>;
  faucet?: RegtestFaucet | null;
  metrics?: NodeMetrics | null;
  logger?: Logger | null;
}

const DEFAULT_BODY_LIMIT = '64kb';

export function buildApp(opts: ApiOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  const log = opts.logger ?? null;
  if (log) app.use(requestLog(log));
  // Bodies are small except where a route says otherwise (a batch of payments): each route parses its own.
  const parsers = new Map<string, ReturnType<typeof express.json>>();
  const parserFor = (limit: string) => {
    let p = parsers.get(limit);
    if (!p) parsers.set(limit, (p = express.json({ limit, strict: true })));
    return p;
  };

  app.get('/v1/openapi.json', (_req, res) => {
    res.json(openApiDocument());
  });

  app.get('/metrics', async (req: Request, res: Response, next: NextFunction) => {
    try {
      if (!grantOf(req.headers.authorization, opts.tokens)) throw new NodeError('unauthorized');
      if (!opts.metrics) throw new NodeError('not_found', 'this node serves no metrics');
      const { contentType, body } = await opts.metrics.expose();
      res.type(contentType).send(body);
    } catch (err) {
      next(err);
    }
  });

  for (const r of routes) {
    const body = r.body ? TypeCompiler.Compile(r.body) : null;
    const query = r.query ? TypeCompiler.Compile(r.query) : null;
    app[r.method](
      r.path,
      parserFor(r.bodyLimit ?? DEFAULT_BODY_LIMIT),
      async (req: Request, res: Response, next: NextFunction) => {
        try {
          const grant = grantOf(req.headers.authorization, opts.tokens);
          if (!grant) throw new NodeError('unauthorized');
          if (r.access === 'admin' && grant !== 'admin')
            throw new NodeError('forbidden', 'the read-only token may only call GET routes');
          const b = r.method === 'post' ? (req.body ?? {}) : undefined;
          if (body && !body.Check(b)) throw new NodeError('invalid_argument', describe(body.Errors(b).First()));
          const q = { ...req.query };
          if (query && !query.Check(q)) throw new NodeError('invalid_argument', describe(query.Errors(q).First()));
          const result = await r.handler(
            { node: opts.node, params: req.params as Record<string, string>, faucet: opts.faucet ?? null },
            b,
            q,
          );
          res.status(r.status ?? 200).json(result);
        } catch (err) {
          next(err);
        }
      },
    );
  }

  app.use((_req: Request, _res: Response, next: NextFunction) => next(new NodeError('not_found', 'no such route')));
  // express recognises an error handler by its four parameters.
  app.use(async (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    let e = toNodeError(err);
    // The enclave refused a backup's write itself (the host's gate had not seen the role change): name the primary.
    if (e.code === 'not_primary' && !e.primary) e = await opts.node.notPrimary().catch(() => e);
    res.locals.errorCode = e.code;
    // An unexpected failure is answered with a bare `internal`; the log keeps what happened.
    if (e.status >= 500 && !(err instanceof NodeError))
      log?.error({ method: req.method, path: req.path, err: String((err as Error)?.stack ?? err) }, 'request failed');
    res.status(e.status).json({
      error: { code: e.code, message: e.message, ...(e.primary ? { primary: e.primary } : {}) },
    });
  });
  return app;
}

/** One debug line per request, when it ends. req.path leaves out the query string. */
function requestLog(log: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    const start = process.hrtime.bigint();
    res.once('finish', () => {
      const line = {
        method: req.method,
        path: req.path,
        status: res.statusCode,
        ms: Number(process.hrtime.bigint() - start) / 1e6,
        code: res.locals.errorCode as string | undefined,
      };
      if (res.statusCode >= 500) log.warn(line, 'request answered with an error');
      else log.debug(line, 'request');
    });
    next();
  };
}

function toNodeError(err: unknown): NodeError {
  if (err instanceof NodeError) return err;
  const e = err as { type?: string; status?: number; message?: string };
  // body-parser's own errors: malformed JSON, too large, wrong charset.
  if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
    return new NodeError(
      'invalid_argument',
      e.type === 'entity.parse.failed' ? 'the body is not valid JSON' : (e.message ?? 'bad request'),
    );
  }
  return new NodeError('internal', 'internal error');
}

function describe(err: { path: string; message: string } | undefined): string {
  if (!err) return 'invalid request';
  const field = err.path.replace(/^\//, '').replace(/\//g, '.') || 'body';
  return `${field}: ${err.message}`;
}
