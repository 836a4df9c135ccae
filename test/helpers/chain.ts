/**
 * Test helpers for the chain layer: the backends a shared suite runs against (the embedded chain
 * always; a real bitcoind when BITCOIND_RPC_URL is set, otherwise reported as skipped), keys,
 * state snapshots for "nothing changed" checks, and rejection assertions.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedChain, type EmbeddedChainOptions } from '../../src/chain/embedded/index.ts';
import { BitcoinRpcClient, RpcError } from '../../src/chain/rpc-client.ts';
import { Faucet } from '../../src/chain/faucet.ts';
import { chainBackendFromEnv, bitcoindClient } from '../../src/chain/config.ts';
import { publicKeyOf, randomPrivateKey } from '../../src/crypto/secp256k1.ts';
import { p2wpkh } from '../../src/bitcoin/p2wpkh.ts';

/** A chain a test talks to. */
export interface ChainUnderTest {
  backend: 'embedded' | 'bitcoind';
  rpc: BitcoinRpcClient;
  faucet: Faucet;
  close(): Promise<void>;
}

/** A backend a shared suite can run against; `skip` is the reason it cannot, or false. */
export interface ChainBackend {
  name: 'embedded' | 'bitcoind';
  skip: string | false;
  start(): Promise<ChainUnderTest>;
}

/** An in-memory embedded chain with a client and a faucet. */
export async function startTestChain(
  opts: EmbeddedChainOptions = { memory: true },
): Promise<ChainUnderTest & { rpcUrl: string; user: string; password: string }> {
  const chain = await startEmbeddedChain(opts);
  const rpc = new BitcoinRpcClient({ url: chain.rpcUrl, user: chain.rpcUser, password: chain.rpcPassword });
  return {
    backend: 'embedded',
    rpc,
    faucet: new Faucet(rpc),
    close: () => chain.close(),
    rpcUrl: chain.rpcUrl,
    user: chain.rpcUser,
    password: chain.rpcPassword,
  };
}

/** The embedded backend, and bitcoind (skipped unless BITCOIND_RPC_URL and credentials are set). */
export function chainBackends(): ChainBackend[] {
  const cfg = chainBackendFromEnv();
  return [
    { name: 'embedded', skip: false, start: () => startTestChain() },
    {
      name: 'bitcoind',
      skip:
        cfg.kind === 'bitcoind'
          ? false
          : 'BITCOIND_RPC_URL not set (needs a bitcoind -regtest -txindex=1 and credentials)',
      async start() {
        if (cfg.kind !== 'bitcoind') throw new Error('unreachable: bitcoind backend not configured');
        const rpc = await bitcoindClient(cfg);
        return { backend: 'bitcoind', rpc, faucet: new Faucet(rpc), close: async () => {} };
      },
    },
  ];
}

/** A fresh key pair with its P2WPKH address. */
export function newKey(): { priv: Uint8Array; pub: Uint8Array; address: string } {
  const priv = randomPrivateKey();
  const pub = publicKeyOf(priv);
  return { priv, pub, address: p2wpkh(pub).address };
}

/** A temporary directory, removed by the returned cleanup. */
export function tempDir(prefix = 'chain-test-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Height, tip, mempool and the state of some outputs: equal snapshots mean nothing changed. */
export async function snapshot(rpc: BitcoinRpcClient, outpoints: ReadonlyArray<{ txid: string; vout: number }> = []) {
  const mempool = (await rpc.getRawMempool()).sort();
  const outs = [];
  for (const o of outpoints) {
    const out = await rpc.getTxOut(o.txid, o.vout, true);
    outs.push(
      out ? { ...o, valueSat: out.valueSat, confirmations: out.confirmations } : { ...o, spentOrUnknown: true },
    );
  }
  return { height: await rpc.getBlockCount(), best: await rpc.getBestBlockHash(), mempool, outs };
}

/**
 * Sends `hex`, expects a JSON-RPC error with `code` and a message matching `reason`, and checks the
 * chain, mempool and the given outputs are exactly as before.
 */
export async function expectRejected(
  rpc: BitcoinRpcClient,
  hex: string,
  code: number,
  reason: RegExp,
  outpoints: ReadonlyArray<{ txid: string; vout: number }> = [],
): Promise<RpcError> {
  const before = await snapshot(rpc, outpoints);
  const err = await rpc.sendRawTransaction(hex).then(
    (txid) => assert.fail(`expected a rejection (${code} ${reason}), but it was accepted as ${txid}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof RpcError, `expected an RpcError, got ${String(err)}`);
  assert.equal(err.code, code, `code of: ${err.rpcMessage}`);
  assert.match(err.rpcMessage, reason);
  assert.deepEqual(await snapshot(rpc, outpoints), before, 'chain or mempool changed after a rejection');
  if (process.env.CHAIN_TEST_VERBOSE) process.stderr.write(`rejected: ${err.code} ${err.rpcMessage}\n`);
  return err;
}
