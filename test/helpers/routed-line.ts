/**
 * Three real node processes in a line, alice – bob – carol, on the embedded regtest chain: one channel
 * alice – bob and one bob – carol (500,000 sat deposited by each side of each), bob optionally charging a
 * forwarding fee, and carol's channel (with bob's fee) announced to alice, so that a payment to carol is
 * routed through bob. For the end-to-end tests of routed payments over the REST API.
 */
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

export interface RoutedLine {
  chain: TestChain;
  alice: NodeProcess;
  bob: NodeProcess;
  carol: NodeProcess;
  /** The channel alice – bob, and bob – carol. */
  ab: string;
  bc: string;
  /** Stops the three nodes and the chain. */
  stop(): Promise<void>;
}

interface GraphNode {
  node_id: string;
  fee_ppm: number;
  channels: Array<{ capacity_sat: string }>;
}

export async function startRoutedLine(prefix: string, bobFee?: { base_sat: number; ppm: number }): Promise<RoutedLine> {
  const dir = await tempDir(prefix);
  const chain = await startTestChain();
  const key = await attestationKey(dir);
  const [alice, bob, carol] = await Promise.all(
    ['alice', 'bob', 'carol'].map((name) => NodeProcess.start(join(dir, name), chain, key)),
  );
  const [da, db1, db2, dc] = await Promise.all([
    fundDeposit(alice!, 500_000),
    fundDeposit(bob!, 500_000),
    fundDeposit(bob!, 500_000),
    fundDeposit(carol!, 500_000),
  ]);
  const [ab, bc] = await Promise.all([openChannel(alice!, bob!, [da], [db1]), openChannel(bob!, carol!, [db2], [dc])]);
  if (bobFee) await bob!.ok('POST', '/v1/fees', bobFee);
  await waitUntil(
    async () => {
      const g = (await alice!.ok('GET', '/v1/graph')).nodes as GraphNode[];
      return (
        (!bobFee || g.find((x) => x.node_id === bob!.id)?.fee_ppm === bobFee.ppm) &&
        g.some((x) => x.node_id === carol!.id) &&
        g.every((x) => x.channels.length > 0 && x.channels.every((c) => BigInt(c.capacity_sat) > 0n))
      );
    },
    20_000,
    "both channels (and bob's fees) announced to alice",
  );
  return {
    chain,
    alice: alice!,
    bob: bob!,
    carol: carol!,
    ab,
    bc,
    async stop() {
      for (const n of [alice, bob, carol]) await n?.kill('SIGTERM');
      await chain.close();
    },
  };
}
