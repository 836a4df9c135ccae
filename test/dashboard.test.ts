/**
 * The dashboard in a real browser (Debian's headless Chromium, driven by playwright-core) against two
 * real node processes and a regtest chain: the network drawn with verified attestations, a payment made
 * through the page changing the balances shown, live updates, an API error shown as the API gave it, a
 * settlement showing its txid and then its confirmations. Without a browser (plain HTTP, so it runs
 * wherever the suite does): no token, password or key ever reaches the page (HTML, assets, snapshot, and
 * the event stream's bytes while payments happen), and actions from another origin or host are refused.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { AttestationService } from '../enclave-sim/attestation.ts';
import { measureBundle } from '../enclave-sim/bundle.ts';
import type { NetworkFile } from '../src/cli/client.ts';
import type { ApiAnswer } from './helpers/network.ts';
import { request } from 'node:http';
import { startDashboard, type RunningDashboard } from '../src/dashboard/server.ts';
import type { Snapshot } from '../src/dashboard/protocol.ts';
import { TREASURY_PROGRAM } from '../src/node/enclave-client.ts';
import { chromiumAvailable, CHROMIUM, launchChromium, type Browser } from './helpers/browser.ts';
import {
  attestationKey,
  fundDeposit,
  NodeProcess,
  openChannel,
  startTestChain,
  tempDir,
  waitUntil,
  type TestChain,
} from './helpers/network.ts';
import { assertNoSecret, attestationSecret, nodeSecrets, type Secret } from './helpers/secrets.ts';

/** Only the tests that drive the page need a browser; the security checks below are plain HTTP. */
const skip = chromiumAvailable()
  ? false
  : `${CHROMIUM} not found: install Debian's chromium (apt-get install chromium); .ci/run does`;

