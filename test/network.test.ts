/**
 * The whole local network as a user runs it: `teechain network up` (what `npm start` runs) from nothing on
 * fixed ports, payments with the CLI and the REST API, Ctrl-C with the channels open, resume on the same
 * ports with the same balances, payments after the resume, settlement of every channel checked on chain.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transaction, address as baddress, networks } from 'bitcoinjs-lib';
import { BitcoinRpcClient } from '../src/chain/rpc-client.ts';
import type { NetworkFile } from '../src/cli/client.ts';
import { api, cli, networkUp } from './helpers/launcher.ts';
import { freePorts, stopChild, tempDir, waitUntil } from './helpers/network.ts';
import { prng as rng, testSeed } from './helpers/seeded.ts';

type Node = NetworkFile['nodes'][number];
const portOf = (url: string) => Number(new URL(url.includes('://') ? url : `tcp://${url}`).port);

/** Every channel of every node: the fields a resume must keep exactly. */
async function channelStates(nodes: Node[]) {
  const out: Record<
    string,
    Array<{
      channel_id: string;
      peer_id: string;
      status: string;
      local_balance_sat: bigint;
      remote_balance_sat: bigint;
    }>
  > = {};
  for (const n of nodes) {
    const { channels } = await api(n, 'GET', '/v1/channels');
    out[n.name] = channels.map(
      (c: Record<'channel_id' | 'peer_id' | 'status' | 'local_balance_sat' | 'remote_balance_sat', string>) => ({
        channel_id: c.channel_id,
        peer_id: c.peer_id,
        status: c.status,
        local_balance_sat: BigInt(c.local_balance_sat),
        remote_balance_sat: BigInt(c.remote_balance_sat),
      }),
    );
  }
  return out;
}

/** `states` after `amount` moved from `from` to `to` on their channel: exactly that, nothing else. */
function moved(states: Awaited<ReturnType<typeof channelStates>>, from: Node, to: Node, amount: bigint) {
  const next = structuredClone(states);
  const payer = next[from.name]!.find((c) => c.peer_id === to.nodeId)!;
  const payee = next[to.name]!.find((c) => c.peer_id === from.nodeId)!;
  payer.local_balance_sat -= amount;
  payer.remote_balance_sat += amount;
  payee.local_balance_sat += amount;
  payee.remote_balance_sat -= amount;
  return next;
}

