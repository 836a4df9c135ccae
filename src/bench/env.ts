/**
 * The bench's world: an embedded regtest chain in memory, an attestation key, the treasury nodes it spawns
 * (each a real process, src/bench/agent.ts) and the first channel, alice → bob. Also a network.json, so
 * `teechain dashboard --datadir DIR` can follow the run live.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AttestationService } from '../../enclave-sim/attestation.ts';
import { startEmbeddedChain } from '../chain/embedded/index.ts';
import { writeSecretFile } from '../node/secret-file.ts';
import { openFundedChannel, spawnAgent, type Agent } from './cluster.ts';
import type { AgentOptions, BenchEnv } from './scenario.ts';

export interface RunningEnv extends BenchEnv {
  /** Stops every node still running and the chain. */
  close(): Promise<void>;
}

/**
 * Starts the chain and two nodes, and opens their channel; `log` gets the line that says how to watch it.
 */
export async function startBenchEnv(log: (line: string) => void): Promise<RunningEnv> {
  const dir = await mkdtemp(join(tmpdir(), 'teechain-bench-'));
  const chain = await startEmbeddedChain({ memory: true });
  const keyFile = join(dir, 'attestation.key');
  const agents: Agent[] = [];
  const agent = async (name: string, extra: AgentOptions = {}) => {
    const a = await spawnAgent(name, {
      datadir: join(dir, name),
      rpcUrl: chain.rpcUrl,
      rpcUser: chain.rpcUser,
      rpcPassword: chain.rpcPassword,
      attestationKey: keyFile,
      regtestFaucet: true,
      ...extra,
    });
    agents.push(a);
    return a;
  };
  const close = async () => {
    for (const a of agents.splice(0)) await a.stop().catch(() => undefined);
    await chain.close();
  };
  try {
    await AttestationService.create().save(keyFile);
    const alice = await agent('alice');
    const bob = await agent('bob');
    await writeSecretFile(
      join(dir, 'network.json'),
      JSON.stringify({
        chain: { rpcUrl: chain.rpcUrl, rpcUser: chain.rpcUser, rpcPassword: chain.rpcPassword, embedded: true },
        nodes: [alice, bob].map((x) => ({
          name: x.name,
          nodeId: x.nodeId,
          restUrl: x.api.restUrl,
          tokenFile: join(dir, x.name, 'admin.token'),
          p2p: x.p2p,
        })),
        topology: 'line',
      }),
    );
    log(`watch it live: npx teechain dashboard --datadir ${dir} --port 0`);
    const main = { a: alice, b: bob, id: await openFundedChannel(alice, bob, 50_000_000) };
    return {
      dir,
      chain: { rpcUrl: chain.rpcUrl, rpcUser: chain.rpcUser, rpcPassword: chain.rpcPassword },
      main,
      agent,
      async stop(some) {
        for (const a of some) {
          await a.stop();
          agents.splice(agents.indexOf(a), 1);
        }
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
