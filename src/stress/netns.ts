/**
 * `--hosts netns`: every node process of a fresh network on a host of its own, as separate machines would
 * be. Each node slot gets a Linux network namespace holding only `lo` and one end of a veth pair; the other
 * ends are ports of one bridge in the root namespace, which gets the subnet's first address (the chain and
 * the stress process live there). A node listens on, and advertises, its namespace's address, and reaches
 * the chain at the bridge's: nothing between processes goes over loopback, so an address left at 127.0.0.1
 * fails loudly instead of working by accident.
 *
 * Names carry the stress process's pid and a counter (`tcs<pid36>-<n>`: bridge `…b`, namespaces `…n<slot>`,
 * veth ends `…v<slot>` at the bridge and `…p<slot>` inside), so that concurrent runs never collide, and a
 * later run removes what a killed one left (its pid is dead). The subnet is 10.X.Y.0/24 with X, Y derived
 * from the pid, skipping any /24 that an address on this machine already falls in.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { CliError } from '../cli/client.ts';
import type { HostPlan } from '../cli/network.ts';

/** Namespaces cannot be made here (not Linux, no `ip`, no privilege): a usage error, exit 2. */
export class NetnsError extends CliError {}

export interface Netns extends HostPlan {
  bridge: string;
  /** `10.X.Y.0/24`. */
  subnet: string;
  namespaces: string[];
  /** The veth end at the bridge of each slot (what a partition takes down). */
  bridgePorts: string[];
  /** Takes slot k's veth end at the bridge down (its node is cut off every other process), or up again. */
  cut(slot: number): Promise<void>;
  mend(slot: number): Promise<void>;
  /** Removes the namespaces (stopping what still runs in them), their veths and the bridge. Idempotent. */
  remove(): void;
}

const PREFIX = 'tcs';
const OURS = /^tcs([0-9a-z]{1,7})-([0-9a-z]{1,3})(b|[nvp][0-9]{1,2})$/;
/** Tags of this process's own runs still set up, so that stale removal never takes them. */
const live = new Set<string>();
let runs = 0;

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The first line of what a failed `ip` said. */
function why(err: unknown): string {
  const e = err as { code?: string; stderr?: string; message: string };
  if (e.code === 'ENOENT') return 'the `ip` command (iproute2) is not on the PATH';
  return (e.stderr || e.message).trim().split('\n')[0]!;
}

/** Sets up `slots` namespaces on one bridge; throws NetnsError (and leaves nothing) if it cannot. */
export function createNetns(slots: number): Netns {
  if (process.platform !== 'linux') throw new NetnsError('--hosts netns needs Linux network namespaces');
  try {
    ip(['-V']);
  } catch (err) {
    throw new NetnsError(`--hosts netns cannot run: ${why(err)}`);
  }
  removeStale();
  const tag = `${PREFIX}${process.pid.toString(36)}-${(runs++).toString(36)}`;
  live.add(tag);
  const base = freeSubnet();
  const bridge = `${tag}b`;
  const namespaces = Array.from({ length: slots }, (_, k) => `${tag}n${k}`);
  const bridgePorts = Array.from({ length: slots }, (_, k) => `${tag}v${k}`);
  const addr = (k: number) => `${base}.${k + 2}`;
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    for (const ns of namespaces) removeNamespace(ns);
    for (const port of bridgePorts) removeLink(port);
    removeLink(bridge);
    live.delete(tag);
    process.off('exit', remove);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  // While nothing else handles a signal (a run installs its own, which ends in remove()), a Ctrl-C or a
  // SIGTERM removes everything and leaves; and whatever way the process exits, nothing stays behind.
  const onSignal = (signal: NodeJS.Signals) => {
    if (process.listenerCount(signal) > 1) return;
    remove();
    process.exit(130);
  };
  process.on('exit', remove);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let step = 'ip link add type bridge';
  try {
    ip(['link', 'add', bridge, 'type', 'bridge']);
    ip(['addr', 'add', `${base}.1/24`, 'dev', bridge]);
    ip(['link', 'set', bridge, 'up']);
    for (let k = 0; k < slots; k++) {
      const ns = namespaces[k]!;
      const inside = `${tag}p${k}`;
      step = 'ip netns add';
      ip(['netns', 'add', ns]);
      step = 'ip link add type veth';
      ip(['link', 'add', bridgePorts[k]!, 'type', 'veth', 'peer', 'name', inside, 'netns', ns]);
      ip(['link', 'set', bridgePorts[k]!, 'master', bridge, 'up']);
      ip(['-n', ns, 'addr', 'add', `${addr(k)}/24`, 'dev', inside]);
      ip(['-n', ns, 'link', 'set', inside, 'up']);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    }
  } catch (err) {
    remove();
    throw new NetnsError(
      `--hosts netns cannot set up network namespaces (${step}: ${why(err)}): it needs root or CAP_NET_ADMIN`,
    );
  }
  return {
    bridge,
    subnet: `${base}.0/24`,
    namespaces,
    bridgePorts,
    chainHost: `${base}.1`,
    nodeHost: addr,
    prefix: (k) => ['ip', 'netns', 'exec', namespaces[k]!],
    cut: (k) => setLink(bridgePorts[k]!, 'down'),
    mend: (k) => setLink(bridgePorts[k]!, 'up'),
    remove,
  };
}

