/**
 * The multi-hop end-to-end network: five treasury nodes as real processes in a line of funded channels
 * (alice – bob – carol – dave – erin), real TCP, the embedded regtest chain, and the link dave → erin
 * through a proxy that can cut it one way. The state is exported as live bindings (set by useLine's
 * `before`), so the tests read `nodes` and `channels` as plain names. Used by multihop.e2e.test.ts and
 * multihop.faults.e2e.test.ts.
 */
import { after, before } from 'node:test';
import { join } from 'node:path';
import {
  attestationKey,
  fundDeposit,
  NodeProcess,
  openChannel,
  startTestChain,
  tempDir,
  waitUntil,
  type TestChain,
} from './network.ts';
import { startTamperingProxy } from './proxy.ts';
import { openChannelBetween } from '../../src/cli/channels.ts';
import { ApiClient } from '../../src/cli/client.ts';

export let chain: TestChain;
export let dir: string;
export let key: string;
export let nodes: NodeProcess[] = [];
/** channels[i] joins nodes[i] and nodes[i + 1]. */
export let channels: string[] = [];
/** Between dave and erin (dave dials erin through it). */
export let proxy: Awaited<ReturnType<typeof startTamperingProxy>>;
export const DEPOSIT = 500_000;
export const [ALICE, BOB, CAROL, DAVE, ERIN] = [0, 1, 2, 3, 4];

/**
 * Registers the file's set-up and tear-down: the chain, the five nodes, the four funded channels, every
 * node knowing the whole line. The tests of a file share that one line and run in order on it.
 */
export function useLine(): void {
  before(async () => {
    dir = await tempDir('teechain-mh-');
    chain = await startTestChain();
    key = await attestationKey(dir);
    nodes = await Promise.all(
      ['alice', 'bob', 'carol', 'dave', 'erin'].map((n) => NodeProcess.start(join(dir, n), chain, key)),
    );
    proxy = await startTamperingProxy(nodes[ERIN]!.ready.p2p);
    const end = (n: NodeProcess, p2p = n.ready.p2p) => ({
      api: new ApiClient(n.ready.rest_url, n.token),
      nodeId: n.id,
      p2p,
    });
    // The four channels funded and opened together (each node's deposits are its own).
    channels = await Promise.all(
      nodes.slice(0, -1).map(async (n, i) => {
        const next = nodes[i + 1]!;
        const [da, db] = await Promise.all([fundDeposit(n, DEPOSIT), fundDeposit(next, DEPOSIT)]);
        return i + 1 === ERIN
          ? openChannelBetween(end(n), end(next, proxy.address), [da], [db])
          : openChannel(n, next, [da], [db]);
      }),
    );
    // every node learns the whole line from the flooded announcements, each channel with its funded capacity
    // (one announced between its opening and its deposits says 0 until the next announcement)
    await waitUntil(
      async () => {
        for (const n of nodes) {
          const g = (await n.ok('GET', '/v1/graph')).nodes as Array<{ channels: Array<{ capacity_sat: string }> }>;
          const caps = g.flatMap((x) => x.channels.map((c) => BigInt(c.capacity_sat)));
          if (g.length < nodes.length || caps.length < 2 * channels.length || caps.some((c) => c === 0n)) return false;
        }
        return true;
      },
      20_000,
      'graph gossiped to every node',
    );
  });

  after(async () => {
    await proxy?.close();
    for (const n of nodes) await n.kill('SIGTERM');
    await chain?.close();
  });
}

/** Each node's local balance on each of its channels: [node index] → { channel → sat }. */
export async function balances(): Promise<Array<Record<string, bigint>>> {
  return Promise.all(
    nodes.map(async (n) => {
      const list = (await n.ok('GET', '/v1/channels')).channels as Array<{
        channel_id: string;
        local_balance_sat: string;
      }>;
      return Object.fromEntries(list.map((c) => [c.channel_id, BigInt(c.local_balance_sat)]));
    }),
  );
}

