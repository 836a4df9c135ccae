/**
 * The local network on committees, as the README's tour runs it: `teechain network up --committee 3`
 * (three treasuries in a line, each a 2-of-3 committee of three node processes), then on it: every
 * member's treasury_id in network.json and GET /v1/getinfo, the members' REST URLs in the roster, payments
 * by curl-like REST and by the CLI (one routed through bob's committee), `409 not_primary` on a backup
 * naming the primary's REST URL (and the CLI's one line saying which node to use, and its --follow), the
 * status table naming each primary, the dashboard listing every member (in Chromium when there is one),
 * and a settlement the chain pays as the balances say.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transaction, address as baddress, networks } from 'bitcoinjs-lib';
import { BitcoinRpcClient } from '../src/chain/rpc-client.ts';
import type { NetworkFile, NetworkNode } from '../src/cli/client.ts';
import type { Snapshot } from '../src/dashboard/protocol.ts';
import { chromiumAvailable, launchChromium } from './helpers/browser.ts';
import { api, cli, cliRun, networkUp, rest } from './helpers/launcher.ts';
import { stopChild, tempDir, waitUntil } from './helpers/network.ts';

test(
  'npm start -- --committee 3: one identity per treasury, payments by REST and CLI, not_primary on backups, every member on the dashboard, a settlement on chain',
  { timeout: 600_000 },
  async () => {
    const datadir = await tempDir('teechain-net-committee-');
    const up = networkUp(datadir, ['--committee', '3', '--base-port', '0'], 420_000);
    try {
      await up.ready;
      const network = JSON.parse(await readFile(join(datadir, 'network.json'), 'utf8')) as NetworkFile;
      assert.equal(network.committee, 3);
      const [alice, bob, carol] = network.nodes as [NetworkNode, NetworkNode, NetworkNode];
      const members = (n: NetworkNode) => [n, ...(n.backups ?? [])];
      assert.deepEqual(
        members(alice).map((m) => m.name),
        ['alice', 'alice-b1', 'alice-b2'],
      );

      // One identity per treasury: the founding primary's node id, on every member's entry and in its getinfo.
      for (const t of [alice, bob, carol])
        for (const m of members(t)) {
          assert.equal(m.treasuryId, t.nodeId, `${m.name} in network.json`);
          assert.equal((await api(m, 'GET', '/v1/getinfo')).treasury_id, t.nodeId, `${m.name}'s getinfo`);
        }
      // Every member's REST URL is in the roster, as every member sees it.
      for (const m of members(alice)) {
        const c = await api(m, 'GET', '/v1/committee');
        assert.deepEqual(
          c.members.map((x: { rest_url?: string }) => x.rest_url),
          members(alice).map((x) => x.restUrl),
          `the roster as ${m.name} sees it`,
        );
      }
      // The CLI's view of a committee from a backup: its place, and every member by name with its REST URL.
      const listed = await cli(datadir, '--node', 'alice-b1', 'committee');
      assert.match(
        listed,
        new RegExp(`^alice-b1: backup \\(member 1\\) of a 2-of-3 committee ${alice.nodeId.slice(0, 16)}…, view 0`),
      );
      for (const m of members(alice)) assert.match(listed, new RegExp(`${m.name} .* ${m.restUrl} +yes`));
      // The status table: one row per treasury, its primary named.
      assert.match(await cli(datadir, 'network', 'status'), /2-of-3, 3 up, primary alice\b/);

      // Payments: curl-like REST to the treasury's identity, then the CLI by name.
      const p = await api(alice, 'POST', '/v1/payments', { dest: bob.treasuryId, amount_sat: 2_500 });
      assert.equal(p.status, 'succeeded');
      assert.match(await cli(datadir, '--node', 'alice', 'pay', 'bob', '1000'), /1,000 sat to bob succeeded/);
      assert.match(await cli(datadir, '--node', 'bob', 'pay', 'alice', '500'), /500 sat to alice succeeded/);
      // Routed: no channel alice–carol, so through bob's committee (multi-hop).
      await waitUntil(
        async () => (await api(alice, 'GET', '/v1/graph')).nodes.length === 3,
        30_000,
        'channel graph gossiped to alice',
      );
      assert.match(
        await cli(datadir, '--node', 'alice', 'pay', 'carol', '1000'),
        /1,000 sat to carol via bob \(fee 0 sat\) succeeded/,
      );

      // A write sent to a backup: 409 not_primary naming the primary and its REST URL; nothing is paid.
      const b1 = alice.backups![0]!;
      const refused = await rest(b1, 'POST', '/v1/payments', { dest: bob.treasuryId, amount_sat: 7 });
      assert.equal(refused.status, 409);
      assert.equal(refused.body.error.code, 'not_primary');
      assert.deepEqual(refused.body.error.primary, { node_id: alice.nodeId, rest_url: alice.restUrl });
      assert.equal((await rest(b1, 'POST', '/v1/deposits', {})).body.error.primary.rest_url, alice.restUrl);
      const cliRefused = await cli(datadir, '--node', 'alice-b1', 'pay', 'bob', '7').then(
        () => null,
        (e: { code: number; stderr: string }) => e,
      );
      assert.equal(cliRefused?.code, 1);
      assert.equal(
        cliRefused!.stderr,
        `teechain: not_primary: alice-b1 is a committee backup; its primary is ${alice.restUrl} (run it again with --node alice)\n`,
      );
      assert.deepEqual((await api(b1, 'GET', '/v1/payments?limit=10')).payments, [], 'the backup logged no payment');
      // --follow: the payment goes once more to the primary network.json lists at the URL the backup named.
      const followed = await cliRun(datadir, '--node', 'alice-b1', '--follow', 'pay', 'bob', '7');
      assert.match(followed.stdout, /7 sat to bob succeeded/);
      assert.equal(followed.stderr, 'alice-b1 is a committee backup: sending it to its primary alice\n');

      // The dashboard lists every member of both committees, primaries and backups, with their REST URLs.
      const dashboardUrl = /^dashboard: (http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(up.out())?.[1];
      assert.ok(dashboardUrl, up.out());
      await waitUntil(
        async () => {
          const snap = (await (await fetch(`${dashboardUrl}api/snapshot`)).json()) as Snapshot;
          const rows = snap.committees.flatMap((c) => c.members);
          return (
            rows.length === 9 &&
            rows.every((m) => m.reachable && m.connected && m.epoch === 0 && m.rest_url !== null) &&
            snap.committees.map((c) => c.primary).join() === 'alice,bob,carol'
          );
        },
        30_000,
        'every committee member on the dashboard',
      );
      if (chromiumAvailable()) {
        const browser = await launchChromium();
        try {
          const page = await browser.context.newPage();
          await page.goto(dashboardUrl);
          const rows = page.locator('#committees tr[data-key]');
          await waitUntil(async () => (await rows.count()) === 9, 30_000, 'nine committee rows on the page');
          const text = await page.locator('#committees').innerText();
          for (const m of [alice, bob, carol].flatMap(members)) assert.ok(text.includes(m.restUrl), m.name);
          assert.match(await rows.first().innerText(), /alice\s+alice\s+primary\s+yes/);
          assert.match(await rows.nth(1).innerText(), /alice\s+alice-b1\s+backup\s+yes/);
        } finally {
          await browser.close();
        }
      }

      // A settlement: the chain pays each side exactly the balances after the payments (2,500 + 1,000 + 1,000 routed + 7 − 500).
      const { channels } = await api(alice, 'GET', '/v1/channels');
      assert.equal(channels.length, 1);
      const c = channels[0];
      assert.deepEqual([c.local_balance_sat, c.remote_balance_sat], ['495993', '504007']);
      const [mine, theirs] = [await api(alice, 'GET', '/v1/getinfo'), await api(bob, 'GET', '/v1/getinfo')];
      const s = await api(alice, 'POST', `/v1/channels/${c.channel_id}/settle`, {});
      const rpc = new BitcoinRpcClient({
        url: network.chain.rpcUrl,
        user: network.chain.rpcUser,
        password: network.chain.rpcPassword,
      });
      await rpc.call('generatetoaddress', [1, await rpc.call('getnewaddress', [])]);
      const tx = Transaction.fromHex((await rpc.call<{ hex: string }>('getrawtransaction', [s.txid, true])).hex);
      const outs = new Map(tx.outs.map((o) => [baddress.fromOutputScript(o.script, networks.regtest), o.value]));
      assert.equal(outs.get(mine.payout_address), 495_993n - BigInt(s.fee_sat));
      assert.equal(outs.get(theirs.payout_address), 504_007n);
      assert.deepEqual(await stopChild(up.proc, 'SIGTERM', 60_000), { code: 0, signal: null }, up.err());
    } finally {
      await stopChild(up.proc, 'SIGTERM');
    }
  },
);
