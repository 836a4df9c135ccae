/**
 * `teechain network up` (what `npm start` runs): a whole local regtest network in one command.
 *
 * First run: starts the embedded chain (or uses a given bitcoind), an attestation key, N treasury node
 * processes; funds each node's deposits from the regtest faucet; opens the topology's channels; writes
 * network.json; prints a table. Later runs resume the same network from the data dir (same ports, so
 * nodes redial each other from their peers.json). Ctrl-C stops everything cleanly.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { AttestationService } from '../../enclave-sim/attestation.ts';
import { ApiClient, CliError, type NetworkFile, type NetworkNode } from './client.ts';
import { openChannelBetween } from './channels.ts';
import { formatSat, table } from './format.ts';
import { CHAIN_MAIN, NODE_MAIN, spawnReady, type ReadyProcess } from './processes.ts';
import {
  JOIN_TOKEN_ENV,
  makePrivateDir,
  readJoinTokens,
  RPC_PASSWORD_ENV,
  writeSecretFile,
} from '../node/secret-file.ts';
import { randomIndex, seededRandom } from '../stress/random.ts';

export const NODE_NAMES = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy'];
export type Topology = 'line' | 'ring' | 'star' | 'full' | 'random' | 'none';

export interface NetworkOptions {
  datadir: string;
  nodes: number;
  topology: Topology;
  depositSat: number;
  /** First port; 0 picks free ports (saved in network.json so a resumed network keeps them). */
  basePort: number;
  fresh: boolean;
  /** Members per treasury: 1 (no committee) or the primary plus N − 1 backups (docs/protocol/committees.md). */
  committee?: number;
  /** A user's own bitcoind instead of the embedded chain. */
  bitcoind?: { rpcUrl: string; rpcUser: string; rpcPassword: string };
  log(line: string): void;
  /** Each node's --log-level; its JSON logs go to nodes/NAME/node.log. */
  logLevel?: string;
  /** The seed that fixes a `random` topology's channels (recorded in network.json). */
  topologySeed?: number;
  /**
   * Each process in a process group of its own, stopping when this process ends however it ends
   * (processes.ts spawnReady): a Ctrl-C in the terminal then reaches this process only (`stress --fresh`).
   * `npm start` leaves it off: there a Ctrl-C reaches the whole network, as it always has.
   */
  ownGroup?: boolean;
  /** Aborted while the network is being built: everything started so far is stopped and networkUp rejects. */
  signal?: AbortSignal;
  /** Where each process runs and listens (a fresh network only); default: all on 127.0.0.1 of this machine. */
  hosts?: HostPlan;
}

/**
 * Each process on a host of its own (src/stress/netns.ts): the chain listens on `chainHost`; the node of
 * slot k (treasury i's member j is slot i × committee + j) is started through `prefix(k)` and listens on,
 * and advertises, `nodeHost(k)`.
 */
export interface HostPlan {
  chainHost: string;
  nodeHost(slot: number): string;
  prefix(slot: number): string[];
}

export interface RunningNetwork {
  network: NetworkFile;
  stop(): Promise<void>;
  /** Resolves when a child process dies on its own (with its name). */
  died: Promise<string>;
  /** Kills one node process (a treasury or a committee member, by name) with SIGKILL, as a crash would. */
  kill(name: string): Promise<void>;
  /** Starts a node killed by `kill` again, as it was started: the same data dir, ports and arguments. */
  restart(name: string): Promise<void>;
}

interface ChainReady {
  rpcUrl: string;
  rpcUser: string;
  rpcPassword: string;
  height: number;
  cookieFile: string;
}
interface NodeReady {
  node_id: string;
  p2p: string;
  rest_url: string;
  token_file: string;
}

/**
 * The channels of a topology over `n` nodes, as index pairs (opener first). `random` needs `seed`: the same
 * seed, the same graph (randomChannels).
 */
export function channelsOf(topology: Topology, n: number, seed = 0): Array<[number, number]> {
  const pairs: Array<[number, number]> = [];
  if (topology === 'line' || topology === 'ring') for (let i = 0; i + 1 < n; i++) pairs.push([i, i + 1]);
  if (topology === 'ring' && n > 2) pairs.push([n - 1, 0]);
  if (topology === 'star') for (let i = 1; i < n; i++) pairs.push([0, i]);
  if (topology === 'full') for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) pairs.push([i, j]);
  if (topology === 'random') pairs.push(...randomChannels(n, seed));
  return pairs;
}

