/**
 * The launcher's control socket: how `teechain stress --chaos` kills and restarts the processes of a network
 * that `teechain network up` runs in another terminal (docs/stress.md, "Faults on a running network").
 * Only the launcher can start a node again as it was started (its data dir, ports, arguments and the
 * secrets it hands over in the environment), and only its children are stopped with it, so a run that
 * wants faults asks it rather than killing pids itself.
 *
 * A Unix socket, `launcher.sock` in the network's data dir: the data dir is private to its owner (it holds
 * every node's admin token), and the socket is made 0600 too, so only who may already stop the nodes can
 * reach it. One request per connection, one JSON line each way: `{"op":"ping"}`, `{"op":"kill","name":N}`,
 * `{"op":"restart","name":N}`, answered `{"ok":true}` or `{"ok":false,"error":"…"}`. A node killed through
 * the socket is started again by the launcher itself if no restart comes within RESTART_GUARD_MS, so a
 * client that goes away in between (a second Ctrl-C) never leaves the network short of a node.
 */
import { chmod, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

export const CONTROL_SOCKET = 'launcher.sock';
/** A killed node nobody asked to restart is restarted after this long. */
export const RESTART_GUARD_MS = 30_000;
/** How long a connection may stay silent (a restart's wait for the node to be up sends nothing either). */
const REQUEST_IDLE_MS = 180_000;
/** Longer lines are not requests (a name is a few characters). */
const MAX_REQUEST = 1_024;
/** The most a Unix socket path may hold on Linux (sun_path is 108 bytes, with its terminating zero). */
const MAX_SOCKET_PATH = 107;

export interface LauncherOps {
  kill(name: string): Promise<void>;
  restart(name: string): Promise<void>;
}

type Request = { op: 'ping' } | { op: 'kill' | 'restart'; name: string };
type Reply = { ok: true } | { ok: false; error: string };

export function controlSocketOf(datadir: string): string {
  return join(datadir, CONTROL_SOCKET);
}

/** Parses one request line; null if it is not one (the connection is then answered with an error). */
function parseRequest(line: string): Request | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const { op, name } = v as { op?: unknown; name?: unknown };
  if (op === 'ping') return { op };
  if ((op === 'kill' || op === 'restart') && typeof name === 'string' && name.length > 0 && name.length <= 64)
    return { op, name };
  return null;
}

/** Reads one line (at most MAX_REQUEST bytes) from `sock`; rejects if it closes or overflows first. */
function readLine(sock: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(buf.slice(0, nl));
      else if (buf.length > MAX_REQUEST) reject(new Error('request too long'));
    });
    sock.once('end', () => reject(new Error('connection closed before a full line')));
    sock.once('error', reject);
  });
}

export interface LauncherControl {
  /** Where it listens. */
  path: string;
  close(): Promise<void>;
}

/**
 * Serves `ops` on the data dir's control socket. Null (with the reason logged) when the path is too long
 * for a Unix socket: the network then runs without it, and `--chaos` on it says so.
 */
export async function serveLauncherControl(
  datadir: string,
  ops: LauncherOps,
  log: (line: string) => void,
  guardMs = RESTART_GUARD_MS,
): Promise<LauncherControl | null> {
  const path = controlSocketOf(datadir);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    log(
      `control socket: not served (${path} is longer than a Unix socket path may be); --chaos cannot reach this network`,
    );
    return null;
  }
  // Left by a launcher that was killed: no other launcher runs from this data dir (network up checked).
  await rm(path, { force: true });
  const guards = new Map<string, NodeJS.Timeout>();
  const handle = async (req: Request): Promise<Reply> => {
    if (req.op === 'ping') return { ok: true };
    clearTimeout(guards.get(req.name));
    guards.delete(req.name);
    if (req.op === 'kill') {
      await ops.kill(req.name);
      const guard = setTimeout(() => {
        guards.delete(req.name);
        log(`${req.name}: killed through the control socket and not restarted since; restarting it`);
        ops.restart(req.name).catch((err: Error) => log(`${req.name}: restart failed: ${err.message}`));
      }, guardMs);
      guard.unref();
      guards.set(req.name, guard);
    } else await ops.restart(req.name);
    return { ok: true };
  };
  const server: Server = createServer((sock) => {
    sock.on('error', () => undefined); // a client gone mid-answer is its own business
    // A client that never finishes its line holds nothing for long (a kill or restart answers well within it).
    sock.setTimeout(REQUEST_IDLE_MS, () => sock.destroy());
    void readLine(sock)
      .then(async (line) => {
        const req = parseRequest(line);
        if (!req) return { ok: false as const, error: 'not a request: {"op":"ping"|"kill"|"restart","name":…}' };
        return handle(req).catch((err: Error) => ({ ok: false as const, error: err.message.split('\n')[0]! }));
      })
      .then(
        (reply) => sock.end(`${JSON.stringify(reply)}\n`),
        () => sock.destroy(),
      );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  await chmod(path, 0o600);
  return {
    path,
    close: async () => {
      for (const g of guards.values()) clearTimeout(g);
      guards.clear();
      await new Promise<void>((r) => server.close(() => r()));
      await rm(path, { force: true });
    },
  };
}

/** Asks the launcher listening at `path`; rejects with its error, or if it cannot be reached within `timeoutMs`. */
export function askLauncher(path: string, req: Request, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`the launcher did not answer ${req.op} within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.once('connect', () => sock.write(`${JSON.stringify(req)}\n`));
    readLine(sock).then(
      (line) => {
        clearTimeout(timer);
        sock.destroy();
        let reply: Reply;
        try {
          reply = JSON.parse(line) as Reply;
        } catch {
          return reject(new Error('the launcher answered something that is not JSON'));
        }
        if (reply.ok) resolve();
        else reject(new Error(reply.error));
      },
      (err: Error) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
