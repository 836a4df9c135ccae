/**
 * The dashboard in a real browser (Debian's headless Chromium, driven by playwright-core) against two
 * real node processes and a regtest chain: the network drawn with verified attestations, a payment made
 * through the page changing the balances shown, live updates, an API error shown as the API gave it, a
 * settlement showing its txid and then its confirmations. And no token ever reaches the page.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { AttestationService } from '../enclave-sim/attestation.ts';
import { measureBundle } from '../enclave-sim/bundle.ts';
import type { NetworkFile } from '../src/cli/client.ts';
import { startDashboard, type RunningDashboard } from '../src/dashboard/server.ts';
import type { Snapshot } from '../src/dashboard/protocol.ts';
import { TREASURY_PROGRAM } from '../src/node/treasury-node.ts';
import { chromiumAvailable, CHROMIUM, launchChromium, type Browser } from './helpers/browser.ts';
import { attestationKey, fundDeposit, NodeProcess, openChannel, startTestChain, tempDir, waitUntil, type TestChain } from './helpers/network.ts';

const skip = chromiumAvailable() ? false : `${CHROMIUM} not found: install Debian's chromium (apt-get install chromium); .ci/run does`;

describe('dashboard', { skip }, () => {
  let chain: TestChain;
  let alice: NodeProcess;
  let bob: NodeProcess;
  let channel: string;
  let dashboard: RunningDashboard;
  let browser: Browser;

  before(async () => {
    const dir = await tempDir('teechain-dash-');
    chain = await startTestChain();
    const key = await attestationKey(dir);
    [alice, bob] = await Promise.all([NodeProcess.start(join(dir, 'alice'), chain, key), NodeProcess.start(join(dir, 'bob'), chain, key)]);
    const [da, db] = await Promise.all([fundDeposit(alice, 1_000_000), fundDeposit(bob, 500_000)]);
    channel = await openChannel(alice, bob, [da], [db]);
    const entry = (name: string, n: NodeProcess) => ({ name, nodeId: n.id, restUrl: n.ready.rest_url, tokenFile: n.ready.token_file, p2p: n.ready.p2p });
    const network: NetworkFile = {
      chain: { rpcUrl: chain.rpcUrl, rpcUser: chain.rpcUser, rpcPassword: chain.rpcPassword, embedded: true },
      nodes: [entry('alice', alice), entry('bob', bob)],
      topology: 'line',
    };
    const trustAnchor = (await AttestationService.load(key)).trustAnchor;
    dashboard = await startDashboard({ network, attestation: { trustAnchor, allowedMeasurements: [await measureBundle(TREASURY_PROGRAM)] }, port: 0, pollMs: 250 });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await dashboard?.stop();
    await Promise.all([alice?.kill('SIGTERM'), bob?.kill('SIGTERM')]);
    await chain?.close();
  });

  test('the page draws the network: verified nodes, the channel with both balances, deposits with confirmations', async () => {
    const page = await browser.context.newPage();
    await page.goto(dashboard.url);
    await page.locator('#live.on').waitFor();
    await page.locator('[data-testid=graph-node].verified').nth(1).waitFor();
    assert.deepEqual(await page.locator('[data-testid=graph-node]').evaluateAll((els) => els.map((e) => e.getAttribute('data-node'))), ['alice', 'bob']);
    const edge = page.locator(`g.edge[data-channel="${channel}"]`);
    assert.equal(await edge.locator('[data-side=a]').textContent(), '1,000,000');
    assert.equal(await edge.locator('[data-side=b]').textContent(), '500,000');
    assert.match(await page.locator('#nodes tr[data-key=alice]').innerText(), /✓ verified/);
    const deposits = page.locator('#deposits tr[data-key]');
    assert.equal(await deposits.count(), 2);
    assert.match(await deposits.first().innerText(), /in channel\s+1,000,000\s+[0-9a-f]{16}…:\d\s+[1-9]/);
    assert.match(await page.locator('#committees').innerText(), /No committees/);
    await page.close();
  });

  test('a payment through the page changes the balances shown; payments by others show up live', async () => {
    const page = await browser.context.newPage();
    await page.goto(dashboard.url);
    const row = page.locator(`#channels tr[data-key="${channel}"]`);
    await row.locator('.bal-a').filter({ hasText: '1,000,000' }).waitFor();
    await page.selectOption('#pay-form select[name=from]', 'alice');
    await page.selectOption('#pay-form select[name=to]', 'bob');
    await page.fill('#pay-form input[name=amount_sat]', '12345');
    await page.click('#pay-form button');
    await page.locator('#action-result.ok').filter({ hasText: 'succeeded' }).waitFor();
    await row.locator('.bal-a').filter({ hasText: '987,655' }).waitFor();
    assert.equal(await row.locator('.bal-b').textContent(), '512,345');
    assert.equal(await page.locator(`g.edge[data-channel="${channel}"] [data-side=a]`).textContent(), '987,655');

    // The same page, not reloaded, follows payments made elsewhere (here: the REST API, in batches).
    for (let i = 0; i < 5; i++) await bob.ok('POST', '/v1/payments/batch', { payments: Array.from({ length: 200 }, () => ({ channel_id: channel, amount_sat: 1 })) });
    await row.locator('.bal-a').filter({ hasText: '988,655' }).waitFor();
    await waitUntil(async () => /[1-9][0-9.]* payments\/s/.test(await page.locator('#rate-now').innerText()) || (await page.locator('#nodes tr[data-key=bob]').innerText()).includes('1000 / 0'), 10_000, 'payments shown');
    await page.close();
  });

  test('an error is shown as the API gives it', async () => {
    const page = await browser.context.newPage();
    await page.goto(dashboard.url);
    await page.locator('#live.on').waitFor();
    await page.fill('#pay-form input[name=amount_sat]', '99000000');
    await page.click('#pay-form button');
    const code = await page.locator('#action-result.err [data-testid=error-code]').textContent();
    // The node's own answer, whatever layer refused it: exactly its code.
    const direct = await alice.api('POST', '/v1/payments', { dest: bob.id, amount_sat: 99_000_000 });
    const failed = direct.status === 201 ? direct.body.failure_code : direct.body.error.code;
    assert.equal(code, failed);
    assert.equal(code, 'insufficient_funds');
    await page.close();
  });

  test('settling from the page shows the txid, then its confirmations after mining a block', async () => {
    const page = await browser.context.newPage();
    await page.goto(dashboard.url);
    const row = page.locator(`#channels tr[data-key="${channel}"]`);
    await row.locator('button[data-testid=settle]').click();
    const txid = (await page.locator('[data-testid=settle-txid]').textContent()) ?? '';
    assert.match(txid, /^[0-9a-f]{64}$/);
    await row.locator('.txid').filter({ hasText: txid }).waitFor();
    await row.locator('td.closed').waitFor();
    await page.fill('#mine-form input[name=blocks]', '1');
    await page.click('#mine-form button');
    await page.locator('#action-result.ok').filter({ hasText: 'mined 1 block' }).waitFor();
    await waitUntil(async () => Number(await row.locator('td').nth(7).innerText()) >= 1, 10_000, 'settlement confirmed');
    await page.locator('#deposits td.settled').first().waitFor();
    await page.screenshot({ path: join(await tempDir('teechain-dash-shot-'), 'settled.png') });
    await page.close();
  });

  test('no token reaches the page; actions from another origin or host are refused', async () => {
    const tokens = [alice.token, alice.readonlyToken, bob.token, bob.readonlyToken];
    const html = await (await fetch(dashboard.url)).text();
    const assets = [...html.matchAll(/(?:src|href)="\.\/(assets\/[^"]+)"/g)].map((m) => m[1]!);
    assert.ok(assets.length >= 2, html);
    const served = [html, ...(await Promise.all(assets.map(async (a) => (await fetch(new URL(a, dashboard.url))).text())))];
    const snapshot = (await (await fetch(new URL('api/snapshot', dashboard.url))).json()) as Snapshot;
    served.push(JSON.stringify(snapshot));
    for (const text of served) for (const t of tokens) assert.ok(!text.includes(t), 'a token was served to the page');
    assert.equal(snapshot.nodes.length, 2);

    const pay = (headers: Record<string, string>, body = '{"from":"alice","to":"bob","amount_sat":1}') =>
      fetch(new URL('api/actions/pay', dashboard.url), { method: 'POST', headers, body });
    const crossSite = await pay({ 'content-type': 'application/json', origin: 'http://evil.example' });
    assert.equal(crossSite.status, 403);
    assert.equal(((await crossSite.json()) as { error: { code: string } }).error.code, 'forbidden');
    const form = await pay({ 'content-type': 'application/x-www-form-urlencoded' }, 'from=alice&to=bob&amount_sat=1');
    assert.equal(form.status, 400);
    const unknown = await pay({ 'content-type': 'application/json' }, '{"from":"mallory","to":"bob","amount_sat":1}');
    assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, 'invalid_argument');
    // DNS rebinding: a page served from another name that resolves to 127.0.0.1 sends its own Host.
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const u = new URL(dashboard.url);
      request({ host: u.hostname, port: u.port, path: '/api/snapshot', headers: { host: 'attacker.example' } }, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', reject).end();
    });
    assert.equal(status, 403);
  });
});
