/**
 * The promotion gap: a 2-of-3 committee of node processes paying a lone channel peer over REST from three
 * clients, its primary killed with SIGKILL in the middle of the stream; the figure is the time from the
 * kill until a payment through the first backup, once promoted, is acknowledged: the promotion timeout
 * (the backups' `--promotion-timeout-ms`), the vote, the peer's host finding the new primary, and the
 * session's resynchronisation. It is measured as test/committee.promotion.e2e.test.ts measures it, and
 * reported beside the rows as `committee3.promotion_gap_ms` (a gap, not a throughput).
 */
import type { BenchConfig } from '../config.ts';
import { openFundedChannel, type Agent } from '../cluster.ts';
import type { BenchEnv, Stage, StageContext } from '../scenario.ts';
import { side } from './committee.ts';

export interface PromotionGap {
  /** From the kill until the first payment acknowledged by the new primary; null if none was. */
  promotion_gap_ms: number | null;
  promotion_timeout_ms: number;
  /** Payments resumed on the same channel, and both sides then agreed on what the committee paid. */
  verified: boolean;
  error: string | null;
}

export interface PromotionStage extends Stage {
  /** The figure, once the stage has run (null before). */
  gap(): PromotionGap | null;
}

const STEP = 10;
/** Payments acknowledged before the kill: the stream is in full flow when the primary dies. */
const BEFORE_KILL = 30;
/** How long the new primary has to take the first payment before the figure is a failure. */
const RESUME_LIMIT_MS = 60_000;

/** One payment of STEP sat through `node`'s REST API: true if acknowledged, false otherwise. */
async function payOnce(node: Agent, channelId: string): Promise<boolean> {
  const r = await node.api
    .request<{ status: string }>('POST', '/v1/payments', { channel_id: channelId, amount_sat: STEP }, 10_000)
    .catch(() => null);
  return r?.status === 'succeeded';
}

async function measureGap(env: BenchEnv, timeoutMs: number): Promise<PromotionGap> {
  const xs = await side(env, 'promo', 3, { promotionTimeoutMs: timeoutMs });
  const [p, b1] = [xs[0]!, xs[1]!];
  const q = await env.agent('promo-peer');
  try {
    const channelId = await openFundedChannel(p, q, 10_000_000);
    let acked = 0;
    let killedAt = 0;
    const stream = async () => {
      while (killedAt === 0) {
        if (await payOnce(p, channelId)) acked++;
        if (acked >= BEFORE_KILL && killedAt === 0) {
          killedAt = performance.now();
          await p.kill();
        }
      }
    };
    await Promise.all([stream(), stream(), stream()]);
    // Until the promotion, b1 answers not_primary; then the first payment it acknowledges ends the gap.
    let gap: number | null = null;
    while (performance.now() - killedAt < RESUME_LIMIT_MS) {
      if (await payOnce(b1, channelId)) {
        gap = Math.round(performance.now() - killedAt);
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    if (gap === null)
      return { promotion_gap_ms: null, promotion_timeout_ms: timeoutMs, verified: false, error: 'no payment resumed' };
    const [mine, theirs] = await Promise.all([
      b1.api.request<{ total_sent_sat: string }>('GET', `/v1/channels/${channelId}`),
      q.api.request<{ total_received_sat: string }>('GET', `/v1/channels/${channelId}`),
    ]);
    const agree = mine.total_sent_sat === theirs.total_received_sat;
    const enough = BigInt(theirs.total_received_sat) >= BigInt((acked + 1) * STEP);
    return {
      promotion_gap_ms: gap,
      promotion_timeout_ms: timeoutMs,
      verified: agree && enough,
      error:
        agree && enough
          ? null
          : `the totals disagree: sent ${mine.total_sent_sat}, received ${theirs.total_received_sat}`,
    };
  } finally {
    await env.stop([...xs, q]);
  }
}

/** The promotion figure's stage: no row of its own, the figure beside them (BenchResult.committee3). */
export function promotionStage(cfg: BenchConfig): PromotionStage {
  let result: PromotionGap | null = null;
  return {
    scenarios: [],
    async run(ctx: StageContext) {
      ctx.show(`committee of 3: kill -9 of the primary (promotion timeout ${cfg.promotionTimeoutMs} ms)`);
      try {
        result = await measureGap(ctx.env, cfg.promotionTimeoutMs);
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        result = { promotion_gap_ms: null, promotion_timeout_ms: cfg.promotionTimeoutMs, verified: false, error };
      }
    },
    gap: () => result,
  };
}