test(
  'npm start: a funded three-node network from nothing on fixed ports, payments by CLI and curl-alike, stopped with its channels open, resumed on the same ports with the same balances, paid again, settled on chain',
  { timeout: 480_000 },
  async () => {
    // Fixed ports, chosen free: a resume must come back on exactly these (chain, then each node's REST and P2P).
    const seed = testSeed('network ports');
    const base = await freePorts([0, 1, 2, 3, 4, 5, 6, 80], rng(seed));
    const datadir = await tempDir('teechain-net-');
    const up = networkUp(datadir, ['--base-port', String(base)]);
    let again: ReturnType<typeof networkUp> | undefined;
    try {
      await up.ready;
      assert.match(up.out(), /alice/);
      assert.match(up.out(), /carol/);
      // The dashboard comes up with the network, its page built and every node's attestation verified.
      const dashboardUrl = /^dashboard: (http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(up.out())?.[1];
      assert.equal(dashboardUrl, `http://127.0.0.1:${base + 80}/`, up.out());
      assert.match(await (await fetch(dashboardUrl)).text(), /<title>teechain dashboard<\/title>/);
      await waitUntil(
        async () => {
          const snap = (await (await fetch(`${dashboardUrl}api/snapshot`)).json()) as {
            nodes: Array<{ attestation: { verified: boolean } }>;
            channels: unknown[];
          };
          return (
            snap.nodes.length === 3 && snap.nodes.every((n) => n.attestation.verified) && snap.channels.length === 2
          );
        },
        15_000,
        'dashboard snapshot of the network',
      );
      const network = JSON.parse(await readFile(join(datadir, 'network.json'), 'utf8')) as NetworkFile;
      assert.deepEqual(
        network.nodes.map((n) => n.name),
        ['alice', 'bob', 'carol'],
      );
      for (const k of ['rpcUrl', 'rpcUser', 'rpcPassword'] as const) assert.ok(network.chain[k]);
      // --base-port B: chain RPC on B, node i's REST API on B+1+2i and P2P on B+2+2i (docs/operations.md).
      assert.equal(portOf(network.chain.rpcUrl), base);
      assert.deepEqual(
        network.nodes.map((n) => [portOf(n.restUrl), portOf(n.p2p)]),
        [
          [base + 1, base + 2],
          [base + 3, base + 4],
          [base + 5, base + 6],
        ],
      );
      const [alice, bob, carol] = network.nodes as [Node, Node, Node];

      // alice → bob with the CLI; bob → carol with the REST API
      const paid = await cli(datadir, '--node', 'alice', 'pay', 'bob', '1000');
      assert.match(paid, /1,000 sat to bob succeeded/);
      const p = await api(bob, 'POST', '/v1/payments', { dest: carol.nodeId, amount_sat: 2500 });
      assert.equal(p.status, 'succeeded');
      // alice → carol with the CLI: no channel between them, so it is routed through bob (multi-hop)
      await waitUntil(
        async () => (await api(alice, 'GET', '/v1/graph')).nodes.length === 3,
        15_000,
        'channel graph gossiped to alice',
      );
      assert.match(
        await cli(datadir, '--node', 'alice', 'pay', 'carol', '1000'),
        /1,000 sat to carol via bob \(fee 0 sat\) succeeded/,
      );
      const json = JSON.parse(await cli(datadir, '--json', '--node', 'bob', 'channels'));
      assert.equal(json.length, 2);
      assert.match(await cli(datadir, 'attest', 'carol'), /carol: quote verified/);
      const info = JSON.parse(await cli(datadir, '--json', '--node', 'carol', 'getinfo'));
      assert.equal(info.node_id, carol.nodeId);
      // a usage error is one line on stderr and exit code 2, never a stack trace
      const bad = await cli(datadir, '--node', 'alice', 'pay', 'bob', 'abc').then(
        () => null,
        (e: { code: number; stderr: string }) => e,
      );
      assert.equal(bad?.code, 2);
      assert.match(bad!.stderr, /^teechain: AMOUNT_SAT must be a whole number\n/);
      assert.doesNotMatch(bad!.stderr, /at .*\.ts:\d+/);
      assert.match(await cli(datadir, 'network', 'status'), /bob/);

      // Ctrl-C with both channels open, after 2,000 sat alice → bob and 3,500 sat bob → carol.
      // Each end put in one 500,000 sat deposit; the multi-hop payment forwarded at no fee.
      const before = await channelStates(network.nodes);
      const ends = (n: Node, peer: Node) =>
        before[n.name]!.filter((c) => c.peer_id === peer.nodeId).map((c) => [
          c.status,
          c.local_balance_sat,
          c.remote_balance_sat,
        ]);
      assert.deepEqual(
        [ends(alice, bob), ends(bob, alice), ends(bob, carol), ends(carol, bob)],
        [
          [['open', 498_000n, 502_000n]],
          [['open', 502_000n, 498_000n]],
          [['open', 496_500n, 503_500n]],
          [['open', 503_500n, 496_500n]],
        ],
      );
      const height = await new BitcoinRpcClient({
        url: network.chain.rpcUrl,
        user: network.chain.rpcUser,
        password: network.chain.rpcPassword,
      }).getBlockCount();
      assert.deepEqual(await stopChild(up.proc, 'SIGINT', 60_000), { code: 0, signal: null }, up.err());

      // Resume, whatever --base-port says now (0 would be any free ports): the saved ports, the same nodes, chain and balances.
      again = networkUp(datadir, ['--base-port', '0', '--no-dashboard']);
      await again.ready;
      assert.match(again.err(), /resumed: nodes reconnect to their peers by themselves/);
      const resumed = JSON.parse(await readFile(join(datadir, 'network.json'), 'utf8')) as NetworkFile;
      assert.equal(resumed.chain.rpcUrl, network.chain.rpcUrl);
      assert.deepEqual(
        resumed.nodes.map((n) => [n.name, n.nodeId, n.restUrl, n.p2p]),
        network.nodes.map((n) => [n.name, n.nodeId, n.restUrl, n.p2p]),
      );
      // The same ports serve: each node answers on its first REST port as the same node; the chain kept its blocks.
      const rpc = new BitcoinRpcClient({
        url: resumed.chain.rpcUrl,
        user: resumed.chain.rpcUser,
        password: resumed.chain.rpcPassword,
      });
      assert.ok((await rpc.getBlockCount()) >= height);
      for (const n of network.nodes) assert.equal((await api(n, 'GET', '/v1/getinfo')).node_id, n.nodeId);
      // Peers redialled (over the P2P ports in their peers.json): every channel end sees its peer connected again.
      await waitUntil(
        async () => {
          for (const n of network.nodes)
            if (
              !(await api(n, 'GET', '/v1/channels')).channels.every(
                (c: { peer_connected: boolean }) => c.peer_connected,
              )
            )
              return false;
          return true;
        },
        60_000,
        "every channel's peer reconnected after the resume",
      );
      const after = await channelStates(network.nodes);
      assert.deepEqual(after, before, 'the resumed channels are open with exactly the balances they had');

      // Paid again on both channels, one each way: each moves its channel by exactly its amount, the other not at all.
      assert.match(await cli(datadir, '--node', 'alice', 'pay', 'bob', '1234'), /1,234 sat to bob succeeded/);
      const afterAlice = await channelStates(network.nodes);
      assert.deepEqual(afterAlice, moved(before, alice, bob, 1234n));
      assert.equal(
        (await api(carol, 'POST', '/v1/payments', { dest: bob.nodeId, amount_sat: 777 })).status,
        'succeeded',
      );
      const final = await channelStates(network.nodes);
      assert.deepEqual(final, moved(moved(before, alice, bob, 1234n), carol, bob, 777n));

      // Settle every channel from its opener; the chain pays exactly the balances after the resume's payments.
      for (const opener of [alice, bob]) {
        const { channels } = await api(opener, 'GET', '/v1/channels');
        const c = channels.find((x: { initiator: boolean; status: string }) => x.initiator && x.status === 'open');
        const expected = final[opener.name]!.find((x) => x.channel_id === c.channel_id)!;
        assert.deepEqual(
          [BigInt(c.local_balance_sat), BigInt(c.remote_balance_sat)],
          [expected.local_balance_sat, expected.remote_balance_sat],
        );
        const peer = network.nodes.find((n) => n.nodeId === c.peer_id)!;
        const [mine, theirs] = [await api(opener, 'GET', '/v1/getinfo'), await api(peer, 'GET', '/v1/getinfo')];
        const s = await api(opener, 'POST', `/v1/channels/${c.channel_id}/settle`, {});
        await rpc.call('generatetoaddress', [1, await rpc.call('getnewaddress', [])]);
        const tx = Transaction.fromHex((await rpc.call<{ hex: string }>('getrawtransaction', [s.txid, true])).hex);
        const outs = new Map(tx.outs.map((o) => [baddress.fromOutputScript(o.script, networks.regtest), o.value]));
        assert.equal(outs.get(mine.payout_address), expected.local_balance_sat - BigInt(s.fee_sat));
        assert.equal(outs.get(theirs.payout_address), expected.remote_balance_sat);
      }
      assert.deepEqual(await stopChild(again.proc, 'SIGTERM', 60_000), { code: 0, signal: null }, again.err());
    } finally {
      // Whatever failed above: no network is left running (SIGKILL of the group after the grace period).
      await stopChild(up.proc, 'SIGTERM');
      if (again) await stopChild(again.proc, 'SIGTERM');
    }
  },
);
