/**
 * Takes the dashboard screenshot (docs-assets/dashboard.png) of a running local network under
 * load: starts a dashboard for the network in --datadir, sends batches of payments both ways on every
 * open channel through the nodes' REST APIs for a while, and shoots the page while they flow.
 *
 *   npm start   # in another terminal, then:
 *   npx tsx scripts/dashboard-screenshot.ts [--datadir .teechain] [--seconds 20] [--out docs-assets/dashboard.png]
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { ApiClient, readNetwork } from '../src/cli/client.ts';
import { defaultDatadir } from '../src/node/datadir.ts';
import { dashboardForDatadir } from '../src/dashboard/server.ts';
import { launchChromium } from '../test/helpers/browser.ts';

const { values } = parseArgs({
  options: { datadir: { type: 'string' }, seconds: { type: 'string' }, out: { type: 'string' } },
});
const datadir = values.datadir ?? defaultDatadir();
const seconds = Number(values.seconds ?? 20);
const out = values.out ?? 'docs-assets/dashboard.png';

const network = await readNetwork(datadir);
const dashboard = await dashboardForDatadir(datadir, { port: 0 });
const clients = await Promise.all(network.nodes.map((n) => ApiClient.forNode(n)));
const until = Date.now() + seconds * 1000;

// Load: every node pays small amounts on each of its open channels, in batches, until the time is up.
const load = clients.map(async (api) => {
  const { channels } = await api.request<{ channels: Array<{ channel_id: string; status: string }> }>(
    'GET',
    '/v1/channels',
  );
  const open = channels.filter((c) => c.status === 'open');
  while (Date.now() < until && open.length > 0) {
    const payments = open.flatMap((c) =>
      Array.from({ length: 100 }, (_, i) => ({ channel_id: c.channel_id, amount_sat: 1 + (i % 7) })),
    );
    await api.request('POST', '/v1/payments/batch', { payments });
    await new Promise((r) => setTimeout(r, 40 + Math.random() * 60));
  }
});

const browser = await launchChromium({ width: 1400, height: 1250 });
try {
  const page = await browser.context.newPage();
  await page.goto(dashboard.url);
  await page.waitForTimeout(Math.max(3000, seconds * 1000 - 2000));
  await mkdir(dirname(out), { recursive: true });
  await page.screenshot({ path: out, fullPage: true });
  process.stdout.write(`${out}\n`);
} finally {
  await Promise.all(load);
  await browser.close();
  await dashboard.stop();
}
