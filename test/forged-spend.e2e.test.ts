// run-tests lane: light
/**
 * A lying chain RPC shows a node a forged spend of its channel's deposit: a transaction that is not on chain
 * and carries no valid signature, served in the mempool listing and by getrawtransaction. Real node
 * processes, the embedded regtest chain, an HTTP JSON-RPC proxy in front of it for one node only.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { payments, Transaction } from 'bitcoinjs-lib';
import { fundDeposit, NodeProcess, openChannel, waitUntil, type TestChain, startE2eFile } from './helpers/network.ts';
import { NETWORK } from '../src/enclave/treasury/transactions.ts';

let chain: TestChain;
let dir: string;
let key: string;

before(async () => ({ chain, dir, key } = await startE2eFile()));
after(() => chain?.close());

/**
 * Relays JSON-RPC to the chain; once `forge` is set, getrawmempool also lists the forged txid and
 * getrawtransaction answers it (decoded by the real chain, which does not check signatures when decoding).
 */
async function startLyingRpc(upstream: string) {
  let forged: { txid: string; hex: string } | null = null;
  const served = { verbose: 0, hex: 0 };
  const call = async (auth: string | undefined, method: string, params: unknown[]) => {
    const res = await fetch(upstream, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
      body: JSON.stringify({ jsonrpc: '1.0', id: 'lie', method, params }),
    });
    return (await res.json()) as { result: unknown; error: unknown };
  };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      void (async () => {
        const msg = JSON.parse(body) as { id: unknown; method: string; params?: unknown[] };
        const params = msg.params ?? [];
        const answer = (result: unknown) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ result, error: null, id: msg.id }));
        };
        if (forged && msg.method === 'getrawtransaction' && params[0] === forged.txid) {
          if (params[1]) {
            served.verbose++;
            const decoded = await call(req.headers.authorization, 'decoderawtransaction', [forged.hex]);
            return answer({ ...(decoded.result as object), hex: forged.hex, confirmations: 0 });
          }
          served.hex++;
          return answer(forged.hex);
        }
        const up = await fetch(upstream, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
          },
          body,
        });
        const text = await up.text();
        if (forged && msg.method === 'getrawmempool' && !params[0] && up.ok) {
          const parsed = JSON.parse(text) as { result: string[] };
          parsed.result = [...parsed.result, forged.txid];
          res.writeHead(200, { 'content-type': 'application/json' });
          return res.end(JSON.stringify(parsed));
        }
        res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/json' });
        res.end(text);
      })().catch((e: unknown) => {
        res.writeHead(500);
        res.end(String(e));
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    served,
    forge(hex: string) {
      forged = { txid: Transaction.fromHex(hex).getId(), hex };
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

test('a forged spend of a channel deposit, shown by a lying chain RPC, is not final: the channel stays open and pays; the real settlement decides', async () => {
  const lying = await startLyingRpc(chain.rpcUrl);
  const [a, b] = await Promise.all([
    NodeProcess.start(join(dir, 'a'), { ...chain, rpcUrl: lying.url }, key),
    NodeProcess.start(join(dir, 'b'), chain, key),
  ]);
  try {
    const [da, db] = await Promise.all([fundDeposit(a, 200_000), fundDeposit(b, 100_000)]);
    const ch = await openChannel(a, b, [da], [db]);
    const dep = (await a.ok('GET', '/v1/deposits')).deposits.find((d: { deposit_id: string }) => d.deposit_id === da);

    // A spend of a's deposit to a stranger: the deposit's own script, a signature-shaped blob that signs nothing.
    const forged = new Transaction();
    const [txid, vout] = (dep.outpoint as string).split(':') as [string, string];
    forged.addInput(Buffer.from(txid, 'hex').reverse(), Number(vout));
    forged.addOutput(payments.p2wpkh({ hash: randomBytes(20), network: NETWORK }).output!, 199_000n);
    forged.setWitness(0, [
      Buffer.alloc(0),
      Buffer.concat([Buffer.from([0x30, 0x44]), randomBytes(68), Buffer.from([0x01])]),
      Buffer.from(dep.witness_script, 'hex'),
    ]);
    lying.forge(forged.toHex());
    const before = await a.ok('GET', `/v1/channels/${ch}`);
    // a's watcher finds it in the "mempool" and fetches it for its enclave.
    await waitUntil(() => lying.served.hex >= 1, 20_000, "a's host fetches the forged spend");
    // A definite later event: a payment a makes afterwards, acknowledged by b.
    const pay = await a.ok('POST', '/v1/payments', { channel_id: ch, amount_sat: 5_000 });
    assert.equal(pay.status, 'succeeded', 'the channel still pays');
    const after = await a.ok('GET', `/v1/channels/${ch}`);
    assert.equal(after.status, 'open', `a forged spend closed the channel (settlement ${after.settlement_txid})`);
    assert.equal(after.settlement_txid ?? null, null);
    assert.equal(BigInt(after.local_balance_sat), BigInt(before.local_balance_sat) - 5_000n);
    const still = (await a.ok('GET', '/v1/deposits')).deposits.find((d: { deposit_id: string }) => d.deposit_id === da);
    assert.deepEqual([still.status, still.spent_by], ['in_channel', null]);

    // b's real settlement is what closes it, on both sides, at the balances after the payment.
    const s = await b.ok('POST', `/v1/channels/${ch}/settle`, {});
    await chain.mine(1);
    await waitUntil(
      async () => (await a.ok('GET', `/v1/channels/${ch}`)).status === 'closed',
      20_000,
      "a sees b's settlement",
    );
    const closed = await a.ok('GET', `/v1/channels/${ch}`);
    assert.equal(closed.settlement_txid, s.txid);
    assert.notEqual(closed.settlement_txid, forged.getId());
    assert.equal(closed.local_balance_sat, String(200_000 - 5_000));
  } finally {
    await a.kill('SIGTERM');
    await b.kill('SIGTERM');
    await lying.close();
  }
});
