/**
 * Smoke test of the LDK scenario (src/ldk): two real LDK node processes on the embedded regtest chain, a
 * channel funded on chain and confirmed, a handful of BOLT 11 payments one at a time and in flight, the
 * payee's balance grown by exactly the sum paid, a cooperative close checked on chain. And the two bad
 * cases: an unreachable chain and a channel that never confirms fail fast with a clear message.
 * Bounded (well under 60 s here); the full scenario is in `npm run bench`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startEmbeddedChain } from '../src/chain/embedded/index.ts';
import { LdkPair } from '../src/ldk/run.ts';
import { tempDir } from './helpers/network.ts';

test(
  'ldk: channel opened on chain, invoices paid and claimed, payee credited exactly, cooperative close on chain',
  { timeout: 90_000 },
  async () => {
    const dir = await tempDir('teechain-ldk-test-');
    const chain = await startEmbeddedChain({ memory: true });
    let pair: LdkPair | undefined;
    try {
      pair = await LdkPair.start({
        dir,
        rpcUrl: chain.rpcUrl,
        rpcUser: chain.rpcUser,
        rpcPassword: chain.rpcPassword,
        capacitySat: 1_000_000n,
        logLevel: 'warn',
      });
      const one = await pair.run(4, 1, 1_000n);
      assert.equal(one.failed, 0, one.verificationError);
      assert.equal(one.payeeGainSat, 4_000n);
      assert.equal(one.verified, true, one.verificationError);
      const many = await pair.run(12, 6, 1_500n);
      assert.equal(many.failed, 0, many.verificationError);
      assert.equal(many.payeeGainSat, 18_000n);
      assert.equal(many.verified, true, many.verificationError);
      assert.ok(many.storeWrites > 12, 'monitor updates were written durably');
      const close = await pair.close();
      assert.equal(close.verified, true, close.verificationError);
      assert.equal(close.payeeOutputSat, 22_000n);
      assert.equal(close.payerOutputSat + close.feeSat, 1_000_000n - 22_000n);
    } finally {
      await pair?.stop();
      await chain.close();
    }
  },
);

test('ldk: an unreachable chain is a clear error, not a hang', { timeout: 60_000 }, async () => {
  const dir = await tempDir('teechain-ldk-test-');
  await assert.rejects(
    LdkPair.start({ dir, rpcUrl: 'http://127.0.0.1:1/', rpcUser: 'u', rpcPassword: 'p', capacitySat: 100_000n }),
    /the chain at http:\/\/127\.0\.0\.1:1\/ is unreachable/,
  );
});

test(
  'ldk: a channel whose funding is never mined fails with a clear message after the timeout',
  { timeout: 60_000 },
  async () => {
    const dir = await tempDir('teechain-ldk-test-');
    const chain = await startEmbeddedChain({ memory: true });
    try {
      // The test's own timeout is the bound on "not a hang"; no timed assertion (the machine is shared).
      await assert.rejects(
        LdkPair.start({
          dir: join(dir, 'n'),
          rpcUrl: chain.rpcUrl,
          rpcUser: chain.rpcUser,
          rpcPassword: chain.rpcPassword,
          capacitySat: 100_000n,
          confirmations: 0,
          readyTimeoutMs: 2_000,
          logLevel: 'warn',
        }),
        /the channel did not become ready within 2000 ms/,
      );
    } finally {
      await chain.close();
    }
  },
);