async function setLink(name: string, state: 'up' | 'down'): Promise<void> {
  try {
    await promisify(execFile)('ip', ['link', 'set', name, state]);
  } catch (err) {
    throw new Error(`ip link set ${name} ${state}: ${why(err)}`);
  }
}

function removeNamespace(ns: string): void {
  try {
    // Whatever still runs in it (a node of a run killed before it could stop them) goes first: a namespace
    // with a process in it outlives its name.
    for (const pid of ip(['netns', 'pids', ns]).split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    ip(['netns', 'del', ns]);
  } catch {
    // not there (never made, or already removed)
  }
}

function removeLink(name: string): void {
  try {
    ip(['link', 'del', name]);
  } catch {
    // not there: a veth goes with its namespace
  }
}

/** Leftovers of runs whose process is dead (or of this pid's earlier life), removed before a new run. */
function removeStale(): void {
  const dead = (name: string) => {
    const m = OURS.exec(name);
    if (!m) return false;
    const pid = parseInt(m[1]!, 36);
    if (pid === process.pid) return !live.has(`${PREFIX}${m[1]}-${m[2]}`);
    try {
      process.kill(pid, 0);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ESRCH';
    }
  };
  let namespaces: string[] = [];
  let links: string[] = [];
  try {
    namespaces = ip(['netns', 'list'])
      .split('\n')
      .map((l) => l.split(' ')[0]!);
    links = ip(['-o', 'link', 'show'])
      .split('\n')
      .map((l) => (l.split(': ')[1] ?? '').split('@')[0]!);
  } catch {
    return; // nothing to read: creating will say why
  }
  for (const ns of namespaces.filter(dead)) removeNamespace(ns);
  for (const link of links.filter(dead)) removeLink(link);
}

/** `10.X.Y` of a /24 no address on this machine is in, starting from one derived from the pid. */
function freeSubnet(): string {
  const used = ip(['-4', '-o', 'addr', 'show'])
    .split('\n')
    .map((l) => /inet ([0-9.]+)\/([0-9]+)/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ addr: toInt(m[1]!), bits: Number(m[2]) }));
  const start = (process.pid * 37 + runs) % (254 * 256);
  for (let k = 0; k < 254 * 256; k++) {
    const v = (start + k * 9973) % (254 * 256);
    const net = toInt(`10.${1 + Math.floor(v / 256)}.${v % 256}.0`);
    const clash = used.some(({ addr, bits }) => {
      // The two ranges overlap when they agree on the shorter prefix.
      const shorter = Math.min(bits, 24);
      const mask = shorter === 0 ? 0 : (~0 << (32 - shorter)) >>> 0;
      return (addr & mask) >>> 0 === (net & mask) >>> 0;
    });
    if (!clash) return `10.${1 + Math.floor(v / 256)}.${v % 256}`;
  }
  throw new NetnsError('--hosts netns: no free 10.X.Y.0/24 on this machine');
}

function toInt(dotted: string): number {
  return dotted.split('.').reduce((n, o) => ((n << 8) | Number(o)) >>> 0, 0);
}