/**
 * A connected random graph over `n` nodes, fixed by `seed`: a random spanning tree (the nodes in a random
 * order, each joined to one drawn among those before it), then floor(n / 2) more channels drawn among the
 * pairs not joined yet (fewer when the graph is full). No self-loops, no pair twice; each pair is (lower,
 * higher) index, sorted.
 */
export function randomChannels(n: number, seed: number): Array<[number, number]> {
  const rand = seededRandom(seed);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = randomIndex(rand, i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const key = (a: number, b: number) => (a < b ? a * n + b : b * n + a);
  const joined = new Set<number>();
  for (let i = 1; i < n; i++) joined.add(key(order[i]!, order[randomIndex(rand, i)]!));
  const free: number[] = [];
  for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) if (!joined.has(key(a, b))) free.push(key(a, b));
  for (let extra = Math.min(Math.floor(n / 2), free.length); extra > 0; extra--)
    joined.add(free.splice(randomIndex(rand, free.length), 1)[0]!);
  return [...joined].sort((x, y) => x - y).map((k) => [Math.floor(k / n), k % n]);
}

export async function networkUp(opts: NetworkOptions): Promise<RunningNetwork> {
  const { datadir, log } = opts;
  if (opts.nodes < 1 || opts.nodes > NODE_NAMES.length) throw new CliError(`--nodes must be 1 to ${NODE_NAMES.length}`);
  if (opts.committee !== undefined && (opts.committee < 1 || opts.committee > 7))
    throw new CliError('--committee must be 1 to 7 members per treasury');
  if (opts.hosts && !opts.fresh) throw new CliError('processes on hosts of their own need a fresh network');
  const running = await runningPid(datadir);
  if (running !== null)
    throw new CliError(
      `a network is already running from ${datadir} (pid ${running}): stop it with \`teechain network down\` or use another --datadir`,
    );
  if (opts.fresh) await rm(datadir, { recursive: true, force: true });
  await makePrivateDir(datadir);
  const previous = await readSaved(datadir);
  const resume = previous !== null;
  const children: Array<{ name: string; p: ReadyProcess<unknown> }> = [];
  // Processes killed on purpose (kill below): their exit is not a death to report.
  const killed = new Set<ReadyProcess<unknown>>();
  // How each node was started, to start it again the same way.
  const starts = new Map<string, () => Promise<unknown>>();
  let stopping = false;
  let onDeath: (name: string) => void = () => undefined;
  const died = new Promise<string>((r) => {
    onDeath = r;
  });
  // A committee member may die (that is what committees are for): it is reported, and the network goes on.
  const watch = (name: string, p: ReadyProcess<unknown>, critical = true) => {
    // A node restarted while the network stops (restart below) is stopped as soon as it is up.
    if (stopping) void p.stop('SIGTERM');
    children.push({ name, p });
    p.proc.once('exit', () => {
      if (stopping || killed.has(p)) return;
      if (critical) onDeath(name);
      else log(`${name} exited; its committee freezes payments until it is back (\`npm start\` again restarts it)`);
    });
  };
  const stop = async () => {
    stopping = true;
    for (const { p } of [...children].reverse()) await p.stop('SIGTERM');
    await rm(join(datadir, 'network.pid'), { force: true });
  };
  const kill = async (name: string) => {
    const i = children.findIndex((c) => c.name === name);
    if (i < 0) throw new CliError(`${name} is not a running process of this network`);
    const { p } = children[i]!;
    killed.add(p);
    children.splice(i, 1);
    await p.stop('SIGKILL');
  };
  const restart = async (name: string) => {
    if (stopping) return;
    const again = starts.get(name);
    if (!again) throw new CliError(`${name} is not a node of this network`);
    if (children.some((c) => c.name === name)) throw new CliError(`${name} is running already`);
    await again();
  };

  const aborted = () => {
    log('interrupted: stopping what was started of the network…');
    void stop();
  };
  opts.signal?.addEventListener('abort', aborted, { once: true });
  try {
    if (opts.signal?.aborted) throw new CliError('interrupted before the network was built');
    const size = previous?.network.committee ?? opts.committee ?? 1;
    // Fixed ports from --base-port, or (--base-port 0) port 0 for every process, which binds a free port
    // itself and reports it; the ports it got are recorded below so that a resumed network keeps them.
    // Probing free ports here and handing them out later would race every other socket on the machine.
    const ports = previous?.ports ?? fixedPorts(opts.basePort, 1 + 2 * opts.nodes * size);
    // The chain.
    let chain: NetworkFile['chain'];
    // How nodes authenticate to the chain, never on their command lines: the embedded chain's cookie
    // file, or a bitcoind password in their environment.
    let rpcAuth: { args: string[]; env: Record<string, string> };
    if (opts.bitcoind) {
      chain = { ...opts.bitcoind, embedded: false };
      rpcAuth = { args: ['--rpc-user', chain.rpcUser], env: { [RPC_PASSWORD_ENV]: chain.rpcPassword } };
      log(`chain: bitcoind at ${chain.rpcUrl}`);
    } else {
      log(
        resume
          ? 'chain: resuming the embedded regtest chain…'
          : 'chain: creating an embedded regtest chain (mining to segwit activation)…',
      );
      const c = await spawnReady<ChainReady>(
        CHAIN_MAIN,
        [
          '--datadir',
          join(datadir, 'chain'),
          '--port',
          String(ports[0]),
          ...(opts.hosts ? ['--host', opts.hosts.chainHost] : []),
        ],
        undefined,
        undefined,
        undefined,
        opts.ownGroup,
      );
      watch('chain', c);
      chain = { rpcUrl: c.ready.rpcUrl, rpcUser: c.ready.rpcUser, rpcPassword: c.ready.rpcPassword, embedded: true };
      ports[0] = portOf(chain.rpcUrl);
      rpcAuth = { args: ['--rpc-cookie', c.ready.cookieFile], env: {} };
      log(`chain: ready at ${chain.rpcUrl}, height ${c.ready.height}`);
    }
    // One attestation service for the local network: every node trusts its key.
    const keyFile = join(datadir, 'attestation.key');
    if (!existsSync(keyFile)) await AttestationService.create().save(keyFile);

    const count = previous?.network.nodes.length ?? opts.nodes;
    const nodes: NetworkNode[] = [];
    const start = async (
      name: string,
      slot: number,
      extra: string[],
      critical: boolean,
      env: Record<string, string> = {},
    ) => {
      starts.set(name, () => start(name, slot, extra, critical, env));
      log(`${name}: starting (enclave bundle, attestation, sealed state)…`);
      await makePrivateDir(join(datadir, 'nodes', name));
      const p = await spawnReady<NodeReady>(
        NODE_MAIN,
        [
          '--datadir',
          join(datadir, 'nodes', name),
          '--rpc-url',
          chain.rpcUrl,
          ...rpcAuth.args,
          '--attestation-key',
          keyFile,
          '--regtest-faucet',
          '--api-port',
          String(ports[1 + 2 * slot]),
          '--p2p-port',
          String(ports[2 + 2 * slot]),
          '--log-file',
          join(datadir, 'nodes', name, 'node.log'),
          '--log-level',
          opts.logLevel ?? 'info',
          ...(opts.hosts ? ['--host', opts.hosts.nodeHost(slot)] : []),
          ...extra,
        ],
        undefined,
        { ...rpcAuth.env, ...env },
        undefined,
        opts.ownGroup,
        opts.hosts?.prefix(slot) ?? [],
      );
      watch(name, p, critical);
      ports[1 + 2 * slot] = portOf(p.ready.rest_url);
      ports[2 + 2 * slot] = portOf(`tcp://${p.ready.p2p}`);
      return {
        name,
        nodeId: p.ready.node_id,
        restUrl: p.ready.rest_url,
        tokenFile: p.ready.token_file,
        p2p: p.ready.p2p,
      };
    };
    // The treasuries start side by side (each on its own ports); within a committee, the backups one after
    // the other, so that they join the chain in their order of name.
    const treasury = async (i: number): Promise<NetworkNode> => {
      const name = NODE_NAMES[i]!;
      const node: NetworkNode = await start(name, i * size, size > 1 ? ['--committee', String(size)] : [], size === 1);
      if (size > 1) {
        // The operator's say for each backup: one of the tokens the primary's enclave gave out when it was
        // created (a resumed backup is a known member and needs none, but its token does no harm).
        const tokens = await readJoinTokens(join(datadir, 'nodes', name));
        node.backups = [];
        for (let j = 1; j < size; j++) {
          const token = tokens[j - 1];
          node.backups.push(
            await start(
              `${name}-b${j}`,
              i * size + j,
              ['--backup-of', node.p2p],
              false,
              token ? { [JOIN_TOKEN_ENV]: token } : {},
            ),
          );
        }
      }
      return node;
    };
    // Every start settled before a failure is thrown: each process started is watched, so stop() ends it.
    const results = await Promise.allSettled(Array.from({ length: count }, (_, i) => treasury(i)));
    for (const r of results) if (r.status === 'rejected') throw r.reason;
    nodes.push(...results.map((r) => (r as PromiseFulfilledResult<NetworkNode>).value));
    if (size > 1) await committeesFormed(nodes, log, () => stopping);
    await recordTreasuryIds(nodes);
    // A resumed network keeps what it was built with.
    const topologySeed = previous
      ? previous.network.topologySeed
      : opts.topology === 'random'
        ? (opts.topologySeed ?? 0)
        : undefined;
    const network: NetworkFile = {
      chain,
      nodes,
      topology: previous?.network.topology ?? opts.topology,
      committee: size,
      ...(topologySeed !== undefined ? { topologySeed } : {}),
    };
    await writeSecretFile(join(datadir, 'network.json'), `${JSON.stringify(network, null, 2)}\n`); // it holds the RPC password
    await writeFile(join(datadir, 'ports.json'), JSON.stringify(ports));
    await writeFile(join(datadir, 'network.pid'), String(process.pid));
    if (!resume) await fundAndConnect(network, opts);
    else log('resumed: nodes reconnect to their peers by themselves');
    if (opts.signal?.aborted) throw new CliError('interrupted while the network was built');
    opts.signal?.removeEventListener('abort', aborted);
    return { network, stop, died, kill, restart };
  } catch (err) {
    opts.signal?.removeEventListener('abort', aborted);
    await stop();
    if (opts.signal?.aborted) throw new CliError('interrupted while the network was built');
    if (/already in use/.test((err as Error).message)) {
      throw new CliError(
        `${(err as Error).message}: another network on these ports? choose others with --base-port N (0 = any free ports)`,
      );
    }
    throw err;
  }
}