describe('dashboard', () => {
  let chain: TestChain;
  let alice: NodeProcess;
  let bob: NodeProcess;
  let channel: string;
  let dashboard: RunningDashboard;
  let browser: Browser | undefined;
  let keyFile: string;

  before(async () => {
    const dir = await tempDir('teechain-dash-');
    chain = await startTestChain();
    const key = (keyFile = await attestationKey(dir));
    [alice, bob] = await Promise.all([
      NodeProcess.start(join(dir, 'alice'), chain, key),
      NodeProcess.start(join(dir, 'bob'), chain, key),
    ]);
    const [da, db] = await Promise.all([fundDeposit(alice, 1_000_000), fundDeposit(bob, 500_000)]);
    channel = await openChannel(alice, bob, [da], [db]);
    const entry = (name: string, n: NodeProcess) => ({
      name,
      nodeId: n.id,
      restUrl: n.ready.rest_url,
      tokenFile: n.ready.token_file,
      p2p: n.ready.p2p,
    });
    const network: NetworkFile = {
      chain: { rpcUrl: chain.rpcUrl, rpcUser: chain.rpcUser, rpcPassword: chain.rpcPassword, embedded: true },
      nodes: [entry('alice', alice), entry('bob', bob)],
      topology: 'line',
    };
    const trustAnchor = (await AttestationService.load(key)).trustAnchor;
    dashboard = await startDashboard({
      network,
      attestation: { trustAnchor, allowedMeasurements: [await measureBundle(TREASURY_PROGRAM)] },
      port: 0,
      pollMs: 250,
    });
    if (!skip) browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await dashboard?.stop();
    await Promise.all([alice?.kill('SIGTERM'), bob?.kill('SIGTERM')]);
    await chain?.close();
  });

  test(
    'the page draws the network: verified nodes, the channel with both balances, deposits with confirmations',
    { skip },
    async () => {
      const page = await browser!.context.newPage();
      await page.goto(dashboard.url);
      await page.locator('#live.on').waitFor();
      await page.locator('[data-testid=graph-node].verified').nth(1).waitFor();
      assert.deepEqual(
        await page
          .locator('[data-testid=graph-node]')
          .evaluateAll((els) => els.map((e) => e.getAttribute('data-node'))),
        ['alice', 'bob'],
      );
      const edge = page.locator(`g.edge[data-channel="${channel}"]`);
      assert.equal(await edge.locator('[data-side=a]').textContent(), '1,000,000');
      assert.equal(await edge.locator('[data-side=b]').textContent(), '500,000');
      assert.match(await page.locator('#nodes tr[data-key=alice]').innerText(), /✓ verified/);
      const deposits = page.locator('#deposits tr[data-key]');
      assert.equal(await deposits.count(), 2);
      assert.match(await deposits.first().innerText(), /in channel\s+1,000,000\s+[0-9a-f]{16}…:\d\s+[1-9]/);
      assert.match(await page.locator('#committees').innerText(), /No committees/);
      await page.close();
    },
  );

  test('a payment through the page changes the balances shown; payments by others show up live', { skip }, async () => {
    const page = await browser!.context.newPage();
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
    for (let i = 0; i < 5; i++)
      await bob.ok('POST', '/v1/payments/batch', {
        payments: Array.from({ length: 200 }, () => ({ channel_id: channel, amount_sat: 1 })),
      });
    await row.locator('.bal-a').filter({ hasText: '988,655' }).waitFor();
    await waitUntil(
      async () =>
        /[1-9][0-9.]* payments\/s/.test(await page.locator('#rate-now').innerText()) ||
        (await page.locator('#nodes tr[data-key=bob]').innerText()).includes('1000 / 0'),
      10_000,
      'payments shown',
    );
    await page.close();
  });

  test('an error is shown as the API gives it', { skip }, async () => {
    const page = await browser!.context.newPage();
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

  test('settling from the page shows the txid, then its confirmations after mining a block', { skip }, async () => {
    const page = await browser!.context.newPage();
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
    await waitUntil(
      async () => Number(await row.locator('td').nth(7).innerText()) >= 1,
      10_000,
      'settlement confirmed',
    );
    await page.locator('#deposits td.settled').first().waitFor();
    await page.screenshot({ path: join(await tempDir('teechain-dash-shot-'), 'settled.png') });
    await page.close();
  });

  test('no token, password or key reaches the page: HTML, assets, snapshot, and the event stream while money moves', async () => {
    const html = await (await fetch(dashboard.url)).text();
    const assets = [...html.matchAll(/(?:src|href)="\.\/(assets\/[^"]+)"/g)].map((m) => m[1]!);
    assert.ok(assets.length >= 2, html);
    const served: Array<[string, string]> = [['the page', html]];
    for (const a of assets) served.push([a, await (await fetch(new URL(a, dashboard.url))).text()]);

    // The event stream, read as bytes while alice funds a deposit, opens a channel with it and pays bob.
    const stream = await EventStream.open(new URL('api/events', dashboard.url));
    try {
      await stream.waitFor((e) => e.event === 'snapshot', 'a first snapshot');
      const fund = await action('fund', { node: 'alice', amount_sat: 40_000 });
      assert.equal(fund.status, 201, JSON.stringify(fund.body));
      const open = await action('open', { from: 'alice', to: 'bob', amount_sat: 40_000 });
      assert.equal(open.status, 201, JSON.stringify(open.body));
      const pay = await action('pay', { from: 'alice', to: 'bob', amount_sat: 1_234 });
      assert.equal(pay.status, 201, JSON.stringify(pay.body));
      // Answered succeeded, or in_flight if the acknowledgement took longer than the API waits: then wait for it.
      await waitUntil(
        async () =>
          (await alice.ok('GET', '/v1/payments?limit=50')).payments.some(
            (p: { payment_id: string; status: string }) =>
              p.payment_id === pay.body.payment_id && p.status === 'succeeded',
          ),
        30_000,
        'the payment acknowledged',
      );
      const paidOn = pay.body.channel_id as string;
      const balance = (await alice.ok('GET', `/v1/channels/${paidOn}`)).local_balance_sat as string;
      // A definite end: the snapshot that shows the payment, then two more polls after it.
      const shown = await stream.waitFor(
        (e) =>
          e.event === 'snapshot' &&
          (JSON.parse(e.data) as Snapshot).channels.some((c) => c.channel_id === paidOn && c.a.balance_sat === balance),
        'the payment in a snapshot',
      );
      await stream.waitFor((e) => e.event === 'snapshot' && e.index >= shown.index + 2, 'two more snapshots');
      assert.ok(stream.text.includes(open.body.channel_id as string), 'the stream shows the new channel');
      assert.ok(stream.text.includes(fund.body.deposit_id as string), 'the stream shows the new deposit');
      assert.ok(stream.events.filter((e) => e.event === 'history').length === 1);
    } finally {
      stream.close();
    }
    served.push(['the event stream', stream.text]);
    served.push(['GET /api/snapshot', await (await fetch(new URL('api/snapshot', dashboard.url))).text()]);

    // Read last, so the keys of the deposit and channel made above are in the sealed states.
    const secrets: Secret[] = [
      ...(await nodeSecrets('alice', alice.datadir, alice.ready.measurement)),
      ...(await nodeSecrets('bob', bob.datadir, bob.ready.measurement)),
      await attestationSecret(keyFile),
      { what: 'chain RPC password', value: chain.rpcPassword },
    ];
    assert.ok(
      secrets.filter((s) => / deposit .* key /.test(s.what)).length >= 3,
      secrets.map((s) => s.what).join(', '),
    );
    for (const [where, text] of served) assertNoSecret(text, secrets, where);
    const snapshot = JSON.parse(served.at(-1)![1]) as Snapshot;
    assert.equal(snapshot.nodes.length, 2);
  });

  test('actions from another origin or host are refused', async () => {
    const pay = (headers: Record<string, string>, body = '{"from":"alice","to":"bob","amount_sat":1}') =>
      fetch(new URL('api/actions/pay', dashboard.url), { method: 'POST', headers, body });
    const sentBefore = (await alice.ok('GET', '/v1/payments?limit=1')).total as number;
    const crossSite = await pay({ 'content-type': 'application/json', origin: 'http://evil.example' });
    assert.equal(crossSite.status, 403);
    assert.equal(((await crossSite.json()) as { error: { code: string } }).error.code, 'forbidden');
    const form = await pay({ 'content-type': 'application/x-www-form-urlencoded' }, 'from=alice&to=bob&amount_sat=1');
    assert.equal(form.status, 400);
    const unknown = await pay({ 'content-type': 'application/json' }, '{"from":"mallory","to":"bob","amount_sat":1}');
    assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, 'invalid_argument');
    // DNS rebinding: a page served from another name that resolves to 127.0.0.1 sends its own Host. Refused
    // everywhere: the page, the snapshot, the event stream and the actions.
    for (const [method, path, body] of [
      ['GET', '/', undefined],
      ['GET', '/api/snapshot', undefined],
      ['GET', '/api/events', undefined],
      ['POST', '/api/actions/pay', '{"from":"alice","to":"bob","amount_sat":1}'],
    ] as const) {
      const r = await rawRequest(
        method,
        path,
        { host: 'attacker.example', ...(body ? { 'content-type': 'application/json' } : {}) },
        body,
      );
      assert.equal(r.status, 403, `${method} ${path} with a foreign Host → ${r.status}`);
      assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'forbidden', `${method} ${path}`);
    }
    // Not one of the refused actions reached a node: a payment the dashboard does make comes next in alice's history.
    const ok = await action('pay', { from: 'alice', to: 'bob', amount_sat: 1 });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    const after = await alice.ok('GET', '/v1/payments?limit=1');
    assert.equal(after.total, sentBefore + 1);
    assert.equal(after.payments[0].payment_id, ok.body.payment_id);
  });

  /** A dashboard action as the page makes it (same origin, JSON). */
  async function action(name: string, body: unknown): Promise<ApiAnswer> {
    const u = new URL(`api/actions/${name}`, dashboard.url);
    const res = await fetch(u, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: u.origin },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  }

  /** One HTTP request with headers fetch would not let us set (Host). */
  function rawRequest(
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: string,
  ): Promise<{ status: number; body: string }> {
    const u = new URL(dashboard.url);
    return new Promise((resolve, reject) => {
      const req = request({ host: u.hostname, port: u.port, method, path, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }
});

interface StreamEvent {
  index: number;
  event: string;
  data: string;
}

/** The dashboard's server-sent events, read as raw bytes (all kept, for scanning) and parsed as they come. */
class EventStream {
  private readonly chunks: Buffer[] = [];
  private pending = '';
  readonly events: StreamEvent[] = [];
  private constructor(private readonly req: ReturnType<typeof request>) {}

  static open(url: URL): Promise<EventStream> {
    return new Promise((resolve, reject) => {
      const req = request(
        { host: url.hostname, port: url.port, path: url.pathname, headers: { accept: 'text/event-stream' } },
        (res) => {
          if (res.statusCode !== 200 || !String(res.headers['content-type']).startsWith('text/event-stream')) {
            reject(new Error(`event stream answered ${res.statusCode} ${res.headers['content-type']}`));
            return;
          }
          res.on('data', (c: Buffer) => stream.push(c));
          resolve(stream);
        },
      );
      const stream = new EventStream(req);
      req.on('error', (err) => {
        if (!stream.closed) reject(err);
      });
      req.end();
    });
  }

  private closed = false;

  get text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }

  private push(c: Buffer): void {
    this.chunks.push(c);
    this.pending += c.toString('latin1');
    let end: number;
    while ((end = this.pending.indexOf('\n\n')) >= 0) {
      const block = Buffer.from(this.pending.slice(0, end), 'latin1').toString('utf8');
      this.pending = this.pending.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n');
      if (event) this.events.push({ index: this.events.length, event, data });
    }
  }

  async waitFor(pred: (e: StreamEvent) => boolean, what: string): Promise<StreamEvent> {
    let found: StreamEvent | undefined;
    await waitUntil(() => (found = this.events.find(pred)) !== undefined, 30_000, what);
    return found!;
  }

  close(): void {
    this.closed = true;
    this.req.destroy();
  }
}
