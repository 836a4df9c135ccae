/**
 * The REST wallet API as an express app, built from the route table (routes.ts) and separate from
 * listen(), so tests can call it in-process as well as over real sockets.
 *
 * Every error answer is `{ "error": { "code", "message" } }` with the status from the one error table
 * (src/node/errors.ts); bad input is a 4xx, never a stack trace.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { NodeError } from '../node/errors.ts';
import type { TreasuryNode } from '../node/treasury-node.ts';
import { grantOf, type Tokens } from './auth.ts';
import { openApiDocument } from './openapi.ts';
import { routes, type RegtestFaucet } from './routes.ts';

export interface ApiOptions {
  node: TreasuryNode;
  tokens: Pick<Tokens, 'admin' | 'readonly'>;
  faucet?: RegtestFaucet | null;
}

export function buildApp(opts: ApiOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(express.json({ limit: '64kb', strict: true }));

  app.get('/v1/openapi.json', (_req, res) => { res.json(openApiDocument()); });

  for (const r of routes) {
    const body = r.body ? TypeCompiler.Compile(r.body) : null;
    const query = r.query ? TypeCompiler.Compile(r.query) : null;
    app[r.method](r.path, async (req: Request, res: Response, next: NextFunction) => {
      try {
        const grant = grantOf(req.headers.authorization, opts.tokens);
        if (!grant) throw new NodeError('unauthorized');
        if (r.access === 'admin' && grant !== 'admin') throw new NodeError('forbidden', 'the read-only token may only call GET routes');
        const b = r.method === 'post' ? (req.body ?? {}) : undefined;
        if (body && !body.Check(b)) throw new NodeError('invalid_argument', describe(body.Errors(b).First()));
        const q = { ...req.query };
        if (query && !query.Check(q)) throw new NodeError('invalid_argument', describe(query.Errors(q).First()));
        const result = await r.handler({ node: opts.node, params: req.params as Record<string, string>, faucet: opts.faucet ?? null }, b, q);
        res.status(r.status ?? 200).json(result);
      } catch (err) {
        next(err);
      }
    });
  }

  app.use((_req: Request, _res: Response, next: NextFunction) => next(new NodeError('not_found', 'no such route')));
  // express recognises an error handler by its four parameters.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const e = toNodeError(err);
    res.status(e.status).json({ error: { code: e.code, message: e.message } });
  });
  return app;
}

function toNodeError(err: unknown): NodeError {
  if (err instanceof NodeError) return err;
  const e = err as { type?: string; status?: number; message?: string };
  // body-parser's own errors: malformed JSON, too large, wrong charset.
  if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
    return new NodeError('invalid_argument', e.type === 'entity.parse.failed' ? 'the body is not valid JSON' : (e.message ?? 'bad request'));
  }
  return new NodeError('internal', 'internal error');
}

function describe(err: { path: string; message: string } | undefined): string {
  if (!err) return 'invalid request';
  const field = err.path.replace(/^\//, '').replace(/\//g, '.') || 'body';
  return `${field}: ${err.message}`;
}