/** Waits until every treasury's committee has all its members joined and connected. */
async function committeesFormed(
  nodes: NetworkNode[],
  log: (line: string) => void,
  stopping: () => boolean,
): Promise<void> {
  for (const n of nodes) {
    log(`${n.name}: waiting for its committee (${1 + (n.backups?.length ?? 0)} members) to form…`);
    const api = await ApiClient.forNode(n);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const c = await api
        .request<{ formed: boolean; members: Array<{ connected: boolean }> }>('GET', '/v1/committee')
        .catch(() => null); // not answering yet is what this loop waits out, up to its deadline
      if (c?.formed && c.members.every((m) => m.connected)) break;
      if (stopping()) throw new CliError('the network is stopping');
      if (Date.now() > deadline) throw new CliError(`${n.name}: its committee did not form within 60 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Each node's and each member's treasury id, as its own API gives it (a committee's is the same on all). */
async function recordTreasuryIds(nodes: NetworkNode[]): Promise<void> {
  await Promise.all(
    nodes
      .flatMap((n) => [n, ...(n.backups ?? [])])
      .map(async (n) => {
        const api = await ApiClient.forNode(n);
        n.treasuryId = (await api.request<{ treasury_id: string }>('GET', '/v1/getinfo')).treasury_id;
      }),
  );
}

/** The pid in network.pid if that process is still alive. */
async function runningPid(datadir: string): Promise<number | null> {
  try {
    const pid = Number(await readFile(join(datadir, 'network.pid'), 'utf8'));
    if (!Number.isSafeInteger(pid) || pid <= 0) return null;
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

async function readSaved(datadir: string): Promise<{ network: NetworkFile; ports: number[] } | null> {
  try {
    const network = JSON.parse(await readFile(join(datadir, 'network.json'), 'utf8')) as NetworkFile;
    const ports = JSON.parse(await readFile(join(datadir, 'ports.json'), 'utf8')) as number[];
    return { network, ports };
  } catch {
    return null;
  }
}

async function fundAndConnect(network: NetworkFile, opts: NetworkOptions): Promise<void> {
  const clients = await Promise.all(network.nodes.map((n) => ApiClient.forNode(n)));
  const pairs = channelsOf(opts.topology, network.nodes.length, opts.topologySeed ?? 0);
  if (opts.topology === 'random')
    opts.log(`topology: random, seed ${opts.topologySeed ?? 0}, ${pairs.length} channels`);
  // One deposit per channel end, plus one spare (free) deposit per node.
  const need = network.nodes.map((_, i) => 1 + pairs.filter(([x, y]) => x === i || y === i).length);
  const deposits: string[][] = network.nodes.map(() => []);
  for (let i = 0; i < network.nodes.length; i++) {
    for (let k = 0; k < need[i]!; k++) {
      opts.log(
        `${network.nodes[i]!.name}: funding deposit ${k + 1}/${need[i]} of ${formatSat(opts.depositSat)} sat from the faucet, waiting for confirmation…`,
      );
      const d = await clients[i]!.request<{ deposit_id: string }>('POST', '/v1/deposits', {
        amount_sat: opts.depositSat,
        fund: true,
      });
      deposits[i]!.push(d.deposit_id);
    }
  }
  for (const [x, y] of pairs) {
    const a = network.nodes[x]!;
    const b = network.nodes[y]!;
    opts.log(`channel ${a.name} ⇄ ${b.name}: attesting, opening, adding deposits…`);
    await openChannelBetween(
      { api: clients[x]!, nodeId: a.nodeId, p2p: a.p2p },
      { api: clients[y]!, nodeId: b.nodeId, p2p: b.p2p },
      [deposits[x]!.shift()!],
      [deposits[y]!.shift()!],
    );
  }
}

/** Consecutive ports from `base`, or free ports picked by the OS when base is 0. */
/** `n` consecutive ports from `base`, or `n` zeros (any free port, chosen by each process) when base is 0. */
function fixedPorts(base: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => (base > 0 ? base + i : 0));
}

/** The port of a URL (`http://127.0.0.1:18401/`, `tcp://127.0.0.1:18402`). */
function portOf(url: string): number {
  return Number(new URL(url).port);
}

interface CommitteeInfo {
  size: number;
  threshold: number;
  members: Array<{ node_id: string; connected: boolean }>;
}

/** "2-of-3, 3 up, primary alice-b1": the committee as this member sees it, its primary by name. */
function committeeSummary(network: NetworkFile, c: CommitteeInfo): string {
  const primary = c.members[0]?.node_id;
  const named = network.nodes.flatMap((x) => [x, ...(x.backups ?? [])]).find((x) => x.nodeId === primary);
  const who = named?.name ?? (primary ? `${primary.slice(0, 12)}…` : 'unknown');
  return `${c.threshold}-of-${c.size}, ${c.members.filter((m) => m.connected).length} up, primary ${who}`;
}

/** The table `npm start` prints: one row per treasury, read from its first member that answers. */
export async function statusTable(network: NetworkFile): Promise<string> {
  const rows = await Promise.all(
    network.nodes.map(async (n) => {
      let failure = '';
      for (const m of [n, ...(n.backups ?? [])]) {
        try {
          const c = await ApiClient.forNode(m);
          const b = await c.request<{ deposits: { free_sat: string }; channels: { local_balance_sat: string } }>(
            'GET',
            '/v1/balance',
          );
          const info = await c.request<{
            treasury_id: string;
            num_channels: number;
            num_peers: number;
            committee: CommitteeInfo | null;
          }>('GET', '/v1/getinfo');
          const row = [
            n.name,
            `${info.treasury_id.slice(0, 16)}…`,
            m.restUrl,
            m.tokenFile,
            formatSat(b.deposits.free_sat),
            formatSat(b.channels.local_balance_sat),
            `${info.num_channels}/${info.num_peers}`,
          ];
          if (info.committee) row.push(committeeSummary(network, info.committee));
          return row;
        } catch (err) {
          failure ||= (err as Error).message; // the first member's failure says most; try the next member
        }
      }
      return [n.name, `${(n.treasuryId ?? n.nodeId).slice(0, 16)}…`, n.restUrl, n.tokenFile, '?', '?', failure];
    }),
  );
  const head = [
    'node',
    'treasury id',
    'REST URL',
    'token file',
    'free deposits (sat)',
    'in channels (sat)',
    'channels/peers',
  ];
  if ((network.committee ?? 1) > 1) head.push('committee');
  return table(head, rows);
}
