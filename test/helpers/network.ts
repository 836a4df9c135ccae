/**
 * End-to-end test fixtures: an embedded regtest chain (in this process, reached over real HTTP RPC),
 * an attestation key, and treasury nodes as real child processes with their REST APIs.
 */
import type { ChildProcess } from 'node:child_process';
import { after, before } from 'node:test';
import { createServer } from 'node:net';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AttestationService } from '../../enclave-sim/attestation.ts';
import { startEmbeddedChain } from '../../src/chain/embedded/index.ts';
import { BitcoinRpcClient } from '../../src/chain/rpc-client.ts';
import { NODE_MAIN } from '../../src/cli/processes.ts';
import { ApiClient } from '../../src/cli/client.ts';
import { openChannelBetween } from '../../src/cli/channels.ts';
import { JOIN_TOKEN_ENV, readJoinTokens, RPC_PASSWORD_ENV } from '../../src/node/secret-file.ts';
import { spawnReadyTracked, stopChild } from './processes.ts';

// Every node process (and anything spawned with spawnTracked) is stopped at the end of the file, even if a test failed first.
export { KILL_GRACE_MS, spawnTracked, stopChild, track } from './processes.ts';

export interface TestChain {
  rpcUrl: string;
  rpcUser: string;
  rpcPassword: string;
  rpc: BitcoinRpcClient;
  mine(n: number): Promise<void>;
  close(): Promise<void>;
}

export async function tempDir(prefix = 'teechain-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function startTestChain(dir?: string): Promise<TestChain> {
  const chain = await startEmbeddedChain(dir ? { datadir: dir } : { memory: true });
  const rpc = new BitcoinRpcClient({ url: chain.rpcUrl, user: chain.rpcUser, password: chain.rpcPassword });
  const burn = await rpc.call<string>('getnewaddress', []);
  return {
    rpcUrl: chain.rpcUrl,
    rpcUser: chain.rpcUser,
    rpcPassword: chain.rpcPassword,
    rpc,
    mine: async (n) => {
      await rpc.call('generatetoaddress', [n, burn]);
    },
    close: () => chain.close(),
  };
}

export async function attestationKey(dir: string): Promise<string> {
  const file = join(dir, 'attestation.key');
  await AttestationService.create().save(file);
  return file;
}

/**
 * What an end-to-end file shares: a scratch directory, the embedded regtest chain and an attestation key
 * for its nodes. Started in the file's `before`, the chain closed in its `after`:
 *   before(async () => ({ chain, dir, key } = await startE2eFile()));
 *   after(() => chain?.close());
 */
export async function startE2eFile(prefix?: string): Promise<{ chain: TestChain; dir: string; key: string }> {
  const dir = await tempDir(prefix);
  const chain = await startTestChain();
  return { chain, dir, key: await attestationKey(dir) };
}

/**
 * For a file whose tests each start the nodes they need on one shared chain: the chain and an attestation key
 * come up in the file's `before`; `startNode` starts a node in a fresh directory; every node it started is
 * stopped, and the chain closed, in the file's `after`. `file.chain` and `file.key` are set once `before` ran.
 */
export function nodesOnOneChain() {
  const file = { chain: undefined as unknown as TestChain, key: '' };
  const nodes: NodeProcess[] = [];
  before(async () => {
    file.chain = await startTestChain();
    file.key = await attestationKey(await tempDir());
  });
  after(async () => {
    for (const n of nodes) await n.kill();
    await file.chain?.close();
  });
  const startNode = async (extra: string[] = []): Promise<NodeProcess> => {
    const n = await NodeProcess.start(await tempDir(), file.chain, file.key, extra);
    nodes.push(n);
    return n;
  };
  return { file, startNode };
}

export interface NodeReady {
  node_id: string;
  measurement: string;
  p2p: string;
  rest_url: string;
  token_file: string;
  readonly_token_file: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the REST answers have no per-route types to derive T from yet: tests read them as the API documents
export interface ApiAnswer<T = any> {
  status: number;
  body: T;
}

/** A treasury node in its own process; `restart()` starts it again on the same data dir and ports. */
export class NodeProcess {
  proc!: ChildProcess;
  ready!: NodeReady;
  token = '';
  readonlyToken = '';
  private args: string[];
  /** Secrets go in the environment, as our own tooling passes them (never argv). */
  private env: Record<string, string>;

  constructor(
    readonly datadir: string,
    chain: TestChain,
    keyFile: string,
    extra: string[] = [],
    env: Record<string, string> = {},
  ) {
    this.args = [
      '--datadir',
      datadir,
      '--rpc-url',
      chain.rpcUrl,
      '--rpc-user',
      chain.rpcUser,
      '--attestation-key',
      keyFile,
      '--regtest-faucet',
      ...extra,
    ];
    this.env = { [RPC_PASSWORD_ENV]: chain.rpcPassword, ...env };
  }

  static async start(
    datadir: string,
    chain: TestChain,
    keyFile: string,
    extra: string[] = [],
    env: Record<string, string> = {},
  ): Promise<NodeProcess> {
    const n = new NodeProcess(datadir, chain, keyFile, extra, env);
    await n.launch();
    return n;
  }

  /** Starts the process and waits for its ready line. Rejects with its stderr if it exits first. */
  async launch(extra: string[] = []): Promise<void> {
    const args = [...this.args, ...extra];
    if (this.ready) {
      // Same ports as before, so peers that dialled us can redial.
      args.push('--p2p-port', this.ready.p2p.split(':')[1]!, '--api-port', new URL(this.ready.rest_url).port);
    }
    const p = await spawnReadyTracked<NodeReady>(NODE_MAIN, args, this.env);
    this.proc = p.proc;
    this.ready = p.ready;
    this.token = (await readFile(this.ready.token_file, 'utf8')).trim();
    this.readonlyToken = (await readFile(this.ready.readonly_token_file, 'utf8')).trim();
  }

