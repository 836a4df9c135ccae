// run-tests lane: in-process
/**
 * The façade speaks bitcoind's JSON-RPC over HTTP (auth, cookie, 1.0/2.0, batches, Core's error
 * codes and shapes) and the typed client splits failures by cause.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { address as bjsAddress, networks, payments } from 'bitcoinjs-lib';
import {
  BitcoinRpcClient,
  RpcCode,
  RpcError,
  RpcInvalidDataError,
  RpcTransportError,
} from '../src/chain/rpc-client.ts';
import { startEmbeddedChain, type EmbeddedChain } from '../src/chain/embedded/index.ts';
import { newKey, tempDir } from './helpers/chain.ts';

let chain: EmbeddedChain;
let rpc: BitcoinRpcClient;
const dir = tempDir('chain-rpc-');

/** A raw HTTP JSON-RPC exchange, to see status codes and exact bodies. */
async function post(body: string, auth = `${chain.rpcUser}:${chain.rpcPassword}`) {
  const res = await fetch(chain.rpcUrl, {
    method: 'POST',
    body,
    headers: { Authorization: 'Basic ' + Buffer.from(auth).toString('base64'), 'Content-Type': 'application/json' },
  });
  return { status: res.status, text: await res.text() };
}

async function rpcError(p: Promise<unknown>): Promise<RpcError> {
  const err = await p.then(
    () => assert.fail('expected an RpcError'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof RpcError, String(err));
  return err;
}

before(async () => {
  // In memory, but with a datadir so the cookie file is written.
  chain = await startEmbeddedChain({ memory: true, datadir: dir.dir });
  rpc = new BitcoinRpcClient({ url: chain.rpcUrl, user: chain.rpcUser, password: chain.rpcPassword });
});
after(async () => {
  await chain?.close();
  dir.cleanup();
});

test('a new chain is mined to segwit activation and reports itself as regtest', async () => {
  assert.ok(chain.activationBlocksMined >= 432, `mined ${chain.activationBlocksMined}`);
  const info = await rpc.getBlockchainInfo();
  assert.equal(info.chain, 'regtest');
  assert.equal(info.blocks, chain.height);
  assert.equal(info.bestBlockHash, await rpc.getBestBlockHash());
  assert.equal(await rpc.getBlockHash(info.blocks), info.bestBlockHash);
  // Regtest genesis hash, as bitcoind shows it.
  assert.equal(await rpc.getBlockHash(0), '0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206');
});

test('credentials: cookie file like bitcoind, 401 on a wrong password, cookie login works', async () => {
  assert.equal(chain.cookieFile, join(dir.dir, '.cookie'));
  assert.equal(readFileSync(chain.cookieFile as string, 'utf8'), `__cookie__:${chain.rpcPassword}`);
  const res = await post('{"method":"getblockcount","params":[],"id":1}', '__cookie__:wrong');
  assert.equal(res.status, 401);
  const viaCookie = await BitcoinRpcClient.fromCookie(chain.rpcUrl, chain.cookieFile as string);
  assert.equal(await viaCookie.getBlockCount(), chain.height);
});

test('JSON-RPC framing: 1.0 replies with result+error, 2.0 without, batches, parse errors, HTTP statuses', async () => {
  const v1 = await post('{"method":"getblockcount","params":[],"id":"a"}');
  assert.equal(v1.status, 200);
  assert.deepEqual(JSON.parse(v1.text), { result: chain.height, error: null, id: 'a' });
  const v2 = await post('{"jsonrpc":"2.0","method":"getblockcount","id":7}');
  assert.deepEqual(JSON.parse(v2.text), { jsonrpc: '2.0', result: chain.height, id: 7 });
  const notFound = await post('{"method":"nosuchmethod","params":[],"id":1}');
  assert.equal(notFound.status, 404);
  assert.deepEqual(JSON.parse(notFound.text).error, { code: -32601, message: 'Method not found' });
  const parse = await post('{not json');
  assert.equal(parse.status, 500);
  assert.equal(JSON.parse(parse.text).error.code, -32700);
  const batch = await post(
    '[{"method":"getblockcount","id":1},{"method":"nosuch","id":2},{"method":"getbestblockhash","id":3}]',
  );
  assert.equal(batch.status, 200);
  const replies = JSON.parse(batch.text) as Array<{ id: number; result: unknown; error: { code: number } | null }>;
  assert.deepEqual(
    replies.map((r) => r.id),
    [1, 2, 3],
  );
  assert.equal(replies[0]?.result, chain.height);
  assert.equal(replies[1]?.error?.code, -32601);
  assert.equal(replies[2]?.result, await rpc.getBestBlockHash());
});

test('amounts are printed exactly with 8 decimals on the wire', async () => {
  const res = await post('{"method":"estimatesmartfee","params":[6],"id":1}');
  assert.match(res.text, /"feerate":0\.00001000/);
});

test('parameter errors use Core codes: -8 bad hash/height, -3 wrong type, -1 arity, -5 unknown block/tx', async () => {
  assert.equal((await rpcError(rpc.call('getblock', ['abc']))).code, RpcCode.INVALID_PARAMETER);
  assert.match((await rpcError(rpc.call('getblock', ['zz'.repeat(32)]))).rpcMessage, /must be hexadecimal/);
  assert.equal((await rpcError(rpc.call('getblock', ['00'.repeat(32)]))).code, RpcCode.INVALID_ADDRESS_OR_KEY);
  assert.equal((await rpcError(rpc.call('getblockhash', [1e6]))).rpcMessage, 'Block height out of range');
  assert.equal((await rpcError(rpc.call('getblockhash', ['1']))).code, RpcCode.TYPE_ERROR);
  assert.equal((await rpcError(rpc.call('getblockhash', []))).code, RpcCode.MISC_ERROR);
  assert.equal((await rpcError(rpc.call('getblockcount', [1]))).code, RpcCode.MISC_ERROR);
  assert.equal((await rpcError(rpc.call('getrawtransaction', ['11'.repeat(32)]))).code, RpcCode.INVALID_ADDRESS_OR_KEY);
  assert.equal(
    (await rpcError(rpc.call('getmempoolentry', ['11'.repeat(32)]))).rpcMessage,
    'Transaction not in mempool',
  );
  assert.equal((await rpcError(rpc.call('estimatesmartfee', [0]))).code, RpcCode.INVALID_PARAMETER);
  assert.equal(
    (await rpcError(rpc.call('getblock', { blockhash: await rpc.getBestBlockHash(), nosuch: 1 }))).code,
    RpcCode.INVALID_PARAMETER,
  );
  assert.equal(await rpc.getTxOut('11'.repeat(32), 0), null);
});

test('named parameters work like positional ones', async () => {
  const hash = await rpc.getBestBlockHash();
  assert.deepEqual(
    await rpc.call('getblock', { blockhash: hash, verbosity: 1 }),
    await rpc.call('getblock', [hash, 1]),
  );
});

test('blocks and headers in every verbosity, addresses in Core form both ways', async () => {
  const k = newKey();
  const p2pkh = payments.p2pkh({ pubkey: k.pub, network: networks.regtest }).address as string;
  const p2sh = payments.p2sh({
    redeem: payments.p2wpkh({ pubkey: k.pub, network: networks.regtest }),
    network: networks.regtest,
  }).address as string;
  assert.match(p2pkh, /^[mn]/);
  assert.match(p2sh, /^2/);
  const p2tr = bjsAddress.toBech32(new Uint8Array(32).fill(7), 1, 'bcrt');
  for (const addr of [k.address, p2pkh, p2sh, p2tr]) {
    const [hash] = await rpc.generateToAddress(1, addr);
    const block = await rpc.getBlockWithTxs(hash as string);
    assert.ok(
      block.txs[0]?.vout.some((o) => o.scriptPubKey.address === addr),
      `coinbase pays ${addr}`,
    );
  }
  assert.equal(
    (await rpcError(rpc.generateToAddress(1, 'rb1qnd2r5t6ce4zeau2artlxu3j6mpdtq97hl89pjk'))).code,
    RpcCode.INVALID_ADDRESS_OR_KEY,
  );
  const hash = await rpc.getBestBlockHash();
  const header = await rpc.getBlockHeader(hash);
  assert.equal(header.hash, hash);
  assert.equal(header.confirmations, 1);
  assert.equal(header.nextBlockHash, null);
  assert.equal((await rpc.call<string>('getblockheader', [hash, false])).length, 160);
  const raw = await rpc.getBlockHex(hash);
  const verbose = await rpc.getBlock(hash);
  assert.equal(raw.length / 2, verbose.size);
  assert.equal(verbose.txids.length, verbose.nTx);
  const prev = await rpc.getBlockHeader(header.previousBlockHash as string);
  assert.equal(prev.nextBlockHash, hash);
  assert.equal(prev.confirmations, 2);
  assert.equal(bjsAddress.toOutputScript(k.address, networks.regtest).length, 22);
});

test('scantxoutset: addr() and raw() descriptors with checksums, result shape, bad descriptors', async () => {
  const k = newKey();
  await rpc.generateToAddress(2, k.address);
  const script = Buffer.from(bjsAddress.toOutputScript(k.address, networks.regtest)).toString('hex');
  const byAddr = await rpc.scanTxOutSet([`addr(${k.address})`]);
  assert.equal(byAddr.unspents.length, 2);
  assert.ok(
    byAddr.unspents.every(
      (u) => u.coinbase === true && u.scriptPubKeyHex === script && u.desc.startsWith(`addr(${k.address})#`),
    ),
  );
  assert.equal(byAddr.totalSat, byAddr.unspents[0]!.valueSat * 2n);
  const byRaw = await rpc.scanTxOutSet([`raw(${script})`]);
  assert.deepEqual(byRaw.unspents, byAddr.unspents);
  const withChecksum = byAddr.unspents[0]!.desc;
  assert.equal((await rpc.scanTxOutSet([withChecksum])).unspents.length, 2);
  // Corrupt the checksum's last character into a different character of the checksum charset (a fixed
  // replacement would leave the descriptor valid whenever the checksum already ends in it).
  const last = withChecksum.at(-1)!;
  const corrupted = withChecksum.slice(0, -1) + (last === 'q' ? 'p' : 'q');
  assert.notEqual(corrupted, withChecksum);
  assert.equal((await rpcError(rpc.scanTxOutSet([corrupted]))).code, RpcCode.INVALID_ADDRESS_OR_KEY);
  assert.equal((await rpcError(rpc.scanTxOutSet(['addr(notanaddress)']))).code, RpcCode.INVALID_ADDRESS_OR_KEY);
  assert.equal(await rpc.call('scantxoutset', ['abort']), false);
});

test('client: wrong password → RpcTransportError 401; unknown method → RpcError -32601', async () => {
  const bad = new BitcoinRpcClient({ url: chain.rpcUrl, user: chain.rpcUser, password: 'nope' });
  const err = await bad.getBlockCount().then(
    () => assert.fail('accepted'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof RpcTransportError);
  assert.equal(err.httpStatus, 401);
  const unknown = await rpcError(rpc.call('nosuchmethod'));
  assert.equal(unknown.code, RpcCode.METHOD_NOT_FOUND);
});

test('client: a dead port fails fast with RpcTransportError; a silent server times out', async () => {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  // Fails fast: the refusal itself is the error (ECONNREFUSED), not the client's time limit running out.
  const dead = new BitcoinRpcClient({ url: `http://127.0.0.1:${port}/`, user: 'u', password: 'p', timeoutMs: 600_000 });
  await assert.rejects(
    dead.getBlockCount(),
    (e: unknown) => e instanceof RpcTransportError && /ECONNREFUSED/.test(e.message),
  );

  const silent: Server = createServer(() => {
    /* never answers */
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  try {
    const slow = new BitcoinRpcClient({
      url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}/`,
      user: 'u',
      password: 'p',
      timeoutMs: 200,
    });
    await assert.rejects(
      slow.sendRawTransaction('00'),
      (e: unknown) => e instanceof RpcTransportError && /within 200 ms/.test(e.message),
    );
  } finally {
    silent.closeAllConnections();
    await new Promise<void>((r) => silent.close(() => r()));
  }
});

test('client: a result of the wrong shape is an RpcInvalidDataError naming the field', async () => {
  const liar = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end(JSON.stringify({ result: { txid: 'x', value: 'lots' }, error: null, id: 1 })));
  });
  await new Promise<void>((r) => liar.listen(0, '127.0.0.1', r));
  try {
    const client = new BitcoinRpcClient({
      url: `http://127.0.0.1:${(liar.address() as AddressInfo).port}/`,
      user: 'u',
      password: 'p',
    });
    await assert.rejects(
      client.getTxOut('11'.repeat(32), 0),
      (e: unknown) => e instanceof RpcInvalidDataError && e.field === 'result.bestblock',
    );
    await assert.rejects(
      client.getBlockCount(),
      (e: unknown) => e instanceof RpcInvalidDataError && e.field === 'result',
    );
  } finally {
    await new Promise<void>((r) => liar.close(() => r()));
  }
});
