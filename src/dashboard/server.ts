/**
 * The dashboard server: serves the page (built by Vite, see build.ts), pushes a snapshot of the network
 * to it every poll over server-sent events, and carries out its actions through the nodes' REST APIs.
 *
 * It binds to loopback and holds the nodes' admin tokens, so it guards against the two ways a web page
 * elsewhere could reach it: a Host header other than its own (DNS rebinding) is refused, and actions
 * must be JSON POSTs from its own origin (a cross-site form cannot send JSON without a CORS preflight,
 * which this server never grants).
 */
import { join } from 'node:path';
import type { Server } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { AttestationService } from '../../enclave-sim/attestation.ts';
import { measureBundle } from '../../enclave-sim/bundle.ts';
import { BitcoinRpcClient } from '../chain/rpc-client.ts';
import { readNetwork, type NetworkFile } from '../cli/client.ts';
import { silentLogger, type Logger } from '../log/logger.ts';
import { NodeError } from '../node/errors.ts';
import { TREASURY_PROGRAM } from '../node/enclave-client.ts';
import { Actions, isAction } from './actions.ts';
import type { AttestationPolicy } from './attestation-check.ts';
import { ensureDashboardBuilt } from './build.ts';
import { Collector } from './collector.ts';
import type { History, Snapshot } from './protocol.ts';
import { listenHttp } from '../api/listen.ts';

export interface DashboardOptions {
  network: NetworkFile;
  attestation: AttestationPolicy;
  host?: string;
  /** 0 = any free port. */
  port?: number;
  /** How often the nodes are polled (default 1000 ms). */
  pollMs?: number;
  logger?: Logger;
}

export interface RunningDashboard {
  url: string;
  collector: Collector;
  stop(): Promise<void>;
}

/** The dashboard of the network in `datadir` (network.json, attestation.key), as `teechain dashboard` runs it. */
export async function dashboardForDatadir(
  datadir: string,
  opts: Omit<DashboardOptions, 'network' | 'attestation'>,
): Promise<RunningDashboard> {
  const network = await readNetwork(datadir);
  const service = await AttestationService.load(join(datadir, 'attestation.key'));
  // Trust what this checkout builds, as `teechain attest` does, not what the nodes say they run.
  const allowedMeasurements = [await measureBundle(TREASURY_PROGRAM)];
  return startDashboard({ ...opts, network, attestation: { trustAnchor: service.trustAnchor, allowedMeasurements } });
}

export async function startDashboard(opts: DashboardOptions): Promise<RunningDashboard> {
  const log = opts.logger ?? silentLogger();
  const page = await ensureDashboardBuilt();
  log.info({ dir: page.dir, built: page.built }, page.built ? 'dashboard page built' : 'dashboard page reused');
  const { chain } = opts.network;
  const rpc = new BitcoinRpcClient({
    url: chain.rpcUrl,
    user: chain.rpcUser,
    password: chain.rpcPassword,
    timeoutMs: 10_000,
  });
  const collector = new Collector({ network: opts.network, rpc, attestation: opts.attestation, logger: log });
  const actions = new Actions(collector, rpc);
  const clients = new Set<Response>();
  const host = opts.host ?? '127.0.0.1';
  const pollMs = opts.pollMs ?? 1000;
  let allowedHosts = new Set<string>();

  const app = express();
  app.disable('x-powered-by');
  app.use((req, _res, next) =>
    next(allowedHosts.has(req.headers.host ?? '') ? undefined : new NodeError('forbidden', 'unexpected Host header')),
  );
  app.use(express.json({ limit: '16kb', strict: true }));

  app.get('/api/snapshot', async (_req, res) => {
    res.json(collector.latest ?? (await collector.poll()));
  });

  app.get('/api/events', (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write('retry: 1000\n\n');
    send(res, 'history', { points: collector.points } satisfies History);
    if (collector.latest) send(res, 'snapshot', collector.latest);
    clients.add(res);
    req.on('close', () => clients.delete(res));
  });

  app.post('/api/actions/:name', async (req: Request, res: Response, next: NextFunction) => {
    try {
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `http://${req.headers.host}`)
        throw new NodeError('forbidden', 'cross-origin action refused');
      if (!req.is('application/json'))
        throw new NodeError('invalid_argument', 'actions take a JSON body (content-type: application/json)');
      const name = String(req.params.name);
      if (!isAction(name)) throw new NodeError('not_found', `no action ${name}`);
      const answer = await actions.run(name, req.body);
      log.info(
        { action: name, status: answer.status, code: (answer.body as { error?: { code?: string } })?.error?.code },
        'action',
      );
      pollSoon();
      res.status(answer.status).json(answer.body);
    } catch (err) {
      next(err);
    }
  });

  app.use(express.static(page.dir, { index: 'index.html', maxAge: 0 }));
  app.use((_req: Request, _res: Response, next: NextFunction) => next(new NodeError('not_found', 'no such page')));
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const e =
      err instanceof NodeError
        ? err
        : (err as { status?: number }).status === 400
          ? new NodeError('invalid_argument', 'the body is not valid JSON')
          : new NodeError('internal');
    if (e.code === 'internal') log.error({ err: String((err as Error)?.stack ?? err) }, 'dashboard request failed');
    res.status(e.status).json({ error: { code: e.code, message: e.message } });
  });

  const server: Server = await listenHttp(app, opts.port ?? 0, host);
  const port = (server.address() as { port: number }).port;
  allowedHosts = new Set([`${host}:${port}`, `127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);

  // The poll loop: one poll at a time; an action asks for the next one right away.
  let stopped = false;
  let polling = false;
  let again = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const tick = async () => {
    if (stopped) return;
    if (polling) {
      again = true;
      return;
    }
    polling = true;
    clearTimeout(timer);
    const start = Date.now();
    try {
      const snap = await collector.poll();
      for (const c of clients) send(c, 'snapshot', snap);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'poll failed');
    } finally {
      polling = false;
    }
    if (stopped) return;
    if (again) {
      again = false;
      timer = setTimeout(() => void tick(), 0);
      return;
    }
    timer = setTimeout(() => void tick(), Math.max(50, pollMs - (Date.now() - start)));
  };
  const pollSoon = () => void tick();
  await tick();

  const url = `http://${host}:${port}/`;
  log.info({ url }, 'dashboard listening');
  return {
    url,
    collector,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      for (const c of clients) c.end();
      clients.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function send(res: Response, event: string, data: Snapshot | History): void {
  // A client that stopped reading is skipped rather than buffered without bound.
  if (res.writableLength > 4 * 1024 * 1024) return;
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}