  get id(): string {
    return this.ready.node_id;
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the REST answers have no per-route types to derive T from yet: tests read them as the API documents
  async api<T = any>(
    method: string,
    path: string,
    body?: unknown,
    token: string | null = this.token,
  ): Promise<ApiAnswer<T>> {
    const res = await fetch(`${this.ready.rest_url}${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    // JSON everywhere but GET /metrics (Prometheus text), which comes back as the string.
    const json = (res.headers.get('content-type') ?? '').includes('json');
    return { status: res.status, body: !text ? null : json ? JSON.parse(text) : text };
  }

  /** Like api() but throws unless the status is 2xx. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the REST answers have no per-route types to derive T from yet: tests read them as the API documents
  async ok<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.api<T>(method, path, body);
    if (r.status >= 300) throw new Error(`${method} ${path} → ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  /** Signals the process and waits for its exit; SIGKILL if it is still running after KILL_GRACE_MS. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await stopChild(this.proc, signal);
  }
}

/** The environment that hands a backup the `i`-th join token of `primary` (from its committee-join-tokens file). */
export async function joinTokenEnv(primary: NodeProcess, i: number): Promise<Record<string, string>> {
  const token = (await readJoinTokens(primary.datadir))[i];
  if (!token) throw new Error(`${primary.datadir} has no join token ${i}`);
  return { [JOIN_TOKEN_ENV]: token };
}

/**
 * A 2-of-3 committee of processes: a primary `<name>0` with `--committee 3` and backups `<name>1`, `<name>2`
 * joining it, each with one of its join tokens. Resolves once the chain is formed, every member connected
 * and the primary's last update acknowledged (within `formedWithinMs`), with the members in chain order
 * (primary first): the backups start together and join in whichever order they come up, so `<name>2` may
 * be the middle member. `extra`: more options for every member; `shape`: another n, or m (the primary's
 * `--threshold`).
 */
export async function startCommittee(
  dir: string,
  chain: TestChain,
  key: string,
  name: string,
  formedWithinMs: number,
  extra: string[] = [],
  shape: { size?: number; threshold?: number } = {},
): Promise<NodeProcess[]> {
  const size = shape.size ?? 3;
  const m = shape.threshold ? ['--threshold', String(shape.threshold)] : [];
  const p = await NodeProcess.start(join(dir, `${name}0`), chain, key, ['--committee', String(size), ...m, ...extra]);
  const backups = await Promise.all(
    Array.from({ length: size - 1 }, async (_, k) =>
      NodeProcess.start(
        join(dir, `${name}${k + 1}`),
        chain,
        key,
        ['--backup-of', p.ready.p2p, ...extra],
        await joinTokenEnv(p, k),
      ),
    ),
  );
  let order: string[] = [];
  await waitUntil(
    async () => {
      const c = (await p.api('GET', '/v1/committee')).body;
      order = c.members.map((m: { node_id: string }) => m.node_id);
      return c.formed && c.members.every((m: { connected: boolean }) => m.connected) && c.acked_seq === c.seq;
    },
    formedWithinMs,
    `committee ${name} formed`,
  );
  const members = [p, ...backups].sort((x, y) => order.indexOf(x.id) - order.indexOf(y.id));
  if (members.some((m, i) => order[i] !== m.id))
    throw new Error(`committee ${name}: roster ${order} is not its members`);
  return members;
}

/** A funded, confirmed deposit on `node`, through the API's regtest faucet. */
export async function fundDeposit(node: NodeProcess, amount: number): Promise<string> {
  const d = await node.ok<{ deposit_id: string; status: string }>('POST', '/v1/deposits', {
    amount_sat: amount,
    fund: true,
  });
  if (d.status !== 'free') throw new Error(`deposit ${d.deposit_id} is ${d.status}`);
  return d.deposit_id;
}

/** Connects a → b, opens a channel from a with a's deposit, and adds b's deposit. */
export function openChannel(a: NodeProcess, b: NodeProcess, aDeposits: string[], bDeposits: string[]): Promise<string> {
  const end = (n: NodeProcess) => ({ api: new ApiClient(n.ready.rest_url, n.token), nodeId: n.id, p2p: n.ready.p2p });
  return openChannelBetween(end(a), end(b), aDeposits, bDeposits);
}

export async function waitUntil(
  cond: () => Promise<boolean> | boolean,
  timeoutMs = 15_000,
  what = 'condition',
): Promise<void> {
  const start = Date.now();
  for (;;) {
    if (await cond()) return;
    if (Date.now() - start > timeoutMs) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

/** Whether nothing listens on 127.0.0.1:`port` (by listening on it for a moment). */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A base port B such that B + o is free for every offset in `offsets`, picked by `random` (a seeded PRNG)
 * below the kernel's ephemeral range (32768+), where no outgoing connection or port-0 listener lands.
 */
export async function freePorts(offsets: number[], random: () => number, low = 20_000, high = 32_000): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = low + Math.floor(random() * (high - low - Math.max(...offsets)));
    let free = true;
    for (const o of offsets)
      if (!(await portFree(base + o))) {
        free = false;
        break;
      }
    if (free) return base;
  }
  throw new Error(`no free ports at offsets ${offsets.join(',')} in ${low}-${high}`);
}
