/**
 * What the nodes themselves say, read through their REST APIs before and after the load: every
 * treasury's channels and the length of its payment history, and each member process's CPU and memory
 * from its `/metrics` (prom-client's process metrics).
 */
import { parseExposition, sumOf } from '../metrics/exposition.ts';
import type { ApiClient } from '../cli/client.ts';
import type { Treasury } from './target.ts';

export interface ChannelEnd {
  channel_id: string;
  status: string;
  local: bigint;
  remote: bigint;
}

export interface TreasuryState {
  channels: ChannelEnd[];
  /** Entries in its payment history (GET /v1/payments `total`). */
  historyTotal: number;
}

export async function treasuryStates(treasuries: Treasury[]): Promise<TreasuryState[]> {
  return Promise.all(
    treasuries.map(async (t) => {
      const [{ channels }, history] = await Promise.all([
        t.api.request<{ channels: Array<Record<string, string>> }>('GET', '/v1/channels'),
        t.api.request<{ total: number }>('GET', '/v1/payments?limit=1'),
      ]);
      return {
        channels: channels.map((c) => ({
          channel_id: c.channel_id!,
          status: c.status!,
          local: BigInt(c.local_balance_sat!),
          remote: BigInt(c.remote_balance_sat!),
        })),
        historyTotal: history.total,
      };
    }),
  );
}

export interface HistoryEntry {
  payment_id: string;
  direction: 'outgoing' | 'incoming';
  amount_sat: number;
  status: string;
}

/** The newest `count` entries of a treasury's history, newest first (pages of 1,000, the route's most). */
export async function newestHistory(api: ApiClient, count: number): Promise<HistoryEntry[]> {
  const out: HistoryEntry[] = [];
  while (out.length < count) {
    const limit = Math.min(1000, count - out.length);
    const page = await api.request<{ payments: HistoryEntry[] }>(
      'GET',
      `/v1/payments?offset=${out.length}&limit=${limit}`,
    );
    if (page.payments.length === 0) break;
    out.push(...page.payments);
  }
  return out;
}

export interface ProcessUsage {
  name: string;
  cpu_s: number;
  rss_mb: number;
}

/** Every member's CPU seconds since it started and RSS now; null for one that does not answer. */
export async function processUsage(treasuries: Treasury[]): Promise<Array<ProcessUsage | null>> {
  const members = treasuries.flatMap((t) => t.members);
  return Promise.all(
    members.map(async (m) => {
      try {
        const res = await fetch(`${m.api.restUrl}/metrics`, {
          headers: { authorization: `Bearer ${m.api.token}` },
          signal: AbortSignal.timeout(5_000),
        });
        if (!res.ok) return null;
        const samples = parseExposition(await res.text());
        return {
          name: m.name,
          cpu_s: sumOf(samples, 'process_cpu_seconds_total'),
          rss_mb: sumOf(samples, 'process_resident_memory_bytes') / 2 ** 20,
        };
      } catch {
        return null;
      }
    }),
  );
}
