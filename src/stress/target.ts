/**
 * The network a stress run loads: the running local network named by network.json, or one it builds
 * itself (`--fresh`, through the launcher `teechain network up` uses) and stops at the end. Everything
 * goes through the nodes' REST APIs, with the admin tokens network.json points at, as a user's client would.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient, CliError, readNetwork, type NetworkFile, type NetworkNode } from '../cli/client.ts';
import { askLauncher, controlSocketOf } from '../cli/launcher-control.ts';
import { networkUp, type Topology } from '../cli/network.ts';
import { checkNetworkFile, distinctTreasuries } from './network-file.ts';
import { createNetns, NetnsError, type Netns } from './netns.ts';

/** One treasury: who pays for it (its primary) and every process it runs (the members, for their metrics). */
export interface Treasury {
  name: string;
  /** What payers name as `dest`: the committee's identity, or the node id of a lone treasury. */
  id: string;
  api: ApiClient;
  members: Array<{ name: string; api: ApiClient }>;
}

export interface Target {
  network: NetworkFile;
  treasuries: Treasury[];
  /** Where it came from: `network.json` of a running network, or built for this run. */
  source: 'running' | 'fresh';
  datadir: string;
  /** Stops what this run started (nothing for a running network). */
  stop(): Promise<void>;
  /**
   * Kills and restarts the network's processes (--chaos): those of a network this run started, or through
   * the launcher of a running one; absent for a running network asked for no faults.
   */
  nemesis?: Nemesis;
  /** `--hosts netns`: the namespaces and bridge the network runs on; absent when every node is on this host. */
  netns?: Netns;
}

/** What `--chaos` may do to a network's processes (src/stress/chaos.ts). */
export interface Nemesis {
  kill(name: string): Promise<void>;
  restart(name: string): Promise<void>;
  /** With --hosts netns: takes the process's link off the bridge (`--chaos partition`), and puts it back. */
  partition?(name: string): Promise<void>;
  heal?(name: string): Promise<void>;
}

/** The network named by network.json does not answer, or names no treasury to pay: a usage error (exit 2). */
export class TargetError extends CliError {}

export interface FreshOptions {
  datadir?: string;
  nodes: number;
  topology: Topology;
  committee: number;
  depositSat: number;
  /** Fixes a `random` topology's channels (the run's --seed). */
  seed: number;
  /** `netns`: each node process in a network namespace of its own (netns.ts); `local`: all on 127.0.0.1. */
  hosts: 'local' | 'netns';
  log(line: string): void;
  /** Aborted (a Ctrl-C) while the network is being built: what was started is stopped, and this rejects. */
  signal?: AbortSignal;
}

/**
 * The running network in `datadir`, each treasury's primary asked once whether it answers. `faults`
 * (--chaos): its launcher must answer on the data dir's control socket, which kills and restarts its
 * processes for the run (src/cli/launcher-control.ts).
 */
export async function runningTarget(datadir: string, faults = false): Promise<Target> {
  let network: NetworkFile;
  try {
    network = checkNetworkFile(await readNetwork(datadir), datadir);
  } catch (err) {
    throw new TargetError((err as Error).message);
  }
  const nemesis = faults ? await launcherNemesis(datadir) : undefined;
  const found = await reachable(network);
  try {
    distinctTreasuries(found.treasuries);
  } catch (err) {
    throw new TargetError((err as Error).message);
  }
  return { ...found, source: 'running', datadir, stop: async () => undefined, ...(nemesis ? { nemesis } : {}) };
}

/** How long a kill or a restart through the launcher may take (a node's start builds and attests its enclave). */
const LAUNCHER_OP_MS = 120_000;

