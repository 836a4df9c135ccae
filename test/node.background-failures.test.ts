// run-tests lane: in-process
/**
 * The node host's work done on its own (chain following, redials, gossip, journal writes) has no caller
 * to fail to: each failure must reach the log, with what failed, and the metric
 * teechain_background_failures_total{task}. Shown on the chain follower with a stub enclave and chain.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { DepositView } from '../src/enclave/treasury/interface.ts';
import { logObserver } from '../src/log/node-log.ts';
import { NodeMetrics } from '../src/metrics/node-metrics.ts';
import { failureReporter } from '../src/node/failure-reporter.ts';
import { ChainFollower } from '../src/node/chain-follower.ts';
import type { ChainSource } from '../src/node/chain-source.ts';
import type { EcallArgs, EcallName, EcallPort, EcallResult } from '../src/node/enclave-client.ts';
import { NodeError } from '../src/node/errors.ts';
import { combineObservers } from '../src/node/observer.ts';

type Handlers = { [K in EcallName]?: (args: EcallArgs<K>) => Promise<EcallResult<K>> };

/** An enclave that answers only the ecalls given; any other is a test failure. */
function stubEnclave(handlers: Handlers): EcallPort & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    call<K extends EcallName>(name: K, args: EcallArgs<K>): Promise<EcallResult<K>> {
      calls.push(name);
      const h = handlers[name] as ((a: EcallArgs<K>) => Promise<EcallResult<K>>) | undefined;
      if (!h) return Promise.reject(new Error(`unexpected ecall ${name}`));
      return h(args);
    },
  };
}

const chain: ChainSource = {
  getTxOut: () => Promise.resolve(null),
  broadcast: () => Promise.reject(new Error('not in this test')),
  feeRate: () => Promise.resolve(1),
  blockHeight: () => Promise.resolve(100),
};

function pendingDeposit(id: string): DepositView {
  return {
    deposit_id: id,
    address: 'bcrt1qexample',
    witness_script: '00',
    m: 1,
    pubkeys: [],
    status: 'pending',
    outpoint: `${'ab'.repeat(32)}:${id.length}`,
    value_sat: null,
    channel_id: null,
    spent_by: null,
    release_tx_hex: null,
    awaiting_chain: false,
  };
}

/** A node's observer as the daemon wires it (metrics and logs), with the log lines kept. */
function observed() {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino(
    { level: 'info' },
    { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
  );
  const metrics = new NodeMetrics({ processMetrics: false });
  const count = async (task: string) => {
    const { body } = await metrics.expose();
    const m = new RegExp(`^teechain_background_failures_total\\{task="${task}"\\} (\\d+)$`, 'm').exec(body);
    assert.ok(m, `no teechain_background_failures_total series for ${task}`);
    return Number(m[1]);
  };
  return { lines, count, observer: combineObservers(metrics.observer, logObserver(log)) };
}

test('a failed background task is logged with what failed and counted by task', async () => {
  const { lines, count, observer } = observed();
  const enclave = stubEnclave({
    list_deposits: () => Promise.resolve({ deposits: [pendingDeposit('d1'), pendingDeposit('d22')] }),
    // d1 is simply not deep enough yet (the answer the follower waits out); d22 fails for real.
    deposit_funded: ({ deposit_id }) =>
      Promise.reject(
        deposit_id === 'd1'
          ? new NodeError('deposit_unconfirmed', 'deposit d1 has 0 of 1 confirmations')
          : new NodeError('enclave_failed', 'the sealed write failed'),
      ),
    list_channels: () => Promise.resolve({ channels: [] }),
  });
  assert.equal(await count('deposit_confirm'), 0);
  const follower = new ChainFollower({ enclave, chain, report: failureReporter(observer), stopping: () => false });
  await follower.followOnce();
  assert.deepEqual(enclave.calls, ['list_deposits', 'deposit_funded', 'deposit_funded', 'list_channels']);
  assert.equal(await count('deposit_confirm'), 1);
  const failures = lines.filter((l) => l.msg === 'background task failed');
  assert.equal(failures.length, 1);
  assert.equal(failures[0]!.level, 40); // warn
  assert.equal(failures[0]!.task, 'deposit_confirm');
  assert.equal(failures[0]!.deposit_id, 'd22');
  assert.equal(failures[0]!.err, 'the sealed write failed');
});

test('a round that cannot run at all is reported too, and the next round runs', async () => {
  const { lines, count, observer } = observed();
  let busy = true;
  const enclave = stubEnclave({
    list_deposits: () =>
      busy ? Promise.reject(new NodeError('enclave_failed', 'enclave busy')) : Promise.resolve({ deposits: [] }),
    list_channels: () => Promise.resolve({ channels: [] }),
  });
  const follower = new ChainFollower({ enclave, chain, report: failureReporter(observer), stopping: () => false });
  await follower.followOnce();
  assert.equal(await count('chain_watch'), 1);
  assert.equal(lines.filter((l) => l.task === 'chain_watch').length, 1);
  busy = false;
  await follower.followOnce();
  assert.equal(await count('chain_watch'), 1);
  assert.deepEqual(enclave.calls, ['list_deposits', 'list_deposits', 'list_channels']);
});

test('failures once the node is stopping are its own doing and are not reported', async () => {
  const { lines, count, observer } = observed();
  let stopping = false;
  const report = failureReporter(observer, () => stopping);
  report('gossip', new Error('enclave_terminated'));
  stopping = true;
  report('gossip', new Error('enclave_terminated'));
  assert.equal(await count('gossip'), 1);
  assert.equal(lines.filter((l) => l.task === 'gossip').length, 1);
});
