/**
 * The bench's plan: every stage in the order it runs. The treasury scenarios first, on the channel opened
 * before any of them (so its totals grow across them), then the ones that spawn their own nodes, then the
 * baselines.
 */
import type { BenchConfig } from '../config.ts';
import { stage, type ChannelPair, type Scenario, type ScenarioSpec, type Stage } from '../scenario.ts';
import { channelScenarios } from './channel.ts';
import { bothDirections } from './channel-both-directions.ts';
import { committeeStage } from './committee.ts';
import { ldkStage, type LdkStage } from './ldk.ts';
import { lnmodelStage } from './lnmodel.ts';
import { committeeMultihopStage, multihopStage } from './multihop.ts';
import { multihopBatchedStage } from './multihop-batched.ts';
import { multihopStarStage } from './multihop-star.ts';
import { pairsStage } from './pairs.ts';
import { promotionStage, type PromotionStage } from './promotion.ts';
import { restScenarios } from './rest.ts';

/** Scenarios that pay on the bench's first channel, alice → bob. */
function onMainChannel(title: string, scenarios: Array<Scenario<ChannelPair>>): Stage {
  return stage<ChannelPair>({ title, setUp: (env) => Promise.resolve(env.main), scenarios });
}

export interface BenchPlan {
  stages: Stage[];
  /** The LDK stage, whose cooperative close the bench reports beside the rows. */
  ldk: LdkStage;
  /** The promotion figure's stage (with committees of 3 only), reported beside the rows too. */
  promotion: PromotionStage | null;
}

export function benchPlan(cfg: BenchConfig): BenchPlan {
  const ldk = ldkStage(cfg);
  const promotion = cfg.sizes.committee.includes(3) ? promotionStage(cfg) : null;
  return {
    stages: [
      onMainChannel('one channel', [...channelScenarios(cfg), bothDirections(cfg)]),
      ...cfg.sizes.committee.map((length) => committeeStage(cfg, length)),
      multihopStage(cfg),
      multihopBatchedStage(cfg),
      multihopStarStage(cfg),
      ...(cfg.sizes.committee.includes(3) ? [committeeMultihopStage(cfg)] : []),
      ...(promotion ? [promotion] : []),
      ...cfg.pairs.map((n) => pairsStage(cfg, n)),
      onMainChannel('REST clients', restScenarios(cfg)),
      lnmodelStage(cfg),
      ldk,
    ],
    ldk,
    promotion,
  };
}

/** Every scenario of the plan, in order. */
export function planned(plan: BenchPlan): ScenarioSpec[] {
  return plan.stages.flatMap((s) => s.scenarios);
}