/** Both ends of every channel agree, nothing is locked, no multi-hop payment is unresolved. */
export async function settledDown(ids = nodes.map((_, i) => i)): Promise<boolean> {
  for (const i of ids) {
    const n = nodes[i]!;
    const mh = await n.api('GET', '/v1/multihop');
    if (mh.status !== 200 || mh.body.rounds.some((p: { phase: string }) => p.phase !== 'done' && p.phase !== 'aborted'))
      return false;
    const chs = await n.api('GET', '/v1/channels');
    if (chs.status !== 200) return false;
    for (const c of chs.body.channels) {
      const j = channels.indexOf(c.channel_id);
      const peer = nodes[j === i ? i + 1 : i - 1]!;
      const other = await peer.api('GET', `/v1/channels/${c.channel_id}`);
      if (
        other.status !== 200 ||
        other.body.local_balance_sat !== c.remote_balance_sat ||
        other.body.remote_balance_sat !== c.local_balance_sat
      )
        return false;
    }
  }
  return true;
}

export async function pay(from: number, to: number, amount: number, maxFeeSat?: number) {
  return nodes[from]!.api('POST', '/v1/payments', {
    dest: nodes[to]!.id,
    amount_sat: amount,
    ...(maxFeeSat !== undefined ? { max_fee_sat: maxFeeSat } : {}),
  });
}

/** Routed payments of `amounts` from `from` to `to` in one request (POST /v1/payments/batch): they travel in rounds. */
export async function payBatch(from: number, to: number, amounts: number[]) {
  return nodes[from]!.api('POST', '/v1/payments/batch', {
    payments: amounts.map((amount_sat) => ({ dest: nodes[to]!.id, amount_sat })),
  });
}

/** The node's path rounds (GET /v1/multihop). */
export async function mhRecords(
  n: NodeProcess,
): Promise<Array<{ round_id: string; role: string; phase: string; code: string | null; txid: string | null }>> {
  return (await n.ok('GET', '/v1/multihop')).rounds;
}

/** A direct payment on one channel, as POST /v1/payments answers it. */
export function payOn(from: number, channel: string, amount: number) {
  return nodes[from]!.api('POST', '/v1/payments', { channel_id: channel, amount_sat: amount });
}

/** Stops a node's process (SIGSTOP): its sockets stay open, it answers nothing, until `resume`. */
export function freeze(i: number): void {
  nodes[i]!.proc.kill('SIGSTOP');
}

export function resume(i: number): void {
  nodes[i]!.proc.kill('SIGCONT');
}

/** `ids` are all connected to their neighbours on the line and `from` knows a funded route to `to`. */
export async function pathReady(from: number, to: number, ids = [ALICE, BOB, CAROL]): Promise<boolean> {
  for (const i of ids) {
    const r = await nodes[i]!.api('GET', '/v1/peers');
    if (r.status !== 200) return false;
    const peers = new Set((r.body.peers as Array<{ peer_id: string }>).map((p) => p.peer_id));
    for (const j of [i - 1, i + 1]) if (ids.includes(j) && !peers.has(nodes[j]!.id)) return false;
  }
  const g = (await nodes[from]!.ok('GET', '/v1/graph')).nodes as Array<{
    node_id: string;
    channels: Array<{ capacity_sat: string }>;
  }>;
  return (
    ids.every(
      (i) =>
        i === from ||
        g.some(
          (x) =>
            x.node_id === nodes[i]!.id && x.channels.length > 0 && x.channels.every((c) => BigInt(c.capacity_sat) > 0n),
        ),
    ) && g.some((x) => x.node_id === nodes[to]!.id)
  );
}

/** What alice–bob–carol hold on the two channels between them. */
export function line3(b: Array<Record<string, bigint>>) {
  const [ab, bc] = [channels[0]!, channels[1]!];
  return { alice: b[ALICE]![ab]!, bobAB: b[BOB]![ab]!, bobBC: b[BOB]![bc]!, carol: b[CAROL]![bc]! };
}
