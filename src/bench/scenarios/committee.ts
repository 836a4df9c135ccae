/**
 * Committee chains: both treasuries of a channel replicated over L members (L node processes per side, each
 * its own enclave), the primary paying 1 sat at a time, unbatched and in batches of 100. Every payment is
 * sealed by every member of its side's committee before it counts, so this measures what replication costs.
 * Each row also gives the bytes of an update per group commit; `committee3.idle100.batch100` repeats the
 * batched load with 99 more, idle, channels between the two committees, to show that those bytes do not
 * grow with channels that did not change.
 */
import { join } from 'node:path';
import { readJoinTokens } from '../../node/secret-file.ts';
import type { BenchConfig } from '../config.ts';
import { movedExactly, openFundedChannel, totals, type Agent } from '../cluster.ts';
import { stage, type AgentOptions, type BenchEnv, type Scenario, type Stage } from '../scenario.ts';

interface Committees {
  /** Each side's members, its primary first. */
  xs: Agent[];
  ys: Agent[];
  channelId: string;
}

interface Issued {
  updates: number;
  bytes: number;
}

/** Updates the primaries of both sides have issued so far, and their bytes. */
async function issued(primaries: Agent[]): Promise<Issued> {
  const views = await Promise.all(
    primaries.map((a) => a.api.request<{ issued?: Issued }>('GET', '/v1/committee').catch(() => null)),
  );
  return views.reduce<Issued>(
    (sum, v) => ({ updates: sum.updates + (v?.issued?.updates ?? 0), bytes: sum.bytes + (v?.issued?.bytes ?? 0) }),
    { updates: 0, bytes: 0 },
  );
}

/** Waits until a primary's committee has every member joined, connected and caught up. */
export async function waitForCommittee(primary: Agent): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const c = await primary.api
      .request<{ formed: boolean; seq: number; acked_seq: number; members: Array<{ connected: boolean }> }>(
        'GET',
        '/v1/committee',
      )
      .catch(() => null);
    if (c?.formed && c.members.every((m) => m.connected) && c.acked_seq === c.seq) return;
    if (Date.now() > deadline) throw new Error(`the committee of ${primary.name} did not form within 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * One side: a lone node for L = 1, else a primary and L - 1 backups admitted with the operator's join
 * tokens; `extra` goes to every member.
 */
export async function side(env: BenchEnv, name: string, length: number, extra: AgentOptions = {}): Promise<Agent[]> {
  if (length === 1) return [await env.agent(`${name}-c1`, extra)];
  const primary = await env.agent(`${name}-c${length}`, { ...extra, committee: { size: length } });
  const members = [primary];
  const tokens = await readJoinTokens(join(env.dir, primary.name)); // the operator's say for each backup
  for (let i = 1; i < length; i++)
    members.push(
      await env.agent(`${name}-c${length}-b${i}`, { ...extra, backupOf: primary.p2p, joinToken: tokens[i - 1]! }),
    );
  await waitForCommittee(primary);
  return members;
}

function committeeNote(length: number): string {
  if (length === 1) return `2 processes: each side a primary alone`;
  const backups = `${length - 1} backup${length > 2 ? 's' : ''}`;
  return `${2 * length} processes: each side a primary and ${backups}, ${Math.floor(length / 2) + 1}-of-${length}`;
}

/** Opens idle channels (no deposits) from x to y until the two committees have `n` channels. */
async function idleChannels(x: Agent, y: Agent, n: number): Promise<void> {
  const list = await x.api.request<{ channels: unknown[] }>('GET', '/v1/channels');
  for (let i = list.channels.length; i < n; i++)
    await x.api.request('POST', '/v1/channels', { peer_id: y.nodeId, deposit_ids: [] });
}

function committeeLoad(
  length: number,
  kind: 'unbatched' | 'batch100' | 'idle100.batch100',
  count: number,
  batch: number,
  window: number,
): Scenario<Committees> {
  const idle = kind === 'idle100.batch100';
  const shape = kind === 'unbatched' ? 'unbatched (1 in flight)' : idle ? 'batch=100, 99 idle channels' : 'batch=100';
  return {
    id: `committee${length}.${kind}`,
    name: `teechain committee length ${length} ${shape}`,
    group: 'teechain-committee',
    payments: count,
    batch,
    note: committeeNote(length),
    async measure({ xs, ys, channelId }, meter) {
      const [x, y] = [xs[0]!, ys[0]!];
      if (idle) await idleChannels(x, y, 100);
      const before = await totals(x, y, channelId);
      const sent = await issued([x, y]);
      const { result, usage } = await meter([...xs, ...ys], () =>
        x.load({ channelId, count, batch, window, amountSat: 1 }),
      );
      const after = await totals(x, y, channelId);
      const done = await issued([x, y]);
      const updates = done.updates - sent.updates;
      return {
        payments_per_s: count / result.seconds,
        latency: result.latency,
        verified: result.failed === 0 && movedExactly(before, after, BigInt(count), 0n),
        usage,
        ...(updates > 0 ? { update_bytes: Math.round((done.bytes - sent.bytes) / updates) } : {}),
      };
    },
  };
}

/** committee<L>.unbatched and committee<L>.batch100 on one pair of committees of length L. */
export function committeeStage({ sizes }: BenchConfig, length: number): Stage {
  return stage<Committees>({
    title: `committees of length ${length}`,
    async setUp(env) {
      const xs = await side(env, 'alice', length);
      const ys = await side(env, 'bob', length);
      return { xs, ys, channelId: await openFundedChannel(xs[0]!, ys[0]!, 50_000_000) };
    },
    tearDown: ({ xs, ys }, env) => env.stop([...xs, ...ys]),
    scenarios: [
      committeeLoad(length, 'unbatched', Math.max(20, Math.round(sizes.committeeN / 20)), 1, 1),
      committeeLoad(length, 'batch100', sizes.committeeN, 100, 4),
      // Last: the idle channels it opens stay for the rest of the stage.
      ...(length === 3 ? [committeeLoad(length, 'idle100.batch100', sizes.committeeN, 100, 4)] : []),
    ],
  });
}