/** Kills and restarts through the launcher of the network in `datadir`; a TargetError if it does not answer. */
async function launcherNemesis(datadir: string): Promise<Nemesis> {
  const path = controlSocketOf(datadir);
  try {
    await askLauncher(path, { op: 'ping' }, 5_000);
  } catch (err) {
    throw new TargetError(
      `--chaos kills and restarts node processes, and nothing answers for those of the network in ${datadir} ` +
        `(${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): run it with \`teechain network up\` on this machine, or build one for the run with --fresh`,
    );
  }
  return {
    kill: (name) => askLauncher(path, { op: 'kill', name }, LAUNCHER_OP_MS),
    restart: (name) => askLauncher(path, { op: 'restart', name }, LAUNCHER_OP_MS),
  };
}

/** A network built for this run, in its own data dir (a temporary one unless given), on free ports. */
export async function freshTarget(o: FreshOptions): Promise<Target> {
  let netns: Netns | undefined;
  if (o.hosts === 'netns') {
    try {
      netns = createNetns(o.nodes * o.committee);
    } catch (err) {
      throw err instanceof NetnsError ? new TargetError(err.message) : err;
    }
    o.log(
      `hosts: ${netns.namespaces.length} network namespaces on bridge ${netns.bridge}, ${netns.subnet} (the chain at ${netns.chainHost})`,
    );
  }
  const datadir = o.datadir ?? (await mkdtemp(join(tmpdir(), 'teechain-stress-')));
  const up = networkUp({
    datadir,
    nodes: o.nodes,
    topology: o.topology,
    topologySeed: o.seed,
    depositSat: o.depositSat,
    committee: o.committee,
    basePort: 0,
    fresh: true,
    log: o.log,
    logLevel: 'warn',
    // Out of reach of the terminal's Ctrl-C, which must reach only this process (it verifies, then stops them).
    ownGroup: true,
    signal: o.signal,
    ...(netns ? { hosts: netns } : {}),
  });
  const running = await up.catch((err: unknown) => {
    netns?.remove();
    throw err;
  });
  const stop = async () => {
    try {
      await running.stop();
    } finally {
      netns?.remove();
    }
  };
  try {
    return {
      ...(await reachable(running.network)),
      source: 'fresh',
      datadir,
      stop,
      nemesis: {
        kill: (name) => running.kill(name),
        restart: (name) => running.restart(name),
        ...(netns ? linkNemesis(netns, running.network) : {}),
      },
      ...(netns ? { netns } : {}),
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Partition and heal by process name: the launcher's slot of a treasury's member j is i × committee + j. */
function linkNemesis(netns: Netns, network: NetworkFile): Pick<Nemesis, 'partition' | 'heal'> {
  const size = network.committee ?? 1;
  const slots = new Map<string, number>();
  network.nodes.forEach((n, i) => [n, ...(n.backups ?? [])].forEach((m, j) => slots.set(m.name, i * size + j)));
  const slotOf = (name: string) => {
    const slot = slots.get(name);
    if (slot === undefined) throw new CliError(`${name} is not a process of this network`);
    return slot;
  };
  return { partition: (name) => netns.cut(slotOf(name)), heal: (name) => netns.mend(slotOf(name)) };
}

async function reachable(network: NetworkFile): Promise<Pick<Target, 'network' | 'treasuries'>> {
  if (!Array.isArray(network.nodes) || network.nodes.length < 2)
    throw new TargetError('network.json names fewer than two treasuries: nobody to pay');
  const treasuries = await Promise.all(
    network.nodes.map(async (n) => {
      const api = await clientFor(n);
      const info = await api
        .request<{ treasury_id: string }>('GET', '/v1/getinfo', undefined, 5_000)
        .catch((err: Error) => {
          throw new TargetError(`${n.name} does not answer at ${n.restUrl} (${err.message})`);
        });
      const members = await Promise.all(
        [n, ...(n.backups ?? [])].map(async (m) => ({ name: m.name, api: await clientFor(m) })),
      );
      return { name: n.name, id: info.treasury_id, api, members };
    }),
  );
  return { network, treasuries };
}

async function clientFor(n: Pick<NetworkNode, 'name' | 'restUrl' | 'tokenFile' | 'token'>): Promise<ApiClient> {
  try {
    return await ApiClient.forNode(n);
  } catch (err) {
    throw new TargetError(`${n.name}: ${(err as Error).message}`);
  }
}
